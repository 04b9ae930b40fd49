namespace Kvm.Translation.X64;

/// <summary>
/// Decodes an x86-64 swap PTE. Since Linux 4.20 (L1TF hardening, arch/x86/include/asm/pgtable_64.h) the type is in
/// bits 59-63 and the offset is stored inverted in bits 9-58: <c>type = pte &gt;&gt; 59</c>,
/// <c>offset = ~pte &lt;&lt; 5 &gt;&gt; 14</c>.
/// </summary>
internal static class X64SwapEntry
{
    private const int TypeBits = 5;
    private const int OffsetShift = 9 + TypeBits;

    /// <summary>True for a non-present entry that holds a swap entry (not zero, not PROT_NONE).</summary>
    public static bool IsSwapEntry(ulong pte) => pte != 0 && (pte & 1) == 0 && (pte & 0x100) == 0;

    public static int Type(ulong pte) => (int)(pte >> (64 - TypeBits));

    public static ulong Offset(ulong pte) => ~pte << TypeBits >> OffsetShift;
}
