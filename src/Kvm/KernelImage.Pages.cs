using System.Numerics;
using Kvm.Memory;

namespace Kvm;

public sealed partial class KernelImage
{
    /// <summary>
    /// Enumerates the kernel's pages as FreeBSD's <c>kvm_walk_pages(3)</c> does (one <see cref="KernelPage"/> per
    /// <c>struct kvm_page</c>), lazily. First, in ascending virtual-address order, every present leaf of the kernel's
    /// own page table over the kernel half of the address space outside the direct map (kernel text and data,
    /// modules, vmalloc and ioremap, vmemmap, fixmap, the CPU entry area): <see cref="KernelPage.KernelMapAddress"/>
    /// is the mapping's address, large pages and blocks are reported once with their size, and the protection
    /// combines every level. Then every base page the image holds that no such mapping reached, with a kernel-map
    /// address of 0: 4 KiB on x86, the translation granule (4, 16 or 64 KiB, <see cref="KernelLayout.GranuleSize"/>)
    /// on arm64.
    /// </summary>
    /// <remarks>
    /// <para>
    /// <see cref="KernelPage.DirectMapAddress"/> is <c>page_offset_base</c> + the physical address when the page is
    /// RAM the image describes below the kernel's <c>max_pfn</c> (read from the kernel when its symbol is known,
    /// else the end of the image's memory), else 0. <see cref="KernelPage.FileOffset"/> is where the page's plain
    /// bytes are in the core file: ELF, raw and LiME images give it for every page they hold; kdump files only for
    /// pages stored uncompressed (their descriptor's flags say so), in a flattened file only where the record index
    /// puts the whole page in one record; split sets and compressed, excluded or missing pages give -1.
    /// </para>
    /// <para>
    /// On arm64 the direct map is the linear map, [<c>PAGE_OFFSET</c>, <c>PAGE_END</c>) (the bottom half of the kernel
    /// half since Linux 5.4, the top half before; see <c>KernelPageWalker.Arm64LinearMap</c>), which pass 1 leaves out
    /// of the kernel half <c>[-(1 &lt;&lt; VA_BITS), 2^64)</c>; a page's linear-map address is
    /// <c>pa - PHYS_OFFSET + PAGE_OFFSET</c> (<see cref="KernelLayout.PhysBase"/>, <see cref="KernelLayout.PageOffsetBase"/>)
    /// for RAM from <c>PHYS_OFFSET</c> up, within the region and below <c>max_pfn</c>. Protection is the VMSAv8-64
    /// stage-1 one Linux sets: writable when AP[2] (PTE_RDONLY) is clear or DBM (PTE_WRITE) is set, executable when PXN
    /// is clear, each restricted by the table descriptors' APTable and PXNTable above.
    /// </para>
    /// <para>
    /// Pages the dump excluded or does not hold are not reported by the second pass; a kernel mapping of one is still
    /// reported by the first (the page table says it is mapped), with offset -1. Memory is bounded: one bit per page
    /// up to the highest page the image holds (<see cref="KvmLimits.MaxBitmapBytes"/>), and at most
    /// <see cref="KvmLimits.MaxPageTableWalkTables"/> tables descended into (a corrupt table raises
    /// <see cref="CorruptImageException"/>; entries that are not present, unreadable tables and tables that point back
    /// at themselves are skipped).
    /// </para>
    /// <para>
    /// The live kernel (/proc/kcore) is walked the same way, through its physical segments, but it is not a
    /// snapshot: the kernel changes its tables and frees pages while the walk runs, so the result is only as
    /// consistent as the moment allows. Throws <see cref="KvmException"/> when the direct map's base is unknown.
    /// </para>
    /// <para>
    /// FreeBSD images are walked as FreeBSD's libkvm walks minidumps: from the minidump's page map (amd64 PDEs and
    /// page-table pages, arm64 L3 descriptors, i386 PTEs; large pages once), then every page the dump holds that no
    /// mapping reached, with its direct-map address (<c>dmapbase</c> + pa) where the direct map covers it. An amd64
    /// full dump is walked from the kernel's page tables over [<c>VM_MIN_KERNEL_ADDRESS</c>, 2^64), 1 GiB pages as
    /// 512 2 MiB records as a minidump holds them, so both kinds of dump of one kernel list the same kernel map.
    /// The differences from libkvm are listed in docs/libkvm-c.md.
    /// </para>
    /// </remarks>
    public IEnumerable<KernelPage> EnumeratePages()
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return WhileOpen(EnumerateFreeBsdPages());
        }

        var table = _memory.PageTable ?? throw new KvmException(KvmErrorCode.KernelLayout, $"{_image.Files[0]}: no page-table root is known, so the kernel's pages cannot be walked");
        var pages = KernelPageWalker.Enumerate(_image, table, Layout, DirectMapLimit(), _options.Limits);
        return WhileOpen(pages);
    }

    /// <summary>
    /// Calls <paramref name="callback"/> with every page <see cref="EnumeratePages"/> yields, in order, until it
    /// returns false (libkvm's <c>kvm_walk_pages</c>). Returns true when every page was visited.
    /// </summary>
    public bool WalkPages(Func<KernelPage, bool> callback)
    {
        ArgumentNullException.ThrowIfNull(callback);
        foreach (var page in EnumeratePages())
        {
            if (!callback(page))
            {
                return false;
            }
        }

        return true;
    }

    /// <summary>
    /// The physical address below which RAM is in the direct map: the kernel's <c>max_pfn</c> (arch/x86/kernel/setup.c
    /// sets it from e820; init_mem_mapping maps RAM up to it; arm64 from the end of memblock's DRAM), else the end of the
    /// image's highest range.
    /// </summary>
    private ulong DirectMapLimit()
    {
        if (PointerSize == 4)
        {
            return LowMemoryLimit();
        }

        // MAX_PHYSMEM_BITS is 52 with LA57 and on arm64: a larger max_pfn is not a value the kernel can hold. arm64
        // counts it in granules (bootmem_init, arch/arm64/mm/init.c).
        int pageShift = Layout.PagingMode == PagingMode.Arm64 ? BitOperations.Log2((uint)Layout.GranuleSize) : 12;
        if (TryGetSymbol("max_pfn", out var symbol) && TryRead<ulong>(symbol.Address, out ulong maxPfn) && maxPfn > 0 && maxPfn < 1UL << (52 - pageShift))
        {
            return maxPfn << pageShift;
        }

        var ranges = _image.PhysicalRanges;
        return ranges.Count > 0 ? ranges[^1].End : 0;
    }

    /// <summary>
    /// The end of an i386 kernel's direct map: <c>max_low_pfn</c> (arch/x86/mm/init_32.c sets <c>high_memory</c> to
    /// <c>__va(max_low_pfn * PAGE_SIZE)</c>), else what fits between PAGE_OFFSET and the 128 MiB the kernel keeps for
    /// vmalloc and fixmap above it (<c>__VMALLOC_RESERVE</c>, arch/x86/mm/init_32.c), capped by the image's RAM.
    /// </summary>
    private ulong LowMemoryLimit()
    {
        ulong pageOffset = Layout.PageOffsetBase ?? 0xC0000000;
        ulong maxLowmem = (1UL << 32) - pageOffset - (128UL << 20);
        if (TryGetSymbol(Kvm.Linux.KernelGlobals.MaxLowPfn.Name, out var symbol) && TryRead<uint>(symbol.Address, out uint maxLowPfn) && maxLowPfn > 0 && (ulong)maxLowPfn << 12 <= maxLowmem)
        {
            return (ulong)maxLowPfn << 12;
        }

        var ranges = _image.PhysicalRanges;
        return Math.Min(ranges.Count > 0 ? ranges[^1].End : 0, maxLowmem);
    }

    private IEnumerable<KernelPage> WhileOpen(IEnumerable<KernelPage> pages)
    {
        foreach (var page in pages)
        {
            ThrowIfDisposed();
            yield return page;
        }
    }
}
