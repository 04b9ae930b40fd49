using System.CommandLine;
using System.Globalization;

namespace Kvm.Cli.Commands;

/// <summary><c>kmem swapinfo</c>: the swap areas, as BSD swapinfo and <c>swapon -s</c> list them.</summary>
internal static class SwapinfoCommand
{
    public static Command Create(CliIo io)
    {
        var kib = new Option<bool>("-k") { Description = "Sizes in 1024-byte blocks (the default)" };

        // -h is help in kmem, so human-readable sizes are --human only.
        var human = new Option<bool>("--human") { Description = "Sizes with units (K, M, G)" };
        var command = new Command("swapinfo", "List swap areas with their size and use");
        command.Options.Add(kib);
        command.Options.Add(human);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(human))));
        return command;
    }

    private static int Run(CliContext ctx, bool human)
    {
        using var image = ctx.OpenImage();
        var swap = image.GetSwapInfo();
        long Kib(long pages) => pages * swap.PageSize / 1024;
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteStartArray("areas");
                foreach (var a in swap.Areas)
                {
                    w.WriteStartObject();
                    w.WriteNumber("index", a.Type);
                    w.WriteString("name", a.Name);
                    w.WriteString("type", a.IsFile ? "file" : "partition");
                    w.WriteNumber("totalKiB", Kib(a.TotalPages));
                    w.WriteNumber("usedKiB", Kib(a.UsedPages));
                    w.WriteNumber("priority", a.Priority);
                    w.WriteBoolean("file", a.IsFile);
                    w.WriteBoolean("writeable", a.IsWriteable);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteNumber("totalKiB", Kib(swap.TotalPages));
                w.WriteNumber("usedKiB", Kib(swap.UsedPages));
                w.WriteEndObject();
            });
            return 0;
        }

        var rows = swap.Areas.Select(a => (a.Name, Total: Kib(a.TotalPages), Used: Kib(a.UsedPages), Priority: a.Priority.ToString(CultureInfo.InvariantCulture))).ToList();
        if (rows.Count > 1)
        {
            rows.Add(("Total", Kib(swap.TotalPages), Kib(swap.UsedPages), string.Empty));
        }

        string Size(long k) => human ? Human(k) : k.ToString(CultureInfo.InvariantCulture);
        int nameWidth = rows.Select(r => r.Name.Length).Append("Device".Length).Max();
        ctx.Out.WriteLine($"{"Device".PadRight(nameWidth)} {"1K-blocks",10} {"Used",10} {"Avail",10} Capacity Priority".TrimEnd());
        foreach (var r in rows)
        {
            string capacity = r.Total == 0 ? "0%" : string.Create(CultureInfo.InvariantCulture, $"{Math.Round(100.0 * r.Used / r.Total):0}%");
            ctx.Out.WriteLine($"{r.Name.PadRight(nameWidth)} {Size(r.Total),10} {Size(r.Used),10} {Size(r.Total - r.Used),10} {capacity,8} {r.Priority,8}".TrimEnd());
        }

        return 0;
    }

    /// <summary>KiB with a unit, as BSD's humanize_number would print them (at most one decimal).</summary>
    public static string Human(long kib)
    {
        string[] units = ["K", "M", "G", "T", "P"];
        double value = kib;
        int unit = 0;
        while (value >= 1024 && unit < units.Length - 1)
        {
            value /= 1024;
            unit++;
        }

        return value < 10 && unit > 0
            ? string.Create(CultureInfo.InvariantCulture, $"{value:0.0}{units[unit]}")
            : string.Create(CultureInfo.InvariantCulture, $"{value:0}{units[unit]}");
    }
}
