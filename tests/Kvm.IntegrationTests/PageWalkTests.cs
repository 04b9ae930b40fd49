using System.Diagnostics;
using System.Numerics;
using System.Text.Json;
using Xunit.Abstractions;

namespace Kvm.IntegrationTests;

/// <summary>
/// <see cref="KernelImage.EnumeratePages"/> (kvm_walk_pages) on the real dumps of every architecture (x86-64, arm64,
/// i386 PAE and 2-level): kernel-map mappings read the same bytes through their virtual address as through their
/// physical one, never lie in the direct map, file offsets hold the page's bytes, the kernel text and init_task have
/// the rights the kernel gave them, direct-map addresses follow the guest's own offset, and both passes together cover
/// every page the image holds. The dumps are split over two classes so that xunit checks them on two cores at once.
/// </summary>
public abstract class PageWalkChecks(ITestOutputHelper output)
{
    private const int Probe = 64;

    /// <summary>Every other single-file dump of every architecture, starting with the first (<paramref name="half"/> 0) or the second (1).</summary>
    public static IEnumerable<object[]> HalfOfTheDumps(int half) => DumpLab.AllArchitectureDumps().Where((_, i) => i % 2 == half);

    protected void CheckDump(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
        var dump = v.Dump(name);
        using var image = LabImages.Open(dump);
        var clock = Stopwatch.StartNew();
        var pages = image.EnumeratePages().ToList();
        var walkTime = clock.Elapsed;
        var kmap = pages.TakeWhile(p => p.IsKernelMapped).ToList();
        var dmapOnly = pages.Skip(kmap.Count).ToList();
        Assert.All(dmapOnly, p => Assert.False(p.IsKernelMapped));
        Assert.NotEmpty(kmap);
        Assert.NotEmpty(dmapOnly);

        // The base page: 4 KiB on x86, the granule on arm64, as the guest's sysconf(_SC_PAGESIZE) said.
        ulong pageSize = (ulong)image.PageSize;
        int pageShift = BitOperations.Log2(pageSize);
        if (v.Truth.TryGetProperty("paging", out var paging) && paging.TryGetProperty("pageSize", out var truthPageSize))
        {
            Assert.Equal(truthPageSize.GetUInt64(), pageSize);
        }

        var direct = DirectMap.Of(v, image);

        // Pass 1 ascends by address, never inside the direct map, and reads through the mapping what is there.
        // ESPFIX maps a few pages tens of thousands of times: the first aliases of each page are enough.
        var virt = new byte[Probe];
        var phys = new byte[Probe];
        var aliases = new Dictionary<ulong, int>();
        for (int i = 0; i < kmap.Count; i++)
        {
            var p = kmap[i];
            Assert.True(i == 0 || kmap[i - 1].KernelMapAddress < p.KernelMapAddress, $"0x{p.KernelMapAddress:x} out of order");
            Assert.False(p.KernelMapAddress >= direct.RegionStart && p.KernelMapAddress - direct.RegionStart < direct.RegionLength, $"0x{p.KernelMapAddress:x} is in the direct map");
            Assert.True(p.Length >= pageSize && p.Length % pageSize == 0, $"0x{p.KernelMapAddress:x}: {p.Length} bytes");
            int seen = aliases[p.PhysicalAddress] = aliases.GetValueOrDefault(p.PhysicalAddress) + 1;
            if (seen > 8)
            {
                continue;
            }

            bool physOk = image.TryReadPhysical(p.PhysicalAddress, phys, out _, out _);
            bool virtOk = image.TryRead(p.KernelMapAddress, virt, out _, out _);
            Assert.Equal(physOk, virtOk);
            if (physOk)
            {
                Assert.True(phys.AsSpan().SequenceEqual(virt), $"0x{p.KernelMapAddress:x} -> 0x{p.PhysicalAddress:x}: bytes differ");
            }
        }

        CheckKernelRights(v, kmap, dmapOnly, direct, pageSize);

        // Direct-map addresses follow the guest's offset and read the page's bytes where the dump holds them (one
        // page in 97; makedumpfile leaves out some pages that pass 1 maps).
        foreach (var p in pages.Where(p => p.DirectMapAddress != 0).Where((_, i) => i % 97 == 0))
        {
            Assert.Equal(p.PhysicalAddress + direct.Offset, p.DirectMapAddress);
            bool physOk = image.TryReadPhysical(p.PhysicalAddress, phys, out _, out _);
            bool virtOk = image.TryRead(p.DirectMapAddress, virt, out _, out _);
            Assert.True(physOk == virtOk, $"0x{p.DirectMapAddress:x} -> 0x{p.PhysicalAddress:x}: reads {virtOk}, physical {physOk}");
            Assert.True(!physOk || phys.AsSpan().SequenceEqual(virt), $"0x{p.DirectMapAddress:x} -> 0x{p.PhysicalAddress:x}: bytes differ");
        }

        Assert.Contains(dmapOnly, p => p.DirectMapAddress != 0);

        // Offsets: the core file holds the page's bytes there (the first bytes of one record in 8, every 64th whole).
        using (var file = File.OpenHandle(dump.Path))
        {
            var page = new byte[pageSize];
            var inFile = new byte[pageSize];
            int n = 0;
            foreach (var p in pages.Where(p => p.FileOffset >= 0))
            {
                if (n++ % 8 != 0)
                {
                    continue;
                }

                int length = n % 64 == 1 ? (int)pageSize : Probe;
                Assert.Equal(length, image.ReadPhysical(p.PhysicalAddress, page.AsSpan(0, length)));
                Assert.Equal(length, RandomAccess.Read(file, inFile.AsSpan(0, length), p.FileOffset));
                Assert.True(page.AsSpan(0, length).SequenceEqual(inFile.AsSpan(0, length)), $"0x{p.PhysicalAddress:x} at file offset 0x{p.FileOffset:x}: bytes differ");
            }

            // Only compressed dumps may store no page plainly (and even they store their raw fallbacks plainly).
            Assert.True(n > 0 || dump.Compression != "none", $"{dump}: no page has a file offset");
        }

        // Both passes together cover every page the image holds, each once: pass 2 is what pass 1 did not reach.
        var reached = new HashSet<ulong>();
        foreach (var p in kmap)
        {
            for (ulong off = 0; off < p.Length; off += pageSize)
            {
                reached.Add((p.PhysicalAddress + off) >> pageShift);
            }
        }

        var one = new byte[1];
        long reachedHeld = reached.LongCount(pfn => image.TryReadPhysical(pfn << pageShift, one, out _, out _));
        long held = image.PhysicalRanges.Sum(r => (long)((r.End >> pageShift) - ((r.Start + pageSize - 1) >> pageShift))) - image.ExcludedPages;
        Assert.Equal(held, reachedHeld + dmapOnly.Count);
        Assert.Equal(dmapOnly.Count, dmapOnly.Select(p => p.PhysicalAddress).Distinct().Count());
        Assert.DoesNotContain(dmapOnly, p => reached.Contains(p.PhysicalAddress >> pageShift));
        Assert.All(dmapOnly, p => Assert.Equal((pageSize, PageProtection.Read | PageProtection.Write, 0UL), (p.Length, p.Protection, p.PhysicalAddress % pageSize)));
        foreach (var p in dmapOnly.Where((_, i) => i % 97 == 0))
        {
            Assert.True(image.TryReadPhysical(p.PhysicalAddress, one, out _, out var fault), fault?.Message);
        }

        output.WriteLine($"{dump}: {pages.Count} records ({kmap.Count} kernel-map, {dmapOnly.Count} direct-map only) in {walkTime.TotalMilliseconds:F0} ms; checked in {clock.Elapsed.TotalMilliseconds:F0} ms");
    }

    protected static KernelPage Covering(List<KernelPage> kmap, ulong va) =>
        kmap.Single(p => va >= p.KernelMapAddress && va - p.KernelMapAddress < p.Length);

    /// <summary>
    /// The rights the kernel gave its own text and data. x86-64 and arm64 map the kernel image outside the direct map:
    /// text read-only and executable (x86 R/W clear, NX clear; arm64 PAGE_KERNEL_ROX: PTE_RDONLY set, PXN clear),
    /// data writable and not executable (arm64 PAGE_KERNEL: PTE_WRITE, PXN set). i386 runs the kernel in its direct
    /// map, so its text and init_task are listed by pass 2 at PAGE_OFFSET + pa. Debian's arm64 kernel checks at boot
    /// that no kernel page is both writable and executable (CONFIG_DEBUG_WX; dmesg "Checked W+X mappings: passed"),
    /// and so does this walk where the guest's log says so.
    /// </summary>
    private static void CheckKernelRights(LabVariant v, List<KernelPage> kmap, List<KernelPage> dmapOnly, DirectMap direct, ulong pageSize)
    {
        ulong stext = v.SymbolAddress("_stext");
        ulong initTask = v.SymbolAddress("init_task");
        if (v.Architecture == "i386")
        {
            foreach (ulong va in new[] { stext, initTask })
            {
                ulong pageVa = va & ~(pageSize - 1);
                Assert.DoesNotContain(kmap, p => va >= p.KernelMapAddress && va - p.KernelMapAddress < p.Length);
                var page = Assert.Single(dmapOnly, p => p.DirectMapAddress == pageVa);
                Assert.Equal(pageVa - direct.Offset, page.PhysicalAddress);
            }

            return;
        }

        var text = Covering(kmap, stext);
        Assert.Equal(PageProtection.Read | PageProtection.Execute, text.Protection);
        Assert.Equal(text.PhysicalAddress + direct.Offset, text.DirectMapAddress);
        var task = Covering(kmap, initTask);
        Assert.Equal(PageProtection.Read | PageProtection.Write, task.Protection);
        Assert.Equal(task.PhysicalAddress + direct.Offset, task.DirectMapAddress);
        if (v.Architecture == "aarch64" && v.Truth.TryGetProperty("dmesg", out var dmesg) && dmesg.GetString()!.Contains("Checked W+X mappings: passed", StringComparison.Ordinal))
        {
            Assert.DoesNotContain(kmap, p => p.Protection.HasFlag(PageProtection.Write | PageProtection.Execute));
        }
    }

    /// <summary>
    /// The guest's direct map: <c>va = pa + Offset</c> (truth.json <c>directMapOffset</c>, as the guest measured it:
    /// x86-64 <c>page_offset_base</c>, i386 <c>PAGE_OFFSET</c>, arm64 <c>PAGE_OFFSET - PHYS_OFFSET</c>), and the region
    /// pass 1 must not enter: x86-64 a TiB from <c>page_offset_base</c> (arch/x86/mm/kaslr.c rounds the region up to
    /// one), i386 low memory from <c>PAGE_OFFSET</c> (all of this guest's RAM), arm64 [<c>PAGE_OFFSET</c>,
    /// <c>PAGE_END</c>) with <c>PAGE_END = MODULES_VADDR</c> from the guest's VMCOREINFO (arch/arm64/include/asm/memory.h,
    /// 5.4+, where <c>PAGE_OFFSET = -(1 &lt;&lt; VA_BITS)</c>). Labs made before truth.json had those keys fall back to
    /// the image's layout.
    /// </summary>
    private sealed record DirectMap(ulong Offset, ulong RegionStart, ulong RegionLength)
    {
        public static DirectMap Of(LabVariant v, KernelImage image)
        {
            var layout = image.Layout;
            ulong offset = Hex(v, "directMapOffset")
                ?? (v.Architecture == "aarch64" ? layout.PageOffsetBase!.Value - (ulong)layout.PhysBase : layout.PageOffsetBase!.Value);
            switch (v.Architecture)
            {
                case "aarch64":
                {
                    int vaBits = v.Truth.GetProperty("paging").TryGetProperty("vaBits", out var b) ? b.GetInt32() : layout.VirtualAddressBits;
                    ulong pageOffset = Hex(v, "pageOffset") ?? layout.PageOffsetBase!.Value;
                    Assert.Equal(ulong.MaxValue << vaBits, pageOffset);
                    Assert.Equal(pageOffset, layout.PageOffsetBase);
                    ulong pageEnd = VmcoreInfoNumber(v, "MODULES_VADDR") ?? ulong.MaxValue << (vaBits - 1);
                    return new DirectMap(offset, pageOffset, pageEnd - pageOffset);
                }

                case "i386":
                    ulong ramEnd = v.Truth.GetProperty("ramRanges").EnumerateArray().Max(r => Convert.ToUInt64(r[1].GetString()!, 16));
                    return new DirectMap(offset, offset, ramEnd);
                default:
                    return new DirectMap(offset, offset, 1UL << 40);
            }
        }

        private static ulong? Hex(LabVariant v, string key) =>
            v.Truth.TryGetProperty(key, out var value) && value.ValueKind == JsonValueKind.String
                ? unchecked((ulong)Convert.ToInt64(value.GetString()!.Replace("0x", string.Empty, StringComparison.Ordinal), 16))
                : null;

        private static ulong? VmcoreInfoNumber(LabVariant v, string name)
        {
            if (!v.Truth.TryGetProperty("vmcoreinfo", out var info) || info.ValueKind != JsonValueKind.String)
            {
                return null;
            }

            string prefix = $"NUMBER({name})=";
            string? line = info.GetString()!.Split('\n').FirstOrDefault(l => l.StartsWith(prefix, StringComparison.Ordinal));
            return line is null ? null : Convert.ToUInt64(line[prefix.Length..].Replace("0x", string.Empty, StringComparison.Ordinal), 16);
        }
    }
}

/// <summary>The first half of the dumps, the 4- and 5-level comparison and the throughput figures (x86-64 and arm64).</summary>
public sealed class PageWalkTests(ITestOutputHelper output) : PageWalkChecks(output)
{
    private readonly ITestOutputHelper _output = output;

    public static IEnumerable<object[]> FirstHalf() => HalfOfTheDumps(0);

    [LabTheory]
    [MemberData(nameof(FirstHalf))]
    public void EveryDump_PagesAreConsistentWithReads(string variant, string name) => CheckDump(variant, name);

    [LabFact]
    public void FiveLevel_MapsTheKernelAsFourLevelDoes()
    {
        // Between two boots, KASLR moves the text, vmalloc, vmemmap, the modules and the ESPFIX slots; what does not
        // move must be mapped the same: the kernel image relative to _text (page sizes and rights included), the
        // CPU entry area and the fixmap, and as many modules pages and ESPFIX aliases.
        var four = Summarize(DumpLab.Variant("default"));
        var five = Summarize(DumpLab.Variant("la57"));

        Assert.NotEmpty(four.Image);
        Assert.Equal(four.Image, five.Image);
        Assert.Equal(four.CpuEntryArea, five.CpuEntryArea);
        Assert.Equal(four.Fixmap, five.Fixmap);
        Assert.Equal(four.ModulePages, five.ModulePages);
        Assert.Equal(four.EspfixPages, five.EspfixPages);
    }

    [LabFact]
    public void WholeDump_Throughput()
    {
        foreach (string name in new[] { "qemu.elf", "mdf-c-d31.kdump", "qemu-kdump-zlib.flat" })
        {
            var dump = DumpLab.Variant("default").Dump(name);
            using var image = LabImages.Open(dump);
            image.EnumeratePages().Count();
            var clock = Stopwatch.StartNew();
            long count = image.EnumeratePages().LongCount();
            double seconds = clock.Elapsed.TotalSeconds;
            _output.WriteLine($"{dump}: {count} records in {seconds * 1000:F0} ms, {count / seconds:F0} records/s");
            Assert.True(seconds < 10, $"{dump}: {seconds:F1} s to walk");
        }
    }

    [Arm64LabFact]
    public void Arm64WholeDump_Throughput()
    {
        foreach (var dump in Arm64Lab.Variant!.Dumps.Where(d => d.SplitSet is null))
        {
            using var image = LabImages.Open(dump);
            image.EnumeratePages().Count();
            var clock = Stopwatch.StartNew();
            long count = image.EnumeratePages().LongCount();
            double seconds = clock.Elapsed.TotalSeconds;
            _output.WriteLine($"{dump}: {count} records in {seconds * 1000:F0} ms, {count / seconds:F0} records/s");
            Assert.True(seconds < 10, $"{dump}: {seconds:F1} s to walk");
        }
    }

    private static Summary Summarize(LabVariant variant)
    {
        using var image = LabImages.Open(variant.Dump("qemu.elf"));
        ulong text = image.GetSymbol("_text").Address;
        ulong end = image.GetSymbol("_end").Address;
        var kmap = image.EnumeratePages().Where(p => p.IsKernelMapped).ToList();

        // arch/x86/include/asm/pgtable_64_types.h and Documentation/x86/x86_64/mm.rst (6.1): the CPU entry area at
        // 0xfffffe0000000000, ESPFIX in the PGD slot below it, modules from 0xffffffffc0000000 (MODULES_VADDR with
        // a 1 GiB kernel image) up to the fixmap at 0xffffffffff000000 and above.
        return new Summary(
            kmap.Where(p => p.KernelMapAddress >= text && p.KernelMapAddress < end).Select(p => (p.KernelMapAddress - text, p.Length, p.Protection)).ToList(),
            kmap.Where(p => p.KernelMapAddress >= 0xfffffe0000000000 && p.KernelMapAddress < 0xfffffe8000000000).Select(p => (p.KernelMapAddress, p.Protection)).ToList(),
            kmap.Where(p => p.KernelMapAddress >= 0xffffffffff000000).Select(p => (p.KernelMapAddress, p.Protection)).ToList(),
            kmap.Count(p => p.KernelMapAddress >= 0xffffffffc0000000 && p.KernelMapAddress < 0xffffffffff000000),
            kmap.Count(p => p.KernelMapAddress >= 0xffffff0000000000 && p.KernelMapAddress < 0xffffff8000000000));
    }

    private sealed record Summary(
        List<(ulong Offset, ulong Length, PageProtection Protection)> Image,
        List<(ulong Va, PageProtection Protection)> CpuEntryArea,
        List<(ulong Va, PageProtection Protection)> Fixmap,
        int ModulePages,
        int EspfixPages);
}

/// <summary>The second half of the dumps.</summary>
public sealed class PageWalkMoreDumpsTests(ITestOutputHelper output) : PageWalkChecks(output)
{
    public static IEnumerable<object[]> SecondHalf() => HalfOfTheDumps(1);

    [LabTheory]
    [MemberData(nameof(SecondHalf))]
    public void EveryDump_PagesAreConsistentWithReads(string variant, string name) => CheckDump(variant, name);
}
