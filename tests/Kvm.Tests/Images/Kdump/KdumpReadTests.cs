using Kvm.Images;
using Kvm.Images.Kdump;
using Kvm.Testing.Kdump;
using static Kvm.Tests.Images.Kdump.KdumpTestSupport;

namespace Kvm.Tests.Images.Kdump;

public sealed class KdumpReadTests : IDisposable
{
    private readonly TempDumpDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(KdumpPageCompression.None, 0u, DumpCompression.None)]
    [InlineData(KdumpPageCompression.Zlib, 0x1u, DumpCompression.Zlib)]
    [InlineData(KdumpPageCompression.Lzo, 0x2u, DumpCompression.Lzo)]
    [InlineData(KdumpPageCompression.Snappy, 0x4u, DumpCompression.Snappy)]
    [InlineData(KdumpPageCompression.Zstd, 0x20u, DumpCompression.Zstd)]
    public void ReadPhysical_EachCompression_ReturnsPageBytes(KdumpPageCompression compression, uint flag, DumpCompression expected)
    {
        var b = new KdumpBuilder();
        for (ulong pfn = 0; pfn < 8; pfn++)
        {
            b.AddPage(pfn, KdumpBuilder.PatternPage((int)pfn), compression);
        }

        var file = b.Build();
        for (int i = 0; i < 8; i++)
        {
            // The builder stores a page raw when it does not shrink; these pages all shrink.
            Assert.Equal(flag, file.ReadDescriptor(i).Flags);
        }

        using var image = OpenBytes(_dir, file.Bytes);

        Assert.Equal(expected, image.Compression);
        for (ulong pfn = 0; pfn < 8; pfn++)
        {
            Assert.Equal(KdumpBuilder.PatternPage((int)pfn), ReadPage(image, pfn));
        }
    }

    [Fact]
    public void ReadPhysical_RealLzoEncoderPages_ReturnsPlainText()
    {
        var b = new KdumpBuilder();
        var pages = new List<byte[]>();
        foreach (var v in Lzo1xVectors.All)
        {
            var plain = Convert.FromBase64String(v.Plain);
            if (plain.Length != 4096)
            {
                continue;
            }

            var packed = Convert.FromBase64String(v.Level1);
            b.AddStoredPage((ulong)pages.Count, packed.Length < 4096 ? packed : plain, packed.Length < 4096 ? KdumpBuilder.FlagLzo : 0);
            pages.Add(plain);
        }

        using var image = OpenBytes(_dir, b.Build().Bytes);

        for (int i = 0; i < pages.Count; i++)
        {
            Assert.Equal(pages[i], ReadPage(image, (ulong)i));
        }
    }

    [Fact]
    public void Compression_MixedPages_IsTheUnionOfHeaderFlags()
    {
        var b = new KdumpBuilder()
            .AddPage(0, KdumpBuilder.PatternPage(1), KdumpPageCompression.Zlib)
            .AddPage(1, KdumpBuilder.PatternPage(2), KdumpPageCompression.Snappy)
            .AddPage(2, KdumpBuilder.PatternPage(3), KdumpPageCompression.Zstd)
            .AddPage(3, KdumpBuilder.PatternPage(4), KdumpPageCompression.Lzo);

        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.Equal(DumpCompression.Zlib | DumpCompression.Snappy | DumpCompression.Zstd | DumpCompression.Lzo, image.Compression);
        for (ulong pfn = 0; pfn < 4; pfn++)
        {
            Assert.Equal(KdumpBuilder.PatternPage((int)pfn + 1), ReadPage(image, pfn));
        }
    }

    [Fact]
    public void ReadPhysical_ZeroPages_ShareOneDescriptorOffsetAndReadAsZeros()
    {
        var b = new KdumpBuilder();
        for (ulong pfn = 0; pfn < 6; pfn++)
        {
            b.AddPage(pfn, pfn % 2 == 0 ? new byte[4096] : KdumpBuilder.PatternPage((int)pfn), KdumpPageCompression.Zlib);
        }

        var file = b.Build();
        Assert.Equal(file.ReadDescriptor(0).Offset, file.ReadDescriptor(2).Offset);
        Assert.Equal(file.ReadDescriptor(0).Offset, file.ReadDescriptor(4).Offset);
        Assert.Equal(file.DataOffset, file.ReadDescriptor(0).Offset);

        using var image = OpenBytes(_dir, file.Bytes);

        for (ulong pfn = 0; pfn < 6; pfn++)
        {
            Assert.Equal(pfn % 2 == 0 ? new byte[4096] : KdumpBuilder.PatternPage((int)pfn), ReadPage(image, pfn));
        }

        Assert.Equal(0, image.ExcludedPages);
    }

    [Fact]
    public void ReadPhysical_ExcludedPage_ReportsExcluded()
    {
        var b = new KdumpBuilder().AddPage(0, KdumpBuilder.PatternPage(0)).AddExcludedPages(1, 3).AddPage(4, KdumpBuilder.PatternPage(4));
        using var image = OpenBytes(_dir, b.Build().Bytes);

        Read(image, 0x2000, 16, out var status, out int count);

        Assert.Equal(PhysicalReadStatus.Excluded, status);
        Assert.Equal(0, count);
        Assert.Equal(3, image.ExcludedPages);
        Assert.Equal(KdumpBuilder.PatternPage(4), ReadPage(image, 4));
    }

    [Fact]
    public void ReadPhysical_HoleInMemoryBitmap_ReportsNotInImage()
    {
        var b = new KdumpBuilder().AddPage(0, KdumpBuilder.PatternPage(0)).AddPage(10, KdumpBuilder.PatternPage(10));
        using var image = OpenBytes(_dir, b.Build().Bytes);

        Read(image, 5 * 4096, 16, out var status, out int count);

        Assert.Equal(PhysicalReadStatus.NotInImage, status);
        Assert.Equal(0, count);
    }

    [Fact]
    public void ReadPhysical_BeyondMaxPfn_ReportsNotInImage()
    {
        var b = new KdumpBuilder().AddPage(0, KdumpBuilder.PatternPage(0)).AddPage(1, KdumpBuilder.PatternPage(1));
        using var image = OpenBytes(_dir, b.Build().Bytes);

        Read(image, 2 * 4096, 16, out var s1, out _);
        Read(image, 1UL << 50, 16, out var s2, out _);
        Read(image, ulong.MaxValue - 7, 16, out var s3, out _);

        Assert.Equal(2UL, image.MaxPfn);
        Assert.Equal(PhysicalReadStatus.NotInImage, s1);
        Assert.Equal(PhysicalReadStatus.NotInImage, s2);
        Assert.Equal(PhysicalReadStatus.NotInImage, s3);
    }

    [Fact]
    public void ReadPhysical_SpanningPages_ReturnsContiguousBytes()
    {
        var b = new KdumpBuilder();
        var expected = new List<byte>();
        for (ulong pfn = 0; pfn < 4; pfn++)
        {
            var page = KdumpBuilder.PatternPage(100 + (int)pfn);
            b.AddPage(pfn, page, (KdumpPageCompression)(pfn % 5));
            expected.AddRange(page);
        }

        using var image = OpenBytes(_dir, b.Build().Bytes);

        var data = Read(image, 100, 3 * 4096, out var status, out int count);

        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal(3 * 4096, count);
        Assert.Equal(expected.Skip(100).Take(3 * 4096).ToArray(), data);
    }

    [Fact]
    public void ReadPhysical_SpanIntoExcludedPage_ReturnsBytesUpToIt()
    {
        var b = new KdumpBuilder().AddPage(0, KdumpBuilder.PatternPage(0)).AddPage(1, KdumpBuilder.PatternPage(1)).AddExcludedPages(2);
        using var image = OpenBytes(_dir, b.Build().Bytes);

        var data = Read(image, 4096 + 96, 8192, out var status, out int count);

        Assert.Equal(PhysicalReadStatus.Excluded, status);
        Assert.Equal(4096 - 96, count);
        Assert.Equal(KdumpBuilder.PatternPage(1)[96..], data[..count]);
    }

    [Fact]
    public void ReadPhysical_FileCutInPageData_ReportsTruncated()
    {
        var b = new KdumpBuilder();
        for (ulong pfn = 0; pfn < 4; pfn++)
        {
            b.AddPage(pfn, KdumpBuilder.PatternPage((int)pfn), KdumpPageCompression.Zlib);
        }

        var file = b.Build();
        var last = file.ReadDescriptor(3);
        using var image = OpenBytes(_dir, file.Truncated(last.Offset + 10));

        Assert.Equal(KdumpBuilder.PatternPage(2), ReadPage(image, 2));
        var data = Read(image, 2 * 4096, 8192, out var status, out int count);
        Assert.Equal(PhysicalReadStatus.Truncated, status);
        Assert.Equal(4096, count);
    }

    [Fact]
    public void ReadPhysical_FileCutInDescriptors_ReportsTruncated()
    {
        var b = new KdumpBuilder();
        for (ulong pfn = 0; pfn < 4; pfn++)
        {
            b.AddPage(pfn, KdumpBuilder.PatternPage((int)pfn));
        }

        var file = b.Build();
        using var image = OpenBytes(_dir, file.Truncated(file.DescriptorAt(2) + 5));

        Read(image, 2 * 4096, 16, out var status, out _);

        Assert.Equal(PhysicalReadStatus.Truncated, status);
    }

    [Fact]
    public void ReadPhysical_IncompleteDump_ReportsTruncatedForPagesNeverWritten()
    {
        var b = new KdumpBuilder { IncompleteAfter = 3 };
        for (ulong pfn = 0; pfn < 6; pfn++)
        {
            b.AddPage(pfn, KdumpBuilder.PatternPage((int)pfn), KdumpPageCompression.Snappy);
        }

        var file = b.Build();
        Assert.Equal((0L, 0u, 0u), file.ReadDescriptor(4));
        using var image = OpenBytes(_dir, file.Bytes);

        Assert.Equal(KdumpBuilder.PatternPage(2), ReadPage(image, 2));
        Read(image, 4 * 4096, 16, out var status, out _);
        Assert.Equal(PhysicalReadStatus.Truncated, status);
        Assert.Contains("incomplete", image.Description, StringComparison.Ordinal);
    }

    [Fact]
    public void Metadata_DescribesTheDump()
    {
        var b = new KdumpBuilder { DumpLevel = 17, VmcoreInfo = "OSRELEASE=6.8.0-test\nPAGESIZE=4096\n" }
            .AddPage(0, KdumpBuilder.PatternPage(0))
            .AddPage(1, KdumpBuilder.PatternPage(1))
            .AddExcludedPages(2, 2)
            .AddPage(4, KdumpBuilder.PatternPage(4))
            .AddPage(8, KdumpBuilder.PatternPage(8))
            .AddPage(9, KdumpBuilder.PatternPage(9));
        string path = _dir.Write("vmcore", b.Build().Bytes);

        using var image = Open(path);

        Assert.Equal(DumpFormat.Kdump, image.Format);
        Assert.Equal(4096, image.PageSize);
        Assert.Equal("x86_64", image.MachineName);
        Assert.Equal(62, image.ElfMachine);
        Assert.Equal(17, image.DumpLevel);
        Assert.False(image.IsFlattened);
        Assert.False(image.CanWrite);
        Assert.Equal([path], image.Files);
        Assert.Equal([new PhysicalRange(0, 5 * 4096), new PhysicalRange(8 * 4096, 2 * 4096)], image.PhysicalRanges);
        Assert.Equal(2, image.ExcludedPages);
        Assert.Equal("6.8.0-test", image.VmcoreInfo?.OsRelease);
        Assert.StartsWith("kdump-compressed (header v6", image.Description, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("x86_64", 62)]
    [InlineData("aarch64", 183)]
    [InlineData("i686", 3)]
    [InlineData("i386", 3)]
    [InlineData("vax", 0)]
    public void ElfMachine_MapsUtsnameMachine(string machine, int expected)
    {
        var b = new KdumpBuilder { Machine = machine }.AddPage(0, KdumpBuilder.PatternPage(0));
        using var image = OpenBytes(_dir, b.Build().Bytes);

        Assert.Equal(expected, image.ElfMachine);
    }

    [Fact]
    public void CacheStatistics_RepeatedReads_HitTheCache()
    {
        var b = new KdumpBuilder().AddPage(0, KdumpBuilder.PatternPage(0), KdumpPageCompression.Zstd);
        using var image = OpenBytes(_dir, b.Build().Bytes, Options(cachePages: 4));

        ReadPage(image, 0);
        ReadPage(image, 0);
        ReadPage(image, 0);

        var stats = Assert.Single(image.CacheStatistics);
        Assert.Equal("pages", stats.Name);
        Assert.Equal(4, stats.Capacity);
        Assert.Equal(1, stats.Count);
        Assert.Equal(2, stats.Hits);
        Assert.Equal(1, stats.Misses);

        image.FlushCaches();
        Assert.Equal(0, Assert.Single(image.CacheStatistics).Count);
    }

    [Fact]
    public void ReadPhysical_CacheDisabled_StillReads()
    {
        var b = new KdumpBuilder().AddPage(0, KdumpBuilder.PatternPage(0), KdumpPageCompression.Lzo);
        using var image = OpenBytes(_dir, b.Build().Bytes, Options(cachePages: 0));

        Assert.Equal(KdumpBuilder.PatternPage(0), ReadPage(image, 0));
        Assert.Equal(KdumpBuilder.PatternPage(0), ReadPage(image, 0));
        Assert.Equal(0, Assert.Single(image.CacheStatistics).Count);
    }

    [Fact]
    public void WritePhysical_Always_ThrowsNotSupported()
    {
        var b = new KdumpBuilder().AddPage(0, KdumpBuilder.PatternPage(0));
        using var image = OpenBytes(_dir, b.Build().Bytes);

        var e = Assert.Throws<KvmException>(() => image.WritePhysical(0, new byte[8]));

        Assert.Equal(KvmErrorCode.NotSupported, e.Code);
        Assert.Contains("writing is not supported for compressed kdump images", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ImageFormats_Open_DetectsKdump()
    {
        var b = new KdumpBuilder().AddPage(3, KdumpBuilder.PatternPage(3), KdumpPageCompression.Zlib);
        string path = _dir.Write("vmcore", b.Build().Bytes);

        using var image = ImageFormats.Open([path], Options());

        Assert.IsType<KdumpImage>(image);
        Assert.Equal(KdumpBuilder.PatternPage(3), ReadPage(image, 3));
    }

    [Fact]
    public void ImageFormats_Open_DetectsFlattenedAndSplitSets()
    {
        var b = new KdumpBuilder();
        for (ulong pfn = 0; pfn < 10; pfn++)
        {
            b.AddPage(pfn, KdumpBuilder.PatternPage((int)pfn), KdumpPageCompression.Snappy);
        }

        string flat = _dir.Write("flat", b.Build().ToFlattened(new FlattenOptions { RewriteOverlaps = true }));
        var parts = b.BuildSplit(4);
        string p1 = _dir.Write("p1", parts[0].Bytes);
        string p2 = _dir.Write("p2", parts[1].Bytes);

        using var fromFlat = ImageFormats.Open([flat], Options());
        using var fromSplit = ImageFormats.Open([p2, p1], Options());

        Assert.True(fromFlat.IsFlattened);
        Assert.Equal([p1, p2], fromSplit.Files);
        for (ulong pfn = 0; pfn < 10; pfn++)
        {
            Assert.Equal(KdumpBuilder.PatternPage((int)pfn), ReadPage(fromFlat, pfn));
            Assert.Equal(KdumpBuilder.PatternPage((int)pfn), ReadPage(fromSplit, pfn));
        }
    }

    [Fact]
    public void ReadPhysical_ConcurrentReaders_GetCorrectBytes()
    {
        const int Pages = 64;
        var b = new KdumpBuilder();
        for (ulong pfn = 0; pfn < Pages; pfn++)
        {
            b.AddPage(pfn, pfn % 7 == 0 ? new byte[4096] : KdumpBuilder.PatternPage((int)pfn), (KdumpPageCompression)(pfn % 5));
        }

        using var image = OpenBytes(_dir, b.Build().Bytes, Options(cachePages: 8));
        var expected = Enumerable.Range(0, Pages).Select(p => p % 7 == 0 ? new byte[4096] : KdumpBuilder.PatternPage(p)).ToArray();
        var errors = new System.Collections.Concurrent.ConcurrentBag<string>();

        var threads = Enumerable.Range(0, 8).Select(t => new Thread(() =>
        {
            var rng = new Random(t);
            var buffer = new byte[300];
            for (int i = 0; i < 3000; i++)
            {
                int pfn = rng.Next(Pages);
                int offset = rng.Next(4096 - buffer.Length);
                int n = image.ReadPhysical(((ulong)pfn * 4096) + (ulong)offset, buffer, out var status);
                if (n != buffer.Length || status != PhysicalReadStatus.Complete || !buffer.AsSpan().SequenceEqual(expected[pfn].AsSpan(offset, buffer.Length)))
                {
                    errors.Add($"thread {t}: pfn {pfn} offset {offset}: {status} {n}");
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());

        Assert.Empty(errors);
        var stats = Assert.Single(image.CacheStatistics);
        Assert.True(stats.Count <= 8);
        Assert.Equal(8 * 3000, stats.Hits + stats.Misses);
    }
}
