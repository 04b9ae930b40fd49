using System.Buffers.Binary;
using Kvm.Images;
using Kvm.Translation.X64;

namespace Kvm.Memory;

/// <summary>
/// Finds the x86-64 kernel layout (paging mode, page-table root, KASLR offset, phys_base, direct map), trying the
/// sources in the order of formats.md §5.3: VMCOREINFO; then CR3/CR4 from QEMU's CPU note with a walk of the kernel
/// text map; then a kexec ELF's kernel-text segment. Each candidate is verified by translating the kernel text
/// before it is accepted.
/// </summary>
internal static class LayoutDetector
{
    /// <summary>EM_X86_64.</summary>
    public const ushort EmX8664 = 62;

    /// <summary>The KASLR range of the kernel image: the text map is at most 1 GiB (KERNEL_IMAGE_SIZE with KASLR).</summary>
    private const ulong TextMapEnd = 0xffffffffc0000000;

    public static KernelLayout? Detect(DumpImage image, VmcoreInfo? vmcoreInfo, NamelistHints hints)
    {
        if (I386LayoutDetector.IsI386(image, vmcoreInfo))
        {
            return I386LayoutDetector.Detect(image, vmcoreInfo, hints);
        }

        if (Arm64LayoutDetector.Applies(image, vmcoreInfo))
        {
            return Arm64LayoutDetector.Detect(image, vmcoreInfo);
        }

        var source = new ImagePhysicalSource(image);
        var cpus = QemuCpuStates(image);

        if (vmcoreInfo is not null && FromVmcoreInfo(source, vmcoreInfo, cpus, hints) is { } fromInfo)
        {
            return WithDirectMap(source, fromInfo);
        }

        if (FromCr3(source, cpus, hints) is { } fromCr3)
        {
            return WithDirectMap(source, fromCr3);
        }

        if (FromKtextSegment(source, image, hints) is { } fromSegment)
        {
            return WithDirectMap(source, fromSegment);
        }

        return null;
    }

    /// <summary>The CPU states in QEMU notes, skipping vCPUs with paging off (an AP that never started).</summary>
    public static List<X64CpuState> QemuCpuStates(DumpImage image)
    {
        var list = new List<X64CpuState>();
        foreach (var note in image.Notes)
        {
            if (note.Name == "QEMU" && X64CpuState.TryParse(note.Descriptor, out var state) && state.PagingEnabled)
            {
                list.Add(state);
            }
        }

        return list;
    }

    private static KernelLayout? FromVmcoreInfo(ImagePhysicalSource source, VmcoreInfo info, List<X64CpuState> cpus, NamelistHints hints)
    {
        ulong? rootVa = info.GetSymbol("init_top_pgt") ?? info.GetSymbol("swapper_pg_dir") ?? info.GetSymbol("init_level4_pgt");
        long? physBase = info.GetNumber("phys_base");
        if (rootVa is null || physBase is null)
        {
            return null;
        }

        ulong sme = (ulong)(info.GetNumber("sme_mask") ?? 0);
        long? l5 = info.GetNumber("pgtable_l5_enabled");
        int levels = l5 is { } v ? (v != 0 ? 5 : 4) : cpus.Count > 0 ? (cpus[0].La57 ? 5 : 4) : 4;
        long kaslr = info.KernelOffset is { } ko ? (long)ko
            : info.GetSymbol("_stext") is { } stext && hints.Stext is { } linkStext ? (long)(stext - linkStext)
            : 0;

        ulong rootPa = unchecked(rootVa.Value - KernelLayout.StartKernelMap + (ulong)physBase.Value);
        var layout = new KernelLayout
        {
            PagingMode = levels == 5 ? PagingMode.X64FiveLevel : PagingMode.X64FourLevel,
            PageTableRoot = rootPa,
            KaslrOffset = kaslr,
            PhysBase = physBase.Value,
            SmeMask = sme,
            Method = "vmcoreinfo",
            KaslrOffsetKnown = info.KernelOffset is not null || hints.Stext is not null,
        };

        // Verify: the kernel text must translate to where phys_base says it is. Without VMCOREINFO's
        // pgtable_l5_enabled, try the other paging mode before giving up.
        ulong textVa = info.GetSymbol("_stext") ?? unchecked(KernelLayout.DefaultLinkText + (ulong)kaslr);
        ulong expected = unchecked(textVa - KernelLayout.StartKernelMap + (ulong)physBase.Value);
        if (Verify(source, layout, textVa, expected))
        {
            return layout;
        }

        if (l5 is null)
        {
            var other = layout with { PagingMode = levels == 5 ? PagingMode.X64FourLevel : PagingMode.X64FiveLevel };
            if (Verify(source, other, textVa, expected))
            {
                return other;
            }
        }

        return null;
    }

    private static KernelLayout? FromCr3(ImagePhysicalSource source, List<X64CpuState> cpus, NamelistHints hints)
    {
        foreach (var cpu in cpus)
        {
            int levels = cpu.La57 ? 5 : 4;

            // CR3 bits 0-11 hold the PCID; with PTI, bit 12 selects the user half of an 8 KiB PGD pair.
            ulong[] roots = [cpu.Cr3 & X64PageTable.FrameMask, cpu.Cr3 & X64PageTable.FrameMask & ~0x1000UL];
            foreach (ulong root in roots.Distinct())
            {
                var table = new X64PageTable(source, levels, 0, 64);
                if (!FindKernelText(table, root, out ulong textVa, out ulong textPa))
                {
                    continue;
                }

                long physBase = unchecked((long)(textPa - (textVa - KernelLayout.StartKernelMap)));
                ulong linkText = hints.Text ?? KernelLayout.DefaultLinkText;
                long kaslr = unchecked((long)(textVa - linkText));
                ulong finalRoot = root;
                if (hints.InitTopPgt is { } pgt)
                {
                    // Prefer the kernel's own root over whichever process's CR3 was loaded.
                    finalRoot = unchecked(pgt + (ulong)kaslr - KernelLayout.StartKernelMap + (ulong)physBase);
                }

                var layout = new KernelLayout
                {
                    PagingMode = levels == 5 ? PagingMode.X64FiveLevel : PagingMode.X64FourLevel,
                    PageTableRoot = finalRoot,
                    KaslrOffset = kaslr,
                    PhysBase = physBase,
                    Method = "cpu-cr3",
                    KaslrOffsetKnown = hints.Text is not null,
                };
                if (finalRoot == root || Verify(source, layout, textVa, textPa))
                {
                    return layout;
                }

                return layout with { PageTableRoot = root };
            }
        }

        return null;
    }

    private static KernelLayout? FromKtextSegment(ImagePhysicalSource source, DumpImage image, NamelistHints hints)
    {
        // A kexec vmcore maps the kernel text with one PT_LOAD whose p_vaddr is in the text map (crash's
        // x86_64_calc_phys_base); its p_paddr gives phys_base. The root then comes from the namelist.
        foreach (var seg in image.VirtualSegments)
        {
            if (seg.VirtualAddress < KernelLayout.StartKernelMap || seg.PhysicalAddress is not { } pa || hints.InitTopPgt is not { } pgt)
            {
                continue;
            }

            long physBase = unchecked((long)(pa - (seg.VirtualAddress - KernelLayout.StartKernelMap)));
            long kaslr = hints.Text is { } text ? unchecked((long)(seg.VirtualAddress - text)) : 0;
            foreach (int levels in new[] { 4, 5 })
            {
                var layout = new KernelLayout
                {
                    PagingMode = levels == 5 ? PagingMode.X64FiveLevel : PagingMode.X64FourLevel,
                    PageTableRoot = unchecked(pgt + (ulong)kaslr - KernelLayout.StartKernelMap + (ulong)physBase),
                    KaslrOffset = kaslr,
                    PhysBase = physBase,
                    Method = "elf-ktext",
                    KaslrOffsetKnown = hints.Text is not null,
                };
                if (Verify(source, layout, seg.VirtualAddress, pa))
                {
                    return layout;
                }
            }
        }

        return null;
    }

    /// <summary>
    /// Walks the kernel text map from <c>__START_KERNEL_map</c> in 2 MiB steps to the first mapped page: that is
    /// <c>_text</c>, because the kernel unmaps everything before it (cleanup_highmap, arch/x86/mm/init_64.c).
    /// </summary>
    public static bool FindKernelText(X64PageTable table, ulong root, out ulong textVa, out ulong textPa)
    {
        for (ulong va = KernelLayout.StartKernelMap; va < TextMapEnd; va += 0x200000)
        {
            if (table.TryTranslate(root, va, out ulong pa, out _, out _))
            {
                textVa = va;
                textPa = pa;
                return true;
            }
        }

        textVa = textPa = 0;
        return false;
    }

    private static bool Verify(ImagePhysicalSource source, KernelLayout layout, ulong va, ulong expectedPa)
    {
        var table = new X64PageTable(source, layout.PagingLevels, layout.SmeMask, 16);
        return table.TryTranslate(layout.PageTableRoot, va, out ulong pa, out _, out _) && pa == expectedPa;
    }

    /// <summary>
    /// Finds <c>page_offset_base</c> by probing, as libkdumpfile does: the direct map is where physical address 0 is
    /// mapped. Try the fixed historical bases first, then the lowest mapped 1 GiB-aligned address of the randomized
    /// region (CONFIG_RANDOMIZE_MEMORY aligns it to a PUD).
    /// </summary>
    private static KernelLayout WithDirectMap(ImagePhysicalSource source, KernelLayout layout)
    {
        var table = new X64PageTable(source, layout.PagingLevels, layout.SmeMask, 64);
        bool five = layout.PagingLevels == 5;
        ulong[] fixedBases = five ? [0xff11000000000000] : [0xffff888000000000, 0xffff880000000000, 0xffff810000000000];
        foreach (ulong b in fixedBases)
        {
            if (table.TryTranslate(layout.PageTableRoot, b, out ulong pa, out _, out _) && pa == 0)
            {
                return layout with { PageOffsetBase = b };
            }
        }

        ulong start = five ? 0xff11000000000000 : 0xffff888000000000;
        ulong end = five ? 0xff91000000000000 : 0xffffc88000000000;
        ulong step = five ? 1UL << 48 : 1UL << 39;

        // Walk top-level entries first (cheap), then 1 GiB steps inside the first present one.
        for (ulong top = start; top < end; top += step)
        {
            var walk = table.Describe(layout.PageTableRoot, top);
            if (walk.Fault is { Kind: Kvm.TranslationFaultKind.NotPresent } f && f.Level == "pgd")
            {
                continue;
            }

            for (ulong va = top; va < top + step && va < end; va += 1UL << 30)
            {
                if (table.TryTranslate(layout.PageTableRoot, va, out ulong pa, out _, out _) && pa == 0)
                {
                    return layout with { PageOffsetBase = va };
                }
            }
        }

        return layout;
    }

    /// <summary>
    /// Scans physical memory for the kernel's own VMCOREINFO page (vmcoreinfo_data, filled at boot by
    /// crash_save_vmcoreinfo_init whether or not a dump device exists): a page that starts with "OSRELEASE=" and
    /// holds "PAGESIZE=" and a page-table root. This rescues QEMU dumps taken without -device vmcoreinfo, LiME and raw images.
    /// </summary>
    public static VmcoreInfo? ScanForVmcoreInfo(DumpImage image, int maxBytes)
    {
        Span<byte> probe = stackalloc byte[16];
        var page = new byte[4096];
        foreach (var range in image.PhysicalRanges)
        {
            for (ulong pa = (range.Start + 0xfff) & ~0xfffUL; pa < range.End; pa += 4096)
            {
                if (image.ReadPhysical(pa, probe, out _) != probe.Length || !probe.StartsWith("OSRELEASE="u8))
                {
                    continue;
                }

                int n = image.ReadPhysical(pa, page, out _);
                var info = VmcoreInfo.Parse(page.AsSpan(0, Math.Min(n, maxBytes)), $"memory scan at physical 0x{pa:x}");
                if (info.PageSize is not null && (info.GetSymbol("init_top_pgt") ?? info.GetSymbol("swapper_pg_dir")) is not null)
                {
                    return info;
                }
            }
        }

        return null;
    }

    /// <summary>Reads a little-endian u64 at a physical address, or null.</summary>
    public static ulong? ReadPhysicalU64(DumpImage image, ulong pa)
    {
        Span<byte> b = stackalloc byte[8];
        return image.ReadPhysical(pa, b, out _) == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(b) : null;
    }
}
