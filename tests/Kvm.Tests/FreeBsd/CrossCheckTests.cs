using Kvm.Testing;
using Kvm.Testing.FreeBsd;

namespace Kvm.Tests.FreeBsd;

/// <summary>
/// The oracle libkvm-api.md §5.2 suggests (libfbsdvmcore's minidump-to-elf): a minidump and a full ELF dump of the
/// same memory and page tables must read every kernel address alike and list the same kernel map, the minidump
/// through its page map and sparse pages, the full dump through KPML4phys and the kernel's own tables.
/// </summary>
public sealed class CrossCheckTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void MinidumpAndFullDump_ReadEveryKernelAddressAlike_AndWalkTheSameKernelMap(bool withGigabytePage)
    {
        var kernel = new FreeBsdAmd64Kernel(withGigabytePage: withGigabytePage);
        using var mini = new TempFile(kernel.Minidump(), "vmcore.0");
        var dumped = kernel.LastDumpSet!;
        using var full = new TempFile(kernel.FullDump(), "vmcore.1");
        using var elf = new TempFile(kernel.KernelElf(), "kernel");
        var options = new KernelImageOptions { Namelists = [elf.Path] };
        using var a = KernelImage.Open(mini.Path, options);
        using var b = KernelImage.Open(full.Path, options);

        Assert.Equal(DumpFormat.Minidump, a.Format);
        Assert.Equal(DumpFormat.Elf, b.Format);
        Assert.Equal(KernelOperatingSystem.FreeBsd, b.OperatingSystem);
        Assert.Equal("FreeBSD full dump (ELF64 core)", b.FormatDescription);
        Assert.Equal("KPML4phys", b.Layout.Method);
        Assert.Equal(kernel.Tables.Root, b.Layout.PageTableRoot);

        var kmapA = a.EnumeratePages().TakeWhile(p => p.IsKernelMapped).ToList();
        var kmapB = b.EnumeratePages().TakeWhile(p => p.IsKernelMapped).ToList();
        Assert.Equal(
            kmapA.Select(p => (p.KernelMapAddress, p.PhysicalAddress, p.DirectMapAddress, p.Protection, p.Length)),
            kmapB.Select(p => (p.KernelMapAddress, p.PhysicalAddress, p.DirectMapAddress, p.Protection, p.Length)));
        Assert.Contains(kmapA, p => p.Length == 1UL << 21);
        Assert.Equal(withGigabytePage ? 512 : 0, kmapA.Count(p => p.KernelMapAddress >= FreeBsdAmd64Kernel.Kmem1G && p.KernelMapAddress < FreeBsdAmd64Kernel.Kmem1G + (1UL << 30)));

        // Every kernel-map page, and the direct-map address of every page the minidump holds, read alike wherever the
        // minidump holds the page; where it does not, the full dump still may.
        var pageA = new byte[4096];
        var pageB = new byte[4096];
        int compared = 0;
        foreach (var p in kmapA)
        {
            for (ulong off = 0; off < p.Length; off += 4096)
            {
                ulong va = p.KernelMapAddress + off;
                bool okA = a.TryRead(va, pageA, out _, out var faultA);
                bool okB = b.TryRead(va, pageB, out _, out _);
                if (okA)
                {
                    Assert.True(okB, $"0x{va:x} reads from the minidump but not from the full dump");
                    Assert.Equal(pageB, pageA);
                    compared++;
                }
                else
                {
                    Assert.False(dumped.IsDumpable(p.PhysicalAddress + off) && dumped.Pages.Contains(p.PhysicalAddress + off), $"0x{va:x}: {faultA?.Message}");
                }
            }
        }

        foreach (ulong pa in dumped.Pages)
        {
            ulong va = Amd64MinidumpBuilder.DmapMinAddress + pa;
            a.ReadExactly(va, pageA);
            b.ReadExactly(va, pageB);
            Assert.Equal(pageB, pageA);
            compared++;
        }

        Assert.True(compared > 500, $"only {compared} pages compared");

        // Direct-map-only pages: the minidump lists those it holds; the full dump those and every other RAM page.
        var onlyA = a.EnumeratePages().Where(p => !p.IsKernelMapped).Select(p => (p.PhysicalAddress, p.DirectMapAddress)).ToList();
        var onlyB = b.EnumeratePages().Where(p => !p.IsKernelMapped).Select(p => (p.PhysicalAddress, p.DirectMapAddress)).ToHashSet();
        Assert.Subset(onlyB, onlyA.ToHashSet());
        var held = dumped.Pages.ToHashSet();
        Assert.Equal(onlyA, onlyB.Where(p => held.Contains(p.PhysicalAddress)).Order());
        // With the 1 GiB page over physical 0, the kernel map reaches every RAM page, and none is direct-map only.
        foreach (var pa in kernel.DirectMapOnlyPages)
        {
            Assert.Equal(!withGigabytePage, onlyA.Contains((pa, Amd64MinidumpBuilder.DmapMinAddress + pa)));
        }
    }

    [Fact]
    public void MinidumpWalk_OffsetsAreTheSparseAreaOffsets_AndTheBytesAreThere()
    {
        var kernel = new FreeBsdAmd64Kernel();
        byte[] bytes = kernel.Minidump();
        using var mini = new TempFile(bytes, "vmcore.0");
        using var image = KernelImage.Open(mini.Path);
        var page = new byte[4096];
        int checkedPages = 0;
        foreach (var p in image.EnumeratePages())
        {
            if (p.FileOffset < 0)
            {
                // Device memory, and large pages whose pages the dump does not all hold.
                Assert.True(p.PhysicalAddress >= 0xfe000000 || p.Length > 4096);
                continue;
            }

            Assert.Equal(0, p.FileOffset % 4096);
            Assert.Equal(4096, image.ReadPhysical(p.PhysicalAddress, page));
            Assert.Equal(page, bytes.AsSpan((int)p.FileOffset, 4096).ToArray());
            checkedPages++;
        }

        Assert.True(checkedPages > 30);
    }

    [Fact]
    public void WalkPages_StopsWhenTheCallbackSaysSo()
    {
        var kernel = new FreeBsdAmd64Kernel();
        using var mini = new TempFile(kernel.Minidump(), "vmcore.0");
        using var image = KernelImage.Open(mini.Path);
        int calls = 0;
        Assert.False(image.WalkPages(_ => ++calls < 3));
        Assert.Equal(3, calls);
        Assert.True(image.WalkPages(_ => true));
    }

    [Fact]
    public void FullDump_NeedsTheKernelsSymbols()
    {
        var kernel = new FreeBsdAmd64Kernel();
        using var full = new TempFile(kernel.FullDump(), "vmcore.1");
        var e = Assert.Throws<KvmException>(() => KernelImage.Open(full.Path));
        Assert.Equal(KvmErrorCode.SymbolNotFound, e.Code);
        Assert.Contains("kernbase", e.Message, StringComparison.Ordinal);

        // A resolver is enough (libkvm's kvm_open2 way for non-native kernels).
        var symbols = new Dictionary<string, ulong> { ["kernbase"] = FreeBsdAmd64Kernel.KernBase, ["KPML4phys"] = FreeBsdAmd64Kernel.KPml4PhysAddress };
        using var image = KernelImage.Open(full.Path, new KernelImageOptions { Resolver = n => symbols.TryGetValue(n, out var v) ? v : null });
        Assert.Equal(FreeBsdAmd64Kernel.Pattern(3), ReadPage(image, FreeBsdAmd64Kernel.KmemBase + (3 * 4096)));
    }

    [Fact]
    public void FullDump_UnmarkedCore_IsFreeBsdWhenTheNamelistIs()
    {
        var kernel = new FreeBsdAmd64Kernel();
        var elf = new ElfCoreBuilder { Machine = 62 };
        foreach (var (start, end) in kernel.DumpAvail)
        {
            elf.AddLoad(start, start, kernel.Memory.Read(start, (int)(end - start)));
        }

        using var full = new TempFile(elf.Build(), "vmcore.1");
        using var kernelElf = new TempFile(kernel.KernelElf(), "kernel");
        using var image = KernelImage.Open(full.Path, new KernelImageOptions { Namelists = [kernelElf.Path] });
        Assert.Equal(KernelOperatingSystem.FreeBsd, image.OperatingSystem);
        Assert.Equal(FreeBsdAmd64Kernel.Osrelease, image.Release);
    }

    [Fact]
    public void FullDump_KPml4PhysOutsideTheDump_IsNamed()
    {
        var kernel = new FreeBsdAmd64Kernel();
        using var full = new TempFile(kernel.FullDump(), "vmcore.1");
        var symbols = new Dictionary<string, ulong> { ["kernbase"] = FreeBsdAmd64Kernel.KernBase, ["KPML4phys"] = FreeBsdAmd64Kernel.KernBase + 0x7000_0000 };
        var e = Assert.Throws<CorruptImageException>(() => KernelImage.Open(full.Path, new KernelImageOptions { Resolver = n => symbols.TryGetValue(n, out var v) ? v : null }));
        Assert.Contains("KPML4phys", e.Message, StringComparison.Ordinal);
    }

    private static byte[] ReadPage(KernelImage image, ulong va)
    {
        var page = new byte[4096];
        image.ReadExactly(va, page);
        return page;
    }
}
