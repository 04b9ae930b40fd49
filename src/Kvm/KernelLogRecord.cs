using System.Globalization;
using System.Text;

namespace Kvm;

/// <summary>
/// One record of the kernel log (what <c>dmesg</c> prints), read from the dumped kernel's printk buffer (Linux) or
/// message buffer (FreeBSD: one record per line of <c>msgbufp</c>'s ring, with no timestamp:
/// <see cref="HasTimestamp"/> is false).
/// </summary>
/// <param name="Sequence">
/// The record's sequence number (<c>printk_info.seq</c>; counted from <c>log_first_seq</c> on 3.5–5.9, from 0 before
/// 3.5). FreeBSD: the message buffer's byte sequence number of the line's first byte (sys/sys/msgbuf.h: modulo
/// <c>msg_seqmod</c>, comparable with <c>msg_wseq</c> and <c>msg_rseq</c>).
/// </param>
/// <param name="TimestampNanoseconds">
/// Nanoseconds since boot on the local clock (<c>ts_nsec</c>), or the time parsed from the line before 3.5; 0 when
/// <see cref="HasTimestamp"/> is false.
/// </param>
/// <param name="Level">
/// The syslog level (0 emergency … 7 debug), or null when the layout does not say where it is stored (FreeBSD: from the
/// line's <c>&lt;pri&gt;</c> prefix, null for a line without one).
/// </param>
/// <param name="Facility">The syslog facility (0 kernel, 1 user for <c>/dev/kmsg</c> writes), or null when unknown.</param>
/// <param name="CallerId">
/// <c>printk_info.caller_id</c>: with bit 31 set the low bits are a CPU number, otherwise a thread id; 0 when the kernel does not record it.
/// </param>
/// <param name="Text">The text decoded as UTF-8 (invalid sequences become U+FFFD); it may contain newlines.</param>
/// <param name="RawText">The text bytes exactly as stored in the ring.</param>
/// <param name="Subsystem">The device subsystem (<c>dev_printk_info.subsystem</c> or the <c>SUBSYSTEM=</c> dictionary entry), or null.</param>
/// <param name="Device">The device (<c>dev_printk_info.device</c> or the <c>DEVICE=</c> dictionary entry), or null.</param>
public sealed record KernelLogRecord(
    ulong Sequence,
    ulong TimestampNanoseconds,
    int? Level,
    int? Facility,
    uint CallerId,
    string Text,
    byte[] RawText,
    string? Subsystem,
    string? Device)
{
    /// <summary>
    /// False when the log keeps no time for its records (FreeBSD's message buffer): <see cref="TimestampNanoseconds"/>
    /// is then 0 and means nothing, and <see cref="Format"/> prints the text alone.
    /// </summary>
    public bool HasTimestamp { get; init; } = true;

    /// <summary>
    /// False for a record that FreeBSD's dmesg(8) prints only with <c>-a</c> (sbin/dmesg/dmesg.c): the first line of a
    /// message buffer that has wrapped, whose start was overwritten, and a line whose <c>&lt;pri&gt;</c> prefix names a
    /// facility other than <c>LOG_KERN</c> (a user-space message). True for every Linux record.
    /// </summary>
    public bool IsShownByDefault { get; init; } = true;

    /// <summary>
    /// Formats the record as <c>dmesg</c> and the kernel's syslog output do: <c>"[%5lu.%06lu] text"</c>. A multi-line
    /// record prints every line with the same prefix, as kernel/printk/printk.c <c>record_print_text()</c> does; lines
    /// are separated by <c>\n</c> with no trailing newline. A record without a timestamp (FreeBSD) is its text alone.
    /// </summary>
    /// <returns>The formatted line or lines.</returns>
    public string Format()
    {
        if (!HasTimestamp)
        {
            return Text;
        }

        ulong seconds = TimestampNanoseconds / 1_000_000_000;
        ulong microseconds = TimestampNanoseconds % 1_000_000_000 / 1000;
        string prefix = string.Create(CultureInfo.InvariantCulture, $"[{seconds,5}.{microseconds:D6}] ");
        var builder = new StringBuilder(Text.Length + prefix.Length);
        foreach (var line in Text.Split('\n'))
        {
            if (builder.Length > 0)
            {
                builder.Append('\n');
            }

            builder.Append(prefix).Append(line);
        }

        return builder.ToString();
    }
}
