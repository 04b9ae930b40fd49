using System.Buffers.Binary;
using Kvm.Images;
using Kvm.Images.Kdump;
using Kvm.IO;
using Kvm.Testing.Kdump;
using static Kvm.Tests.Images.Kdump.KdumpTestSupport;

namespace Kvm.Tests.Images.Kdump;

public sealed class KdumpFlattenedTests : IDisposable
{
    private const int Pages = 24;
    private readonly TempDumpDir _dir = new();

    public void Dispose() => _dir.Dispose();

    public static TheoryData<string> Shapes() => ["plain", "small-records", "overlaps", "shuffled", "holes", "everything"];

    [Theory]
    [MemberData(nameof(Shapes))]
    public void ReadPhysical_Flattened_SameAsTheNormalFile(string shape)
    {
        var file = Builder().Build();
        var flat = file.ToFlattened(FlattenShape(shape));
        using var normal = OpenBytes(_dir, file.Bytes);
        using var flattened = OpenBytes(_dir, flat);

        Assert.True(flattened.IsFlattened);
        Assert.False(normal.IsFlattened);
        Assert.Contains("flattened", flattened.Description, StringComparison.Ordinal);
        Assert.Equal(normal.PhysicalRanges, flattened.PhysicalRanges);
        Assert.Equal(normal.ExcludedPages, flattened.ExcludedPages);
        Assert.Equal(normal.VmcoreInfo?.Text, flattened.VmcoreInfo?.Text);
        Assert.Equal(normal.Notes.Count, flattened.Notes.Count);
        for (ulong pfn = 0; pfn < Pages + 2; pfn++)
        {
            var a = Read(normal, pfn * 4096, 4096, out var sa, out int na);
            var b = Read(flattened, pfn * 4096, 4096, out var sb, out int nb);
            Assert.Equal(sa, sb);
            Assert.Equal(na, nb);
            Assert.Equal(a, b);
        }
    }

    [Theory]
    [MemberData(nameof(Shapes))]
    public void FlattenedView_Read_MatchesMakedumpfileReassembly(string shape)
    {
        var file = Builder().Build();
        var flat = file.ToFlattened(FlattenShape(shape));
        var reassembled = KdumpFile.Reassemble(flat);
        string path = _dir.Write("flat", flat);
        using var raf = RandomAccessFile.Open(path, writable: false);

        var view = FlattenedKdumpFileView.Open(raf, KvmLimits.Default);

        Assert.Equal(reassembled.Length, view.Length);
        var whole = new byte[view.Length + 100];
        Assert.Equal(reassembled.Length, view.Read(0, whole));
        Assert.Equal(reassembled, whole[..reassembled.Length]);
        var rng = new Random(shape.Length);
        for (int i = 0; i < 500; i++)
        {
            long at = rng.NextInt64(reassembled.Length + 50);
            var buf = new byte[rng.Next(1, 9000)];
            int n = view.Read(at, buf);
            int expected = (int)Math.Clamp(reassembled.Length - at, 0, buf.Length);
            Assert.Equal(expected, n);
            Assert.Equal(reassembled.AsSpan((int)Math.Min(at, reassembled.Length), n).ToArray(), buf[..n]);
        }
    }

    [Fact]
    public void FlattenedView_OverlappingRecords_LaterRecordsWin()
    {
        // Records: [0,100)=1, [50,150)=2, [20,30)=3, [140,160)=4, [0,10)=5, [200,210)=6 (hole 160..200).
        var flat = Flat((0, 100, 1), (50, 100, 2), (20, 10, 3), (140, 20, 4), (0, 10, 5), (200, 10, 6));
        string path = _dir.Write("flat", flat);
        using var raf = RandomAccessFile.Open(path, writable: false);

        var view = FlattenedKdumpFileView.Open(raf, KvmLimits.Default);
        var bytes = new byte[210];
        view.Read(0, bytes);

        Assert.Equal(210, view.Length);
        Assert.Equal(6, view.RecordCount);
        Assert.Equal(KdumpFile.Reassemble(flat), bytes);
        Assert.Equal(5, bytes[0]);
        Assert.Equal(1, bytes[10]);
        Assert.Equal(3, bytes[25]);
        Assert.Equal(1, bytes[49]);
        Assert.Equal(2, bytes[50]);
        Assert.Equal(4, bytes[145]);
        Assert.Equal(0, bytes[170]);
        Assert.Equal(6, bytes[209]);
    }

    [Fact]
    public void FlattenedView_ManyRewritesOfTheSameRange_StaysFast()
    {
        // 200000 records all rewriting the same range: a quadratic resolution would take minutes.
        var records = Enumerable.Range(0, 200_000).Select(i => ((long)(i % 7), 64 - (i % 7), (byte)(i % 251))).ToArray();
        var flat = Flat(records);
        string path = _dir.Write("flat", flat);
        using var raf = RandomAccessFile.Open(path, writable: false);
        var watch = System.Diagnostics.Stopwatch.StartNew();

        var view = FlattenedKdumpFileView.Open(raf, KvmLimits.Default);

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(20), $"took {watch.Elapsed}");
        var bytes = new byte[64];
        view.Read(0, bytes);
        Assert.Equal(KdumpFile.Reassemble(flat), bytes);
        Assert.True(view.SegmentCount <= 8);
    }

    [Fact]
    public void Open_FlattenedWithoutEndMarker_ReadsAllRecords()
    {
        var file = Builder().Build();
        using var image = OpenBytes(_dir, file.ToFlattened(new FlattenOptions { EndMarker = false }));

        Assert.Equal(KdumpBuilder.PatternPage(2), ReadPage(image, 2));
    }

    [Fact]
    public void Open_FlattenedRecordCutShort_ThrowsNamingTheRecord()
    {
        var flat = Builder().Build().ToFlattened();
        var cut = flat[..(flat.Length - 100)];

        var e = AssertOpenFails<CorruptImageException>(_dir, cut, "flattened record", "truncated record");

        Assert.Matches("flattened record [0-9]+ at offset 0x[0-9a-f]+", e.Message);
    }

    [Fact]
    public void Open_FlattenedRecordHeaderCutShort_Throws()
    {
        var flat = Builder().Build().ToFlattened(new FlattenOptions { EndMarker = false });

        AssertOpenFails<CorruptImageException>(_dir, [.. flat, 0, 0, 0, 0, 0], "truncated record header");
    }

    [Fact]
    public void Open_FlattenedNegativeTargetOffset_Throws()
    {
        var flat = Flat((-5, 10, 1));

        AssertOpenFails<CorruptImageException>(_dir, flat, "flattened record 0 at offset 0x1000", "invalid target offset -5");
    }

    [Fact]
    public void Open_FlattenedSizeOverflowingTheOffset_Throws()
    {
        var flat = Flat((10, 10, 1));
        BinaryPrimitives.WriteInt64BigEndian(flat.AsSpan(4096), long.MaxValue - 5);

        AssertOpenFails<CorruptImageException>(_dir, flat, "invalid target offset");
    }

    [Fact]
    public void Open_FlattenedTooManyRecords_ThrowsAtTheCap()
    {
        var flat = Builder().Build().ToFlattened(new FlattenOptions { RecordSize = 512 });
        var options = Options(limits: new KvmLimits { MaxFlattenedRecords = 10 });

        var e = Assert.Throws<CorruptImageException>(() => OpenBytes(_dir, flat, options).Dispose());

        Assert.Contains("KvmLimits.MaxFlattenedRecords", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_FlattenedUnknownVersion_ThrowsNotSupported()
    {
        var flat = Builder().Build().ToFlattened();
        BinaryPrimitives.WriteInt64BigEndian(flat.AsSpan(24), 2);

        var e = AssertOpenFails<KvmException>(_dir, flat, "unsupported flattened kdump type 1 version 2");

        Assert.Equal(KvmErrorCode.NotSupported, e.Code);
    }

    [Fact]
    public void Open_FlattenedHeaderOnly_Throws()
    {
        var flat = Builder().Build().ToFlattened()[..100];

        AssertOpenFails<CorruptImageException>(_dir, flat, "truncated flattened kdump header");
    }

    [Fact]
    public void Open_FlattenedWhoseContentIsNotKdump_Throws()
    {
        var flat = Flat((0, 4096, 0x41));

        AssertOpenFails<CorruptImageException>(_dir, flat, "not a kdump-compressed file");
    }

    [Fact]
    public void ReadPhysical_FlattenedMissingTheLastPages_ReportsTruncated()
    {
        var file = Builder().Build();
        var (offset, _, _) = file.ReadDescriptor(file.DescriptorCount - 1);
        var cut = new KdumpFile(file.Truncated(offset), file.BlockSize, file.BigEndian, file.BitmapOffset, file.Bitmap2Offset, file.DescriptorOffset, file.DataOffset, file.DescriptorCount, file.NoteOffset, file.VmcoreInfoOffset);
        using var image = OpenBytes(_dir, cut.ToFlattened());

        Read(image, (Pages - 1) * 4096UL, 4096, out var status, out _);

        Assert.Equal(PhysicalReadStatus.Truncated, status);
        Assert.Equal(KdumpBuilder.PatternPage(2), ReadPage(image, 2));
    }

    private static FlattenOptions FlattenShape(string shape) => shape switch
    {
        "small-records" => new FlattenOptions { RecordSize = 700 },
        "overlaps" => new FlattenOptions { RewriteOverlaps = true },
        "shuffled" => new FlattenOptions { ShuffleSeed = 42, RecordSize = 1000 },
        "holes" => new FlattenOptions { OmitZeroRecords = true, RecordSize = 512 },
        "everything" => new FlattenOptions { RewriteOverlaps = true, ShuffleSeed = 7, OmitZeroRecords = true, RecordSize = 333 },
        _ => new FlattenOptions(),
    };

    private static KdumpBuilder Builder()
    {
        var b = new KdumpBuilder { VmcoreInfo = "OSRELEASE=6.8.0-flat\n" };
        b.Notes.Add(new KdumpNote("CORE", 1, new byte[336]));
        for (ulong pfn = 0; pfn < Pages; pfn++)
        {
            if (pfn % 5 == 4)
            {
                b.AddExcludedPages(pfn);
            }
            else if (pfn % 5 != 3)
            {
                b.AddPage(pfn, pfn % 4 == 0 ? new byte[4096] : KdumpBuilder.PatternPage((int)pfn), (KdumpPageCompression)(pfn % 5));
            }
        }

        b.AddPage(Pages - 1, KdumpBuilder.PatternPage(Pages - 1), KdumpPageCompression.Zlib);
        return b;
    }

    /// <summary>A flattened stream of records (offset, size, fill byte).</summary>
    private static byte[] Flat(params (long Offset, int Size, byte Fill)[] records)
    {
        using var ms = new MemoryStream();
        var header = new byte[4096];
        "makedumpfile"u8.CopyTo(header);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(16), 1);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(24), 1);
        ms.Write(header);
        var rh = new byte[16];
        foreach (var (offset, size, fill) in records)
        {
            BinaryPrimitives.WriteInt64BigEndian(rh, offset);
            BinaryPrimitives.WriteInt64BigEndian(rh.AsSpan(8), size);
            ms.Write(rh);
            var data = new byte[size];
            Array.Fill(data, fill);
            ms.Write(data);
        }

        BinaryPrimitives.WriteInt64BigEndian(rh, -1);
        BinaryPrimitives.WriteInt64BigEndian(rh.AsSpan(8), -1);
        ms.Write(rh);
        return ms.ToArray();
    }
}
