namespace Kvm;

/// <summary>How an address was translated, level by level; the data behind <c>kmem vtop</c>.</summary>
public sealed class TranslationWalk
{
    /// <summary>Creates a walk result.</summary>
    public TranslationWalk(ulong virtualAddress, string method, IReadOnlyList<TranslationStep> steps, ulong? physicalAddress, ulong pageSize, TranslationFault? fault)
    {
        VirtualAddress = virtualAddress;
        Method = method;
        Steps = steps;
        PhysicalAddress = physicalAddress;
        PageSize = pageSize;
        Fault = fault;
    }

    /// <summary>The translated address.</summary>
    public ulong VirtualAddress { get; }

    /// <summary>The method that translated it: <c>pgtable</c> (a page-table walk) or <c>segment</c> (an image's virtual segment).</summary>
    public string Method { get; }

    /// <summary>The table entries visited, top level first.</summary>
    public IReadOnlyList<TranslationStep> Steps { get; }

    /// <summary>The physical address, or null when the walk failed.</summary>
    public ulong? PhysicalAddress { get; }

    /// <summary>The size of the mapping page or block (x86-64: 4 KiB, 2 MiB or 1 GiB; AArch64: the granule or a block), or 0 when the walk failed.</summary>
    public ulong PageSize { get; }

    /// <summary>The fault, or null when the walk succeeded.</summary>
    public TranslationFault? Fault { get; }

    /// <summary>True when translation succeeded.</summary>
    public bool Succeeded => PhysicalAddress.HasValue;
}
