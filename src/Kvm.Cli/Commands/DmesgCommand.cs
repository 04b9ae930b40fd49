using System.CommandLine;
using System.Globalization;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem dmesg</c>: the kernel log of the image, each record as dmesg prints it (<c>[%5lu.%06lu] text</c>); on
/// FreeBSD as dmesg(8) prints the message buffer (sbin/dmesg/dmesg.c): a line each, without the <c>&lt;pri&gt;</c>
/// prefixes, encoded by vis(3), and without the partial first line of a wrapped buffer nor lines of other facilities
/// than the kernel's unless <c>-a</c>.
/// </summary>
internal static class DmesgCommand
{
    public static Command Create(CliIo io)
    {
        var tail = new Option<int?>("-n", "--tail") { Description = "Only the last N records" };
        var all = new Option<bool>("-a", "--all") { Description = "FreeBSD: also the partial first line of a wrapped buffer and lines of other facilities than the kernel's" };
        var command = new Command("dmesg", "Print the kernel log (printk ring, FreeBSD message buffer)");
        command.Options.Add(tail);
        command.Options.Add(all);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(tail), parse.GetValue(all))));
        return command;
    }

    private static int Run(CliContext ctx, int? tail, bool all)
    {
        if (tail < 0)
        {
            throw new ArgumentException($"bad record count '{tail}' for --tail");
        }

        using var image = ctx.OpenImage();
        var log = image.ReadKernelLog();
        var shown = all ? log.Records : log.Records.Where(r => r.IsShownByDefault).ToList();
        var records = tail is { } n ? shown.Skip(Math.Max(0, shown.Count - n)).ToList() : shown;
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
                    if (r.HasTimestamp)
                    {
                        w.WriteNumber("timestamp", (decimal)(r.TimestampNanoseconds / 1000) / 1_000_000m);
                        w.WriteNumber("timestampNs", r.TimestampNanoseconds);
                    }
                    else
                    {
                        w.WriteNull("timestamp");
                        w.WriteNull("timestampNs");
                    }

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
            ctx.Out.WriteLine(r.HasTimestamp ? r.Format() : Vis(r.RawText));
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

    /// <summary>
    /// A line as FreeBSD's dmesg prints it, through strvisx(3) with no flags in a UTF-8 locale: printable characters,
    /// space and tab as they are; a backslash as <c>\134</c>; a control character as <c>\^C</c> (<c>\^?</c> for
    /// DEL); each byte of an unprintable or invalid sequence as <c>\M-c</c> or <c>\M^C</c> (octal for
    /// <c>\M- </c>) — contrib/libc-vis/vis.c <c>do_svis</c>, <c>do_mbyte</c>.
    /// </summary>
    public static string Vis(ReadOnlySpan<byte> text)
    {
        var s = new System.Text.StringBuilder(text.Length);
        while (!text.IsEmpty)
        {
            var status = System.Text.Rune.DecodeFromUtf8(text, out var rune, out int length);
            if (status == System.Buffers.OperationStatus.Done && rune.Value == '\\')
            {
                s.Append("\\134");
            }
            else if (status == System.Buffers.OperationStatus.Done && (rune.Value is ' ' or '\t' || !System.Text.Rune.IsControl(rune)))
            {
                s.Append(rune.ToString());
            }
            else
            {
                length = Math.Max(length, 1);
                foreach (byte b in text[..length])
                {
                    VisByte(s, b);
                }
            }

            text = text[length..];
        }

        return s.ToString();
    }

    private static void VisByte(System.Text.StringBuilder s, byte b)
    {
        int c = b & 0x7f;
        if (c == ' ')
        {
            s.Append(CultureInfo.InvariantCulture, $"\\{(b >> 6) & 3}{(b >> 3) & 7}{b & 7}");
            return;
        }

        s.Append('\\');
        if ((b & 0x80) != 0)
        {
            s.Append('M');
        }

        if (c < 0x20 || c == 0x7f)
        {
            s.Append('^').Append(c == 0x7f ? '?' : (char)(c + '@'));
        }
        else
        {
            s.Append('-').Append((char)c);
        }
    }

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
