using System.Numerics;
using Kvm.Images;
using Kvm.Translation;

namespace Kvm.Memory;

/// <summary>
/// Enumerates the kernel's pages the way FreeBSD's <c>kvm_walk_pages(3)</c> does on an amd64 minidump: first every
/// mapping of the kernel's page tables outside the direct map, then every page the image holds that those mappings
/// did not reach, as a direct-map-only page.
/// </summary>
/// <remarks>
/// <para>
/// Pass 1 walks the kernel's root table over the kernel half of the address space except the direct map, in
/// ascending address order, one record per present leaf. On x86-64 the kernel half starts at 0xffff800000000000
/// (0xff00000000000000 with LA57) and the direct map's region is <c>page_offset_base</c> plus the RAM size rounded up
/// to a TiB: with CONFIG_RANDOMIZE_MEMORY the kernel sizes the region as max_pfn rounded up to a TiB plus a padding
/// and places vmalloc after it (arch/x86/mm/kaslr.c, <c>kernel_randomize_memory</c>), and without it the region is
/// fixed at 64 TiB (32 PiB with LA57) ahead of vmalloc (Documentation/x86/x86_64/mm.rst), so that span never reaches
/// another region and covers every direct-map entry, which map RAM below max_pfn only (arch/x86/mm/init.c,
/// <c>init_mem_mapping</c>). On i386 see <see cref="I386KernelMapRanges"/>, on arm64 <see cref="Arm64KernelMapRanges"/>.
/// </para>
/// <para>
/// Pass 2 lists every page the image holds that pass 1 did not report as the target of a mapping, one record per
/// base page: 4 KiB on x86, the translation granule (4, 16 or 64 KiB) on arm64. FreeBSD's own second pass means to do
/// exactly this, but tests its bitmap of pages seen with an arithmetic slip that lets most pages through again
/// (review D19183); this follows the intent. Pages seen in pass 1 are kept in a bitmap of one bit per base page up to
/// the highest page the image holds, capped by <see cref="KvmLimits.MaxBitmapBytes"/>.
/// </para>
/// </remarks>
internal static class KernelPageWalker
{
    private const ulong Terabyte = 1UL << 40;

    /// <summary>
    /// Enumerates the pages lazily. <paramref name="directMapLimit"/> is the physical address below which RAM is in
    /// the direct map (the kernel's <c>max_pfn</c> as an address).
    /// </summary>
    public static IEnumerable<KernelPage> Enumerate(DumpImage image, IPageTable table, KernelLayout layout, ulong directMapLimit, KvmLimits limits)
    {
        ulong pageOffsetBase = layout.PageOffsetBase ?? throw new KvmException(KvmErrorCode.KernelLayout, $"{image.Files[0]}: the direct map's base (page_offset_base; arm64's PAGE_OFFSET) is unknown, so the kernel map cannot be told from the direct map");
        if (layout.PagingMode == PagingMode.Arm64)
        {
            var (linearStart, linearEnd) = Arm64LinearMap(pageOffsetBase, layout.VirtualAddressBits, layout.GranuleSize);
            var ranges = Arm64KernelMapRanges(layout.VirtualAddressBits, linearStart, linearEnd);
            return Walk(image, table, layout.PageTableRoot, ranges, Arm64DirectMap(layout.PhysBase, linearStart, linearEnd, directMapLimit), BitOperations.Log2((uint)layout.GranuleSize), limits);
        }

        var x86Ranges = table.VirtualAddressBits == 32
            ? I386KernelMapRanges(pageOffsetBase, directMapLimit)
            : KernelMapRanges(layout.PagingLevels, pageOffsetBase, directMapLimit);
        return Walk(image, table, layout.PageTableRoot, x86Ranges, X86DirectMap(pageOffsetBase, directMapLimit), 12, limits);
    }

    /// <summary>
    /// The x86-64 kernel-half ranges pass 1 walks, inclusive: below the direct map, and above its region. The region
    /// is at least 1 TiB even when the RAM size is unknown.
    /// </summary>
    public static IReadOnlyList<(ulong First, ulong Last)> KernelMapRanges(int levels, ulong pageOffsetBase, ulong directMapLimit)
    {
        ulong kernelHalf = levels == 5 ? 0xff00000000000000 : 0xffff800000000000;
        ulong region = directMapLimit <= Terabyte ? Terabyte : ((directMapLimit - 1) / Terabyte + 1) * Terabyte;
        var ranges = new List<(ulong, ulong)>(2);
        if (pageOffsetBase > kernelHalf)
        {
            ranges.Add((kernelHalf, pageOffsetBase - 1));
        }

        if (ulong.MaxValue - pageOffsetBase >= region)
        {
            ranges.Add((Math.Max(kernelHalf, pageOffsetBase + region), ulong.MaxValue));
        }

        return ranges;
    }

    /// <summary>
    /// The i386 ranges pass 1 walks: the kernel half above the direct map, which maps low memory only, from
    /// <c>PAGE_OFFSET</c> to <c>high_memory</c> (arch/x86/mm/init_32.c); vmalloc, pkmap, the CPU entry area and fixmap
    /// lie above it (arch/x86/include/asm/pgtable_32_areas.h). The kernel image itself is in the direct map on i386,
    /// so its pages are reported by pass 2 with their direct-map address.
    /// </summary>
    public static IReadOnlyList<(ulong First, ulong Last)> I386KernelMapRanges(ulong pageOffset, ulong lowMemoryLimit)
    {
        ulong end = pageOffset + Math.Min(lowMemoryLimit, uint.MaxValue - pageOffset + 1);
        return end > uint.MaxValue ? [] : [(end, uint.MaxValue)];
    }

    /// <summary>
    /// arm64's linear map, [<c>PAGE_OFFSET</c>, <c>PAGE_END</c>), with an end of 0 meaning 2^64. Since Linux 5.4
    /// (14c127c957c1, "arm64: mm: Flip kernel VA space") <c>PAGE_OFFSET = -(1 &lt;&lt; VA_BITS)</c> and
    /// <c>PAGE_END = -(1 &lt;&lt; (VA_BITS_MIN - 1))</c>, where <c>VA_BITS_MIN</c> is 48 for a 52-bit kernel (47 with
    /// 16 KiB pages, 6.9+) and <c>VA_BITS</c> otherwise (arch/arm64/include/asm/memory.h): the bottom half of the kernel
    /// half, or for a 52-bit kernel everything below the 48-bit half's middle. Before 5.4 <c>PAGE_OFFSET</c> was
    /// <c>-(1 &lt;&lt; (VA_BITS - 1))</c> and the linear map the whole top half. <paramref name="pageOffset"/> tells
    /// the two apart: its zero bits are the configured <c>VA_BITS</c> (5.4+; at least <paramref name="vaBits"/>, the
    /// size the tables are walked with) or <c>VA_BITS - 1</c> (before).
    /// </summary>
    /// <remarks>
    /// A KASAN kernel (not a distribution's) lowers <c>PAGE_END</c> and puts its shadow between it and
    /// <c>_PAGE_END(VA_BITS_MIN)</c>; that shadow is then treated as linear map and not walked.
    /// </remarks>
    public static (ulong Start, ulong End) Arm64LinearMap(ulong pageOffset, int vaBits, int granuleSize)
    {
        int configured = BitOperations.TrailingZeroCount(pageOffset);
        if (pageOffset == 0 || configured < vaBits)
        {
            return (pageOffset, 0);
        }

        int vaBitsMin = configured <= 48 ? configured : granuleSize == 16384 ? 47 : 48;
        return (pageOffset, ulong.MaxValue << (vaBitsMin - 1));
    }

    /// <summary>
    /// The arm64 ranges pass 1 walks, inclusive: the kernel half, <c>[-(1 &lt;&lt; vaBits), 2^64)</c> (TTBR1), except
    /// the linear map [<paramref name="linearStart"/>, <paramref name="linearEnd"/>) (end 0 meaning 2^64). That
    /// leaves the kernel image, modules, vmalloc and ioremap, vmemmap, the PCI I/O window and the fixmap
    /// (Documentation/arm64/memory.rst).
    /// </summary>
    public static IReadOnlyList<(ulong First, ulong Last)> Arm64KernelMapRanges(int vaBits, ulong linearStart, ulong linearEnd)
    {
        ulong kernelHalf = ulong.MaxValue << vaBits;
        var ranges = new List<(ulong, ulong)>(2);
        if (linearStart > kernelHalf)
        {
            ranges.Add((kernelHalf, linearStart - 1));
        }

        if (linearEnd != 0)
        {
            ranges.Add((Math.Max(kernelHalf, linearEnd), ulong.MaxValue));
        }

        return ranges;
    }

    /// <summary>
    /// The x86 direct map: <c>va = page_offset_base + pa</c> below <paramref name="directMapLimit"/> (and below what
    /// fits under 2^64).
    /// </summary>
    private static DirectMap X86DirectMap(ulong pageOffsetBase, ulong directMapLimit) =>
        new(0, pageOffsetBase == 0 ? directMapLimit : Math.Min(directMapLimit, unchecked(0UL - pageOffsetBase)), pageOffsetBase);

    /// <summary>
    /// arm64's linear map: <c>va = pa - PHYS_OFFSET + PAGE_OFFSET</c> (<c>__phys_to_virt</c>,
    /// arch/arm64/include/asm/memory.h) for RAM from <c>PHYS_OFFSET</c> (<c>memstart_addr</c>, which KASLR of the
    /// linear map and 52-bit kernels on 48-bit hardware lower, even below 0, arch/arm64/mm/init.c
    /// <c>arm64_memblock_init</c>) up to the end of the region, and below <paramref name="directMapLimit"/>.
    /// </summary>
    private static DirectMap Arm64DirectMap(long physOffset, ulong linearStart, ulong linearEnd, ulong directMapLimit)
    {
        UInt128 size = linearEnd == 0 ? (UInt128.One << 64) - linearStart : linearEnd - linearStart;
        Int128 end = physOffset + (Int128)size;
        ulong first = physOffset < 0 ? 0 : (ulong)physOffset;
        ulong limit = end <= 0 ? 0 : (ulong)Int128.Min(end, directMapLimit);
        return new DirectMap(first, limit, unchecked(linearStart - (ulong)physOffset));
    }

    private static IEnumerable<KernelPage> Walk(DumpImage image, IPageTable table, ulong root, IReadOnlyList<(ulong First, ulong Last)> ranges, DirectMap directMap, int pageShift, KvmLimits limits)
    {
        ulong pageSize = 1UL << pageShift;
        var ram = image.PhysicalRanges.ToArray();
        bool oneFile = image.Files.Count == 1;
        ulong storedEnd = 0;
        foreach (var r in image.EnumerateStoredRanges())
        {
            storedEnd = r.End;
        }

        ulong bits = storedEnd >> pageShift;
        if (bits / 8 > (ulong)limits.MaxBitmapBytes || (bits + 63) / 64 > (ulong)Array.MaxLength)
        {
            throw new CorruptImageException($"{image.Files[0]}: the image holds pages up to physical 0x{storedEnd:x}; one bit per page would exceed KvmLimits.MaxBitmapBytes ({limits.MaxBitmapBytes})");
        }

        var seen = new ulong[(bits + 63) / 64];
        int maxTables = limits.MaxPageTableWalkTables;
        foreach (var (first, last) in ranges)
        {
            foreach (var m in table.EnumerateMappings(root, first, last, maxTables))
            {
                var protection = PageProtection.Read
                    | (m.Writable ? PageProtection.Write : PageProtection.None)
                    | (m.Executable ? PageProtection.Execute : PageProtection.None);
                var storage = image.Locate(m.PhysicalAddress, m.Size);
                Mark(seen, bits, m.PhysicalAddress >> pageShift, m.Size >> pageShift);
                yield return new KernelPage(
                    m.PhysicalAddress,
                    m.VirtualAddress,
                    directMap.AddressOf(ram, m.PhysicalAddress),
                    protection,
                    FileOffset(storage, oneFile),
                    m.Size);
            }
        }

        foreach (var range in image.EnumerateStoredRanges())
        {
            // Whole pages only: a page the image holds in part cannot be read as a page.
            ulong pfn = (range.Start + (pageSize - 1)) >> pageShift;
            ulong end = range.End >> pageShift;
            for (; pfn < end; pfn++)
            {
                if (pfn < bits && (seen[pfn >> 6] & (1UL << (int)(pfn & 63))) != 0)
                {
                    continue;
                }

                ulong pa = pfn << pageShift;
                var storage = image.Locate(pa, pageSize);
                if (!storage.IsStored)
                {
                    continue;
                }

                yield return new KernelPage(
                    pa,
                    0,
                    directMap.AddressOf(ram, pa),
                    PageProtection.Read | PageProtection.Write,
                    FileOffset(storage, oneFile),
                    pageSize);
            }
        }
    }

    /// <summary>A split set has several files; which one would be ambiguous in FreeBSD's one-file record, so -1.</summary>
    private static long FileOffset(PhysicalStorage storage, bool oneFile) =>
        storage.Kind == StorageKind.Plain && oneFile ? storage.FileOffset : -1;

    /// <summary>Sets the bits of <paramref name="count"/> pages from <paramref name="pfn"/> below <paramref name="bits"/>, a word at a time where it can.</summary>
    private static void Mark(ulong[] seen, ulong bits, ulong pfn, ulong count)
    {
        ulong end = Math.Min(bits, pfn + count);
        while (pfn < end)
        {
            if ((pfn & 63) == 0 && end - pfn >= 64)
            {
                seen[pfn >> 6] = ulong.MaxValue;
                pfn += 64;
            }
            else
            {
                seen[pfn >> 6] |= 1UL << (int)(pfn & 63);
                pfn++;
            }
        }
    }

    /// <summary>
    /// Where the kernel direct-maps RAM: physical [<paramref name="PhysicalStart"/>, <paramref name="PhysicalEnd"/>) at
    /// <c>pa + <paramref name="Delta"/></c> (modulo 2^64).
    /// </summary>
    private readonly record struct DirectMap(ulong PhysicalStart, ulong PhysicalEnd, ulong Delta)
    {
        /// <summary>The direct-map address of <paramref name="pa"/> when it is RAM the image knows inside the window; else 0.</summary>
        public ulong AddressOf(PhysicalRange[] ram, ulong pa)
        {
            if (pa < PhysicalStart || pa >= PhysicalEnd)
            {
                return 0;
            }

            int lo = 0;
            int hi = ram.Length - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) >>> 1;
                if (pa < ram[mid].Start)
                {
                    hi = mid - 1;
                }
                else if (pa - ram[mid].Start >= ram[mid].Length)
                {
                    lo = mid + 1;
                }
                else
                {
                    return unchecked(pa + Delta);
                }
            }

            return 0;
        }
    }
}
