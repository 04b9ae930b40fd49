using Kvm.Testing;
using Kvm.Testing.Kdump;

namespace Kvm.Tests.Facade;

/// <summary>
/// <see cref="KernelImage.EnumeratePages"/> on the fake kernel: kernel-map mappings outside the direct map first, in
/// address order and with their protection, then every page the image holds that they did not reach; file offsets
/// checked against the file's bytes.
/// </summary>
public sealed class KernelPagesTests
{
    private const ulong P = 1;
    private const ulong Rw = 2;
    private const ulong Nx = 1UL << 63;
    private const ulong Vmalloc = 0xffffc90000000000;
    private const ulong HighGig = 0xffffd00000000000;
    private const ulong MaxPfnOffset = 0x300900;
    private const ulong Rwx = (ulong)(PageProtection.Read | PageProtection.Write | PageProtection.Execute);

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Elf_KernelMapFirstInAddressOrder_ThenEveryOtherPageHeld(bool fiveLevel)
    {
        var kernel = Kernel(fiveLevel);
        byte[] elf = kernel.ToElf();
        using var file = new TempFile(elf);
        using var image = KernelImage.Open(file.Path);

        var pages = image.EnumeratePages().ToList();
        var kmap = pages.TakeWhile(p => p.IsKernelMapped).ToList();
        var dmapOnly = pages.Skip(kmap.Count).ToList();
        ulong pob = kernel.PageOffsetBase;

        Assert.Equal(ExpectedKernelMap(kernel), kmap.Select(p => (p.KernelMapAddress, p.PhysicalAddress, p.Length, (ulong)p.Protection)));
        Assert.All(dmapOnly, p => Assert.False(p.IsKernelMapped));

        // The direct map's own 1 GiB page and the 4 KiB page mapped inside its region are not kernel-map mappings.
        Assert.DoesNotContain(kmap, p => p.KernelMapAddress >= pob && p.KernelMapAddress - pob < 1UL << 40);

        // Pass 2: every page of the ELF not reached by pass 1 (the 2 MiB text pages cover the tables and kernel data).
        var seen = kmap.SelectMany(p => Pfns(p.PhysicalAddress, p.Length)).ToHashSet();
        var expected = kernel.Memory.Pages.Keys.Where(pa => !seen.Contains(pa >> 12)).Order().ToList();
        Assert.Equal(expected, dmapOnly.Select(p => p.PhysicalAddress));
        Assert.Contains(0x103000UL, expected);
        Assert.Contains(0x104000UL, expected);
        Assert.DoesNotContain(0x100000UL, expected);
        Assert.All(dmapOnly, p =>
        {
            Assert.Equal(PageProtection.Read | PageProtection.Write, p.Protection);
            Assert.Equal(4096UL, p.Length);
            Assert.Equal(pob + p.PhysicalAddress, p.DirectMapAddress);
        });

        // Offsets: every page of an ELF core is plain in the file, except where the mapping leaves the image.
        foreach (var p in pages.Where(p => p.Length == 4096))
        {
            bool inImage = kernel.Memory.Pages.ContainsKey(p.PhysicalAddress);
            Assert.Equal(inImage, p.FileOffset >= 0);
            if (inImage)
            {
                var bytes = new byte[4096];
                Assert.Equal(4096, image.ReadPhysical(p.PhysicalAddress, bytes));
                Assert.Equal(bytes, elf.AsSpan((int)p.FileOffset, 4096).ToArray());
            }
        }

        var outside = kmap.Single(p => p.KernelMapAddress == Vmalloc + 0x3000);
        Assert.Equal((-1L, 0UL), (outside.FileOffset, outside.DirectMapAddress));
        var gig = kmap.Single(p => p.Length == 1UL << 30);
        Assert.Equal((-1L, 0UL), (gig.FileOffset, gig.DirectMapAddress));
    }

    [Fact]
    public void FourAndFiveLevel_GiveTheSameKernelMap()
    {
        using var four = new TempFile(Kernel(false).ToElf());
        using var five = new TempFile(Kernel(true).ToElf());
        using var a = KernelImage.Open(four.Path);
        using var b = KernelImage.Open(five.Path);

        // The direct map moves with LA57 (page_offset_base), so compare what lies outside it.
        static IEnumerable<(ulong, ulong, ulong, PageProtection)> Outside(KernelImage i) =>
            i.EnumeratePages().Where(p => p.IsKernelMapped && p.KernelMapAddress >= Vmalloc).Select(p => (p.KernelMapAddress, p.PhysicalAddress, p.Length, p.Protection));

        Assert.Equal(Outside(a), Outside(b));
        Assert.Equal(5, b.Layout.PagingLevels);
    }

    [Fact]
    public void MaxPfn_FromTheKernel_BoundsTheDirectMapAddresses()
    {
        var kernel = Kernel(false);
        kernel.Memory.WriteUInt64(kernel.PhysicalLoad + MaxPfnOffset, 0x101);
        using var file = new TempFile(kernel.ToElf());
        using var map = new TempFile(kernel.SystemMap + $"{FakeLinuxKernel.LinkText + MaxPfnOffset:x16} D max_pfn\n");
        using var image = KernelImage.Open(file.Path, new KernelImageOptions { Namelists = [map.Path] });

        var pages = image.EnumeratePages().ToList();

        Assert.Equal(kernel.PageOffsetBase + 0x100000, pages.Single(p => p.KernelMapAddress == Vmalloc).DirectMapAddress);
        Assert.Equal(0UL, pages.Single(p => p.KernelMapAddress == Vmalloc + 0x1000).DirectMapAddress);
        Assert.Equal(kernel.PageOffsetBase + 0x7000, pages.Single(p => p.PhysicalAddress == 0x7000).DirectMapAddress);
        Assert.Equal(0UL, pages.Single(p => p.PhysicalAddress == 0x103000).DirectMapAddress);
    }

    [Fact]
    public void Kdump_ExcludedPagesAreNotListed_CompressedPagesHaveNoOffset()
    {
        var kernel = Kernel(false);
        var builder = new KdumpBuilder { VmcoreInfo = kernel.VmcoreInfoText, DumpLevel = 31 };
        foreach (var (pa, bytes) in kernel.Memory.Pages)
        {
            ulong pfn = pa >> 12;
            if (pfn is 0x102 or 0x104)
            {
                builder.AddExcludedPages(pfn);
            }
            else
            {
                builder.AddPage(pfn, bytes, pfn == 0x103 ? KdumpPageCompression.Zlib : KdumpPageCompression.None);
            }
        }

        builder.AddExcludedPages(0x300, 4);
        var kdump = builder.Build();
        using var file = new TempFile(kdump.Bytes);
        using var image = KernelImage.Open(file.Path);

        var pages = image.EnumeratePages().ToList();
        var dmapOnly = pages.Where(p => !p.IsKernelMapped).Select(p => p.PhysicalAddress).ToList();

        Assert.Equal(DumpFormat.Kdump, image.Format);
        Assert.DoesNotContain(0x104000UL, dmapOnly);
        Assert.DoesNotContain(dmapOnly, pa => pa >= 0x300000 && pa < 0x304000);
        Assert.Equal(-1, pages.Single(p => p.PhysicalAddress == 0x103000).FileOffset);
        Assert.Equal(-1, pages.Single(p => p.KernelMapAddress == Vmalloc + 0x2000).FileOffset);

        // The compressed page is still held, so it is listed; the raw ones have their file offset.
        Assert.Contains(0x103000UL, dmapOnly);
        var raw = pages.Where(p => p.FileOffset >= 0).ToList();
        Assert.NotEmpty(raw);
        foreach (var p in raw)
        {
            var bytes = new byte[p.Length];
            Assert.Equal((int)p.Length, image.ReadPhysical(p.PhysicalAddress, bytes));
            Assert.Equal(bytes, kdump.Bytes.AsSpan((int)p.FileOffset, (int)p.Length).ToArray());
        }
    }

    [Fact]
    public void KcoreLayout_IsWalkedTheSameWay()
    {
        // /proc/kcore's layout (fs/proc/kcore.c): NT_TASKSTRUCT, and RAM segments at their direct-map address with
        // p_paddr set. The live kernel is walked through the same code; here the file stands still.
        var kernel = Kernel(false);
        var elf = new ElfCoreBuilder().AddNote("CORE", 4, new byte[16]).AddVmcoreInfo(kernel.VmcoreInfoText);
        foreach (var (start, data) in kernel.Memory.Runs())
        {
            elf.AddLoad(kernel.PageOffsetBase + start, start, data);
        }

        byte[] bytes = elf.Build();
        using var file = new TempFile(bytes);
        using var image = KernelImage.Open(file.Path);

        var pages = image.EnumeratePages().ToList();

        Assert.Equal(DumpFormat.Kcore, image.Format);
        Assert.Equal(ExpectedKernelMap(kernel), pages.Where(p => p.IsKernelMapped).Select(p => (p.KernelMapAddress, p.PhysicalAddress, p.Length, (ulong)p.Protection)));
        var vmcoreInfo = pages.Single(p => p.PhysicalAddress == kernel.VmcoreInfoPage);
        Assert.Equal(kernel.Memory.Page(kernel.VmcoreInfoPage), bytes.AsSpan((int)vmcoreInfo.FileOffset, 4096).ToArray());
    }

    [Fact]
    public void WalkPages_StopsWhenTheCallbackSaysSo()
    {
        using var file = new TempFile(Kernel(false).ToElf());
        using var image = KernelImage.Open(file.Path);
        int all = image.EnumeratePages().Count();
        int seen = 0;

        Assert.True(image.WalkPages(_ => ++seen > 0));
        Assert.Equal(all, seen);
        seen = 0;
        Assert.False(image.WalkPages(_ => ++seen < 3));
        Assert.Equal(3, seen);
    }

    [Fact]
    public void SelfReferencingRootEntries_AreSkipped()
    {
        // Slots past the randomized direct-map range, which layout detection probes (a self-reference there would be
        // taken for the direct map).
        var kernel = Kernel(false);
        ulong root = kernel.Tables.Root;
        for (int i = 417; i < 500; i++)
        {
            if (BitConverter.ToUInt64(kernel.Memory.Read(root + ((ulong)i * 8), 8)) == 0)
            {
                kernel.Memory.WriteUInt64(root + ((ulong)i * 8), root | P | Rw);
            }
        }

        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);

        Assert.Equal(ExpectedKernelMap(kernel), image.EnumeratePages().Where(p => p.IsKernelMapped).Select(p => (p.KernelMapAddress, p.PhysicalAddress, p.Length, (ulong)p.Protection)));
    }

    [Fact]
    public void FanOutBeyondTheTableLimit_Throws()
    {
        var kernel = Kernel(false);

        // One PMD table whose 512 entries all name the same PTE table, under 512 PUD entries that all name that
        // PMD table: 262144 PTE-table visits from two pages.
        ulong pud = kernel.Memory.AllocatePage();
        ulong pmd = kernel.Memory.AllocatePage();
        ulong pte = kernel.Memory.AllocatePage();
        for (int i = 0; i < 512; i++)
        {
            kernel.Memory.WriteUInt64(pud + ((ulong)i * 8), pmd | P | Rw);
            kernel.Memory.WriteUInt64(pmd + ((ulong)i * 8), pte | P | Rw);
        }

        kernel.Memory.WriteUInt64(pte, 0x100000 | P | Rw);
        kernel.Memory.WriteUInt64(kernel.Tables.Root + (400 * 8), pud | P | Rw);
        using var file = new TempFile(kernel.ToElf());
        var limits = new KvmLimits { MaxPageTableWalkTables = 10_000 };
        using var image = KernelImage.Open(file.Path, new KernelImageOptions { Limits = limits });

        var e = Assert.Throws<CorruptImageException>(() => image.EnumeratePages().Count());

        Assert.Contains("MaxPageTableWalkTables", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Disposed_Throws()
    {
        using var file = new TempFile(Kernel(false).ToElf());
        var image = KernelImage.Open(file.Path);
        var pages = image.EnumeratePages();
        using var e = pages.GetEnumerator();
        Assert.True(e.MoveNext());
        image.Dispose();

        Assert.Throws<ObjectDisposedException>(() => e.MoveNext());
        Assert.Throws<ObjectDisposedException>(() => image.EnumeratePages());
    }

    /// <summary>
    /// The fake kernel plus kernel-map mappings of every kind: 4 KiB pages in vmalloc (one read-only and
    /// no-execute, one outside the image), one just below the direct map and one just past its region, a 1 GiB page
    /// outside the image, a page inside the direct map's region (not a kernel-map mapping) and a user page.
    /// </summary>
    private static FakeLinuxKernel Kernel(bool fiveLevel)
    {
        var k = new FakeLinuxKernel(fiveLevel);
        for (ulong pa = 0x100000; pa < 0x107000; pa += 0x1000)
        {
            k.Memory.Write(pa, KdumpBuilder.PatternPage((int)((pa >> 12) & 0xff)));
        }

        ulong pob = k.PageOffsetBase;
        k.Tables.Map(Vmalloc, 0x100000).Map(Vmalloc + 0x1000, 0x101000);
        k.Tables.SetPte(Vmalloc + 0x2000, 0x102000 | P | Nx);
        k.Tables.SetPte(Vmalloc + 0x3000, 0x7fff0000 | P | Rw | Nx);
        k.Tables.Map(pob - 0x1000, 0x106000);
        k.Tables.Map(pob + (1UL << 40), 0x105000);
        k.Tables.Map(pob + 0x80000000, 0x103000);
        k.Tables.Map(HighGig, 0x80000000, 1UL << 30);
        k.Tables.Map(0x1000, 0x104000);
        return k;
    }

    private static List<(ulong Va, ulong Pa, ulong Length, ulong Prot)> ExpectedKernelMap(FakeLinuxKernel k)
    {
        const ulong r = (ulong)PageProtection.Read;
        const ulong rw = (ulong)(PageProtection.Read | PageProtection.Write);
        var list = new List<(ulong, ulong, ulong, ulong)>
        {
            (k.PageOffsetBase - 0x1000, 0x106000, 4096, Rwx),
            (k.PageOffsetBase + (1UL << 40), 0x105000, 4096, Rwx),
            (Vmalloc, 0x100000, 4096, Rwx),
            (Vmalloc + 0x1000, 0x101000, 4096, Rwx),
            (Vmalloc + 0x2000, 0x102000, 4096, r),
            (Vmalloc + 0x3000, 0x7fff0000, 4096, rw),
            (HighGig, 0x80000000, 1UL << 30, Rwx),
        };
        for (ulong off = 0; off < FakeLinuxKernel.ImageSize; off += 0x200000)
        {
            list.Add((k.TextVa + off, k.PhysicalLoad + off, 0x200000, Rwx));
        }

        return list;
    }

    private static IEnumerable<ulong> Pfns(ulong pa, ulong length)
    {
        for (ulong off = 0; off < length && length <= 0x200000; off += 4096)
        {
            yield return (pa + off) >> 12;
        }
    }
}
