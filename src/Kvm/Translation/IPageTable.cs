namespace Kvm.Translation;

/// <summary>
/// A page-table walker of one paging mode, kernel-agnostic: it knows the hardware format (and, for swap entries, the
/// software format Linux stores in non-present PTEs) but nothing of where a kernel keeps its tables. The memory layer
/// picks one per <see cref="PagingMode"/>; the walkers above read through it.
/// </summary>
internal interface IPageTable
{
    /// <summary>The paging mode walked.</summary>
    PagingMode Mode { get; }

    /// <summary>The number of table levels (2 to 5).</summary>
    int Levels { get; }

    /// <summary>The size of the virtual address space in bits (32, 48 or 57 on x86; 36 to 52 per half on AArch64).</summary>
    int VirtualAddressBits { get; }

    /// <summary>The counters of the table cache.</summary>
    CacheStatistics Statistics { get; }

    /// <summary>Drops cached tables.</summary>
    void FlushCache();

    /// <summary>Translates without recording steps; the hot path.</summary>
    bool TryTranslate(ulong root, ulong va, out ulong pa, out ulong pageSize, out TranslationFault? fault);

    /// <summary>Translates and records every level visited.</summary>
    TranslationWalk Describe(ulong root, ulong va);

    /// <summary>
    /// Enumerates the present leaves under <paramref name="root"/> whose first address lies in
    /// [<paramref name="first"/>, <paramref name="last"/>], ascending, descending into at most
    /// <paramref name="maxTables"/> tables (more throws <see cref="CorruptImageException"/>).
    /// </summary>
    IEnumerable<PageMapping> EnumerateMappings(ulong root, ulong first, ulong last, int maxTables);

    /// <summary>Decodes a non-present leaf entry that holds a swap entry: the swap area (type) and the page's offset in it.</summary>
    bool TryDecodeSwapEntry(ulong entry, out int type, out ulong offset);
}
