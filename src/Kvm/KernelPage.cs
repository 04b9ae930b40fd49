namespace Kvm;

/// <summary>The access a kernel mapping allows, as FreeBSD's <c>kp_prot</c> (VM_PROT_READ 1, WRITE 2, EXECUTE 4).</summary>
[Flags]
public enum PageProtection
{
    /// <summary>No access.</summary>
    None = 0,

    /// <summary>Readable: every present x86-64 mapping is.</summary>
    Read = 1,

    /// <summary>Writable: R/W set in every page-table entry on the path.</summary>
    Write = 2,

    /// <summary>Executable: XD (NX) clear in every page-table entry on the path.</summary>
    Execute = 4,
}

/// <summary>
/// One page of kernel memory, as FreeBSD's <c>kvm_walk_pages(3)</c> reports it in <c>struct kvm_page</c>: a mapping
/// of the kernel's page tables outside the direct map (<see cref="KernelMapAddress"/> set), or a physical page the
/// image holds that no such mapping reached (<see cref="KernelMapAddress"/> 0). See <see cref="KernelImage.EnumeratePages"/>.
/// </summary>
/// <param name="PhysicalAddress">The physical address of the page's first byte (<c>kp_paddr</c>).</param>
/// <param name="KernelMapAddress">The kernel virtual address mapping it outside the direct map, or 0 (<c>kp_kmap_vaddr</c>).</param>
/// <param name="DirectMapAddress"><c>page_offset_base</c> + <see cref="PhysicalAddress"/> when the page is RAM the direct map covers, else 0 (<c>kp_dmap_vaddr</c>).</param>
/// <param name="Protection">The access the mapping allows (<c>kp_prot</c>); <see cref="PageProtection.Read"/> | <see cref="PageProtection.Write"/> for direct-map-only pages.</param>
/// <param name="FileOffset">The byte offset of the page's plain bytes in the core file, or -1 when they are not stored there as plain bytes (<c>kp_offset</c>).</param>
/// <param name="Length">The page size: 4 KiB, or 2 MiB or 1 GiB for a large page, which is reported once (<c>kp_len</c>).</param>
public readonly record struct KernelPage(
    ulong PhysicalAddress,
    ulong KernelMapAddress,
    ulong DirectMapAddress,
    PageProtection Protection,
    long FileOffset,
    ulong Length)
{
    /// <summary>True for a page reached through a kernel-map mapping (the first pass); false for a direct-map-only page.</summary>
    public bool IsKernelMapped => KernelMapAddress != 0;

    /// <summary>The protection as <c>ls</c>-style letters, <c>rwx</c> with dashes for what is missing.</summary>
    public string ProtectionText =>
        string.Concat(
            (Protection & PageProtection.Read) != 0 ? "r" : "-",
            (Protection & PageProtection.Write) != 0 ? "w" : "-",
            (Protection & PageProtection.Execute) != 0 ? "x" : "-");
}
