using Kvm.Images.FreeBsd;

namespace Kvm.Translation.FreeBsd;

/// <summary>
/// What the three minidump translators share: the direct map (a fixed offset from physical memory) and the steps
/// and faults they report. A minidump translates without symbols: its page map is the kernel's page-table entries
/// for the kernel map, copied at dump time (lib/libkvm kvm_minidump_*.c <c>_*_minidump_vatop</c>).
/// </summary>
internal abstract class MinidumpTranslator : IKernelTranslator
{
    protected MinidumpTranslator(MinidumpImage image)
    {
        Image = image;
        Header = image.Header;
        PageSize = Header.PageSize;
        PageMask = (ulong)Header.PageSize - 1;
    }

    protected MinidumpImage Image { get; }

    protected MinidumpHeader Header { get; }

    protected int PageSize { get; }

    protected ulong PageMask { get; }

    public abstract PagingMode Mode { get; }

    public ulong Root => 0;

    public virtual IReadOnlyList<CacheStatistics> CacheStatistics => [];

    /// <summary>Creates the translator for the minidump's architecture.</summary>
    public static IKernelTranslator Create(MinidumpImage image, IPhysicalSource source, int cachedTables) => image.Header.Architecture switch
    {
        FreeBsdArchitecture.Amd64 => new Amd64MinidumpTranslator(image, source, cachedTables),
        FreeBsdArchitecture.Arm64 => new Arm64MinidumpTranslator(image),
        _ => new I386MinidumpTranslator(image),
    };

    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out ulong pageSize, out TranslationFault? fault) =>
        Walk(virtualAddress, null, out physicalAddress, out pageSize, out fault);

    public TranslationWalk Describe(ulong virtualAddress)
    {
        var steps = new List<TranslationStep>(2);
        bool ok = Walk(virtualAddress, steps, out ulong pa, out ulong pageSize, out var fault);
        string method = ok && steps.Count == 0 ? "direct map" : "minidump pmap";
        return new TranslationWalk(virtualAddress, method, steps, ok ? pa : null, ok ? pageSize : 0, fault);
    }

    public virtual void FlushCache()
    {
    }

    /// <summary>The walk; <paramref name="steps"/> is null on the hot path.</summary>
    protected abstract bool Walk(ulong va, List<TranslationStep>? steps, out ulong pa, out ulong pageSize, out TranslationFault? fault);

    /// <summary>The direct map: [dmapbase, dmapend) maps physical memory from dmapphys (0 but on arm64).</summary>
    protected bool TryDirectMap(ulong va, out ulong pa)
    {
        if (Header.DirectMapEnd > Header.DirectMapBase && va >= Header.DirectMapBase && va < Header.DirectMapEnd)
        {
            pa = va - Header.DirectMapBase + Header.DirectMapPhysical;
            return true;
        }

        pa = 0;
        return false;
    }

    /// <summary>The page-map entry for <paramref name="index"/>, recorded as a <c>pmap</c> step.</summary>
    protected bool TryEntry(ulong va, long index, string level, List<TranslationStep>? steps, Func<ulong, bool> isLeaf, out ulong entry, out TranslationFault? fault)
    {
        if (!Image.TryGetPageMapEntry(index, out entry))
        {
            // Beyond the page map: the kernel map ended there when the dump was taken.
            fault = new TranslationFault(va, TranslationFaultKind.NotDumped, level, 0, 0, 0);
            return false;
        }

        steps?.Add(new TranslationStep("pmap", 0, (int)Math.Min(index, int.MaxValue), entry, isLeaf(entry), Header.PageMapEntrySize));
        fault = null;
        return true;
    }

    protected static TranslationFault NotPresent(ulong va, string level, long index, ulong table, ulong entry) =>
        new(va, TranslationFaultKind.NotPresent, level, (int)Math.Min(index, int.MaxValue), table, entry);

    protected static TranslationFault NotDumped(ulong va) => new(va, TranslationFaultKind.NotDumped, null, 0, 0, 0);
}
