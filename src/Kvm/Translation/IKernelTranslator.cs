namespace Kvm.Translation;

/// <summary>
/// Translates kernel virtual addresses by a method of its own, where the x86-64 walk from one root
/// (<see cref="X64.X64PageTable"/>) does not apply: a FreeBSD minidump's copy of the kernel's page-table entries.
/// Thread-safe for translation.
/// </summary>
internal interface IKernelTranslator
{
    /// <summary>The dumped kernel's paging mode.</summary>
    PagingMode Mode { get; }

    /// <summary>The root the method starts from (a page-table physical address), or 0 when it has none.</summary>
    ulong Root { get; }

    /// <summary>Counters of the translator's own caches, if any.</summary>
    IReadOnlyList<CacheStatistics> CacheStatistics { get; }

    /// <summary>Translates <paramref name="virtualAddress"/>; on failure <paramref name="fault"/> says where the walk stopped.</summary>
    bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong pageSize, out TranslationFault? fault);

    /// <summary>Translates and records every entry read.</summary>
    TranslationWalk Describe(ulong virtualAddress);

    /// <summary>Drops cached tables.</summary>
    void FlushCache();
}
