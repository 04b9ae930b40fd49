namespace Kvm.Translation;

/// <summary>
/// What the memory layer needs from an architecture's page-table walker: translate an address from a given
/// top-level table, or describe the walk level by level. Implementations are bounded (a fixed number of levels) and
/// never throw for a bad entry or an unreadable table: they report a <see cref="TranslationFault"/>.
/// </summary>
internal interface IPageTableWalker
{
    /// <summary>The paging mode the walker implements.</summary>
    PagingMode Mode { get; }

    /// <summary>Number of table levels walked.</summary>
    int Levels { get; }

    /// <summary>Counters of the walker's table cache.</summary>
    CacheStatistics Statistics { get; }

    /// <summary>Drops cached tables (after a write, or for the live kernel).</summary>
    void FlushCache();

    /// <summary>Translates without recording steps; the hot path.</summary>
    bool TryTranslate(ulong root, ulong va, out ulong pa, out ulong pageSize, out TranslationFault? fault);

    /// <summary>Translates and records every level visited.</summary>
    TranslationWalk Describe(ulong root, ulong va);
}
