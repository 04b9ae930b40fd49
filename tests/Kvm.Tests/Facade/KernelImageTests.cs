using System.Text;
using Kvm.Testing;

namespace Kvm.Tests.Facade;

/// <summary>The façade over a builder-made kernel: layout discovery by every method, symbols, reads and writes.</summary>
public sealed class KernelImageTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Open_ElfWithVmcoreInfo_FindsLayoutFromVmcoreInfo(bool fiveLevel)
    {
        var kernel = new FakeLinuxKernel(fiveLevel);
        using var file = new TempFile(kernel.ToElf());
        using var map = new TempFile(kernel.SystemMap);
        using var image = KernelImage.Open(file.Path, new KernelImageOptions { Namelists = [map.Path] });

        Assert.Equal(DumpFormat.Elf, image.Format);
        Assert.Equal("vmcoreinfo", image.Layout.Method);
        Assert.Equal(fiveLevel ? 5 : 4, image.Layout.PagingLevels);
        Assert.Equal((long)kernel.KaslrOffset, image.KaslrOffset);
        Assert.Equal(kernel.PhysBase, image.Layout.PhysBase);
        Assert.Equal(kernel.PageOffsetBase, image.Layout.PageOffsetBase);
        Assert.Equal(FakeLinuxKernel.Release, image.Release);
        Assert.Equal(FakeLinuxKernel.Banner.TrimEnd('\n'), image.ReadBanner().TrimEnd('\n'));
    }

    [Fact]
    public void Open_ElfWithoutVmcoreInfo_UsesCr3AndSystemMap()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new TempFile(kernel.ToElf(vmcoreInfoNote: false));
        using var map = new TempFile(kernel.SystemMap);
        using var image = KernelImage.Open(file.Path, new KernelImageOptions { Namelists = [map.Path] });

        Assert.Equal("cpu-cr3", image.Layout.Method);
        Assert.Equal((long)kernel.KaslrOffset, image.KaslrOffset);
        Assert.True(image.Layout.KaslrOffsetKnown);
        Assert.Equal(kernel.PhysBase, image.Layout.PhysBase);
        Assert.Equal(kernel.TextVa + FakeLinuxKernel.BannerOffset, image.GetSymbol("linux_banner").Address);
        Assert.StartsWith("Linux version 6.1.0-fake", image.ReadBanner());
        Assert.Equal(0x1234_5678_9abcUL, image.Read<ulong>(image.GetSymbol("jiffies").Address));
    }

    [Fact]
    public void Open_RawImageWithNothingElse_FindsVmcoreInfoByScanningMemory()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new TempFile(kernel.ToRaw());
        using var image = KernelImage.Open(file.Path);

        Assert.Equal(DumpFormat.Raw, image.Format);
        Assert.NotNull(image.VmcoreInfo);
        Assert.Contains("memory scan", image.VmcoreInfo!.Source, StringComparison.Ordinal);
        Assert.Equal((long)kernel.KaslrOffset, image.KaslrOffset);
        Assert.True(image.TryReadUtsname(out var uts));
        Assert.Equal(FakeLinuxKernel.Release, uts!.Release);
        Assert.Equal("x86_64", uts.Machine);
    }

    [Fact]
    public void Open_NoLayoutAnywhere_FailsWithClearMessage()
    {
        var memory = new PhysicalMemoryBuilder();
        memory.Write(0x200000 - 1, [1]);
        using var file = new TempFile(memory.ToFlat(0x200000));
        var e = Assert.Throws<KvmException>(() => KernelImage.Open(file.Path));
        Assert.Equal(KvmErrorCode.KernelLayout, e.Code);
        Assert.Contains("cannot find the kernel's page tables", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Symbols_LeadingUnderscoreIsOptional_AndMissingSymbolsThrow()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new TempFile(kernel.ToElf());
        using var map = new TempFile(kernel.SystemMap);
        using var image = KernelImage.Open(file.Path, new KernelImageOptions { Namelists = [map.Path] });

        Assert.True(image.TryGetSymbol("_jiffies", out var jiffies));
        Assert.Equal(kernel.TextVa + FakeLinuxKernel.JiffiesOffset, jiffies.Address);
        Assert.True(image.TryGetSymbol("_text", out var text));
        Assert.Equal(kernel.TextVa, text.Address);

        // Per-CPU symbols are offsets into the per-CPU area: never displaced by KASLR.
        Assert.Equal(0x1f000UL, image.GetSymbol("current_task").Address);
        Assert.Throws<SymbolNotFoundException>(() => image.GetSymbol("no_such_symbol"));
        Assert.Equal((long)kernel.KaslrOffset, image.Namelists[0].Displacement);
    }

    [Fact]
    public void Symbols_ResolverIsConsultedFirst()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new TempFile(kernel.ToElf());
        var asked = new List<string>();
        using var image = KernelImage.Open(file.Path, new KernelImageOptions
        {
            Resolver = name =>
            {
                asked.Add(name);
                return name == "my_symbol" ? 0xffffffff81234567UL : null;
            },
        });

        Assert.Equal(0xffffffff81234567UL, image.GetSymbol("my_symbol").Address);
        Assert.Equal("resolver", image.GetSymbol("my_symbol").Source);
        Assert.Equal(kernel.TextVa, image.GetSymbol("_stext").Address);
        Assert.Contains("_stext", asked);
    }

    [Fact]
    public void Read_RunsIntoUnmappedPage_ReturnsPartialCountAndFault()
    {
        var kernel = new FakeLinuxKernel();
        kernel.Memory.Write(kernel.PhysicalLoad + FakeLinuxKernel.ImageSize - 16, new byte[16]);
        kernel.Memory.Write(kernel.PhysicalLoad + FakeLinuxKernel.ImageSize, new byte[16]);
        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);

        // The text map ends at _text + 16 MiB: a read straddling the end stops exactly there.
        ulong end = kernel.TextVa + FakeLinuxKernel.ImageSize;
        var buffer = new byte[64];
        Assert.False(image.TryRead(end - 16, buffer, out int n, out var fault));
        Assert.Equal(16, n);
        Assert.Equal(end, fault!.Address);
        Assert.Equal(MemoryFaultReason.NotMapped, fault.Reason);
        Assert.Contains("not present", fault.Message, StringComparison.Ordinal);
        Assert.Equal(16, image.Read(end - 16, buffer));
        Assert.Throws<MemoryFaultException>(() => image.ReadExactly(end - 16, buffer));
    }

    [Fact]
    public void Read_DirectMapAndTextMapAgree()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);

        ulong bannerPa = kernel.PhysicalLoad + FakeLinuxKernel.BannerOffset;
        var viaText = new byte[32];
        var viaDirect = new byte[32];
        var viaPhys = new byte[32];
        image.ReadExactly(kernel.TextVa + FakeLinuxKernel.BannerOffset, viaText);
        image.ReadExactly(kernel.PageOffsetBase + bannerPa, viaDirect);
        Assert.Equal(32, image.ReadPhysical(bannerPa, viaPhys));
        Assert.Equal(viaText, viaDirect);
        Assert.Equal(viaText, viaPhys);
        Assert.StartsWith("Linux version", Encoding.ASCII.GetString(viaText), StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_DescribesTheWalk()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);

        var walk = image.Translate(kernel.TextVa + 0x1234);
        Assert.True(walk.Succeeded);
        Assert.Equal(kernel.PhysicalLoad + 0x1234, walk.PhysicalAddress);
        Assert.Equal(0x200000UL, walk.PageSize);
        Assert.Equal(["pgd", "pud", "pmd"], walk.Steps.Select(s => s.Level));
        Assert.True(walk.Steps[^1].IsLeaf);
        Assert.Equal(kernel.Tables.Root, walk.Steps[0].TableAddress);
        Assert.Equal(511, walk.Steps[0].Index);
    }

    [Fact]
    public void Write_RoundTripsOnWritableElf_AndIsRefusedReadOnly()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new TempFile(kernel.ToElf());
        ulong jiffies = kernel.TextVa + FakeLinuxKernel.JiffiesOffset;
        using (var ro = KernelImage.Open(file.Path))
        {
            var e = Assert.Throws<KvmException>(() => ro.Write(jiffies, [1, 2, 3, 4]));
            Assert.Equal(KvmErrorCode.ReadOnly, e.Code);
        }

        byte[] before = File.ReadAllBytes(file.Path);
        using (var rw = KernelImage.Open(file.Path, new KernelImageOptions { Writable = true }))
        {
            rw.Write(jiffies, [0xde, 0xad, 0xbe, 0xef]);
            Assert.Equal(0xefbeaddeu, rw.Read<uint>(jiffies));
        }

        using (var again = KernelImage.Open(file.Path))
        {
            Assert.Equal(0xefbeaddeu, again.Read<uint>(jiffies));
        }

        byte[] after = File.ReadAllBytes(file.Path);
        Assert.Equal(before.Length, after.Length);
        Assert.Equal(4, before.Zip(after).Count(p => p.First != p.Second));
    }

    [Fact]
    public void Read_ManyThreadsOnOneImage_GetCorrectBytes()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);
        var expected = kernel.Memory.Read(kernel.PhysicalLoad + FakeLinuxKernel.BannerOffset, 64);
        Parallel.For(0, 8, _ =>
        {
            for (int i = 0; i < 200; i++)
            {
                var buffer = new byte[64];
                image.ReadExactly(kernel.TextVa + FakeLinuxKernel.BannerOffset, buffer);
                Assert.Equal(expected, buffer);
                image.ReadExactly(kernel.PageOffsetBase + kernel.PhysicalLoad + FakeLinuxKernel.BannerOffset, buffer);
                Assert.Equal(expected, buffer);
            }
        });
        Assert.Contains(image.CacheStatistics, s => s.Name == "tlb" && s.Hits > 0);
    }
}
