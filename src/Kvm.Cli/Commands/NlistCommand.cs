using System.Globalization;
using System.CommandLine;

namespace Kvm.Cli.Commands;

/// <summary><c>kmem nlist SYM…</c>: look symbols up; the exit status is the number not found, as kvm_nlist returns.</summary>
internal static class NlistCommand
{
    public static Command Create(CliIo io)
    {
        var names = new Argument<string[]>("symbol") { Description = "Symbol names (a leading underscore is optional)", Arity = ArgumentArity.OneOrMore };
        var command = new Command("nlist", "Look up kernel symbols; exit status is the number not found");
        command.Arguments.Add(names);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(names)!)));
        return command;
    }

    private static int Run(CliContext ctx, string[] names)
    {
        using var image = ctx.OpenImage();
        int missing = 0;
        var results = names.Select(n => (Name: n, Found: image.TryGetSymbol(n, out var s), Symbol: s)).ToList();
        missing = results.Count(r => !r.Found);
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartArray();
                foreach (var r in results)
                {
                    w.WriteStartObject();
                    w.WriteString("name", r.Name);
                    w.WriteBoolean("found", r.Found);
                    if (r.Found)
                    {
                        w.WriteString("address", JsonOutput.Hex(r.Symbol.Address));
                        w.WriteString("type", r.Symbol.Type.ToString());
                        w.WriteString("source", r.Symbol.Source);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
            });
        }
        else
        {
            // As nm prints them: as many hex digits as the kernel's pointers have (8 on i386).
            int digits = image.PointerSize * 2;
            foreach (var r in results)
            {
                ctx.Out.WriteLine(r.Found ? $"{r.Symbol.Address.ToString($"x{digits}", CultureInfo.InvariantCulture)} {r.Symbol.Type} {r.Name}" : $"{new string(' ', digits)} ? {r.Name} (not found)");
            }
        }

        return Math.Min(missing, 125);
    }
}
