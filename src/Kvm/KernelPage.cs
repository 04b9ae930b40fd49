namespace Kvm;

/// <summary>The access a kernel mapping allows, as FreeBSD's <c>kp_prot</c> (VM_PROT_READ 1, WRITE 2, EXECUTE 4).</summary>
[Flags]
public enum PageProtection
{
    /// <summary>No access.</summary>
    None = 0,

    /// <summary>Readable: every present x86 or AArch64 kernel mapping is.</summary>
    Read = 1,

    /// <summary>Writable: R/W set in every page-table entry on the path (x86); AP[2] clear or DBM set, and no APTable[1] above (AArch64).</summary>
    Write = 2,

    /// <summary>Executable by the kernel: XD (NX) clear in every page-table entry on the path (x86); PXN clear and no PXNTable above (AArch64).</summary>
    Execute = 4,
}

/// <summary>
/// One page of kernel memory, as FreeBSD's <c>kvm_walk_pages(3)</c> reports it in <c>struct kvm_page</c>: a mapping
/// of the kernel's page tables outside the direct map (<see cref="KernelMapAddress"/> set), or a physical page the
/// image holds that no such mapping reached (<see cref="KernelMapAddress"/> 0). See <see cref="KernelImage.EnumeratePages"/>.
/// </summary>
/// <param name="PhysicalAddress">The physical address of the page's first byte (<c>kp_paddr</c>).</param>
/// <param name="KernelMapAddress">The kernel virtual address mapping it outside the direct map, or 0 (<c>kp_kmap_vaddr</c>).</param>
/// <param name="DirectMapAddress">The page's direct-map address when it is RAM the direct map covers, else 0 (<c>kp_dmap_vaddr</c>): <c>page_offset_base</c> + <see cref="PhysicalAddress"/> on x86, <c>pa - PHYS_OFFSET + PAGE_OFFSET</c> in arm64's linear map.</param>
/// <param name="Protection">The access the mapping allows (<c>kp_prot</c>); <see cref="PageProtection.Read"/> | <see cref="PageProtection.Write"/> for direct-map-only pages.</param>
/// <param name="FileOffset">The byte offset of the page's plain bytes in the core file, or -1 when they are not stored there as plain bytes (<c>kp_offset</c>).</param>
/// <param name="Length">The page size (<c>kp_len</c>): the base page (4 KiB on x86, the granule on arm64), or a large page or block, which is reported once (x86 2 MiB, 4 MiB, 1 GiB; arm64 2 MiB or 1 GiB with 4 KiB granules, 32 MiB with 16 KiB, 512 MiB with 64 KiB).</param>
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
