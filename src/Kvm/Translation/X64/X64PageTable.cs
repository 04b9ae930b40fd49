
namespace Kvm.Translation.X64;

/// <summary>
/// x86-64 page-table walker for 4- and 5-level paging with 2 MiB and 1 GiB pages (Intel SDM vol. 3A §4.5;
/// Linux arch/x86/include/asm/pgtable_types.h). The AMD SME C-bit (<c>sme_me_mask</c>) is cleared from every entry
/// before use. Table pages are cached whole (one read per new table, as drgn's iterator does) in a bounded LRU.
/// </summary>
internal sealed class X64PageTable : IPageTable
{
    /// <summary>Bits 12..51: the frame of a table or 4 KiB page.</summary>
    public const ulong FrameMask = 0x000ffffffffff000;
    private const ulong Frame2MMask = 0x000fffffffe00000;
    private const ulong Frame1GMask = 0x000fffffc0000000;
    private const ulong Present = 1;
    private const ulong WritableBit = 2;
    private const ulong UserBit = 4;
    private const ulong PageSizeBit = 0x80;
    private const ulong ExecuteDisableBit = 1UL << 63;

    private static readonly string[] s_names5 = ["pgd", "p4d", "pud", "pmd", "pte"];
    private static readonly string[] s_names4 = ["pgd", "pud", "pmd", "pte"];

    private readonly PageTableReader _tables;
    private readonly ulong _entryMask;

    public X64PageTable(IPhysicalSource source, int levels, ulong smeMask, int cachedTables)
    {
        if (levels is not (4 or 5))
        {
            throw new ArgumentOutOfRangeException(nameof(levels), levels, "x86-64 paging has 4 or 5 levels");
        }

        Levels = levels;
        SmeMask = smeMask;
        _entryMask = ~smeMask;
        _tables = new PageTableReader(source, cachedTables);
    }

    public int Levels { get; }

    public ulong SmeMask { get; }

    public PagingMode Mode => Levels == 5 ? PagingMode.X64FiveLevel : PagingMode.X64FourLevel;

    public int VirtualAddressBits => Levels == 5 ? 57 : 48;

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
            var entries = _tables.Read(table, 512);
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

    /// <summary>
    /// Enumerates the leaf mappings under <paramref name="root"/> whose first address lies in
    /// [<paramref name="first"/>, <paramref name="last"/>] (inclusive, so that a range may end at 2^64 - 1), in
    /// ascending virtual-address order. Lazy: tables are read as the enumeration reaches them, and not kept in the
    /// translation cache, so a whole-table walk does not evict the tables hot reads need.
    /// </summary>
    /// <remarks>
    /// Bounded for corrupt tables: entries that are not present are skipped; a table that cannot be read is skipped
    /// with everything below it; an entry pointing at a table already on the current path (a cycle: Linux never maps
    /// a page table into itself) is skipped; and descending into more than <paramref name="maxTables"/> tables in
    /// all throws <see cref="CorruptImageException"/>. Tables shared by several entries (Linux's ESPFIX maps one PTE
    /// page from many PMD entries, arch/x86/kernel/espfix_64.c) are legitimate and are walked each time. A leaf whose
    /// frame is outside the image is still reported: the table says it is mapped. PS in a PML5E or PML4E is ignored,
    /// as <see cref="TryTranslate"/> ignores it, so both agree on every address.
    /// </remarks>
    public IEnumerable<PageMapping> EnumerateMappings(ulong root, ulong first, ulong last, int maxTables)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTables);
        if (first > last)
        {
            yield break;
        }

        int levels = Levels;
        var tables = new ulong[levels][];
        var tableAddresses = new ulong[levels];
        var next = new int[levels];
        var baseVa = new ulong[levels];
        var writable = new bool[levels];
        var executable = new bool[levels];
        var user = new bool[levels];

        ulong rootTable = root & FrameMask & _entryMask;
        var top = _tables.Read(rootTable, 512, cache: false);
        if (top is null)
        {
            yield break;
        }

        var budget = new TableWalkBudget(root, maxTables);
        budget.Descend();
        tables[0] = top;
        tableAddresses[0] = rootTable;
        writable[0] = executable[0] = user[0] = true;
        int topBits = 12 + (9 * levels);
        int level = 0;
        while (level >= 0)
        {
            if (next[level] == 512)
            {
                level--;
                continue;
            }

            int index = next[level]++;
            int shift = 12 + (9 * (levels - 1 - level));
            ulong span = 1UL << shift;
            ulong va = baseVa[level] + ((ulong)index << shift);
            if (level == 0 && ((va >> (topBits - 1)) & 1) != 0)
            {
                // The upper half: bits 63..topBits copy the top index bit (canonical form, SDM §3.3.7.1).
                va |= ~((1UL << topBits) - 1);
            }

            if (va + (span - 1) < first)
            {
                continue;
            }

            if (va > last)
            {
                // Entries ascend: nothing further in this table can be in range.
                next[level] = 512;
                continue;
            }

            ulong raw = tables[level][index];
            ulong entry = raw & _entryMask;
            if ((entry & Present) == 0)
            {
                continue;
            }

            bool w = writable[level] && (entry & WritableBit) != 0;
            bool x = executable[level] && (entry & ExecuteDisableBit) == 0;
            bool u = user[level] && (entry & UserBit) != 0;
            bool leafLevel = level == levels - 1;
            bool large = !leafLevel && (entry & PageSizeBit) != 0 && (shift == 30 || shift == 21);
            if (leafLevel || large)
            {
                if (va >= first)
                {
                    ulong frame = leafLevel ? entry & FrameMask : entry & (shift == 30 ? Frame1GMask : Frame2MMask);
                    yield return new PageMapping(va, frame, span, w, x, u, raw);
                }

                continue;
            }

            ulong child = entry & FrameMask;
            if (Array.IndexOf(tableAddresses, child, 0, level + 1) >= 0)
            {
                continue;
            }

            budget.Descend();

            var entries = _tables.Read(child, 512, cache: false);
            if (entries is null)
            {
                continue;
            }

            level++;
            tables[level] = entries;
            tableAddresses[level] = child;
            next[level] = 0;
            baseVa[level] = va;
            writable[level] = w;
            executable[level] = x;
            user[level] = u;
        }
    }

    /// <summary>Decodes a Linux x86-64 swap PTE (<see cref="X64SwapEntry"/>).</summary>
    public bool TryDecodeSwapEntry(ulong entry, out int type, out ulong offset)
    {
        bool swap = X64SwapEntry.IsSwapEntry(entry & _entryMask);
        type = swap ? X64SwapEntry.Type(entry) : 0;
        offset = swap ? X64SwapEntry.Offset(entry) : 0;
        return swap;
    }
}
