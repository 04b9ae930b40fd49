namespace Kvm.Translation.X86;

/// <summary>
/// Decodes the swap PTEs of 32-bit x86 Linux (6.0+, both formats as in 6.1).
/// </summary>
/// <remarks>
/// <para>
/// Without PAE (arch/x86/include/asm/pgtable-2level.h): the 32-bit PTE is the swap entry itself, with the type in
/// bits 1..5 and the offset from bit 9 (<c>SWP_OFFSET_SHIFT = _PAGE_BIT_PROTNONE + 1</c>); bit 7 is the exclusive
/// marker (<c>_PAGE_SWP_EXCLUSIVE</c>, 6.0+) and bit 8 must be clear (it marks PROT_NONE).
/// </para>
/// <para>
/// With PAE (pgtable-3level.h, the L1TF layout since 4.19): as on x86-64, the type is in bits 59..63 and the offset
/// is stored inverted from bit 9 (<c>__pteval_swp_offset = ~pte &lt;&lt; 5 &gt;&gt; 14</c>), then passed through the 32-bit
/// <c>swp_entry_t</c> (<c>type | offset &lt;&lt; 5</c>), which keeps 27 bits of offset.
/// </para>
/// </remarks>
internal static class X86SwapEntry
{
    private const int TypeBits = 5;
    private const ulong ProtNone = 0x100;

    /// <summary>True for a non-present entry that holds a swap entry (not zero, not PROT_NONE).</summary>
    public static bool IsSwapEntry(ulong pte, bool pae)
    {
        ulong value = pae ? pte : pte & uint.MaxValue;
        return value != 0 && (value & 1) == 0 && (value & ProtNone) == 0;
    }

    /// <summary>The swap area index (<c>__swp_type</c>).</summary>
    public static int Type(ulong pte, bool pae) => pae
        ? (int)(pte >> (64 - TypeBits))
        : (int)((pte >> 1) & ((1U << TypeBits) - 1));

    /// <summary>The page's offset in the area (<c>__swp_offset</c>).</summary>
    public static ulong Offset(ulong pte, bool pae) => pae
        ? (uint)(~pte << TypeBits >> (9 + TypeBits)) & ((1UL << (32 - TypeBits)) - 1)
        : (pte & uint.MaxValue) >> 9;

    /// <summary>The PTE Linux writes for (type, offset): the inverse of <see cref="Type"/> and <see cref="Offset"/>.</summary>
    public static ulong Encode(int type, ulong offset, bool pae) => pae
        ? (~offset << (9 + TypeBits) >> TypeBits) | ((ulong)type << (64 - TypeBits))
        : (((ulong)type & 31) << 1) | ((offset << 9) & uint.MaxValue);
}
