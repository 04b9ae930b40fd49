using Kvm.Translation;
using Kvm.Translation.Arm64;
using Kvm.Translation.X64;
using Kvm.Translation.X86;

namespace Kvm.Memory;

/// <summary>Picks the page-table walker of a layout's paging mode: the one place that maps modes to walkers.</summary>
internal static class PageTables
{
    /// <summary>A walker for <paramref name="layout"/>'s paging mode, keeping up to <paramref name="cachedTables"/> tables.</summary>
    public static IPageTable Create(IPhysicalSource source, KernelLayout layout, int cachedTables) => layout.PagingMode switch
    {
        PagingMode.X64FourLevel or PagingMode.X64FiveLevel => new X64PageTable(source, layout.PagingLevels, layout.SmeMask, cachedTables),
        PagingMode.X86TwoLevel => new X86PageTable(source, pae: false, cachedTables),
        PagingMode.X86Pae => new X86PageTable(source, pae: true, cachedTables),

        // TTBR1 (the kernel half) always walks from swapper_pg_dir, whichever process's tables are asked for.
        PagingMode.Arm64 => new Arm64PageTable(source, Arm64PagingFormat.Create((ulong)layout.GranuleSize, layout.VirtualAddressBits), layout.PageTableRoot, cachedTables),
        _ => throw new ArgumentOutOfRangeException(nameof(layout), layout.PagingMode, "no page-table walker for this paging mode"),
    };
}
