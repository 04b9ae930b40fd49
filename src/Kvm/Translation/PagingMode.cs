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
}
