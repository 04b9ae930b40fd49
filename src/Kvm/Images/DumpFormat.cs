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
}
