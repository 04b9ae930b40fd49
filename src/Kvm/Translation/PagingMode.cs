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

    /// <summary>32-bit x86 paging without PAE: two levels of 1024 4-byte entries, 4 KiB and (PSE) 4 MiB pages.</summary>
    X86TwoLevel,

    /// <summary>32-bit x86 PAE paging: a 4-entry PDPT, then two levels of 512 8-byte entries; 4 KiB and 2 MiB pages, NX.</summary>
    X86Pae,

    /// <summary>
    /// AArch64 stage-1 translation (VMSAv8-64): 4, 16 or 64 KiB granule, 36 to 52 virtual-address bits, 2 to 5
    /// levels; <see cref="KernelLayout.GranuleSize"/> and <see cref="KernelLayout.VirtualAddressBits"/> say which.
    /// </summary>
    Arm64,
}
