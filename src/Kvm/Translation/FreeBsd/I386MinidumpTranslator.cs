using Kvm.Images.FreeBsd;

namespace Kvm.Translation.FreeBsd;

/// <summary>
/// i386 minidump translation (lib/libkvm kvm_minidump_i386.c): i386 has no direct map, so only addresses at or above
/// <c>kernbase</c> translate, through the PTE array (one entry per 4 KiB page: 64-bit PAE entries with frame bits
/// 12-51, or 32-bit ones with frame bits 12-31). 2 and 4 MiB pages appear there as the 4 KiB PTEs the writer makes
/// of them (sys/i386/i386/minidump_machdep_base.c).
/// </summary>
internal sealed class I386MinidumpTranslator(MinidumpImage image) : MinidumpTranslator(image)
{
    /// <summary>PG_V.</summary>
    public const ulong Valid = 1;

    public override PagingMode Mode => Header.Pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel;

    /// <summary>The frame bits of a PTE: PG_FRAME_PAE or PG_FRAME.</summary>
    public ulong FrameMask => Header.Pae ? 0x000ffffffffff000UL : 0xfffff000UL;

    protected override bool Walk(ulong va, List<TranslationStep>? steps, out ulong pa, out ulong pageSize, out TranslationFault? fault)
    {
        pa = 0;
        pageSize = 0;
        if (va < Header.KernelBase || va > uint.MaxValue)
        {
            fault = NotDumped(va);
            return false;
        }

        long index = (long)((va - Header.KernelBase) >> 12);
        if (!TryEntry(va, index, "pte", steps, e => (e & Valid) != 0, out ulong pte, out fault))
        {
            return false;
        }

        if ((pte & Valid) == 0)
        {
            fault = NotPresent(va, "pte", index, 0, pte);
            return false;
        }

        pa = (pte & FrameMask) | (va & 0xfff);
        pageSize = 4096;
        return true;
    }
}
