namespace Kvm;

/// <summary>The paging mode used to translate kernel virtual addresses.</summary>
public enum PagingMode
{
    /// <summary>Not known (no page-table root could be found).</summary>
    Unknown,

    /// <summary>x86-64 4-level paging (48-bit virtual addresses).</summary>
    X64FourLevel,

    /// <summary>x86-64 5-level paging (LA57, 57-bit virtual addresses).</summary>
    X64FiveLevel,

    /// <summary>
    /// AArch64 stage-1 translation (VMSAv8-64): 4, 16 or 64 KiB granule, 36 to 52 virtual-address bits, 2 to 5
    /// levels; <see cref="KernelLayout.GranuleSize"/> and <see cref="KernelLayout.VirtualAddressBits"/> say which.
    /// </summary>
    Arm64,
}
