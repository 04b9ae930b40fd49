namespace Kvm.Translation.Arm64;

/// <summary>
/// Decodes a Linux arm64 swap PTE (arch/arm64/include/asm/pgtable.h, <c>__SWP_*</c>). Since Linux 5.19
/// ("arm64/pgtable: support __HAVE_ARCH_PTE_SWP_EXCLUSIVE"), as in 6.1: bits [1:0] zero (not valid),
/// bit 2 the exclusive marker (<c>PTE_SWP_EXCLUSIVE</c>), the type in bits [7:3] (<c>__SWP_TYPE_SHIFT</c> 3,
/// <c>__SWP_TYPE_BITS</c> 5), the offset in bits [57:8] (<c>__SWP_OFFSET_BITS</c> 50) and bit 58
/// (<c>PTE_PROT_NONE</c>) zero. Before 5.19 the type had 6 bits from bit 2. <see cref="TypeShift"/> picks the layout
/// from the kernel release; a Debian 6.1 arm64 dump confirms the 5.19 layout (PTE 0x304 is area 0, slot 3).
/// </summary>
internal static class Arm64SwapEntry
{
    private const int OffsetShift = 8;
    private const int OffsetBits = 50;
    private const ulong ProtNone = 1UL << 58;

    /// <summary>True for an invalid entry that holds a swap entry (not zero, not PROT_NONE).</summary>
    public static bool IsSwapEntry(ulong pte) => pte != 0 && (pte & 1) == 0 && (pte & ProtNone) == 0;

    /// <summary>The bit where the type starts: 3 from Linux 5.19 (bit 2 is the exclusive marker), 2 before; 3 when the release is unknown.</summary>
    public static int TypeShift(Version? release) => release is not null && release < new Version(5, 19) ? 2 : 3;

    /// <summary>The swap area index (<c>swp_type</c>).</summary>
    public static int Type(ulong pte, int typeShift = 3) => (int)((pte >> typeShift) & ((1UL << (OffsetShift - typeShift)) - 1));

    /// <summary>The page index within the area (<c>swp_offset</c>).</summary>
    public static ulong Offset(ulong pte) => (pte >> OffsetShift) & ((1UL << OffsetBits) - 1);
}
