namespace Kvm;

/// <summary>Why a memory access failed.</summary>
public enum MemoryFaultReason
{
    /// <summary>The virtual address has no valid translation (a page-table entry is not present, or the address is non-canonical).</summary>
    NotMapped,

    /// <summary>The physical page exists in the machine but the dump excluded it (for example <c>makedumpfile -d 31</c>).</summary>
    Excluded,

    /// <summary>The physical address is not covered by the image (a hole, or beyond the memory the dump holds).</summary>
    NotInImage,

    /// <summary>The image file ends before the data it describes (a truncated dump).</summary>
    Truncated,

    /// <summary>The page was swapped out and no swap image holds it.</summary>
    SwappedOut,
}
