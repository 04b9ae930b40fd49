
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

    /// <summary>Not implemented for AArch64 yet: the kernel page walk (<c>kvm_walk_pages</c>) refuses arm64 images.</summary>
    /// <exception cref="KvmException">Always, with <see cref="KvmErrorCode.NotSupported"/>.</exception>
    public IEnumerable<PageMapping> EnumerateMappings(ulong root, ulong first, ulong last, int maxTables) =>
        throw new KvmException(KvmErrorCode.NotSupported, "enumerating AArch64 page tables is not implemented yet");

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
