using System.Diagnostics;
using Xunit.Abstractions;

namespace Kvm.IntegrationTests;

/// <summary>
/// <see cref="KernelImage.EnumeratePages"/> (kvm_walk_pages) on the real dumps: kernel-map mappings read the same
/// bytes through their virtual address as through their physical one, file offsets hold the page's bytes, the
/// kernel text and init_task are mapped with the rights the kernel gave them, and both passes together cover every
/// page the image holds. The dumps are split over two classes so that xunit checks them on two cores at once.
/// </summary>
public abstract class PageWalkChecks(ITestOutputHelper output)
{
    private const int Probe = 64;

    /// <summary>Every other single-file dump, starting with the first (<paramref name="half"/> 0) or the second (1).</summary>
    public static IEnumerable<object[]> HalfOfTheDumps(int half) => DumpLab.AllDumps().Where((_, i) => i % 2 == half);

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

        // Pass 1 ascends by address, never inside the direct map, and reads through the mapping what is there.
        // ESPFIX maps a few pages tens of thousands of times: the first aliases of each page are enough.
        ulong pob = image.Layout.PageOffsetBase!.Value;
        var virt = new byte[Probe];
        var phys = new byte[Probe];
        var aliases = new Dictionary<ulong, int>();
        for (int i = 0; i < kmap.Count; i++)
        {
            var p = kmap[i];
            Assert.True(i == 0 || kmap[i - 1].KernelMapAddress < p.KernelMapAddress, $"0x{p.KernelMapAddress:x} out of order");
            Assert.False(p.KernelMapAddress >= pob && p.KernelMapAddress - pob < 1UL << 40, $"0x{p.KernelMapAddress:x} is in the direct map");
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

        // The kernel's own rights: text is executable and read-only, init_task writable and not executable.
        var text = Covering(kmap, v.TruthSymbol("_stext"));
        Assert.Equal(PageProtection.Read | PageProtection.Execute, text.Protection);
        Assert.Equal(pob + text.PhysicalAddress, text.DirectMapAddress);
        var task = Covering(kmap, v.TruthSymbol("init_task"));
        Assert.Equal(PageProtection.Read | PageProtection.Write, task.Protection);

        // Offsets: the core file holds the page's bytes there (the first bytes of one record in 8, every 64th whole).
        using (var file = File.OpenHandle(dump.Path))
        {
            var page = new byte[4096];
            var inFile = new byte[4096];
            int n = 0;
            foreach (var p in pages.Where(p => p.FileOffset >= 0))
            {
                if (n++ % 8 != 0)
                {
                    continue;
                }

                int length = n % 64 == 1 ? 4096 : Probe;
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
            for (ulong off = 0; off < p.Length; off += 4096)
            {
                reached.Add((p.PhysicalAddress + off) >> 12);
            }
        }

        var one = new byte[1];
        long reachedHeld = reached.LongCount(pfn => image.TryReadPhysical(pfn << 12, one, out _, out _));
        long held = image.PhysicalRanges.Sum(r => (long)(r.Length / 4096)) - image.ExcludedPages;
        Assert.Equal(held, reachedHeld + dmapOnly.Count);
        Assert.Equal(dmapOnly.Count, dmapOnly.Select(p => p.PhysicalAddress).Distinct().Count());
        Assert.DoesNotContain(dmapOnly, p => reached.Contains(p.PhysicalAddress >> 12));
        foreach (var p in dmapOnly.Where((_, i) => i % 97 == 0))
        {
            Assert.True(image.TryReadPhysical(p.PhysicalAddress, one, out _, out var fault), fault?.Message);
        }

        output.WriteLine($"{dump}: {pages.Count} records ({kmap.Count} kernel-map, {dmapOnly.Count} direct-map only) in {walkTime.TotalMilliseconds:F0} ms; checked in {clock.Elapsed.TotalMilliseconds:F0} ms");
    }

    protected static KernelPage Covering(List<KernelPage> kmap, ulong va) =>
        kmap.Single(p => va >= p.KernelMapAddress && va - p.KernelMapAddress < p.Length);
}

/// <summary>The first half of the dumps, the 4- and 5-level comparison and the throughput figure.</summary>
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
