using Kvm.Images;
using Kvm.Images.Raw;
using Kvm.Testing;
using Kvm.Tests.Images.Elf;
using static Kvm.Tests.Images.Elf.ElfTestData;

namespace Kvm.Tests.Images.Raw;

public sealed class RawImageTests
{
    private const long MiB = 1 << 20;

    [Theory]
    [InlineData(MiB, true)]
    [InlineData(2 * MiB, true)]
    [InlineData(MiB + 4096, true)]
    [InlineData(MiB - 4096, false)]
    [InlineData(MiB + 1, false)]
    [InlineData(MiB + 2048, false)]
    [InlineData(0L, false)]
    [InlineData(4096L, false)]
    public void Probe_NeedsOneMiBAndPageAlignment(long length, bool expected)
    {
        Assert.Equal(expected, new RawFormat().Probe(new byte[16], length));
    }

    [Fact]
    public void Open_PageAlignedFile_IsRawWithOffsetEqualToPhysicalAddress()
    {
        var contents = Pattern((int)MiB, 40);
        using var file = new ScratchFile(contents);
        using var image = file.Open();

        Assert.IsType<RawImage>(image);
        Assert.Equal(DumpFormat.Raw, image.Format);
        Assert.Equal([new PhysicalRange(0, (ulong)MiB)], image.PhysicalRanges);

        var buffer = new byte[0x100];
        Assert.Equal(0x100, image.ReadPhysical(0x7ff80, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal(contents.AsSpan(0x7ff80, 0x100).ToArray(), buffer);
    }

    [Fact]
    public void ReadPhysical_PastTheEnd_StopsWithNotInImage()
    {
        var contents = Pattern((int)MiB, 41);
        using var file = new ScratchFile(contents);
        using var image = file.Open();
        var buffer = new byte[0x20];

        Assert.Equal(0x10, image.ReadPhysical((ulong)MiB - 0x10, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);
        Assert.Equal(0, image.ReadPhysical((ulong)MiB, buffer, out status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);
    }

    [Fact]
    public void Open_FakeKernelRaw_ReadsItsBanner()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new ScratchFile(kernel.ToRaw());
        using var image = file.Open();

        var banner = new byte[FakeLinuxKernel.Banner.Length];
        Assert.Equal(banner.Length, image.ReadPhysical(kernel.PhysicalLoad + FakeLinuxKernel.BannerOffset, banner, out _));
        Assert.Equal(FakeLinuxKernel.Banner, System.Text.Encoding.ASCII.GetString(banner));
    }

    [Fact]
    public void WritePhysical_Writable_WritesAtThePhysicalOffset()
    {
        using var file = new ScratchFile(new byte[MiB]);
        using (var image = file.Open(writable: true))
        {
            Assert.Equal(4, image.WritePhysical(0x12345, new byte[] { 1, 2, 3, 4 }));
            Assert.Equal(2, image.WritePhysical((ulong)MiB - 2, new byte[] { 5, 6, 7, 8 }));
        }

        var after = file.ReadAll();
        Assert.Equal(MiB, after.LongLength);
        Assert.Equal([1, 2, 3, 4], after.AsSpan(0x12345, 4).ToArray());
        Assert.Equal([5, 6], after.AsSpan((int)MiB - 2).ToArray());
    }
}
