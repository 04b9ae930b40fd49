using Kvm.Images;
using Kvm.Translation.Arm64;

namespace Kvm.Memory;

/// <summary>
/// Finds the layout of a Linux arm64 kernel from its VMCOREINFO (arch/arm64/kernel/crash_core.c,
/// <c>arch_crash_save_vmcoreinfo</c>, Linux 4.12+; formats.md §5.6): the granule from <c>PAGESIZE</c>, the
/// virtual-address size from <c>NUMBER(TCR_EL1_T1SZ)</c> (5.9+) or <c>NUMBER(VA_BITS)</c>, the page-table root
/// <c>SYMBOL(swapper_pg_dir) - NUMBER(kimage_voffset)</c>, the linear map from <c>NUMBER(PHYS_OFFSET)</c> and
/// <c>VA_BITS</c>, and the KASLR displacement from <c>KERNELOFFSET</c>. Each candidate is verified by translating
/// <c>swapper_pg_dir</c> itself before it is accepted.
/// </summary>
/// <remarks>
/// Without VMCOREINFO there is no architectural way in: an arm64 dump carries no TTBR1 (QEMU's ELF notes hold
/// NT_PRSTATUS general registers only, and kdump's PRSTATUS likewise), so the kernel's own VMCOREINFO page, found by
/// <see cref="LayoutDetector.ScanForVmcoreInfo"/>, is the fallback, as it is for x86-64 raw images. Kernels before
/// 4.12 (no <c>kimage_voffset</c>) are not supported. Little-endian kernels only.
/// </remarks>
internal static class Arm64LayoutDetector
{
    /// <summary>EM_AARCH64.</summary>
    public const ushort EmAarch64 = 183;

    /// <summary>
    /// True when the image is an arm64 one: its ELF machine (or kdump utsname machine) says so, or, for formats that
    /// name no machine (raw, LiME), its VMCOREINFO has arm64's <c>NUMBER(kimage_voffset)</c>.
    /// </summary>
    public static bool Applies(DumpImage image, VmcoreInfo? info) =>
        image.ElfMachine == EmAarch64 || (image.ElfMachine == 0 && info?.GetNumber("kimage_voffset") is not null);

    /// <summary>The layout, or null when VMCOREINFO is missing or does not describe a kernel the tables confirm.</summary>
    public static KernelLayout? Detect(DumpImage image, VmcoreInfo? info)
    {
        if (info is null)
        {
            return null;
        }

        int granule = info.PageSize ?? image.PageSize ?? 0;
        long? vaBits = info.GetNumber("VA_BITS");
        long? t1sz = info.GetNumber("TCR_EL1_T1SZ");
        long? voffset = info.GetNumber("kimage_voffset");
        ulong? swapper = info.GetSymbol("swapper_pg_dir");
        if (granule is not (4096 or 16384 or 65536) || voffset is null || swapper is null || (vaBits is null && t1sz is null))
        {
            return null;
        }

        ulong kimageVoffset = unchecked((ulong)voffset.Value);
        ulong root = unchecked(swapper.Value - kimageVoffset);
        long physOffset = info.GetNumber("PHYS_OFFSET") ?? 0;
        var source = new ImagePhysicalSource(image);
        foreach (int bits in VirtualAddressBitsCandidates(granule, vaBits, t1sz))
        {
            var format = Arm64PagingFormat.Create((ulong)granule, bits);
            var table = new Arm64PageTable(source, format, root, 16);
            if (!table.TryTranslate(root, swapper.Value, out ulong pa, out _, out _) || pa != root)
            {
                continue;
            }

            return new KernelLayout
            {
                PagingMode = PagingMode.Arm64,
                GranuleSize = granule,
                VirtualAddressBits = bits,
                PageTableRoot = root,
                KimageVoffset = kimageVoffset,
                KaslrOffset = unchecked((long)(info.KernelOffset ?? 0)),
                KaslrOffsetKnown = info.KernelOffset is not null,
                PhysBase = physOffset,
                PageOffsetBase = LinearMapBase(table, root, (int)(vaBits ?? bits), physOffset),
                VmemmapStart = VmemmapStart(info, granule, (int)(vaBits ?? bits)),
                Method = "vmcoreinfo",
            };
        }

        return null;
    }

    /// <summary>
    /// The sizes to try, best first. With 4 and 16 KiB granules the size in use is <c>64 - TCR_EL1.T1SZ</c>: a kernel
    /// built for 52 bits on hardware without FEAT_LPA2 folds a level and runs with 48 (or 47) bits (0dd4f60a2c76,
    /// v6.9). With 64 KiB pages the kernel keeps <c>swapper_pg_dir</c> laid out for the configured <c>VA_BITS</c> and
    /// offsets TTBR1 instead (c812026c54cf, v5.4), so the configured size walks it. Both are tried, as drgn does the
    /// first.
    /// </summary>
    private static IEnumerable<int> VirtualAddressBitsCandidates(int granule, long? vaBits, long? t1sz)
    {
        var list = new List<int>(2);
        int? actual = t1sz is >= 12 and <= 48 ? 64 - (int)t1sz.Value : null;
        int? configured = vaBits is >= 36 and <= 52 ? (int)vaBits.Value : null;
        int shift = granule == 4096 ? 12 : granule == 16384 ? 14 : 16;
        foreach (int? bits in granule == 65536 ? [configured, actual] : new[] { actual, configured })
        {
            if (bits is { } b && b >= shift + shift - 3 && !list.Contains(b))
            {
                list.Add(b);
            }
        }

        return list;
    }

    /// <summary>
    /// <c>VMEMMAP_START</c>: VMCOREINFO's <c>NUMBER(VMEMMAP_START)</c> (5.x+), else as arch/arm64/include/asm/memory.h
    /// (5.12+) defines it, <c>-(1 &lt;&lt; (VA_BITS - VMEMMAP_SHIFT))</c> with <c>VMEMMAP_SHIFT = PAGE_SHIFT -
    /// STRUCT_PAGE_MAX_SHIFT</c> and a 64-byte <c>struct page</c> (STRUCT_PAGE_MAX_SHIFT 6).
    /// </summary>
    private static ulong VmemmapStart(VmcoreInfo info, int granule, int vaBits)
    {
        if (info.GetNumber("VMEMMAP_START") is { } start)
        {
            return unchecked((ulong)start);
        }

        int pageShift = granule == 4096 ? 12 : granule == 16384 ? 14 : 16;
        return ulong.MaxValue << (vaBits - (pageShift - 6));
    }

    /// <summary>
    /// <c>PAGE_OFFSET</c>, the linear map's base, for which <c>va = pa - PHYS_OFFSET + PAGE_OFFSET</c>. Since Linux
    /// 5.4 (14c127c957c1, "arm64: mm: Flip kernel VA space") it is <c>-(1 &lt;&lt; VA_BITS)</c>, the bottom of the
    /// kernel half; before, <c>-(1 &lt;&lt; (VA_BITS - 1))</c>, its top half. The one under which the kernel's own
    /// root table reads back at its physical address is chosen; null when neither does.
    /// </summary>
    private static ulong? LinearMapBase(Arm64PageTable table, ulong root, int vaBits, long physOffset)
    {
        ulong[] candidates = [ulong.MaxValue << vaBits, ulong.MaxValue << (vaBits - 1)];
        foreach (ulong pageOffset in candidates)
        {
            ulong va = unchecked(root - (ulong)physOffset + pageOffset);
            if (table.TryTranslate(root, va, out ulong pa, out _, out _) && pa == root)
            {
                return pageOffset;
            }
        }

        return null;
    }
}
