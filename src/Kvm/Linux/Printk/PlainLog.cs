using System.Globalization;

namespace Kvm.Linux;

/// <summary>
/// Reads the character ring of Linux before 3.5 (kernel/printk.c): <c>log_buf</c> of <c>log_buf_len</c> bytes holds
/// the formatted text, each line starting with <c>&lt;level&gt;</c> and, with CONFIG_PRINTK_TIME, <c>[%5lu.%06lu] </c>;
/// <c>log_end</c> counts every byte ever written (the newest is at <c>(log_end - 1) % log_buf_len</c>) and
/// <c>logged_chars</c> how many are still valid.
/// </summary>
internal static class PlainLog
{
    /// <summary>Reads the log; <paramref name="warnings"/> receives what was wrong with it.</summary>
    public static List<KernelLogRecord> Read(PrintkMemory memory, Func<string, ulong?> symbol, List<string> warnings)
    {
        ulong buffer = memory.ReadWord(symbol("log_buf") ?? throw new SymbolNotFoundException("log_buf"), "log_buf");
        uint length = memory.ReadUInt32(symbol("log_buf_len") ?? throw new SymbolNotFoundException("log_buf_len"), "log_buf_len");
        uint end = memory.ReadUInt32(symbol("log_end") ?? throw new SymbolNotFoundException("log_end"), "log_end");
        uint logged = symbol("logged_chars") is { } l ? memory.ReadUInt32(l, "logged_chars") : end;
        var records = new List<KernelLogRecord>();
        if (length == 0 || length > memory.Limits.MaxKernelLogBytes)
        {
            warnings.Add($"log_buf_len = {length} is implausible (cap KvmLimits.MaxKernelLogBytes = {memory.Limits.MaxKernelLogBytes}); log not read");
            return records;
        }

        byte[] ring = memory.ReadBlock(buffer, length, "log_buf");
        uint valid = Math.Min(Math.Min(logged, length), end);
        var text = new byte[valid];
        for (uint i = 0; i < valid; i++)
        {
            text[i] = ring[(end - valid + i) % length];
        }

        ulong sequence = 0;
        int start = 0;
        while (start < text.Length)
        {
            int newline = Array.IndexOf(text, (byte)'\n', start);
            int stop = newline < 0 ? text.Length : newline;
            records.Add(ParseLine(sequence++, text.AsSpan(start, stop - start)));
            start = stop + 1;
        }

        return records;
    }

    /// <summary>Splits <c>&lt;N&gt;[ sssss.uuuuuu] text</c> into level, facility, time and text.</summary>
    private static KernelLogRecord ParseLine(ulong sequence, ReadOnlySpan<byte> line)
    {
        int? level = null;
        int? facility = null;
        if (line.Length >= 3 && line[0] == '<' && line.IndexOf((byte)'>') is > 1 and var close
            && int.TryParse(line[1..close], NumberStyles.None, CultureInfo.InvariantCulture, out int priority))
        {
            level = priority & 7;
            facility = priority >> 3;
            line = line[(close + 1)..];
        }

        ulong ts = 0;
        if (line.Length > 0 && line[0] == '[' && line.IndexOf((byte)']') is > 1 and var bracket)
        {
            var stamp = line[1..bracket].Trim((byte)' ');
            int dot = stamp.IndexOf((byte)'.');
            if (dot > 0
                && ulong.TryParse(stamp[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out ulong seconds)
                && ulong.TryParse(stamp[(dot + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out ulong micro)
                && micro < 1_000_000 && seconds < ulong.MaxValue / 1_000_000_000)
            {
                ts = (seconds * 1_000_000_000) + (micro * 1000);
                line = line[(bracket + 1)..];
                if (line.Length > 0 && line[0] == ' ')
                {
                    line = line[1..];
                }
            }
        }

        return PrintkMemory.Record(sequence, ts, level, facility, 0, line.ToArray(), null, null);
    }
}
