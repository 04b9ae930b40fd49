using System.Buffers.Binary;
using Kvm.Images;
using Kvm.Images.FreeBsd;
using Kvm.Translation;
using Kvm.Translation.X64;

namespace Kvm.Memory;

/// <summary>
/// FreeBSD's <c>kvm_walk_pages(3)</c>: first the kernel-map mappings, then the pages only the direct map reaches
/// (lib/libkvm kvm_minidump_amd64.c, kvm_minidump_aarch64.c, kvm_minidump_i386.c <c>*_walk_pages</c>; the API's
/// commit states the second pass's intent, which FreeBSD's bitmap iteration misses, review D19183).
/// </summary>
/// <remarks>
/// <para>
/// Minidumps are walked from their page map, as libkvm does: amd64 v2/v3 one record per valid PDE with PG_PS (2 MiB,
/// protection from the PDE) and one per valid PTE of every page-table page the dump holds (4 KiB); arm64 one per
/// valid L3 descriptor; i386 one per valid PTE. Then every page the sparse area holds that the first pass did not
/// reach, with <see cref="KernelPage.KernelMapAddress"/> 0 and read/write access (the direct map is always
/// read/write, amd64/pmap.c <c>create_pagetables</c>).
/// </para>
/// <para>
/// Deliberate differences from FreeBSD, each towards the API's intent: amd64 v1 minidumps (one PTE per page) are
/// walked too, where libkvm returns 0; a 2 MiB page counts all its 4 KiB pages as reached (libkvm marks only the
/// first); the direct-map address is given only for pages inside [dmapbase, dmapend) (libkvm computes it for every
/// kernel-map page and stops its second pass at the first page beyond); arm64's direct-map address is
/// dmapbase + pa − dmapphys, as its translation uses (libkvm's walk omits dmapphys); i386, which has no direct map,
/// lists its second pass too, with both addresses 0 (libkvm's i386 walk has no second pass); and a page between two
/// <c>dump_avail</c> ranges is never aliased to another's bit.
/// </para>
/// <para>
/// amd64 full (ELF) dumps, for which libkvm has no walker, are walked from the kernel's page tables over
/// [<c>VM_MIN_KERNEL_ADDRESS</c>, 2^64), with 1 GiB pages reported as 512 2 MiB records, as the minidump writer
/// records them, so that a minidump and a full dump of the same kernel list the same kernel map; the second pass
/// lists every page the ELF core holds that the first did not reach.
/// </para>
/// </remarks>
internal static class FreeBsdPageWalker
{
    /// <summary>amd64 <c>VM_MIN_KERNEL_ADDRESS</c> (4-level paging, sys/amd64/include/vmparam.h).</summary>
    public const ulong Amd64KernelMapStart = 0xfffffe0000000000;

    /// <summary>amd64 <c>DMAP_MIN_ADDRESS</c> (4-level paging).</summary>
    public const ulong Amd64DirectMapStart = 0xfffff80000000000;

    /// <summary>amd64 <c>DMAP_MAX_ADDRESS</c> (4-level paging).</summary>
    public const ulong Amd64DirectMapEnd = 0xfffffc0000000000;

    private const ulong Valid = 1;
    private const ulong Writable = 2;
    private const ulong PageSizeBit = 0x80;
    private const ulong NoExecute = 1UL << 63;
    private const ulong Frame = 0x000ffffffffff000;
    private const ulong Frame2M = 0x000fffffffe00000;
    private const ulong Arm64ReadOnly = 1UL << 7;
    private const ulong Arm64ExecuteNever = (1UL << 53) | (1UL << 54);

    /// <summary>Walks a minidump; <paramref name="image"/> is the image as opened (for file offsets), <paramref name="minidump"/> the minidump inside it.</summary>
    public static IEnumerable<KernelPage> Enumerate(DumpImage image, MinidumpImage minidump, KvmLimits limits)
    {
        var map = minidump.Map;
        if (map.BitCount / 8 > (ulong)limits.MaxBitmapBytes)
        {
            throw new CorruptImageException($"{image.Files[0]}: the minidump's bitmap exceeds KvmLimits.MaxBitmapBytes ({limits.MaxBitmapBytes})");
        }

        return Walk(image, minidump, new ulong[(map.BitCount + 63) / 64]);
    }

    /// <summary>Walks an amd64 full dump from the kernel's top-level table at <paramref name="root"/>.</summary>
    public static IEnumerable<KernelPage> EnumerateFullDump(DumpImage image, IPageTable table, ulong root, KvmLimits limits)
    {
        ulong storedEnd = 0;
        foreach (var r in image.EnumerateStoredRanges())
        {
            storedEnd = r.End;
        }

        ulong bits = storedEnd >> 12;
        if (bits / 8 > (ulong)limits.MaxBitmapBytes)
        {
            throw new CorruptImageException($"{image.Files[0]}: the image holds pages up to physical 0x{storedEnd:x}; one bit per page would exceed KvmLimits.MaxBitmapBytes ({limits.MaxBitmapBytes})");
        }

        return WalkFullDump(image, table, root, new ulong[(bits + 63) / 64], limits.MaxPageTableWalkTables);
    }

    private static IEnumerable<KernelPage> Walk(DumpImage image, MinidumpImage minidump, ulong[] seen)
    {
        var header = minidump.Header;
        var map = minidump.Map;
        ulong page = (ulong)header.PageSize;
        var first = header.Architecture switch
        {
            FreeBsdArchitecture.Amd64 => header.Version == 1 ? PteArray(minidump, 12, Frame, Amd64Protection) : Amd64Pdes(minidump),
            FreeBsdArchitecture.Arm64 => PteArray(minidump, System.Numerics.BitOperations.TrailingZeroCount(header.PageSize), ~0xfffc000000000fffUL & ~(page - 1), Arm64Protection),
            _ => PteArray(minidump, 12, header.Pae ? Frame : 0xfffff000UL, I386Protection),
        };

        foreach (var (va, pa, protection, length) in first)
        {
            for (ulong off = 0; off < length; off += page)
            {
                if (map.TryGetBit(pa + off, out ulong bit) && bit < map.BitCount)
                {
                    seen[bit >> 6] |= 1UL << (int)(bit & 63);
                }
            }

            yield return new KernelPage(pa, va, DirectMapAddress(header, pa, length), protection, Offset(image, pa, length), length);
        }

        foreach (var (pa, _) in map.EnumeratePresentPages())
        {
            if (map.TryGetBit(pa, out ulong bit) && (seen[bit >> 6] & (1UL << (int)(bit & 63))) != 0)
            {
                continue;
            }

            yield return new KernelPage(pa, 0, DirectMapAddress(header, pa, page), PageProtection.Read | PageProtection.Write, Offset(image, pa, page), page);
        }
    }

    /// <summary>amd64 v2/v3: a PDE per 2 MiB; 2 MiB pages, or the valid PTEs of the page-table pages the dump holds.</summary>
    private static IEnumerable<(ulong Va, ulong Pa, PageProtection Protection, ulong Length)> Amd64Pdes(MinidumpImage minidump)
    {
        ulong kernbase = minidump.Header.KernelBase;
        var table = new byte[4096];
        for (long i = 0; i < minidump.PageMapEntries; i++)
        {
            minidump.TryGetPageMapEntry(i, out ulong pde);
            if ((pde & Valid) == 0)
            {
                continue;
            }

            ulong va = kernbase + ((ulong)i << 21);
            if ((pde & PageSizeBit) != 0)
            {
                yield return (va, pde & Frame2M, Amd64Protection(pde)!.Value, 1UL << 21);
                continue;
            }

            // Page-table pages the dump does not hold are skipped, as libkvm skips them.
            if (minidump.ReadPhysical(pde & Frame, table, out _) != table.Length)
            {
                continue;
            }

            for (int k = 0; k < 512; k++)
            {
                ulong pte = BinaryPrimitives.ReadUInt64LittleEndian(table.AsSpan(k * 8));
                if ((pte & Valid) != 0)
                {
                    yield return (va + ((ulong)k << 12), pte & Frame, Amd64Protection(pte)!.Value, 4096);
                }
            }
        }
    }

    /// <summary>A page map of one entry per page: amd64 v1 PTEs, arm64 L3 descriptors, i386 PTEs.</summary>
    private static IEnumerable<(ulong Va, ulong Pa, PageProtection Protection, ulong Length)> PteArray(MinidumpImage minidump, int pageShift, ulong frame, Func<ulong, PageProtection?> protectionOf)
    {
        ulong kernbase = minidump.Header.KernelBase;
        for (long i = 0; i < minidump.PageMapEntries; i++)
        {
            minidump.TryGetPageMapEntry(i, out ulong entry);
            if (protectionOf(entry) is { } protection)
            {
                yield return (kernbase + ((ulong)i << pageShift), entry & frame, protection, 1UL << pageShift);
            }
        }
    }

    /// <summary>amd64 (sys/amd64/amd64/pmap.c): read always, write with PG_RW, execute without PG_NX; null when not valid.</summary>
    private static PageProtection? Amd64Protection(ulong entry) => (entry & Valid) == 0 ? null
        : PageProtection.Read | ((entry & Writable) != 0 ? PageProtection.Write : 0) | ((entry & NoExecute) == 0 ? PageProtection.Execute : 0);

    /// <summary>i386: as amd64; PG_NX exists with PAE only, and a 32-bit entry never has bit 63.</summary>
    private static PageProtection? I386Protection(ulong entry) => Amd64Protection(entry);

    /// <summary>arm64 (arm64/arm64/pmap.c pmap_protect): an L3 page; write unless ATTR_AP_RO, execute unless ATTR_XN.</summary>
    private static PageProtection? Arm64Protection(ulong entry) => (entry & 3) != 3 ? null
        : PageProtection.Read | ((entry & Arm64ReadOnly) == 0 ? PageProtection.Write : 0) | ((entry & Arm64ExecuteNever) == 0 ? PageProtection.Execute : 0);

    private static ulong DirectMapAddress(MinidumpHeader header, ulong pa, ulong length)
    {
        if (header.DirectMapEnd <= header.DirectMapBase || pa < header.DirectMapPhysical)
        {
            return 0;
        }

        ulong offset = pa - header.DirectMapPhysical;
        ulong span = header.DirectMapEnd - header.DirectMapBase;
        return offset < span && length <= span - offset ? header.DirectMapBase + offset : 0;
    }

    private static IEnumerable<KernelPage> WalkFullDump(DumpImage image, IPageTable table, ulong root, ulong[] seen, int maxTables)
    {
        ulong bits = (ulong)seen.Length * 64;
        const ulong Size2M = 1UL << 21;
        foreach (var m in table.EnumerateMappings(root, Amd64KernelMapStart, ulong.MaxValue, maxTables))
        {
            var protection = PageProtection.Read | (m.Writable ? PageProtection.Write : 0) | (m.Executable ? PageProtection.Execute : 0);
            ulong step = m.Size > Size2M ? Size2M : m.Size;
            for (ulong off = 0; off < m.Size; off += step)
            {
                ulong pa = m.PhysicalAddress + off;
                for (ulong pfn = pa >> 12; pfn < (pa + step) >> 12 && pfn < bits; pfn++)
                {
                    seen[pfn >> 6] |= 1UL << (int)(pfn & 63);
                }

                yield return new KernelPage(pa, m.VirtualAddress + off, FullDumpDirectMap(pa, step), protection, Offset(image, pa, step), step);
            }
        }

        foreach (var range in image.EnumerateStoredRanges())
        {
            for (ulong pfn = (range.Start + 0xfff) >> 12; pfn < range.End >> 12; pfn++)
            {
                if (pfn < bits && (seen[pfn >> 6] & (1UL << (int)(pfn & 63))) != 0)
                {
                    continue;
                }

                ulong pa = pfn << 12;
                yield return new KernelPage(pa, 0, FullDumpDirectMap(pa, 4096), PageProtection.Read | PageProtection.Write, Offset(image, pa, 4096), 4096);
            }
        }
    }

    private static ulong FullDumpDirectMap(ulong pa, ulong length) =>
        pa < Amd64DirectMapEnd - Amd64DirectMapStart && length <= Amd64DirectMapEnd - Amd64DirectMapStart - pa ? Amd64DirectMapStart + pa : 0;

    private static long Offset(DumpImage image, ulong pa, ulong length)
    {
        var storage = image.Locate(pa, length);
        return storage.Kind == StorageKind.Plain && image.Files.Count == 1 ? storage.FileOffset : -1;
    }
}
