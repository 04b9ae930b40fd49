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
}
