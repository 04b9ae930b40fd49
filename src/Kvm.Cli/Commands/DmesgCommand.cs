using System.CommandLine;
using System.Globalization;

namespace Kvm.Cli.Commands;

/// <summary><c>kmem dmesg</c>: the kernel log of the image, each record as dmesg prints it (<c>[%5lu.%06lu] text</c>).</summary>
internal static class DmesgCommand
{
    public static Command Create(CliIo io)
    {
        var tail = new Option<int?>("-n", "--tail") { Description = "Only the last N records" };
        var command = new Command("dmesg", "Print the kernel log (printk ring)");
        command.Options.Add(tail);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(tail))));
        return command;
    }

    private static int Run(CliContext ctx, int? tail)
    {
        if (tail < 0)
        {
            throw new ArgumentException($"bad record count '{tail}' for --tail");
        }

        using var image = ctx.OpenImage();
        var log = image.ReadKernelLog();
        var records = tail is { } n ? log.Records.Skip(Math.Max(0, log.Records.Count - n)).ToList() : log.Records;
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteString("layout", log.Layout);
                w.WriteStartArray("records");
                foreach (var r in records)
                {
                    w.WriteStartObject();
                    w.WriteNumber("sequence", r.Sequence);

                    // Microseconds as a decimal: exactly the figure dmesg prints, with no binary-fraction noise.
                    w.WriteNumber("timestamp", (decimal)(r.TimestampNanoseconds / 1000) / 1_000_000m);
                    w.WriteNumber("timestampNs", r.TimestampNanoseconds);
                    WriteNullable(w, "level", r.Level);
                    WriteNullable(w, "facility", r.Facility);
                    w.WriteString("caller", Caller(r.CallerId));
                    SurrogateEscape.WriteString(w, "text", r.RawText);
                    w.WriteString("subsystem", r.Subsystem);
                    w.WriteString("device", r.Device);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                JsonOutput.WriteStrings(w, "warnings", log.Warnings);
                w.WriteEndObject();
            });
            return 0;
        }

        foreach (var r in records)
        {
            ctx.Out.WriteLine(r.Format());
        }

        foreach (var warning in log.Warnings)
        {
            ctx.Error.WriteLine($"kmem: warning: {warning}");
        }

        return 0;
    }

    /// <summary>The caller as printk's <c>CONFIG_PRINTK_CALLER</c> prints it: <c>T&lt;tid&gt;</c> or <c>C&lt;cpu&gt;</c>; null when not recorded.</summary>
    public static string? Caller(uint id) => id == 0 ? null
        : (id & 0x8000_0000u) != 0 ? string.Create(CultureInfo.InvariantCulture, $"C{id & 0x7fff_ffffu}")
        : string.Create(CultureInfo.InvariantCulture, $"T{id}");

    private static void WriteNullable(System.Text.Json.Utf8JsonWriter w, string name, int? value)
    {
        if (value is { } v)
        {
            w.WriteNumber(name, v);
        }
        else
        {
            w.WriteNull(name);
        }
    }
}
