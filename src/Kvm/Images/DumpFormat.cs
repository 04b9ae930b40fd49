namespace Kvm;

/// <summary>The container format of a kernel image, detected from its content.</summary>
public enum DumpFormat
{
    /// <summary>An ELF core: a saved /proc/vmcore, <c>makedumpfile -E</c>, or QEMU's ELF dump.</summary>
    Elf,

    /// <summary>The live kernel through /proc/kcore.</summary>
    Kcore,

    /// <summary>kdump-compressed (<c>KDUMP   </c> or <c>DISKDUMP</c> signature), including flattened and split sets.</summary>
    Kdump,

    /// <summary>A LiME image.</summary>
    Lime,

    /// <summary>A raw physical memory image: file offset equals physical address.</summary>
    Raw,

    /// <summary>
    /// A FreeBSD minidump (<c>debug.minidump=1</c>, the default): the kernel's page-table entries for the kernel map,
    /// a bitmap of the physical pages dumped, and those pages (sys/*/*/minidump_machdep.c).
    /// </summary>
    Minidump,
}
