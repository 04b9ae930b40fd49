namespace Kvm;

/// <summary>
/// Where the kernel sits: the paging mode and page-table root, the KASLR displacement, phys_base and the direct
/// map, and how each was found.
/// </summary>
public sealed record KernelLayout
{
    /// <summary>The x86-64 start of the kernel text mapping (<c>__START_KERNEL_map</c>).</summary>
    public const ulong StartKernelMap = 0xffffffff80000000;

    /// <summary>The default link address of <c>_text</c> (<c>__START_KERNEL_map</c> + CONFIG_PHYSICAL_START 16 MiB).</summary>
    public const ulong DefaultLinkText = 0xffffffff81000000;

    /// <summary>The paging mode.</summary>
    public required PagingMode PagingMode { get; init; }

    /// <summary>Physical address of the kernel's top-level page table (<c>init_top_pgt</c>, or CR3).</summary>
    public required ulong PageTableRoot { get; init; }

    /// <summary>The KASLR displacement of the kernel text (libkvm's <c>kvm_kerndisp</c>): runtime minus link-time address.</summary>
    public required long KaslrOffset { get; init; }

    /// <summary>
    /// x86-64 <c>phys_base</c>: <c>__pa_symbol(x) = x - __START_KERNEL_map + phys_base</c>. May be negative. On AArch64,
    /// <c>PHYS_OFFSET</c> (<c>memstart_addr</c>): the physical address the linear map's base maps.
    /// </summary>
    public required long PhysBase { get; init; }

    /// <summary>The direct map's base (<c>page_offset_base</c>; AArch64's linear map, <c>PAGE_OFFSET</c>), or null when it could not be found.</summary>
    public ulong? PageOffsetBase { get; init; }

    /// <summary>The AMD SME C-bit mask cleared from page-table entries.</summary>
    public ulong SmeMask { get; init; }

    /// <summary>How the layout was found: <c>vmcoreinfo</c>, <c>cpu-cr3</c>, <c>vmcoreinfo-scan</c>, <c>elf-ktext</c>.</summary>
    public required string Method { get; init; }

    /// <summary>True when the KASLR offset is measured; false when it rests on the default link address of <c>_text</c>.</summary>
    public bool KaslrOffsetKnown { get; init; } = true;

    /// <summary>AArch64: the translation granule in bytes (4096, 16384 or 65536); 0 for other architectures.</summary>
    public int GranuleSize { get; init; }

    /// <summary>AArch64: the virtual-address bits the kernel's tables translate (64 - TCR_EL1.T1SZ); 0 for other architectures.</summary>
    public int VirtualAddressBits { get; init; }

    /// <summary>AArch64: <c>kimage_voffset</c>, the kernel image map's offset: <c>__pa_symbol(x) = x - kimage_voffset</c>; 0 elsewhere.</summary>
    public ulong KimageVoffset { get; init; }

    /// <summary>
    /// AArch64: <c>VMEMMAP_START</c>, where the <c>struct page</c> of the linear map's first frame sits (the kernel's
    /// <c>vmemmap</c> is this minus <c>PHYS_OFFSET &gt;&gt; PAGE_SHIFT</c> pages); 0 elsewhere (x86-64 reads
    /// <c>vmemmap_base</c>).
    /// </summary>
    public ulong VmemmapStart { get; init; }

    /// <summary>The kernel architecture as the kernel names it (<c>x86_64</c>, <c>aarch64</c>).</summary>
    public string Architecture => PagingMode switch
    {
        PagingMode.Arm64 => "aarch64",
        PagingMode.X86Pae or PagingMode.X86TwoLevel => "i386",
        _ => "x86_64",
    };

    /// <summary>Number of page-table levels.</summary>
    public int PagingLevels => PagingMode switch
    {
        PagingMode.X64FiveLevel => 5,
        PagingMode.X64FourLevel => 4,
        PagingMode.X86Pae => 3,
        PagingMode.X86TwoLevel => 2,
        PagingMode.Arm64 when GranuleSize > 0 => Translation.Arm64.Arm64PagingFormat.Create((ulong)GranuleSize, VirtualAddressBits).Levels,
        _ => 0,
    };

    /// <summary>
    /// The paging mode in words, as <c>kmem info</c> prints it: <c>x86-64, 4 levels</c>, <c>i386, PAE, 3 levels</c>,
    /// <c>i386, 2 levels</c>, <c>aarch64, 4 KiB granule, 48-bit VA, 4 levels</c>.
    /// </summary>
    public string PagingDescription => PagingMode switch
    {
        PagingMode.X64FiveLevel => "x86-64, 5 levels (LA57)",
        PagingMode.X64FourLevel => "x86-64, 4 levels",
        PagingMode.X86Pae => "i386, PAE, 3 levels",
        PagingMode.X86TwoLevel => "i386, 2 levels",
        PagingMode.Arm64 when GranuleSize > 0 => "aarch64, " + Translation.Arm64.Arm64PagingFormat.Create((ulong)GranuleSize, VirtualAddressBits),
        _ => "unknown",
    };

    /// <summary>
    /// The sizes a leaf of the kernel's page tables maps, ascending: the base page first (4 KiB on x86, the granule on
    /// AArch64), then the large pages (x86-64 2 MiB and 1 GiB, PAE 2 MiB, 2-level 4 MiB) or the blocks the granule
    /// allows (Arm ARM VMSAv8-64: 2 MiB and 1 GiB with 4 KiB; 32 MiB with 16 KiB; 512 MiB with 64 KiB; and 4 TiB with
    /// 64 KiB, 512 GiB or 64 GiB with LPA2, where the tables have a level that large). Empty when the paging mode, or an
    /// AArch64 granule, is not known.
    /// </summary>
    public IReadOnlyList<ulong> PageSizes => PagingMode switch
    {
        PagingMode.X64FiveLevel or PagingMode.X64FourLevel => [4096, 1UL << 21, 1UL << 30],
        PagingMode.X86Pae => [4096, 1UL << 21],
        PagingMode.X86TwoLevel => [4096, 1UL << 22],
        PagingMode.Arm64 when GranuleSize > 0 => Arm64PageSizes(Translation.Arm64.Arm64PagingFormat.Create((ulong)GranuleSize, VirtualAddressBits)),
        _ => [],
    };

    /// <summary>The size of the kernel's pointers and <c>unsigned long</c>: 4 for 32-bit x86 paging, else 8.</summary>
    public int PointerSize => PagingMode is PagingMode.X86TwoLevel or PagingMode.X86Pae ? 4 : 8;

    private static List<ulong> Arm64PageSizes(Translation.Arm64.Arm64PagingFormat format)
    {
        var sizes = new List<ulong>(format.Levels);
        for (int level = format.Levels - 1; level >= 0; level--)
        {
            if (level == format.Levels - 1 || format.BlockAllowed(level))
            {
                sizes.Add(1UL << format.Shift(level));
            }
        }

        return sizes;
    }
}
