namespace Kvm;

/// <summary>How to open a kernel image.</summary>
public sealed class KernelImageOptions
{
    /// <summary>
    /// Namelists: System.map, a vmlinux ELF, or a kallsyms listing, in look-up order. Empty: the image's own
    /// symbols (VMCOREINFO) for dumps, /proc/kallsyms for the live kernel.
    /// </summary>
    public IReadOnlyList<string> Namelists { get; init; } = [];

    /// <summary>Open the image for writing (libkvm's O_RDWR). Writing works in place for ELF, raw and LiME images.</summary>
    public bool Writable { get; init; }

    /// <summary>A caller-supplied resolver consulted before the namelists (libkvm's <c>kvm_open2</c> resolver).</summary>
    public SymbolResolver? Resolver { get; init; }

    /// <summary>
    /// Images of swap devices or swap files (the seeds' <c>swapfile</c>): user pages the page tables show as swapped
    /// out are read from them. Each is matched to the kernel's swap area by its header's UUID or label.
    /// </summary>
    public IReadOnlyList<string> SwapFiles { get; init; } = [];

    /// <summary>
    /// A BTF file (raw BTF such as <c>/sys/kernel/btf/vmlinux</c>, or a vmlinux with a <c>.BTF</c> section) giving
    /// the kernel's structure layouts; for FreeBSD, a CTF file or a kernel with <c>.SUNW_ctf</c>. Null: the image's own
    /// BTF (between <c>__start_BTF</c> and <c>__stop_BTF</c>), a vmlinux namelist's, or the live kernel's; for FreeBSD
    /// the CTF of the kernel given as namelist.
    /// </summary>
    public string? Btf { get; init; }

    /// <summary>Caps on untrusted counts and sizes.</summary>
    public KvmLimits Limits { get; init; } = KvmLimits.Default;

    /// <summary>Cache sizes.</summary>
    public CacheOptions Cache { get; init; } = CacheOptions.Default;
}
