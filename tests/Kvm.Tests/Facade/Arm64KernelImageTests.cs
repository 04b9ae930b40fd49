using Kvm.Testing;

namespace Kvm.Tests.Facade;

/// <summary>The façade over a builder-made Linux arm64 kernel: layout from VMCOREINFO, the memory scan, KASLR, symbols and reads.</summary>
public sealed class Arm64KernelImageTests
{
    public static TheoryData<ulong, int, int> Configurations => new()
    {
        { 4096, 39, 3 },
        { 4096, 48, 4 },
        { 4096, 52, 5 },
        { 16384, 36, 2 },
        { 16384, 47, 3 },
        { 16384, 48, 4 },
        { 16384, 52, 4 },
        { 65536, 42, 2 },
        { 65536, 48, 3 },
        { 65536, 52, 3 },
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public void Open_ElfWithVmcoreInfo_FindsTheArm64Layout(ulong granule, int vaBits, int levels)
    {
        var kernel = new FakeArm64Kernel(granule, vaBits);
        using var file = new TempFile(kernel.ToElf());
        using var map = new TempFile(kernel.SystemMap);
        using var image = KernelImage.Open(file.Path, new KernelImageOptions { Namelists = [map.Path] });

        Assert.Equal("aarch64", image.Architecture);
        Assert.Equal(PagingMode.Arm64, image.Layout.PagingMode);
        Assert.Equal("vmcoreinfo", image.Layout.Method);
        Assert.Equal((int)granule, image.Layout.GranuleSize);
        Assert.Equal(vaBits, image.Layout.VirtualAddressBits);
        Assert.Equal(levels, image.Layout.PagingLevels);
        Assert.StartsWith($"aarch64, {granule >> 10} KiB granule, {vaBits}-bit VA, {levels} levels", image.Layout.PagingDescription, StringComparison.Ordinal);
        Assert.Equal(kernel.Tables.Root, image.Layout.PageTableRoot);
        Assert.Equal(kernel.KimageVoffset, image.Layout.KimageVoffset);
        Assert.Equal(kernel.PageOffset, image.Layout.PageOffsetBase);
        Assert.Equal((long)kernel.KaslrOffset, image.KaslrOffset);
        Assert.True(image.Layout.KaslrOffsetKnown);
        Assert.Equal(FakeArm64Kernel.Release, image.Release);

        // A link-time System.map is displaced by KERNELOFFSET; the image map and the linear map both read.
        Assert.Equal(kernel.TextVa + FakeArm64Kernel.BannerOffset, image.GetSymbol("linux_banner").Address);
        Assert.Equal(FakeArm64Kernel.Banner, image.ReadBanner());
        Assert.Equal(0x1234_5678_9abcUL, image.Read<ulong>(image.GetSymbol("jiffies").Address));
        ulong linear = kernel.PageOffset + kernel.PhysicalLoad + FakeArm64Kernel.JiffiesOffset - kernel.PhysOffset;
        Assert.Equal(0x1234_5678_9abcUL, image.Read<ulong>(linear));
        Assert.True(image.TryReadUtsname(out var uts));
        Assert.Equal("aarch64", uts!.Machine);
    }

    [Fact]
    public void Open_RawImageWithNothingElse_FindsVmcoreInfoByScanningMemory()
    {
        var kernel = new FakeArm64Kernel();
        using var file = new TempFile(kernel.ToRaw());
        using var image = KernelImage.Open(file.Path);

        Assert.Equal(DumpFormat.Raw, image.Format);
        Assert.Contains("memory scan", image.VmcoreInfo!.Source, StringComparison.Ordinal);
        Assert.Equal("aarch64", image.Architecture);
        Assert.Equal((long)kernel.KaslrOffset, image.KaslrOffset);
        Assert.True(image.TryReadUtsname(out var uts));
        Assert.Equal(FakeArm64Kernel.Release, uts!.Release);
    }

    [Fact]
    public void Open_ElfWithoutVmcoreInfoNote_FindsTheKernelsOwnPage()
    {
        var kernel = new FakeArm64Kernel(physOffset: 0x4000_0000, physicalLoad: 0x4020_0000);
        using var file = new TempFile(kernel.ToElf(vmcoreInfoNote: false));
        using var image = KernelImage.Open(file.Path);

        Assert.Contains("memory scan", image.VmcoreInfo!.Source, StringComparison.Ordinal);
        Assert.Equal(0x4000_0000L, image.Layout.PhysBase);
        Assert.Equal(kernel.PageOffset, image.Layout.PageOffsetBase);
        Assert.Equal(FakeArm64Kernel.Banner, image.ReadCString(kernel.PageOffset + 0x20_0000 + FakeArm64Kernel.BannerOffset));
    }

    [Theory]
    [InlineData(0UL)]
    [InlineData(0x1f40000UL)]
    public void KaslrOffset_IsKernelOffset(ulong kaslr)
    {
        var kernel = new FakeArm64Kernel(kaslrOffset: kaslr);
        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);

        Assert.Equal((long)kaslr, image.KaslrOffset);
        Assert.Equal(kernel.TextVa, image.GetSymbol("_stext").Address);
        Assert.True(image.TryTranslate(kernel.SwapperPgDirVa, out ulong pa));
        Assert.Equal(kernel.Tables.Root, pa);
    }

    [Fact]
    public void Open_WithoutTcrT1sz_UsesVaBits()
    {
        var kernel = new FakeArm64Kernel(vaBits: 39, exportT1sz: false);
        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);

        Assert.Equal(39, image.Layout.VirtualAddressBits);
        Assert.True(image.TryReadUtsname(out _));
    }

    [Fact]
    public void Translate_DescribesTheWalkWithKernelLevelNames()
    {
        var kernel = new FakeArm64Kernel();
        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);

        var walk = image.Translate(kernel.TextVa + 0x123);
        Assert.Equal(["pgd", "pud", "pmd", "pte"], walk.Steps.Select(s => s.Level));
        Assert.Equal(kernel.PhysicalLoad + 0x123, walk.PhysicalAddress);
        Assert.Equal(4096UL, walk.PageSize);

        var linear = image.Translate(kernel.PageOffset + 0x1234_5678);
        Assert.Equal(["pgd", "pud"], linear.Steps.Select(s => s.Level));
        Assert.Equal(1UL << 30, linear.PageSize);

        var hole = image.Translate(kernel.PageOffset + (1UL << 40));
        Assert.False(hole.Succeeded);
        Assert.Equal("cannot translate 0xffff010000000000: pgd[2] = 0x0 not present", hole.Fault!.Message);
    }

    [Fact]
    public void Open_WrongKimageVoffset_FailsNamingTheArm64Keys()
    {
        var kernel = new FakeArm64Kernel();
        string text = kernel.VmcoreInfoText.Replace($"NUMBER(kimage_voffset)=0x{kernel.KimageVoffset:x}", "NUMBER(kimage_voffset)=0x1000", StringComparison.Ordinal);
        var elf = new ElfCoreBuilder { Machine = 183 }.AddVmcoreInfo(text).AddPhysicalMemory(kernel.Memory).Build();
        using var file = new TempFile(elf);

        var e = Assert.Throws<KvmException>(() => KernelImage.Open(file.Path));
        Assert.Equal(KvmErrorCode.KernelLayout, e.Code);
        Assert.Contains("kimage_voffset", e.Message, StringComparison.Ordinal);
    }
}
