namespace Kvm;

/// <summary>The kind of a namelist file, detected from its content.</summary>
public enum NamelistKind
{
    /// <summary>A System.map: link-time addresses.</summary>
    SystemMap,

    /// <summary>A /proc/kallsyms listing (live, or a saved copy): runtime addresses of that boot.</summary>
    Kallsyms,

    /// <summary>An ELF vmlinux with a .symtab: link-time addresses.</summary>
    Vmlinux,

    /// <summary>VMCOREINFO SYMBOL() lines: runtime addresses.</summary>
    VmcoreInfo,

    /// <summary>kallsyms decoded from the kernel image's memory: runtime addresses.</summary>
    KernelMemory,

    /// <summary>
    /// Symbols found by recognizing what they point at in the image (the BTF header, <c>init_task</c>) when kallsyms
    /// lists functions only: runtime addresses.
    /// </summary>
    KernelScan,

    /// <summary>
    /// A FreeBSD kernel (<c>/boot/kernel/kernel</c>, or <c>kernel.debug</c>) with its ELF .symtab: the addresses the
    /// kernel runs at, as FreeBSD kernels on amd64, arm64 and i386 are not relocated.
    /// </summary>
    FreeBsdKernel,
}
