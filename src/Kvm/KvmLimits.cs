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

    /// <summary>Largest single kernel object (structure, array, user string area) read in one piece: 64 MiB.</summary>
    public long MaxKernelObjectBytes { get; init; } = 64L << 20;

    /// <summary>Most entries followed in one kernel list walk (tasks, threads, mounts): guards against cycles and corruption.</summary>
    public int MaxListEntries { get; init; } = 1 << 22;

    /// <summary>Largest BTF blob accepted, in bytes (vmlinux BTF is a few MiB; module BTF is smaller).</summary>
    public int MaxBtfBytes { get; init; } = 256 << 20;

    /// <summary>Most type records accepted in one BTF blob (vmlinux BTF holds roughly 100-150k).</summary>
    public int MaxBtfTypes { get; init; } = 4 << 20;

    /// <summary>
    /// Largest kernel-log array read in one piece, in bytes: the printk data ring, the descriptor and info arrays,
    /// or the pre-5.10 <c>log_buf</c> (CONFIG_LOG_BUF_SHIFT tops out at 2^25; <c>log_buf_len=</c> can ask for more).
    /// </summary>
    public int MaxKernelLogBytes { get; init; } = 256 << 20;

    /// <summary>Most descriptors accepted in a printk ring (<c>1 &lt;&lt; count_bits</c>).</summary>
    public int MaxKernelLogRecords { get; init; } = 1 << 22;

    /// <summary>
    /// Most page tables one enumeration of the kernel's page tables descends into (<see cref="KernelImage.EnumeratePages"/>).
    /// Each table maps at most 512 pages, so 2^20 tables cover 2 TiB of 4 KiB kernel mappings outside the direct map,
    /// far more than vmalloc, vmemmap and the modules of a real machine use; the cap stops corrupt tables whose entries
    /// fan out without end.
    /// </summary>
    public int MaxPageTableWalkTables { get; init; } = 1 << 20;

    /// <summary>
    /// Largest in-memory <c>kallsyms_names</c> table read, in bytes. Its end is not recorded anywhere, so this bounds
    /// the read when a corrupt length byte walks off the table (a real 150k-symbol kernel needs about 2 MiB).
    /// </summary>
    public int MaxKallsymsNamesBytes { get; init; } = 64 << 20;

    /// <summary>
    /// Largest page-map area of a FreeBSD minidump held in memory, in bytes (<c>pmapsize</c>, or <c>ptesize</c> on
    /// i386). amd64 keeps one 4 KiB page of entries per GiB of kernel address space, arm64 and i386 one entry per
    /// page: 256 MiB covers 128 GiB of arm64 kernel map.
    /// </summary>
    public int MaxMinidumpPageMapBytes { get; init; } = 256 << 20;

    /// <summary>Most physical ranges accepted in a minidump's <c>dump_avail</c> list (the kernel's array fits in one page).</summary>
    public int MaxDumpAvailRanges { get; init; } = 1 << 16;

    /// <summary>
    /// Largest decompressed size of a gzip- or zstd-compressed dump (<c>vmcore.N.gz</c>, <c>vmcore.N.zst</c>, or a
    /// compressed dump on a dump device), written to a temporary file when the image is opened; a stream that
    /// inflates past it is refused, so a hostile file cannot fill the disk. Pages of zeros are left as holes.
    /// </summary>
    public long MaxDecompressedBytes { get; init; } = 1L << 40;
}
