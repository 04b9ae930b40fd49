using System.Buffers.Binary;
using Kvm.IO;

namespace Kvm.Translation.X64;

/// <summary>
/// x86-64 page-table walker for 4- and 5-level paging with 2 MiB and 1 GiB pages (Intel SDM vol. 3A §4.5;
/// Linux arch/x86/include/asm/pgtable_types.h). The AMD SME C-bit (<c>sme_me_mask</c>) is cleared from every entry
/// before use. Table pages are cached whole (one read per new table, as drgn's iterator does) in a bounded LRU.
/// </summary>
internal sealed class X64PageTable
{
    /// <summary>Bits 12..51: the frame of a table or 4 KiB page.</summary>
    public const ulong FrameMask = 0x000ffffffffff000;
    private const ulong Frame2MMask = 0x000fffffffe00000;
    private const ulong Frame1GMask = 0x000fffffc0000000;
    private const ulong Present = 1;
    private const ulong PageSizeBit = 0x80;

    private static readonly string[] s_names5 = ["pgd", "p4d", "pud", "pmd", "pte"];
    private static readonly string[] s_names4 = ["pgd", "pud", "pmd", "pte"];

    private readonly IPhysicalSource _source;
    private readonly LruCache<ulong, ulong[]> _tables;
    private readonly ulong _entryMask;

    public X64PageTable(IPhysicalSource source, int levels, ulong smeMask, int cachedTables)
    {
        if (levels is not (4 or 5))
        {
            throw new ArgumentOutOfRangeException(nameof(levels), levels, "x86-64 paging has 4 or 5 levels");
        }

        _source = source;
        Levels = levels;
        SmeMask = smeMask;
        _entryMask = ~smeMask;
        _tables = new LruCache<ulong, ulong[]>("page-tables", cachedTables);
    }

    public int Levels { get; }

    public ulong SmeMask { get; }

    public PagingMode Mode => Levels == 5 ? PagingMode.X64FiveLevel : PagingMode.X64FourLevel;

    public CacheStatistics Statistics => _tables.Statistics;

    public void FlushCache() => _tables.Clear();

    /// <summary>True when <paramref name="va"/> is canonical: bits 63..47 (4-level) or 63..56 (5-level) all equal.</summary>
    public bool IsCanonical(ulong va)
    {
        int shift = Levels == 5 ? 56 : 47;
        ulong top = va >> shift;
        return top == 0 || top == (ulong.MaxValue >> shift);
    }

    /// <summary>Translates without recording steps; the hot path.</summary>
    public bool TryTranslate(ulong root, ulong va, out ulong pa, out ulong pageSize, out TranslationFault? fault)
    {
        return Walk(root, va, null, out pa, out pageSize, out fault);
    }

    /// <summary>Translates and records every level visited.</summary>
    public TranslationWalk Describe(ulong root, ulong va)
    {
        var steps = new List<TranslationStep>(Levels);
        bool ok = Walk(root, va, steps, out ulong pa, out ulong pageSize, out var fault);
        return new TranslationWalk(va, "pgtable", steps, ok ? pa : null, ok ? pageSize : 0, fault);
    }

    private bool Walk(ulong root, ulong va, List<TranslationStep>? steps, out ulong pa, out ulong pageSize, out TranslationFault? fault)
    {
        pa = 0;
        pageSize = 0;
        if (!IsCanonical(va))
        {
            fault = new TranslationFault(va, TranslationFaultKind.NonCanonical, null, 0, 0, 0);
            return false;
        }

        var names = Levels == 5 ? s_names5 : s_names4;
        ulong table = root & FrameMask & _entryMask;
        for (int level = 0; level < Levels; level++)
        {
            int shift = 12 + (9 * (Levels - 1 - level));
            int index = (int)((va >> shift) & 511);
            var entries = ReadTable(table);
            if (entries is null)
            {
                fault = new TranslationFault(va, TranslationFaultKind.TableUnreadable, names[level], index, table, 0);
                return false;
            }

            ulong raw = entries[index];
            ulong entry = raw & _entryMask;
            bool last = level == Levels - 1;
            bool large = !last && (entry & PageSizeBit) != 0 && (shift == 30 || shift == 21);
            steps?.Add(new TranslationStep(names[level], table, index, raw, (entry & Present) != 0 && (last || large)));
            if ((entry & Present) == 0)
            {
                var kind = last && X64SwapEntry.IsSwapEntry(entry) ? TranslationFaultKind.SwapEntry : TranslationFaultKind.NotPresent;
                fault = new TranslationFault(va, kind, names[level], index, table, raw);
                return false;
            }

            if (large)
            {
                ulong mask = shift == 30 ? Frame1GMask : Frame2MMask;
                pageSize = 1UL << shift;
                pa = (entry & mask) | (va & (pageSize - 1));
                fault = null;
                return true;
            }

            if (last)
            {
                pageSize = 4096;
                pa = (entry & FrameMask) | (va & 0xfff);
                fault = null;
                return true;
            }

            table = entry & FrameMask;
        }

        fault = new TranslationFault(va, TranslationFaultKind.NoMethod, null, 0, 0, 0);
        return false;
    }

    private ulong[]? ReadTable(ulong tableAddress)
    {
        if (_tables.TryGet(tableAddress, out var cached))
        {
            return cached;
        }

        Span<byte> bytes = stackalloc byte[4096];
        if (!_source.TryReadPhysical(tableAddress, bytes))
        {
            return null;
        }

        var entries = new ulong[512];
        for (int i = 0; i < 512; i++)
        {
            entries[i] = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(i * 8)..]);
        }

        _tables.Add(tableAddress, entries);
        return entries;
    }
}
