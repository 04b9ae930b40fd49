namespace Kvm;

/// <summary>The address space an address belongs to.</summary>
public enum AddressSpace
{
    /// <summary>A kernel virtual address.</summary>
    KernelVirtual,

    /// <summary>A physical address.</summary>
    Physical,

    /// <summary>A user virtual address, translated through a process's page tables.</summary>
    UserVirtual,
}
