
namespace Kvm.Translation.X86;

/// <summary>
/// 32-bit x86 page-table walker, without PAE (two levels of 1024 4-byte entries; 4 KiB pages and, with PSE, 4 MiB
/// pages whose PSE-36 bits 13..20 give physical bits 32..39: Intel SDM vol. 3A §4.3, tables 4-4 to 4-6) and with PAE
/// (a 4-entry PDPT of 8-byte entries, then a page directory and a page table of 512 8-byte entries; 4 KiB and 2 MiB
/// pages, physical addresses up to 52 bits, XD in bit 63: §4.4, tables 4-8 to 4-11). Kernel-agnostic: the levels
/// are named as Linux names them (pgd/pte without PAE, pgd/pmd/pte with it: arch/x86/include/asm/pgtable-2level_types.h,
/// pgtable-3level_types.h), and swap entries are decoded as Linux stores them, but nothing here knows where a kernel
/// keeps its root. Table pages are cached whole in a bounded LRU, as the x86-64 walker does.
/// </summary>
internal sealed class X86PageTable : IPageTable
{
    private const ulong Present = 1;
    private const ulong WritableBit = 2;
    private const ulong UserBit = 4;
    private const ulong PageSizeBit = 0x80;
    private const ulong ExecuteDisableBit = 1UL << 63;

    // Without PAE: bits 12..31 frame a table or 4 KiB page, bits 22..31 a 4 MiB page (PSE-36 adds bits 13..20).
    private const ulong Frame32Mask = 0xfffff000;
    private const ulong Frame4MMask = 0xffc00000;

    // With PAE: the entry's frame bits up to MAXPHYADDR 52, as on x86-64 (SDM table 4-11).
    private const ulong FramePaeMask = 0x000ffffffffff000;
    private const ulong Frame2MMask = 0x000fffffffe00000;

    private static readonly Level[] s_twoLevel = [new("pgd", 1024, 22), new("pte", 1024, 12)];
    private static readonly Level[] s_pae = [new("pgd", 4, 30), new("pmd", 512, 21), new("pte", 512, 12)];

    private readonly PageTableReader _tables;
    private readonly Level[] _levels;

    /// <summary>Creates a walker.</summary>
    /// <param name="source">Where table pages are read.</param>
    /// <param name="pae">True for PAE paging (CR4.PAE; Linux CONFIG_X86_PAE), false for 2-level paging.</param>
    /// <param name="cachedTables">How many tables the cache keeps (0: none).</param>
    public X86PageTable(IPhysicalSource source, bool pae, int cachedTables)
    {
        Pae = pae;
        _levels = pae ? s_pae : s_twoLevel;
        _tables = new PageTableReader(source, cachedTables);
    }

    /// <summary>True for PAE paging.</summary>
    public bool Pae { get; }

    /// <inheritdoc/>
    public PagingMode Mode => Pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel;

    /// <inheritdoc/>
    public int Levels => _levels.Length;

    /// <inheritdoc/>
    public int VirtualAddressBits => 32;

    /// <summary>The size of one entry: 8 bytes with PAE, 4 without.</summary>
    public int EntrySize => Pae ? 8 : 4;

    /// <inheritdoc/>
    public CacheStatistics Statistics => _tables.Statistics;

    /// <inheritdoc/>
    public void FlushCache() => _tables.Clear();

    /// <summary>
    /// The physical address of the top-level table a CR3 value (or a kernel's root) designates: bits 12..31 without
    /// PAE, bits 5..31 with it (the PDPT is 32-byte aligned: SDM §4.4.1; Linux allocates user PDPTs from a 32-byte slab).
    /// </summary>
    public ulong RootTable(ulong root) => Pae ? root & 0xffffffe0 : root & Frame32Mask;

    /// <inheritdoc/>
    public bool TryTranslate(ulong root, ulong va, out ulong pa, out ulong pageSize, out TranslationFault? fault) =>
        Walk(root, va, null, out pa, out pageSize, out fault);

    /// <inheritdoc/>
    public TranslationWalk Describe(ulong root, ulong va)
    {
        var steps = new List<TranslationStep>(Levels);
        bool ok = Walk(root, va, steps, out ulong pa, out ulong pageSize, out var fault);
        return new TranslationWalk(va, "pgtable", steps, ok ? pa : null, ok ? pageSize : 0, fault);
    }

    /// <inheritdoc/>
    public bool TryDecodeSwapEntry(ulong entry, out int type, out ulong offset)
    {
        bool swap = X86SwapEntry.IsSwapEntry(entry, Pae);
        type = swap ? X86SwapEntry.Type(entry, Pae) : 0;
        offset = swap ? X86SwapEntry.Offset(entry, Pae) : 0;
        return swap;
    }

    private bool Walk(ulong root, ulong va, List<TranslationStep>? steps, out ulong pa, out ulong pageSize, out TranslationFault? fault)
    {
        pa = 0;
        pageSize = 0;
        if (va > uint.MaxValue)
        {
            fault = new TranslationFault(va, TranslationFaultKind.NonCanonical, null, 0, 0, 0);
            return false;
        }

        ulong table = RootTable(root);
        for (int level = 0; level < _levels.Length; level++)
        {
            var spec = _levels[level];
            int index = (int)((va >> spec.Shift) & (ulong)(spec.Entries - 1));
            var entries = _tables.Read(table, _levels[level].Entries, EntrySize);
            if (entries is null)
            {
                fault = new TranslationFault(va, TranslationFaultKind.TableUnreadable, spec.Name, index, table, 0);
                return false;
            }

            ulong entry = entries[index];
            bool last = level == _levels.Length - 1;
            bool large = IsLarge(level, entry);
            steps?.Add(new TranslationStep(spec.Name, table, index, entry, (entry & Present) != 0 && (last || large)) { EntrySize = EntrySize });
            if ((entry & Present) == 0)
            {
                var kind = last && X86SwapEntry.IsSwapEntry(entry, Pae) ? TranslationFaultKind.SwapEntry : TranslationFaultKind.NotPresent;
                fault = new TranslationFault(va, kind, spec.Name, index, table, entry);
                return false;
            }

            if (large || last)
            {
                pageSize = 1UL << spec.Shift;
                pa = LeafFrame(level, entry) | (va & (pageSize - 1));
                fault = null;
                return true;
            }

            table = Pae ? entry & FramePaeMask : entry & Frame32Mask;
        }

        fault = new TranslationFault(va, TranslationFaultKind.NoMethod, null, 0, 0, 0);
        return false;
    }

    /// <summary>
    /// Enumerates the leaf mappings under <paramref name="root"/> whose first address lies in
    /// [<paramref name="first"/>, <paramref name="last"/>], ascending; lazy, and kept out of the translation cache.
    /// </summary>
    /// <remarks>
    /// Bounded as the x86-64 walker is: entries that are not present are skipped, an unreadable table is skipped with
    /// everything below it, an entry pointing at a table already on the current path is skipped, and descending into
    /// more than <paramref name="maxTables"/> tables throws <see cref="CorruptImageException"/>. A PAE PDPTE has no
    /// R/W, U/S or XD bits (they are reserved in the 4-entry PDPT, SDM table 4-8), so only the PD and PT entries decide
    /// the rights; without PAE nothing disables execution.
    /// </remarks>
    public IEnumerable<PageMapping> EnumerateMappings(ulong root, ulong first, ulong last, int maxTables)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTables);
        if (first > last || first > uint.MaxValue)
        {
            yield break;
        }

        int levels = _levels.Length;
        var tables = new ulong[levels][];
        var tableAddresses = new ulong[levels];
        var next = new int[levels];
        var baseVa = new ulong[levels];
        var writable = new bool[levels];
        var executable = new bool[levels];
        var user = new bool[levels];

        ulong rootTable = RootTable(root);
        var top = _tables.Read(rootTable, _levels[0].Entries, EntrySize, cache: false);
        if (top is null)
        {
            yield break;
        }

        var budget = new TableWalkBudget(root, maxTables);
        budget.Descend();
        tables[0] = top;
        tableAddresses[0] = rootTable;
        writable[0] = executable[0] = user[0] = true;
        int level = 0;
        while (level >= 0)
        {
            var spec = _levels[level];
            if (next[level] == spec.Entries)
            {
                level--;
                continue;
            }

            int index = next[level]++;
            ulong span = 1UL << spec.Shift;
            ulong va = baseVa[level] + ((ulong)index << spec.Shift);
            if (va + (span - 1) < first)
            {
                continue;
            }

            if (va > last)
            {
                next[level] = spec.Entries;
                continue;
            }

            ulong entry = tables[level][index];
            if ((entry & Present) == 0)
            {
                continue;
            }

            // The PAE PDPTE holds no rights: reserved bits 1, 2 and 63 are zero there and must not restrict.
            bool rights = !(Pae && level == 0);
            bool w = writable[level] && (!rights || (entry & WritableBit) != 0);
            bool x = executable[level] && (!rights || !Pae || (entry & ExecuteDisableBit) == 0);
            bool u = user[level] && (!rights || (entry & UserBit) != 0);
            bool leafLevel = level == levels - 1;
            if (leafLevel || IsLarge(level, entry))
            {
                if (va >= first)
                {
                    yield return new PageMapping(va, LeafFrame(level, entry), span, w, x, u, entry);
                }

                continue;
            }

            ulong child = Pae ? entry & FramePaeMask : entry & Frame32Mask;
            if (Array.IndexOf(tableAddresses, child, 0, level + 1) >= 0)
            {
                continue;
            }

            budget.Descend();

            var entries = _tables.Read(child, _levels[level + 1].Entries, EntrySize, cache: false);
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

    /// <summary>PS in a page-directory entry: the pgd of 2-level paging, the pmd of PAE (PS in a PDPTE is reserved).</summary>
    private bool IsLarge(int level, ulong entry) => (entry & PageSizeBit) != 0 && level == _levels.Length - 2;

    private ulong LeafFrame(int level, ulong entry)
    {
        if (level == _levels.Length - 1)
        {
            return Pae ? entry & FramePaeMask : entry & Frame32Mask;
        }

        // PSE-36/PSE-40: a 4 MiB PDE carries physical bits 32..39 in bits 13..20 (SDM table 4-4).
        return Pae ? entry & Frame2MMask : (entry & Frame4MMask) | (((entry >> 13) & 0xff) << 32);
    }

    private readonly record struct Level(string Name, int Entries, int Shift);
}
