using Kvm.Images.FreeBsd;

namespace Kvm.Translation.FreeBsd;

/// <summary>
/// arm64 minidump translation (lib/libkvm kvm_minidump_aarch64.c, FreeBSD 14): the direct map first —
/// [dmapbase, dmapend) maps physical memory from <c>dmapphys</c> — then, at or above <c>kernbase</c>, one L3
/// descriptor per page in the page map, valid when its low two bits are 3 (<c>L3_PAGE</c>); L1 and L2 blocks appear
/// there as the L3 pages the writer makes of them (sys/arm64/arm64/minidump_machdep.c). Pages are 4 KiB, or 16 KiB
/// when the v3 header's flags say so. The output address is the descriptor without <c>ATTR_MASK</c>
/// (0xfffc000000000fff, arm64/include/pte.h) and without the page offset bits.
/// </summary>
internal sealed class Arm64MinidumpTranslator(MinidumpImage image) : MinidumpTranslator(image)
{
    /// <summary>Descriptor bits that are attributes, not address (arm64/include/pte.h <c>ATTR_MASK</c>).</summary>
    public const ulong AttributeMask = 0xfffc000000000fff;

    /// <summary><c>L3_PAGE</c>: the low two bits of a valid page descriptor.</summary>
    public const ulong L3Page = 3;

    public override PagingMode Mode => PagingMode.Arm64;

    /// <summary>The physical page a valid L3 descriptor maps.</summary>
    public ulong FrameOf(ulong descriptor) => descriptor & ~AttributeMask & ~PageMask;

    protected override bool Walk(ulong va, List<TranslationStep>? steps, out ulong pa, out ulong pageSize, out TranslationFault? fault)
    {
        pa = 0;
        pageSize = 0;
        if (TryDirectMap(va, out pa))
        {
            pageSize = (ulong)PageSize;
            fault = null;
            return true;
        }

        if (va < Header.KernelBase)
        {
            fault = NotDumped(va);
            return false;
        }

        long index = (long)((va - Header.KernelBase) / (ulong)PageSize);
        if (!TryEntry(va, index, "l3", steps, e => (e & 3) == L3Page, out ulong l3, out fault))
        {
            return false;
        }

        if ((l3 & 3) != L3Page)
        {
            fault = NotPresent(va, "l3", index, 0, l3);
            return false;
        }

        pa = FrameOf(l3) | (va & PageMask);
        pageSize = (ulong)PageSize;
        return true;
    }
}
