using Kvm.Images;
using Kvm.Translation.X64;
using Kvm.Translation.X86;

namespace Kvm.Memory;

/// <summary>
/// Finds the layout of a 32-bit x86 Linux kernel (formats.md §5.7): the paging mode (PAE or 2-level), the page-table
/// root <c>swapper_pg_dir</c>, <c>PAGE_OFFSET</c> and a relocation of the kernel. On i386 the kernel image lies in the
/// direct map, so every kernel address below <c>high_memory</c> is <c>pa + PAGE_OFFSET</c> (arch/x86/include/asm/page_32.h
/// <c>__phys_addr_nodebug</c>); a relocated (CONFIG_RELOCATABLE or CONFIG_RANDOMIZE_BASE) kernel moves its virtual and
/// physical addresses together (arch/x86/boot/compressed/misc.c applies the delta to 32-bit relocations), so there
/// is no <c>phys_base</c>. Each candidate is verified by translating the kernel text through the tables.
/// </summary>
internal static class I386LayoutDetector
{
    /// <summary>EM_386.</summary>
    public const ushort Em386 = 3;

    /// <summary>
    /// CONFIG_PHYSICAL_START's default (arch/x86/Kconfig): the link address of <c>_text</c> is <c>PAGE_OFFSET</c> + 16 MiB,
    /// against which a relocation is assumed when no namelist gives the link address.
    /// </summary>
    private const ulong DefaultPhysicalStart = 0x1000000;

    /// <summary>The default <c>PAGE_OFFSET</c> (CONFIG_VMSPLIT_3G).</summary>
    public const ulong DefaultPageOffset = 0xC0000000;

    // CR4.PAE (bit 5): the vCPU was in PAE paging.
    private const ulong Cr4Pae = 1UL << 5;

    /// <summary>
    /// The <c>PAGE_OFFSET</c>s of arch/x86/Kconfig's CONFIG_VMSPLIT_* choices (3G, 3G_OPT, 2G, 2G_OPT, 1G), the
    /// default first: VMCOREINFO does not export it on i386 (arch/x86/kernel/crash_core_32.c adds only X86_PAE).
    /// </summary>
    private static readonly ulong[] s_pageOffsets = [DefaultPageOffset, 0xB0000000, 0x80000000, 0x78000000, 0x40000000];

    /// <summary>
    /// True when the image is of a 32-bit x86 kernel: its ELF machine or kdump <c>utsname.machine</c> says so, or
    /// (LiME, raw) its VMCOREINFO places <c>swapper_pg_dir</c> below 4 GiB or says <c>CONFIG_X86_PAE=y</c>.
    /// </summary>
    public static bool IsI386(DumpImage image, VmcoreInfo? info)
    {
        if (image.ElfMachine != 0)
        {
            return image.ElfMachine == Em386;
        }

        return info is not null && (info.Get("CONFIG_X86_PAE") == "y"
            || (info.GetSymbol("swapper_pg_dir") is { } root && root <= uint.MaxValue && info.GetSymbol("init_top_pgt") is null));
    }

    public static KernelLayout? Detect(DumpImage image, VmcoreInfo? info, NamelistHints hints)
    {
        var source = new ImagePhysicalSource(image);
        var cpus = LayoutDetector.QemuCpuStates(image);
        if (info is not null && FromVmcoreInfo(source, image, info, cpus, hints) is { } fromInfo)
        {
            return fromInfo;
        }

        return FromCr3(source, image, cpus, hints);
    }

    private static KernelLayout? FromVmcoreInfo(ImagePhysicalSource source, DumpImage image, VmcoreInfo info, List<X64CpuState> cpus, NamelistHints hints)
    {
        if (info.GetSymbol("swapper_pg_dir") is not { } rootVa || rootVa > uint.MaxValue || info.GetSymbol("_stext") is not { } stext || stext > uint.MaxValue)
        {
            return null;
        }

        // VMCOREINFO_CONFIG(X86_PAE) is written only by PAE kernels; the vCPU's CR4 confirms it when QEMU saved one.
        bool pae = info.Get("CONFIG_X86_PAE") == "y" || (cpus.Count > 0 && (cpus[0].Cr4 & Cr4Pae) != 0);
        foreach (ulong pageOffset in PageOffsetCandidates(image, info))
        {
            if (rootVa < pageOffset || stext < pageOffset)
            {
                continue;
            }

            // Without a namelist, measure against the default link address: arch/x86/kernel/vmlinux.lds.S sets _text
            // and _stext at the start of .text, and KASLR or a relocation moves both (kaslrOffset = _text - link _text).
            long relocation = hints.Stext is { } linkStext ? unchecked((long)(stext - linkStext)) : unchecked((long)(stext - (pageOffset + DefaultPhysicalStart)));

            // Try the mode VMCOREINFO states first, then the other: a scanned or hand-made VMCOREINFO may lack the line.
            foreach (bool mode in new[] { pae, !pae })
            {
                var layout = Layout(mode, rootVa - pageOffset, pageOffset, relocation, "vmcoreinfo", hints.Stext is not null);
                if (Verify(source, layout, stext, stext - pageOffset))
                {
                    return layout;
                }
            }
        }

        return null;
    }

    private static KernelLayout? FromCr3(ImagePhysicalSource source, DumpImage image, List<X64CpuState> cpus, NamelistHints hints)
    {
        foreach (var cpu in cpus)
        {
            bool pae = (cpu.Cr4 & Cr4Pae) != 0;
            var table = new X86PageTable(source, pae, 64);
            ulong root = table.RootTable(cpu.Cr3);
            foreach (ulong pageOffset in PageOffsetCandidates(image, null))
            {
                // The direct map starts at PAGE_OFFSET with physical page 0 (arch/x86/mm/init_32.c kernel_physical_mapping_init).
                if (!table.TryTranslate(root, pageOffset, out ulong pa, out _, out _) || pa != 0)
                {
                    continue;
                }

                long relocation = 0;
                bool known = false;
                if (hints.LinuxBanner is { } banner && FindRelocation(image, banner, pageOffset) is { } measured)
                {
                    relocation = measured;
                    known = true;
                }

                // Prefer the kernel's own root over whichever process's CR3 was loaded.
                ulong finalRoot = root;
                if (hints.InitTopPgt is { } pgDir && unchecked(pgDir + (ulong)relocation) is var pgDirVa && pgDirVa >= pageOffset && pgDirVa <= uint.MaxValue)
                {
                    var own = Layout(pae, pgDirVa - pageOffset, pageOffset, relocation, "cpu-cr3", known);
                    if (Verify(source, own, pageOffset, 0))
                    {
                        finalRoot = own.PageTableRoot;
                    }
                }

                return Layout(pae, finalRoot, pageOffset, relocation, "cpu-cr3", known);
            }
        }

        return null;
    }

    /// <summary>
    /// The relocation of the kernel: where <c>linux_banner</c> really is against the namelist's address, found by
    /// looking for "Linux version" at the banner's physical address shifted by multiples of the 8 KiB minimum
    /// CONFIG_PHYSICAL_ALIGN of x86_32 (arch/x86/Kconfig), up to 512 MiB either way; the unshifted one first.
    /// </summary>
    private static long? FindRelocation(DumpImage image, ulong bannerVa, ulong pageOffset)
    {
        if (bannerVa < pageOffset)
        {
            return null;
        }

        ulong linkPa = bannerVa - pageOffset;
        Span<byte> probe = stackalloc byte[14];
        var expected = "Linux version "u8;
        const long Step = 0x2000;
        const long Span = 512L << 20;
        for (long delta = 0; delta <= Span; delta += Step)
        {
            foreach (long d in delta == 0 ? [0L] : new[] { delta, -delta })
            {
                if (d < 0 && (ulong)(-d) > linkPa)
                {
                    continue;
                }

                if (image.ReadPhysical(unchecked(linkPa + (ulong)d), probe, out _) == probe.Length && probe.SequenceEqual(expected))
                {
                    return d;
                }
            }
        }

        return null;
    }

    /// <summary>PAGE_OFFSET candidates: VMCOREINFO's NUMBER(PAGE_OFFSET) when a kernel exports it, a kexec core's lowmem segments (p_vaddr - p_paddr), then the VMSPLIT values.</summary>
    private static IEnumerable<ulong> PageOffsetCandidates(DumpImage image, VmcoreInfo? info)
    {
        var seen = new HashSet<ulong>();
        if (info?.GetNumber("PAGE_OFFSET") is { } exported && exported > 0 && exported <= uint.MaxValue && seen.Add((ulong)exported))
        {
            yield return (ulong)exported;
        }

        foreach (var seg in image.VirtualSegments)
        {
            if (seg.PhysicalAddress is { } pa && seg.VirtualAddress > pa && seg.VirtualAddress <= uint.MaxValue && seen.Add(seg.VirtualAddress - pa))
            {
                yield return seg.VirtualAddress - pa;
            }
        }

        foreach (ulong po in s_pageOffsets)
        {
            if (seen.Add(po))
            {
                yield return po;
            }
        }
    }

    private static KernelLayout Layout(bool pae, ulong root, ulong pageOffset, long relocation, string method, bool known) => new()
    {
        PagingMode = pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel,
        PageTableRoot = root,
        KaslrOffset = relocation,
        PhysBase = 0,
        PageOffsetBase = pageOffset,
        Method = method,
        KaslrOffsetKnown = known,
    };

    private static bool Verify(ImagePhysicalSource source, KernelLayout layout, ulong va, ulong expectedPa)
    {
        var table = new X86PageTable(source, layout.PagingMode == PagingMode.X86Pae, 16);
        return table.TryTranslate(layout.PageTableRoot, va, out ulong pa, out _, out _) && pa == expectedPa;
    }
}
