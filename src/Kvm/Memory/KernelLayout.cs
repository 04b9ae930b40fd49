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

    /// <summary>x86-64 <c>phys_base</c>: <c>__pa_symbol(x) = x - __START_KERNEL_map + phys_base</c>. May be negative.</summary>
    public required long PhysBase { get; init; }

    /// <summary>The direct map's base (<c>page_offset_base</c>), or null when it could not be found.</summary>
    public ulong? PageOffsetBase { get; init; }

    /// <summary>The AMD SME C-bit mask cleared from page-table entries.</summary>
    public ulong SmeMask { get; init; }

    /// <summary>How the layout was found: <c>vmcoreinfo</c>, <c>cpu-cr3</c>, <c>vmcoreinfo-scan</c>, <c>elf-ktext</c>.</summary>
    public required string Method { get; init; }

    /// <summary>True when the KASLR offset is measured; false when it rests on the default link address of <c>_text</c>.</summary>
    public bool KaslrOffsetKnown { get; init; } = true;

    /// <summary>Number of page-table levels.</summary>
    public int PagingLevels => PagingMode switch
    {
        PagingMode.X64FiveLevel => 5,
        PagingMode.X64FourLevel => 4,
        PagingMode.X86Pae => 3,
        PagingMode.X86TwoLevel => 2,
        _ => 0,
    };

    /// <summary>The paging mode in words, as <c>kmem info</c> prints it: <c>x86-64, 4 levels</c>, <c>i386, PAE, 3 levels</c>, <c>i386, 2 levels</c>.</summary>
    public string PagingDescription => PagingMode switch
    {
        PagingMode.X64FiveLevel => "x86-64, 5 levels (LA57)",
        PagingMode.X64FourLevel => "x86-64, 4 levels",
        PagingMode.X86Pae => "i386, PAE, 3 levels",
        PagingMode.X86TwoLevel => "i386, 2 levels",
        _ => "unknown",
    };

    /// <summary>The size of the kernel's pointers and <c>unsigned long</c>: 4 for 32-bit x86 paging, else 8.</summary>
    public int PointerSize => PagingMode is PagingMode.X86TwoLevel or PagingMode.X86Pae ? 4 : 8;
}
