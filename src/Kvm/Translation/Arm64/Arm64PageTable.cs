
namespace Kvm.Translation.Arm64;

/// <summary>
/// AArch64 stage-1 page-table walker (VMSAv8-64) for every granule and virtual-address size of
/// <see cref="Arm64PagingFormat"/>, little-endian descriptors only. Table pages are cached whole in a bounded LRU, as
/// the x86-64 walker does.
/// </summary>
/// <remarks>
/// <para>
/// Descriptor bits [1:0] (Linux arch/arm64/include/asm/pgtable-hwdef.h, PMD_TYPE_* and PTE_TYPE_*): 11 is a table,
/// or a page at the last level; 01 is a block where the granule allows one (<see cref="Arm64PagingFormat.BlockAllowed"/>)
/// and invalid elsewhere; x0 is invalid. The contiguous hint (bit 52) is ignored: it only lets the TLB cache a run
/// of entries as one, and every entry of the run still holds its own output address (the kernel writes each one,
/// arch/arm64/mm/mmu.c alloc_init_cont_pte), so translating entry by entry gives the same result.
/// </para>
/// <para>
/// The two halves of the address space have separate roots (TTBR0 for the user half, TTBR1 for the kernel half).
/// When <c>kernelRoot</c> is given, an address of the upper half is always walked from it, whatever root the caller
/// passes, as the MMU does; a user root (a process's <c>mm->pgd</c>) then only serves the lower half. Walks are
/// bounded by the number of levels, so corrupt tables cannot make one loop.
/// </para>
/// </remarks>
internal sealed class Arm64PageTable : IPageTable
{
    /// <summary>Descriptor bits [1:0] of a table (or of a page at the last level).</summary>
    private const ulong TypeTable = 3;

    /// <summary>Descriptor bits [1:0] of a block.</summary>
    private const ulong TypeBlock = 1;

    /// <summary>AP[1] (bit 6), Linux's PTE_USER: EL0 may access the page.</summary>
    private const ulong UserBit = 1UL << 6;

    /// <summary>AP[2] (bit 7), Linux's PTE_RDONLY: no write access at any level.</summary>
    private const ulong ReadOnlyBit = 1UL << 7;

    /// <summary>DBM (bit 51), Linux's PTE_WRITE (pgtable-prot.h): writable, clean until the first write.</summary>
    private const ulong DirtyBitModifier = 1UL << 51;

    /// <summary>PXN (bit 53), Linux's PTE_PXN: no instruction fetch at EL1.</summary>
    private const ulong PrivilegedExecuteNever = 1UL << 53;

    /// <summary>PXNTable (bit 59) of a table descriptor, Linux's PMD_TABLE_PXN.</summary>
    private const ulong PxnTable = 1UL << 59;

    /// <summary>APTable[0] (bit 61) of a table descriptor: no EL0 access below.</summary>
    private const ulong ApTableNoUser = 1UL << 61;

    /// <summary>APTable[1] (bit 62) of a table descriptor: no write access below.</summary>
    private const ulong ApTableReadOnly = 1UL << 62;

    // Bits [51:0] of a TTBR or table address; the ASID sits above them in a TTBR value.
    private const ulong PhysicalMask = 0x000f_ffff_ffff_ffffUL;

    private static readonly string[] s_names = ["pgd", "p4d", "pud", "pmd", "pte"];

    private readonly PageTableReader _tables;
    private readonly string[] _levelNames;

    public Arm64PageTable(IPhysicalSource source, Arm64PagingFormat format, ulong? kernelRoot, int cachedTables)
    {
        Format = format;
        KernelRoot = kernelRoot;
        _tables = new PageTableReader(source, cachedTables);

        // Linux folds the missing middle levels: 3 levels are pgd, pmd, pte; 2 levels are pgd, pte
        // (include/asm-generic/pgtable-nopud.h, pgtable-nopmd.h).
        _levelNames = ["pgd", .. s_names[(s_names.Length - format.Levels + 1)..]];
    }

    /// <summary>The geometry walked.</summary>
    public Arm64PagingFormat Format { get; }

    /// <summary>The physical address of the kernel half's top table (TTBR1, <c>swapper_pg_dir</c>), or null.</summary>
    public ulong? KernelRoot { get; }

    /// <inheritdoc/>
    public PagingMode Mode => PagingMode.Arm64;

    /// <inheritdoc/>
    public int Levels => Format.Levels;

    /// <inheritdoc/>
    public int VirtualAddressBits => Format.VirtualAddressBits;

    /// <inheritdoc/>
    public CacheStatistics Statistics => _tables.Statistics;

    /// <summary>The kernel name of level <paramref name="level"/> (0 = top).</summary>
    public string LevelName(int level) => _levelNames[level];

    /// <inheritdoc/>
    public void FlushCache() => _tables.Clear();

    /// <summary>
    /// Enumerates the leaves (pages and blocks) whose first address lies in [<paramref name="first"/>,
    /// <paramref name="last"/>] (inclusive, so that a range may end at 2^64 - 1), in ascending virtual-address order:
    /// the lower half from <paramref name="root"/>, then the upper half, sign-extended, from <see cref="KernelRoot"/>
    /// when one is known (as <see cref="RootFor"/> chooses). Lazy: tables are read as the enumeration reaches them,
    /// and not kept in the translation cache, so a whole-table walk does not evict the tables hot reads need.
    /// </summary>
    /// <remarks>
    /// <para>
    /// Bounded for corrupt tables as the x86 walkers are: invalid descriptors (and 01 at the last level, reserved) are
    /// skipped; a table that cannot be read is skipped with everything below it; a table descriptor pointing at a
    /// table already on the current path is skipped (Linux never maps a table into itself); and descending into more
    /// than <paramref name="maxTables"/> tables in all (the roots included) throws <see cref="CorruptImageException"/>.
    /// A leaf whose output address is outside the image is still reported: the table says it is mapped.
    /// </para>
    /// <para>
    /// The rights are the stage-1 permissions of the EL1&amp;0 regime (Arm ARM, VMSAv8-64 "Memory access control"), read
    /// as Linux reads them (arch/arm64/include/asm/pgtable-hwdef.h, pgtable.h): writable when AP[2] is clear or DBM is
    /// set, executable by the kernel when PXN is clear (and the page is not writable at EL0), user when AP[1] is set;
    /// each restricted by the hierarchical attributes of every table descriptor above (APTable, PXNTable).
    /// </para>
    /// </remarks>
    public IEnumerable<PageMapping> EnumerateMappings(ulong root, ulong first, ulong last, int maxTables)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxTables);
        if (first > last)
        {
            yield break;
        }

        ulong lowerEnd = (1UL << Format.VirtualAddressBits) - 1;
        ulong upperBase = ulong.MaxValue << Format.VirtualAddressBits;
        var budget = new TableWalkBudget(root, maxTables);
        if (first <= lowerEnd)
        {
            foreach (var m in EnumerateHalf(root, 0, first, Math.Min(last, lowerEnd), budget))
            {
                yield return m;
            }
        }

        if (last >= upperBase)
        {
            foreach (var m in EnumerateHalf(root, upperBase, Math.Max(first, upperBase), last, budget))
            {
                yield return m;
            }
        }
    }

    /// <summary>
    /// Decodes a swap PTE in the layout of Linux 5.19 and later (type from bit 3); the Linux layer picks the layout by
    /// release (<c>SwapEntryFormat</c>).
    /// </summary>
    public bool TryDecodeSwapEntry(ulong entry, out int type, out ulong offset)
    {
        bool swap = Arm64SwapEntry.IsSwapEntry(entry);
        type = swap ? Arm64SwapEntry.Type(entry) : 0;
        offset = swap ? Arm64SwapEntry.Offset(entry) : 0;
        return swap;
    }

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

    /// <summary>The top table used for <paramref name="va"/> when the caller passes <paramref name="root"/>.</summary>
    public ulong RootFor(ulong root, ulong va)
    {
        ulong chosen = KernelRoot is { } k && Arm64PagingFormat.IsUpperHalf(va) ? k : root;

        // A top table smaller than a granule is aligned to its own size (Arm ARM D8.2, TTBR BADDR).
        return chosen & PhysicalMask & ~(((ulong)Format.TopEntries * 8) - 1);
    }

    /// <summary>
    /// The walk of one half: <paramref name="halfBase"/> is the address of the top table's entry 0 (0 for TTBR0, all
    /// ones above VA_BITS for TTBR1), whose top table <see cref="RootFor"/> chooses.
    /// </summary>
    private IEnumerable<PageMapping> EnumerateHalf(ulong root, ulong halfBase, ulong first, ulong last, TableWalkBudget budget)
    {
        int levels = Levels;
        var tables = new ulong[levels][];
        var tableAddresses = new ulong[levels];
        var next = new int[levels];
        var baseVa = new ulong[levels];
        var readOnly = new bool[levels];
        var noUser = new bool[levels];
        var noExecute = new bool[levels];

        ulong rootTable = RootFor(root, halfBase);
        budget.Descend();

        var top = _tables.Read(rootTable, Format.TopEntries, cache: false);
        if (top is null)
        {
            yield break;
        }

        tables[0] = top;
        tableAddresses[0] = rootTable;
        baseVa[0] = halfBase;
        int level = 0;
        while (level >= 0)
        {
            int entriesHere = Format.Entries(level);
            if (next[level] == entriesHere)
            {
                level--;
                continue;
            }

            int index = next[level]++;
            int shift = Format.Shift(level);
            ulong size = 1UL << shift;
            ulong va = baseVa[level] + ((ulong)index << shift);
            if (va + (size - 1) < first)
            {
                continue;
            }

            if (va > last)
            {
                // Entries ascend: nothing further in this table can be in range.
                next[level] = entriesHere;
                continue;
            }

            ulong entry = tables[level][index];
            ulong type = entry & 3;
            bool lastLevel = level == levels - 1;
            bool leaf = lastLevel ? type == TypeTable : type == TypeBlock && Format.BlockAllowed(level);
            if (leaf)
            {
                if (va >= first)
                {
                    yield return Leaf(va, entry, shift, readOnly[level], noUser[level], noExecute[level]);
                }

                continue;
            }

            // Invalid (bit 0 clear), 01 at the last level (reserved) or where the granule allows no block: the MMU
            // faults on all of them, so nothing below is mapped.
            if (type != TypeTable || lastLevel)
            {
                continue;
            }

            ulong child = Format.OutputAddress(entry, Format.GranuleShift);
            if (Array.IndexOf(tableAddresses, child, 0, level + 1) >= 0)
            {
                continue;
            }

            budget.Descend();
            var entries = _tables.Read(child, Format.Entries(level + 1), cache: false);
            if (entries is null)
            {
                continue;
            }

            level++;
            tables[level] = entries;
            tableAddresses[level] = child;
            next[level] = 0;
            baseVa[level] = va;

            // Hierarchical attributes of a table descriptor (Arm ARM, VMSAv8-64 "Hierarchical permissions"; Linux sets
            // PMD_TABLE_PXN over non-executable mappings, arch/arm64/mm/mmu.c NO_EXEC_MAPPINGS): they only ever take
            // rights away from everything below, so each level adds its restrictions to those of the levels above.
            // They are applied as with TCR_EL1.HPD1 clear: VMCOREINFO does not record TCR_EL1.
            readOnly[level] = readOnly[level - 1] || (entry & ApTableReadOnly) != 0;
            noUser[level] = noUser[level - 1] || (entry & ApTableNoUser) != 0;
            noExecute[level] = noExecute[level - 1] || (entry & PxnTable) != 0;
        }
    }

    /// <summary>A page or block descriptor as a mapping, its rights restricted by the tables above it.</summary>
    private PageMapping Leaf(ulong va, ulong entry, int shift, bool readOnly, bool noUser, bool noExecute)
    {
        // AP[2] (PTE_RDONLY) is what the MMU checks now. DBM (PTE_WRITE) marks a writable page that is still clean:
        // the MMU (FEAT_HAFDBS) or Linux's fault handler clears AP[2] on the first write, so Linux's pte_write()
        // (arch/arm64/include/asm/pgtable.h) tests PTE_WRITE alone, and a read-only mapping has neither bit
        // (PAGE_KERNEL_RO, pgtable-prot.h). APTable[1] above overrides both.
        bool hardwareWritable = !readOnly && (entry & ReadOnlyBit) == 0;
        bool writable = hardwareWritable || (!readOnly && (entry & DirtyBitModifier) != 0);
        bool user = !noUser && (entry & UserBit) != 0;

        // A region writable at EL0 is never executable at EL1, whatever PXN says (Arm ARM, VMSAv8-64 "Instruction
        // access permissions": stage 1 EL0 write permission implies PXN).
        bool executable = !noExecute && (entry & PrivilegedExecuteNever) == 0 && !(user && hardwareWritable);
        return new PageMapping(va, Format.OutputAddress(entry, shift), 1UL << shift, writable, executable, user, entry);
    }

    private bool Walk(ulong root, ulong va, List<TranslationStep>? steps, out ulong pa, out ulong pageSize, out TranslationFault? fault)
    {
        pa = 0;
        pageSize = 0;
        if (!Format.IsCanonical(va))
        {
            fault = new TranslationFault(va, TranslationFaultKind.NonCanonical, null, 0, 0, 0);
            return false;
        }

        ulong table = RootFor(root, va);
        for (int level = 0; level < Levels; level++)
        {
            int index = Format.Index(va, level);
            var entries = _tables.Read(table, Format.Entries(level));
            if (entries is null)
            {
                fault = new TranslationFault(va, TranslationFaultKind.TableUnreadable, _levelNames[level], index, table, 0);
                return false;
            }

            ulong entry = entries[index];
            bool last = level == Levels - 1;
            ulong type = entry & 3;
            bool block = type == TypeBlock && Format.BlockAllowed(level);
            bool leaf = last ? type == TypeTable : block;
            steps?.Add(new TranslationStep(_levelNames[level], table, index, entry, leaf));
            if (leaf)
            {
                int shift = Format.Shift(level);
                pageSize = 1UL << shift;
                pa = Format.OutputAddress(entry, shift) | (va & (pageSize - 1));
                fault = null;
                return true;
            }

            if (type != TypeTable || last)
            {
                // Invalid (bit 0 clear), or 01 where no block is allowed: the MMU faults on both.
                var kind = last && Arm64SwapEntry.IsSwapEntry(entry) ? TranslationFaultKind.SwapEntry : TranslationFaultKind.NotPresent;
                fault = new TranslationFault(va, kind, _levelNames[level], index, table, entry);
                return false;
            }

            table = Format.OutputAddress(entry, Format.GranuleShift);
        }

        fault = new TranslationFault(va, TranslationFaultKind.NoMethod, null, 0, 0, 0);
        return false;
    }
}
