using System.Buffers.Binary;
using System.Text;
using Kvm.Images.Kdump;
using Kvm.Testing.Kdump;
using static Kvm.Tests.Images.Kdump.KdumpTestSupport;

namespace Kvm.Tests.Images.Kdump;

public sealed class KdumpHeaderTests : IDisposable
{
    private const string Info = "OSRELEASE=6.8.0-hdr\nPAGESIZE=4096\nSYMBOL(swapper_pg_dir)=ffffffff82a0b000\n";
    private readonly TempDumpDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Open_HeaderVersion_ReadsOnlyTheFieldsItHas(int version)
    {
        var b = Sample(new KdumpBuilder { HeaderVersion = version, DumpLevel = 19, VmcoreInfo = Info });
        b.Notes.Add(new KdumpNote("CORE", 1, new byte[336]));

        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.Equal(version, image.Header.HeaderVersion);
        Assert.Equal(version >= 1 ? 19 : null, image.DumpLevel);
        Assert.Equal(version >= 3 ? "6.8.0-hdr" : null, image.VmcoreInfo?.OsRelease);
        Assert.Equal(version >= 4 ? 2 : 0, image.Notes.Count);
        if (version >= 4)
        {
            Assert.Equal("CORE", image.Notes[0].Name);
            Assert.Equal("VMCOREINFO", image.Notes[1].Name);
        }

        AssertSamplePages(image);
    }

    [Fact]
    public void Open_Version6_UsesMaxMapnr64()
    {
        // makedumpfile writes min(max_mapnr, UINT_MAX) in the header; v6 readers must use max_mapnr_64.
        var file = Sample(new KdumpBuilder { HeaderVersion = 6 }).Build();
        file.PatchUInt32(440, 3);

        using var image = OpenBytes(_dir, file.Bytes);

        Assert.Equal(16UL, image.MaxPfn);
        AssertSamplePages(image);
    }

    [Fact]
    public void Open_Version5_IgnoresMaxMapnr64Field()
    {
        var file = Sample(new KdumpBuilder { HeaderVersion = 5 }).Build();
        file.PatchUInt64(4096 + 96, 1UL << 40);

        using var image = OpenBytes(_dir, file.Bytes);

        Assert.Equal(16UL, image.MaxPfn);
    }

    [Theory]
    [InlineData(KdumpBuilderLayout.Bits64, false)]
    [InlineData(KdumpBuilderLayout.Bits64, true)]
    [InlineData(KdumpBuilderLayout.Bits32Packed, false)]
    [InlineData(KdumpBuilderLayout.Bits32Packed, true)]
    [InlineData(KdumpBuilderLayout.Bits32Padded, false)]
    [InlineData(KdumpBuilderLayout.Bits32Padded, true)]
    public void Open_Layout_DetectsWordSizeAndByteOrder(KdumpBuilderLayout layout, bool bigEndian)
    {
        var b = Sample(new KdumpBuilder { Layout = layout, BigEndian = bigEndian, VmcoreInfo = Info, Machine = layout == KdumpBuilderLayout.Bits64 ? "ppc64" : "i686" });
        b.Notes.Add(new KdumpNote("CORE", 1, Encoding.ASCII.GetBytes("prstatus")));

        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.Equal((KdumpLayout)(int)layout, image.Header.Layout);
        Assert.Equal(bigEndian, image.Header.BigEndian);
        Assert.Equal("6.8.0-hdr", image.VmcoreInfo?.OsRelease);
        Assert.Equal("prstatus", Encoding.ASCII.GetString(image.Notes[0].Descriptor));
        Assert.Equal(31, image.DumpLevel);
        AssertSamplePages(image);
    }

    [Theory]
    [InlineData(KdumpBuilderLayout.Bits32Packed)]
    [InlineData(KdumpBuilderLayout.Bits32Padded)]
    public void Open_32BitWithNotesButNoVmcoreInfo_FindsTheNotes(KdumpBuilderLayout layout)
    {
        var b = Sample(new KdumpBuilder { Layout = layout, Machine = "armv7l" });
        b.Notes.Add(new KdumpNote("CORE", 1, new byte[148]));

        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.Equal((KdumpLayout)(int)layout, image.Header.Layout);
        Assert.Equal("CORE", Assert.Single(image.Notes).Name);
        Assert.Null(image.VmcoreInfo);
        Assert.Equal(40, image.ElfMachine);
    }

    [Theory]
    [InlineData(4096UL)]
    [InlineData(65536UL)]
    public void Open_64BitTimestampThatLooksLikeABlockSize_StillReads64Bit(ulong microseconds)
    {
        // Read as a 32-bit header, tv_usec lands on block_size: a power of two must not fool the probe.
        var b = Sample(new KdumpBuilder { TimestampMicroseconds = microseconds });

        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.Equal(KdumpLayout.Bits64, image.Header.Layout);
        AssertSamplePages(image);
    }

    [Theory]
    [InlineData(KdumpBuilderLayout.Bits64)]
    [InlineData(KdumpBuilderLayout.Bits32Packed)]
    public void Open_BigEndianVersion0_TriesBothByteOrders(KdumpBuilderLayout layout)
    {
        var b = Sample(new KdumpBuilder { HeaderVersion = 0, BigEndian = true, Layout = layout, Signature = "DISKDUMP" });

        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.True(image.Header.BigEndian);
        Assert.Null(image.DumpLevel);
        AssertSamplePages(image);
    }

    [Fact]
    public void Open_DiskdumpSignature_IsAccepted()
    {
        var b = Sample(new KdumpBuilder { Signature = "DISKDUMP" });

        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.StartsWith("diskdump", image.Description, StringComparison.Ordinal);
        AssertSamplePages(image);
    }

    [Fact]
    public void Open_NoOffsetVmcoreInfo_TakesVmcoreInfoFromTheNotes()
    {
        var b = Sample(new KdumpBuilder { VmcoreInfo = Info });
        var file = b.Build();
        file.PatchUInt64(4096 + 32, 0);
        file.PatchUInt64(4096 + 40, 0);

        using var image = OpenBytes(_dir, file.Bytes);

        Assert.Equal("6.8.0-hdr", image.VmcoreInfo?.OsRelease);
        Assert.Equal("ELF note", image.VmcoreInfo?.Source);
        Assert.Equal(0xffffffff82a0b000UL, image.VmcoreInfo?.GetSymbol("swapper_pg_dir"));
    }

    [Theory]
    [InlineData(8192)]
    [InlineData(16384)]
    [InlineData(65536)]
    public void Open_LargerBlockSize_UsesItAsPageSize(int blockSize)
    {
        var b = new KdumpBuilder { BlockSize = blockSize };
        b.AddPage(0, KdumpBuilder.PatternPage(1, blockSize), KdumpPageCompression.Zlib);
        b.AddPage(3, KdumpBuilder.PatternPage(2, blockSize), KdumpPageCompression.Lzo);

        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.Equal(blockSize, image.PageSize);
        Assert.Equal(KdumpBuilder.PatternPage(2, blockSize), ReadPage(image, 3, blockSize));
    }

    [Fact]
    public void Probe_RecognisesEverySignature()
    {
        var format = new KdumpFormat();
        var flat = new byte[32];
        Encoding.ASCII.GetBytes("makedumpfile").CopyTo(flat, 0);
        BinaryPrimitives.WriteInt64BigEndian(flat.AsSpan(16), 1);
        BinaryPrimitives.WriteInt64BigEndian(flat.AsSpan(24), 1);
        var flatV2 = (byte[])flat.Clone();
        BinaryPrimitives.WriteInt64BigEndian(flatV2.AsSpan(24), 2);
        var flatLonger = (byte[])flat.Clone();
        flatLonger[12] = (byte)'X';

        Assert.True(format.Probe("KDUMP   xxxx"u8, 100));
        Assert.True(format.Probe("DISKDUMPxxxx"u8, 100));
        Assert.True(format.Probe(flat, 100));
        Assert.False(format.Probe(flatV2, 100));
        Assert.False(format.Probe(flatLonger, 100));
        Assert.False(format.Probe(flat.AsSpan(0, 20), 100));
        Assert.False(format.Probe("\u007fELF\u0002\u0001\u0001"u8, 100));
        Assert.False(format.Probe("KDUMP"u8, 5));
    }

    private static KdumpBuilder Sample(KdumpBuilder b)
    {
        b.AddPage(0, KdumpBuilder.PatternPage(10), KdumpPageCompression.Zlib);
        b.AddPage(1, new byte[4096]);
        b.AddExcludedPages(2, 3);
        b.AddPage(7, KdumpBuilder.PatternPage(17), KdumpPageCompression.Snappy);
        b.AddPage(15, KdumpBuilder.PatternPage(25), KdumpPageCompression.Zstd);
        return b;
    }

    private static void AssertSamplePages(KdumpImage image)
    {
        Assert.Equal(KdumpBuilder.PatternPage(10), ReadPage(image, 0));
        Assert.Equal(new byte[4096], ReadPage(image, 1));
        Assert.Equal(KdumpBuilder.PatternPage(17), ReadPage(image, 7));
        Assert.Equal(KdumpBuilder.PatternPage(25), ReadPage(image, 15));
        Read(image, 3 * 4096, 8, out var excluded, out _);
        Read(image, 9 * 4096, 8, out var hole, out _);
        Assert.Equal(Kvm.Images.PhysicalReadStatus.Excluded, excluded);
        Assert.Equal(Kvm.Images.PhysicalReadStatus.NotInImage, hole);
        Assert.Equal(3, image.ExcludedPages);
    }
}
