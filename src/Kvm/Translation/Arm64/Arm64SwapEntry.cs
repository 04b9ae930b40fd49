namespace Kvm.Translation.Arm64;

/// <summary>
/// Decodes a Linux arm64 swap PTE (arch/arm64/include/asm/pgtable.h, <c>__SWP_*</c>). Linux 6.1 and 6.2 keep
/// bits [1:0] zero (not valid), the type in bits [7:2] (<c>__SWP_TYPE_SHIFT</c> 2, <c>__SWP_TYPE_BITS</c> 6), the
/// offset in bits [57:8] (<c>__SWP_OFFSET_BITS</c> 50) and bit 58 (<c>PTE_PROT_NONE</c>) zero. Linux 6.3 took bit 2
/// for the exclusive marker (__HAVE_ARCH_PTE_SWP_EXCLUSIVE for arm64), leaving the type 5 bits
/// in [7:3]; the offset did not move. <see cref="TypeShift"/> picks the layout from the kernel release.
/// </summary>
internal static class Arm64SwapEntry
{
    private const int OffsetShift = 8;
    private const int OffsetBits = 50;
    private const ulong ProtNone = 1UL << 58;

    /// <summary>True for an invalid entry that holds a swap entry (not zero, not PROT_NONE).</summary>
    public static bool IsSwapEntry(ulong pte) => pte != 0 && (pte & 1) == 0 && (pte & ProtNone) == 0;

    /// <summary>The bit where the type starts: 2 up to Linux 6.2, 3 from 6.3 (bit 2 is then the exclusive marker).</summary>
    public static int TypeShift(Version? release) => release is not null && release >= new Version(6, 3) ? 3 : 2;

    /// <summary>The swap area index (<c>swp_type</c>).</summary>
    public static int Type(ulong pte, int typeShift = 2) => (int)((pte >> typeShift) & ((1UL << (OffsetShift - typeShift)) - 1));

    /// <summary>The page index within the area (<c>swp_offset</c>).</summary>
    public static ulong Offset(ulong pte) => (pte >> OffsetShift) & ((1UL << OffsetBits) - 1);
}
