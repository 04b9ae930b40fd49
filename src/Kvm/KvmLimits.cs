namespace Kvm;

/// <summary>
/// Caps on counts and sizes read from untrusted images. Every count that drives an allocation or a loop is
/// checked against one of these before use; exceeding one raises <see cref="CorruptImageException"/> naming the cap.
/// </summary>
public sealed class KvmLimits
{
    /// <summary>The defaults: generous for real kernels, small enough that a corrupt file cannot exhaust memory.</summary>
    public static KvmLimits Default { get; } = new();

    /// <summary>Most ELF program headers accepted (PN_XNUM allows more than 65534).</summary>
    public int MaxProgramHeaders { get; init; } = 1 << 20;

    /// <summary>Largest PT_NOTE segment read, in bytes.</summary>
    public int MaxNoteBytes { get; init; } = 16 << 20;

    /// <summary>Largest VMCOREINFO text accepted, in bytes (the kernel caps it at 4096; QEMU and makedumpfile copy it).</summary>
    public int MaxVmcoreInfoBytes { get; init; } = 64 << 10;

    /// <summary>Largest kdump bitmap region accepted, in bytes (1 GiB covers 2^33 pages, i.e. 32 TiB of 4 KiB pages).</summary>
    public long MaxBitmapBytes { get; init; } = 1L << 30;

    /// <summary>Most records accepted in a flattened kdump file.</summary>
    public int MaxFlattenedRecords { get; init; } = 1 << 24;

    /// <summary>Most ranges accepted in a LiME image.</summary>
    public int MaxLimeRanges { get; init; } = 1 << 16;

    /// <summary>Most symbols accepted from a System.map or kallsyms file, a vmlinux .symtab, or the kernel's in-memory kallsyms tables (<c>kallsyms_num_syms</c>).</summary>
    public int MaxSymbols { get; init; } = 4 << 20;

    /// <summary>Largest symbol-table file (System.map, kallsyms, vmlinux) read, in bytes.</summary>
    public long MaxSymbolFileBytes { get; init; } = 2L << 30;

    /// <summary>
    /// Largest in-memory <c>kallsyms_names</c> table read, in bytes. Its end is not recorded anywhere, so this bounds
    /// the read when a corrupt length byte walks off the table (a real 150k-symbol kernel needs about 2 MiB).
    /// </summary>
    public int MaxKallsymsNamesBytes { get; init; } = 64 << 20;
}
