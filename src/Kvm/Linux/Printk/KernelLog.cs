namespace Kvm.Linux;

/// <summary>The kernel log read from a dump.</summary>
/// <param name="Records">The records, oldest first.</param>
/// <param name="Layout">Which printk buffer layout was read: <c>lockless ring (5.10+)</c>, <c>structured log_buf (3.5–5.9)</c> or <c>plain log_buf (&lt; 3.5)</c>.</param>
/// <param name="Warnings">What was wrong with the buffer (records skipped, a corrupt ring cut short); empty for a consistent log.</param>
internal sealed record KernelLog(IReadOnlyList<KernelLogRecord> Records, string Layout, IReadOnlyList<string> Warnings);
