namespace Kvm;

/// <summary>
/// An address could not be read or written: it is not mapped, its page is not in the dump (excluded or a hole),
/// or the page table walk failed. Carries the address, its space and, where a walk failed, the fault.
/// </summary>
public sealed class MemoryFaultException : KvmException
{
    /// <summary>Creates a fault for <paramref name="address"/>.</summary>
    public MemoryFaultException(ulong address, AddressSpace space, MemoryFaultReason reason, string message, TranslationFault? fault = null)
        : base(KvmErrorCode.MemoryFault, message)
    {
        Address = address;
        Space = space;
        Reason = reason;
        Fault = fault;
    }

    /// <summary>The first address that could not be accessed.</summary>
    public ulong Address { get; }

    /// <summary>The space of <see cref="Address"/>.</summary>
    public AddressSpace Space { get; }

    /// <summary>Why the access failed.</summary>
    public MemoryFaultReason Reason { get; }

    /// <summary>The page-table fault, when translation failed.</summary>
    public TranslationFault? Fault { get; }
}
