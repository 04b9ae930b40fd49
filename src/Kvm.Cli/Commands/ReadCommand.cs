using System.CommandLine;
using System.Text;

namespace Kvm.Cli.Commands;

/// <summary><c>kmem read ADDR|SYM[+OFF] LEN</c>: a hexdump of kernel virtual (or, with --phys, physical) memory.</summary>
internal static class ReadCommand
{
    private const int MaxLength = 64 << 20;

    public static Command Create(CliIo io)
    {
        var address = new Argument<string>("address") { Description = "Address (0x…), or symbol with optional +offset" };
        var length = new Argument<string>("length") { Description = "Bytes to read (decimal, or 0x… hex)" };
        var raw = new Option<bool>("--raw") { Description = "Write the bytes to standard output instead of a hexdump" };
        var phys = new Option<bool>("--phys") { Description = "Read physical memory" };
        var command = new Command("read", "Read kernel memory");
        command.Arguments.Add(address);
        command.Arguments.Add(length);
        command.Options.Add(raw);
        command.Options.Add(phys);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(address)!, parse.GetValue(length)!, parse.GetValue(raw), parse.GetValue(phys))));
        return command;
    }

    private static int Run(CliContext ctx, string addressText, string lengthText, bool raw, bool phys)
    {
        using var image = ctx.OpenImage();
        ulong address = AddressExpression.Resolve(addressText, image);
        int length = AddressExpression.ParseLength(lengthText, MaxLength);
        var buffer = new byte[length];
        int n;
        MemoryFaultException? fault;
        if (phys)
        {
            image.TryReadPhysical(address, buffer, out n, out fault);
        }
        else
        {
            image.TryRead(address, buffer, out n, out fault);
        }

        if (raw)
        {
            using var stdout = Console.OpenStandardOutput();
            stdout.Write(buffer, 0, n);
        }
        else if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteString("address", JsonOutput.Hex(address));
                w.WriteBoolean("physical", phys);
                w.WriteNumber("requested", length);
                w.WriteNumber("length", n);
                w.WriteString("bytes", Convert.ToHexStringLower(buffer, 0, n));
                w.WriteString("error", fault?.Message);
                w.WriteEndObject();
            });
        }
        else
        {
            HexDump(ctx.Out, address, buffer.AsSpan(0, n));
        }

        if (fault is not null)
        {
            ctx.Error.WriteLine($"kmem: {fault.Message}");
            return 1;
        }

        return 0;
    }

    /// <summary>Sixteen bytes a line, address first, ASCII last (xxd/crash style).</summary>
    public static void HexDump(TextWriter output, ulong address, ReadOnlySpan<byte> bytes)
    {
        var line = new StringBuilder(100);
        for (int i = 0; i < bytes.Length; i += 16)
        {
            line.Clear();
            line.Append($"{address + (ulong)i:x16}: ");
            var row = bytes.Slice(i, Math.Min(16, bytes.Length - i));
            for (int j = 0; j < 16; j++)
            {
                line.Append(j < row.Length ? $" {row[j]:x2}" : "   ");
                if (j == 7)
                {
                    line.Append(' ');
                }
            }

            line.Append("  |");
            foreach (byte b in row)
            {
                line.Append(b is >= 0x20 and < 0x7f ? (char)b : '.');
            }

            line.Append('|');
            output.WriteLine(line.ToString());
        }
    }
}
