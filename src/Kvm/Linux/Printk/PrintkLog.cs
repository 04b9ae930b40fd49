using Kvm.Memory;

namespace Kvm.Linux;

/// <summary>
/// Reads the kernel log (what <c>dmesg</c> prints) from a dumped kernel, choosing the printk buffer layout by the
/// symbols the kernel has: <c>prb</c> (5.10+ lockless ring), <c>log_first_idx</c> (3.5–5.9 record log) or
/// <c>log_end</c> (the character ring before 3.5). Everything needed is in VMCOREINFO, so no debuginfo is required.
/// </summary>
internal static class PrintkLog
{
    /// <summary>The lockless ring layout name.</summary>
    public const string LocklessLayout = "lockless ring (5.10+)";

    /// <summary>The 3.5–5.9 record log layout name.</summary>
    public const string StructuredLayout = "structured log_buf (3.5–5.9)";

    /// <summary>The pre-3.5 character ring layout name.</summary>
    public const string PlainLayout = "plain log_buf (< 3.5)";

    /// <summary>Reads the kernel log.</summary>
    /// <param name="read">Reads kernel virtual memory.</param>
    /// <param name="symbol">The runtime address of a kernel symbol, or null.</param>
    /// <param name="offsetOf">A member offset keyed as VMCOREINFO's <c>OFFSET(struct.member)</c> names it, or null.</param>
    /// <param name="sizeOf">A type size keyed as VMCOREINFO's <c>SIZE(name)</c>, or null.</param>
    /// <param name="lengthOf">An array length keyed as VMCOREINFO's <c>LENGTH(name)</c>, or null.</param>
    /// <param name="limits">Caps on what is read.</param>
    /// <returns>The records, oldest first, with the layout read and any warnings.</returns>
    /// <exception cref="SymbolNotFoundException">No printk buffer symbol is known.</exception>
    /// <exception cref="KvmException">A structure layout is unknown, or an array cannot be read.</exception>
    public static KernelLog Read(VirtualReader read, Func<string, ulong?> symbol, Func<string, long?> offsetOf, Func<string, long?> sizeOf, Func<string, long?> lengthOf, KvmLimits limits)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(symbol);
        ArgumentNullException.ThrowIfNull(offsetOf);
        ArgumentNullException.ThrowIfNull(sizeOf);
        ArgumentNullException.ThrowIfNull(lengthOf);
        ArgumentNullException.ThrowIfNull(limits);

        // SIZE(atomic_long_t) is the kernel's long; VMCOREINFO has it on 5.10+, and older kernels are taken as 64-bit.
        int word = sizeOf("atomic_long_t") is 4 ? 4 : 8;
        var memory = new PrintkMemory(read, word, limits);
        var warnings = new List<string>();
        if (symbol("prb") is { } prb)
        {
            return new KernelLog(ReadLockless(memory, prb, symbol("printk_rb_static"), offsetOf, sizeOf, lengthOf, warnings), LocklessLayout, warnings);
        }

        if (symbol("log_first_idx") is not null)
        {
            return new KernelLog(StructuredLog.Read(memory, symbol, offsetOf, sizeOf, warnings), StructuredLayout, warnings);
        }

        if (symbol("log_end") is not null)
        {
            return new KernelLog(PlainLog.Read(memory, symbol, warnings), PlainLayout, warnings);
        }

        throw new SymbolNotFoundException("prb");
    }

    private static List<KernelLogRecord> ReadLockless(PrintkMemory memory, ulong prb, ulong? staticRing, Func<string, long?> offsetOf, Func<string, long?> sizeOf, Func<string, long?> lengthOf, List<string> warnings)
    {
        var ring = new LocklessRing(memory, offsetOf, sizeOf, lengthOf);
        ulong current = memory.ReadWord(prb, "prb");
        var records = ring.Read(current, "prb", warnings);
        if (staticRing is not { } early || early == current)
        {
            return records;
        }

        // setup_log_buf() (printk.c) copies the boot-time records of printk_rb_static into the dynamic ring and
        // switches prb to it; records the dynamic ring has since overwritten may survive in the static one.
        List<KernelLogRecord> older;
        try
        {
            var staticWarnings = new List<string>();
            ulong firstSequence = records.Count > 0 ? records[0].Sequence : ulong.MaxValue;
            ulong firstTime = records.Count > 0 ? records[0].TimestampNanoseconds : ulong.MaxValue;
            older = ring.Read(early, "printk_rb_static", staticWarnings)
                .Where(r => r.Sequence < firstSequence && r.TimestampNanoseconds <= firstTime)
                .ToList();
            if (older.Count > 0)
            {
                warnings.AddRange(staticWarnings);
            }
        }
        catch (KvmException e)
        {
            warnings.Add($"printk_rb_static (the boot-time ring) was not read: {e.Message}");
            return records;
        }

        if (older.Count == 0)
        {
            return records;
        }

        warnings.Add($"{older.Count} records older than the dynamic ring's first came from printk_rb_static (boot-time ring)");
        older.AddRange(records);
        return older;
    }
}
