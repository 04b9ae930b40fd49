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
/// Pass 1 walks the kernel's root table over the kernel half of the address space (from 0xffff800000000000, or
/// 0xff00000000000000 with LA57) except the direct map, in ascending address order, one record per present leaf.
/// The direct map's region is <c>page_offset_base</c> plus the RAM size rounded up to a TiB: with
/// CONFIG_RANDOMIZE_MEMORY the kernel sizes the region as max_pfn rounded up to a TiB plus a padding and places
/// vmalloc after it (arch/x86/mm/kaslr.c, <c>kernel_randomize_memory</c>), and without it the region is fixed at
/// 64 TiB (32 PiB with LA57) ahead of vmalloc (Documentation/x86/x86_64/mm.rst), so that span never reaches another
/// region and covers every direct-map entry, which map RAM below max_pfn only (arch/x86/mm/init.c,
/// <c>init_mem_mapping</c>).
/// </para>
/// <para>
/// Pass 2 lists every page the image holds that pass 1 did not report as the target of a mapping. FreeBSD's own
/// second pass means to do exactly this, but tests its bitmap of pages seen with an arithmetic slip that lets most
/// pages through again (review D19183); this follows the intent. Pages seen in pass 1 are kept in a bitmap of one
/// bit per page up to the highest page the image holds, capped by <see cref="KvmLimits.MaxBitmapBytes"/>.
/// </para>
/// </remarks>
internal static class KernelPageWalker
{
    /// <summary>The x86-64 base page size.</summary>
    public const ulong PageSize = 4096;

    private const int PageShift = 12;
    private const ulong Terabyte = 1UL << 40;

    /// <summary>
    /// Enumerates the pages lazily. <paramref name="directMapLimit"/> is the physical address below which RAM is in
    /// the direct map (the kernel's <c>max_pfn</c> as an address).
    /// </summary>
    public static IEnumerable<KernelPage> Enumerate(DumpImage image, IPageTable table, KernelLayout layout, ulong directMapLimit, KvmLimits limits)
    {
        ulong pageOffsetBase = layout.PageOffsetBase ?? throw new KvmException(KvmErrorCode.KernelLayout, $"{image.Files[0]}: the direct map's base (page_offset_base) is unknown, so the kernel map cannot be told from the direct map");
        return Walk(image, table, layout, pageOffsetBase, directMapLimit, limits);
    }

    /// <summary>
    /// The kernel-half ranges pass 1 walks, inclusive: below the direct map, and above its region. The region is
    /// at least 1 TiB even when the RAM size is unknown.
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

    private static IEnumerable<KernelPage> Walk(DumpImage image, IPageTable table, KernelLayout layout, ulong pageOffsetBase, ulong directMapLimit, KvmLimits limits)
    {
        var ram = image.PhysicalRanges.ToArray();
        bool oneFile = image.Files.Count == 1;
        ulong storedEnd = 0;
        foreach (var r in image.EnumerateStoredRanges())
        {
            storedEnd = r.End;
        }

        ulong bits = storedEnd >> PageShift;
        if (bits / 8 > (ulong)limits.MaxBitmapBytes || (bits + 63) / 64 > (ulong)Array.MaxLength)
        {
            throw new CorruptImageException($"{image.Files[0]}: the image holds pages up to physical 0x{storedEnd:x}; one bit per page would exceed KvmLimits.MaxBitmapBytes ({limits.MaxBitmapBytes})");
        }

        var seen = new ulong[(bits + 63) / 64];
        int maxTables = limits.MaxPageTableWalkTables;
        var ranges = table.VirtualAddressBits == 32
            ? I386KernelMapRanges(pageOffsetBase, directMapLimit)
            : KernelMapRanges(layout.PagingLevels, pageOffsetBase, directMapLimit);
        foreach (var (first, last) in ranges)
        {
            foreach (var m in table.EnumerateMappings(layout.PageTableRoot, first, last, maxTables))
            {
                var protection = PageProtection.Read
                    | (m.Writable ? PageProtection.Write : PageProtection.None)
                    | (m.Executable ? PageProtection.Execute : PageProtection.None);
                var storage = image.Locate(m.PhysicalAddress, m.Size);
                Mark(seen, bits, m.PhysicalAddress, m.Size);
                yield return new KernelPage(
                    m.PhysicalAddress,
                    m.VirtualAddress,
                    DirectMapAddress(pageOffsetBase, directMapLimit, ram, m.PhysicalAddress),
                    protection,
                    FileOffset(storage, oneFile),
                    m.Size);
            }
        }

        foreach (var range in image.EnumerateStoredRanges())
        {
            // Whole pages only: a page the image holds in part cannot be read as a page.
            ulong pfn = (range.Start + (PageSize - 1)) >> PageShift;
            ulong end = range.End >> PageShift;
            for (; pfn < end; pfn++)
            {
                if (pfn < bits && (seen[pfn >> 6] & (1UL << (int)(pfn & 63))) != 0)
                {
                    continue;
                }

                ulong pa = pfn << PageShift;
                var storage = image.Locate(pa, PageSize);
                if (!storage.IsStored)
                {
                    continue;
                }

                yield return new KernelPage(
                    pa,
                    0,
                    DirectMapAddress(pageOffsetBase, directMapLimit, ram, pa),
                    PageProtection.Read | PageProtection.Write,
                    FileOffset(storage, oneFile),
                    PageSize);
            }
        }
    }

    /// <summary>A split set has several files; which one would be ambiguous in FreeBSD's one-file record, so -1.</summary>
    private static long FileOffset(PhysicalStorage storage, bool oneFile) =>
        storage.Kind == StorageKind.Plain && oneFile ? storage.FileOffset : -1;

    /// <summary>Sets the bits of the pages [pa, pa + size) below <paramref name="bits"/>, a word at a time where it can.</summary>
    private static void Mark(ulong[] seen, ulong bits, ulong pa, ulong size)
    {
        ulong pfn = pa >> PageShift;
        ulong end = Math.Min(bits, pfn + (size >> PageShift));
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

    /// <summary>The direct-map address of <paramref name="pa"/> when it is RAM the image knows below the kernel's max_pfn; else 0.</summary>
    private static ulong DirectMapAddress(ulong pageOffsetBase, ulong directMapLimit, PhysicalRange[] ram, ulong pa)
    {
        if (pa >= directMapLimit || ulong.MaxValue - pageOffsetBase < pa)
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
                return pageOffsetBase + pa;
            }
        }

        return 0;
    }
}
