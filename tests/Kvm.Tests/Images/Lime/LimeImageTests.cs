using Kvm.Images;
using Kvm.Images.Lime;
using Kvm.Testing;
using Kvm.Tests.Images.Elf;
using static Kvm.Tests.Images.Elf.ElfTestData;

namespace Kvm.Tests.Images.Lime;

public sealed class LimeImageTests
{
    [Fact]
    public void Builder_Header_IsTheLimeHLayout()
    {
        var bytes = new LimeBuilder().AddRange(0x1000, new byte[0x10]).Build();

        Assert.Equal(32 + 0x10, bytes.Length);
        Assert.Equal("EMiL"u8.ToArray(), bytes.AsSpan(0, 4).ToArray()); // 0x4C694D45 little-endian
        Assert.Equal(1u, GetU32(bytes, 4));
        Assert.Equal(0x1000UL, GetU64(bytes, 8));
        Assert.Equal(0x100fUL, GetU64(bytes, 16));          // inclusive end
        Assert.Equal(new byte[8], bytes.AsSpan(24, 8).ToArray());
    }

    [Fact]
    public void Open_TwoRanges_ReadsDataAndReportsHole()
    {
        var low = Pattern(0x9f000, 30);
        var high = Pattern(0x3000, 31);
        using var file = new ScratchFile(new LimeBuilder().AddRange(0x1000, low).AddRange(0x100000, high).Build());
        using var image = file.Open();

        Assert.IsType<LimeImage>(image);
        Assert.Equal(DumpFormat.Lime, image.Format);
        Assert.Equal("LiME image", image.Description);
        Assert.Equal([new PhysicalRange(0x1000, 0x9f000), new PhysicalRange(0x100000, 0x3000)], image.PhysicalRanges);

        var buffer = new byte[0x40];
        Assert.Equal(0x40, image.ReadPhysical(0x101000, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal(high.AsSpan(0x1000, 0x40).ToArray(), buffer);

        Assert.Equal(0x20, image.ReadPhysical(0x9ffe0, buffer, out status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);
        Assert.Equal(low.AsSpan(0x9efe0, 0x20).ToArray(), buffer.AsSpan(0, 0x20).ToArray());

        Assert.Equal(0, image.ReadPhysical(0x0, buffer, out status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);
        Assert.Equal(0, image.ReadPhysical(0x103000, buffer, out status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);
    }

    [Fact]
    public void ReadPhysical_AdjacentRanges_ReadsAcrossTheHeaderBetweenThem()
    {
        var a = Pattern(0x1000, 32);
        var b = Pattern(0x1000, 33);
        using var file = new ScratchFile(new LimeBuilder().AddRange(0, a).AddRange(0x1000, b).Build());
        using var image = file.Open();

        var buffer = new byte[0x40];
        Assert.Equal(0x40, image.ReadPhysical(0xfe0, buffer, out var status));

        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal([.. a.AsSpan(0xfe0, 0x20), .. b.AsSpan(0, 0x20)], buffer);
        Assert.Equal([new PhysicalRange(0, 0x2000)], image.PhysicalRanges);
    }

    [Fact]
    public void Open_OneByteRange_IsAccepted()
    {
        using var file = new ScratchFile(new LimeBuilder().AddRange(0x5000, [0xab]).AddRange(0x6000, [0xcd, 0xef]).Build());
        using var image = file.Open();

        Assert.Equal([new PhysicalRange(0x5000, 1), new PhysicalRange(0x6000, 2)], image.PhysicalRanges);
        var one = new byte[1];
        Assert.Equal(1, image.ReadPhysical(0x5000, one, out _));
        Assert.Equal(0xab, one[0]);
    }

    [Theory]
    [InlineData(0x1000UL, 0x1fffUL, "out of order")]  // starts below the previous range
    [InlineData(0x2800UL, 0x3fffUL, "out of order")]  // overlaps the previous range's last bytes
    [InlineData(0x2fffUL, 0x3fffUL, "out of order")]  // overlaps by exactly one byte (e_addr is inclusive)
    public void Open_OutOfOrderOrOverlappingRanges_AreRejected(ulong start, ulong end, string phrase)
    {
        var builder = new LimeBuilder()
            .AddRange(0x2000, new byte[0x1000])
            .AddRawRange(LimeBuilder.Magic, 1, start, end, new byte[(int)(end - start + 1)]);
        using var file = new ScratchFile(builder.Build());

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("LiME range 1", ex.Message);
        Assert.Contains(phrase, ex.Message);
        Assert.Contains($"offset 0x{builder.HeaderOffset(1):x}", ex.Message);
    }

    [Theory]
    [InlineData(0x2000UL, 0x1fffUL)]               // end before start
    [InlineData(0x0UL, 0xffffffffffffffffUL)]      // length 2^64
    public void Open_InvalidRange_IsRejected(ulong start, ulong end)
    {
        using var file = new ScratchFile(new LimeBuilder().AddRange(0, new byte[16]).AddRawRange(LimeBuilder.Magic, 1, start, end, new byte[16]).Build());

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("invalid", ex.Message);
    }

    [Theory]
    [InlineData(0x4C694D46u, 1u)]
    [InlineData(0x454D694Cu, 1u)] // byte-swapped magic
    [InlineData(LimeBuilder.Magic, 2u)]
    public void Open_BadHeaderInLaterRange_IsRejected(uint magic, uint version)
    {
        var builder = new LimeBuilder()
            .AddRange(0, new byte[0x1000])
            .AddRawRange(magic, version, 0x1000, 0x1fff, new byte[0x1000]);
        using var file = new ScratchFile(builder.Build());

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("bad LiME range header 1", ex.Message);
        Assert.Contains("offset 0x1020", ex.Message);
        Assert.Contains(file.Path, ex.Message);
    }

    [Fact]
    public void ReadPhysical_TruncatedLastRange_StopsWithTruncated()
    {
        var data = Pattern(0x2000, 34);
        var bytes = new LimeBuilder().AddRange(0, new byte[0x1000]).AddRange(0x10000, data).Build();
        using var file = new ScratchFile(bytes.AsSpan(0, bytes.Length - 0x1000).ToArray());
        using var image = file.Open();

        Assert.Equal([new PhysicalRange(0, 0x1000), new PhysicalRange(0x10000, 0x2000)], image.PhysicalRanges);
        var buffer = new byte[0x100];
        Assert.Equal(0x80, image.ReadPhysical(0x10f80, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.Truncated, status);
        Assert.Equal(data.AsSpan(0xf80, 0x80).ToArray(), buffer.AsSpan(0, 0x80).ToArray());
        Assert.Equal(0, image.ReadPhysical(0x11800, buffer, out status));
        Assert.Equal(PhysicalReadStatus.Truncated, status);
    }

    [Fact]
    public void Open_TruncatedRangeHeader_IsRejected()
    {
        var bytes = new LimeBuilder().AddRange(0, new byte[0x1000]).AddRange(0x1000, new byte[0x1000]).Build();
        using var file = new ScratchFile(bytes.AsSpan(0, 32 + 0x1000 + 20).ToArray());

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("truncated LiME range header 1 at offset 0x1020", ex.Message);
    }

    [Fact]
    public void Open_MoreRangesThanLimit_IsRejected()
    {
        var builder = new LimeBuilder();
        for (int i = 0; i < 4; i++)
        {
            builder.AddRange((ulong)i * 0x2000, new byte[16]);
        }

        using var file = new ScratchFile(builder.Build());

        var ex = Assert.Throws<CorruptImageException>(() => file.Open(limits: new KvmLimits { MaxLimeRanges = 3 }));
        Assert.Contains("more than 3 LiME ranges", ex.Message);
        using var ok = file.Open(limits: new KvmLimits { MaxLimeRanges = 4 });
        Assert.Equal(4, ok.PhysicalRanges.Count);
    }

    [Theory]
    [InlineData(LimeBuilder.Magic, 1u, true)]
    [InlineData(LimeBuilder.Magic, 2u, false)]
    [InlineData(0x4C694D44u, 1u, false)]
    public void Probe_FirstHeader_NeedsMagicAndVersionOne(uint magic, uint version, bool expected)
    {
        var bytes = new LimeBuilder().AddRawRange(magic, version, 0, 0xf, new byte[16]).Build();

        Assert.Equal(expected, new LimeFormat().Probe(bytes, bytes.Length));
        Assert.False(new LimeFormat().Probe(bytes.AsSpan(0, 31), 31));
    }

    [Fact]
    public void WritePhysical_WritableLime_RoundTrips()
    {
        var bytes = new LimeBuilder().AddRange(0x1000, new byte[0x1000]).AddRange(0x2000, new byte[0x1000]).Build();
        using var file = new ScratchFile(bytes);
        var patch = Pattern(0x40, 35);
        using (var image = file.Open(writable: true))
        {
            Assert.Equal(0x40, image.WritePhysical(0x1fe0, patch));
        }

        var after = file.ReadAll();
        Assert.Equal(patch.AsSpan(0, 0x20).ToArray(), after.AsSpan(32 + 0xfe0, 0x20).ToArray());
        Assert.Equal(patch.AsSpan(0x20).ToArray(), after.AsSpan(32 + 0x1000 + 32, 0x20).ToArray());
        Assert.Equal(bytes.AsSpan(0x1020, 32).ToArray(), after.AsSpan(0x1020, 32).ToArray()); // second header intact
    }

    [Fact]
    public void ReadPhysical_HugeTruncatedRange_ReportsTruncated()
    {
        // A hostile header may claim a range longer than long.MaxValue; the file holds only 16 bytes of it.
        var data = Pattern(16, 36);
        var bytes = new LimeBuilder().AddRawRange(LimeBuilder.Magic, 1, 0x1000, 0xfffffffffffffff0, data).Build();
        using var file = new ScratchFile(bytes);
        using var image = file.Open();
        var buffer = new byte[16];

        Assert.Equal(16, image.ReadPhysical(0x1000, buffer, out var status));
        Assert.Equal(data, buffer);

        // In-range offsets that still fit a file offset; beyond long.MaxValue see the skipped test below.
        foreach (ulong pa in new ulong[] { 0x1010, 0x2000, 0x7ffffffffff00000 })
        {
            Assert.Equal(0, image.ReadPhysical(pa, buffer, out status));
            Assert.Equal(PhysicalReadStatus.Truncated, status);
        }
    }

    [Fact]
    public void ReadPhysical_RangeLongerThanAnyFile_NeverReturnsBytesFromElsewhere()
    {
        // s_addr 0, e_addr 2^64 - 2: at 2^64 - 32 the data offset (32) plus the in-range offset wraps to file offset 0.
        var bytes = new LimeBuilder().AddRawRange(LimeBuilder.Magic, 1, 0, 0xfffffffffffffffe, Pattern(16, 37)).Build();
        using var file = new ScratchFile(bytes);
        DumpImage image;
        try
        {
            image = file.Open();
        }
        catch (CorruptImageException)
        {
            return; // rejecting the impossible range is fine too
        }

        using (image)
        {
            var buffer = new byte[16];
            Assert.Equal(0, image.ReadPhysical(0xffffffffffffffe0, buffer, out var status));
            Assert.Equal(PhysicalReadStatus.Truncated, status);
        }
    }
}
