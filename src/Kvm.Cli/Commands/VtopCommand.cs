using System.CommandLine;

namespace Kvm.Cli.Commands;

/// <summary><c>kmem vtop ADDR</c>: the page-table walk, each level's table, index and entry.</summary>
internal static class VtopCommand
{
    public static Command Create(CliIo io)
    {
        var address = new Argument<string>("address") { Description = "Kernel virtual address (0x…), or symbol with optional +offset" };
        var command = new Command("vtop", "Translate a kernel virtual address, showing every page-table level");
        command.Arguments.Add(address);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(address)!)));
        return command;
    }

    private static int Run(CliContext ctx, string addressText)
    {
        using var image = ctx.OpenImage();
        ulong va = AddressExpression.Resolve(addressText, image);
        var walk = image.Translate(va);
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteString("virtual", JsonOutput.Hex(va));
                w.WriteString("physical", walk.PhysicalAddress is { } pa ? JsonOutput.Hex(pa) : null);
                w.WriteNumber("pageSize", walk.PageSize);
                w.WriteString("method", walk.Method);
                w.WriteNumber("pagingLevels", image.Layout.PagingLevels);
                w.WriteString("root", JsonOutput.Hex(image.Layout.PageTableRoot));
                w.WriteStartArray("steps");
                foreach (var s in walk.Steps)
                {
                    w.WriteStartObject();
                    w.WriteString("level", s.Level);
                    w.WriteString("table", JsonOutput.Hex(s.TableAddress));
                    w.WriteNumber("index", s.Index);
                    w.WriteString("entryAddress", JsonOutput.Hex(s.EntryAddress));
                    w.WriteString("entry", JsonOutput.Hex(s.Entry));
                    w.WriteBoolean("leaf", s.IsLeaf);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteString("error", walk.Fault?.Message);
                w.WriteEndObject();
            });
        }
        else
        {
            ctx.Out.WriteLine($"virtual  {va:x16}");
            foreach (var s in walk.Steps)
            {
                ctx.Out.WriteLine(s.Level == "pmap"
                    ? $"  pmap entry [{s.Index}] of the minidump = {s.Entry:x16}{(s.IsLeaf ? "  (leaf)" : string.Empty)}"
                    : $"  {s.Level,-4} table {s.TableAddress:x12} [{s.Index,3}] @ {s.EntryAddress:x12} = {s.Entry:x16}{(s.IsLeaf ? "  (leaf)" : string.Empty)}");
            }

            if (walk.PhysicalAddress is { } pa)
            {
                ctx.Out.WriteLine($"physical {pa:x16}  ({PageSizeName(walk.PageSize)} page, {walk.Method})");
            }
        }

        if (walk.Fault is not null)
        {
            ctx.Error.WriteLine($"kmem: {walk.Fault.Message}");
            return 1;
        }

        return 0;
    }

    // Every page or block size either architecture maps is a power of two from 4 KiB (x86-64) to 4 TiB (an arm64
    // 64 KiB-granule level-1 block).
    private static string PageSizeName(ulong size) => size switch
    {
        >= 1UL << 40 => $"{size >> 40} TiB",
        >= 1UL << 30 => $"{size >> 30} GiB",
        >= 1UL << 20 => $"{size >> 20} MiB",
        >= 1UL << 10 => $"{size >> 10} KiB",
        _ => "4 KiB",
    };
}
