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

    /// <summary>32-bit x86 paging without PAE: two levels of 32-bit entries, 4 KiB and 4 MiB pages.</summary>
    X86TwoLevel,

    /// <summary>32-bit x86 paging with PAE: three levels of 64-bit entries, 4 KiB and 2 MiB pages.</summary>
    X86Pae,

    /// <summary>AArch64 stage-1 translation, four levels of 64-bit descriptors (4 KiB or 16 KiB granule).</summary>
    Arm64,
}
