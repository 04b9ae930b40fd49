using System.Buffers.Binary;
using System.IO.Compression;
using Kvm.Images;
using Kvm.Testing.Kdump;
using Snappier;
using ZstdSharp;
using static Kvm.Tests.Images.Kdump.KdumpTestSupport;

namespace Kvm.Tests.Images.Kdump;

/// <summary>Corrupt and hostile kdump files: each must fail with a clear message, quickly and without large allocations.</summary>
public sealed class KdumpBoundsTests : IDisposable
{
    // disk_dump_header offsets in the 64-bit layout, and kdump_sub_header offsets from block 1.
    private const int HeaderVersion = 8;
    private const int BlockSizeField = 428;
    private const int SubHdrSizeField = 432;
    private const int BitmapBlocksField = 436;
    private const int MaxMapnrField = 440;
    private const int Sub = 4096;
    private const int OffsetVmcoreInfo = Sub + 32;
    private const int SizeVmcoreInfo = Sub + 40;
    private const int OffsetNote = Sub + 48;
    private const int SizeNote = Sub + 56;
    private const int MaxMapnr64 = Sub + 96;
    private const long AllocationBudget = 32 << 20;

    private readonly TempDumpDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(4095u, "block_size 4095 at offset 0x1ac is not a power of two")]
    [InlineData(0u, "block_size 0")]
    [InlineData(256u, "block_size 256")]
    [InlineData(1u << 30, "block_size 1073741824")]
    [InlineData(0xFFFFF000u, "block_size -4096")]
    public void Open_AbsurdBlockSize_Throws(uint blockSize, string phrase)
    {
        var file = Sample();
        file.PatchUInt32(BlockSizeField, blockSize);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "invalid kdump header", phrase);
    }

    [Theory]
    [InlineData(0u, "sub_hdr_size 0 at offset 0x1b0")]
    [InlineData(0x7FFFFFFFu, "past the end of the file")]
    [InlineData(0x80000000u, "sub_hdr_size -2147483648")]
    public void Open_AbsurdSubHeaderSize_Throws(uint blocks, string phrase)
    {
        var file = Sample();
        file.PatchUInt32(SubHdrSizeField, blocks);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "invalid kdump header", phrase);
    }

    [Theory]
    [InlineData(0u, "bitmap_blocks 0")]
    [InlineData(0xFFFFFFFFu, "exceeds KvmLimits.MaxBitmapBytes")]
    [InlineData(1000u, "past the end of the file")]
    public void Open_AbsurdBitmapBlocks_Throws(uint blocks, string phrase)
    {
        var file = Sample();
        file.PatchUInt32(BitmapBlocksField, blocks);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "invalid kdump header", phrase);
    }

    [Fact]
    public void Open_BitmapAboveConfiguredCap_Throws()
    {
        var file = Sample();
        var options = Options(limits: new KvmLimits { MaxBitmapBytes = 4096 });

        var e = Assert.Throws<CorruptImageException>(() => OpenBytes(_dir, file.Bytes, options).Dispose());

        Assert.Contains("KvmLimits.MaxBitmapBytes (4096)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_MaxMapnrBeyondBitmap_Throws()
    {
        var file = Sample();
        file.PatchUInt32(MaxMapnrField, 0xFFFFFFFF);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "cannot cover max_mapnr 4294967295");
    }

    [Fact]
    public void Open_MaxMapnr64BeyondBitmap_Throws()
    {
        var file = Sample();
        file.PatchUInt64(MaxMapnr64, 1UL << 50);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "max_mapnr 1125899906842624 exceeds the capacity of the page bitmap");
    }

    [Theory]
    [InlineData(7u)]
    [InlineData(0x12345678u)]
    [InlineData(0xFFFFFFFFu)]
    public void Open_UnknownHeaderVersion_ThrowsNotSupported(uint version)
    {
        var file = Sample();
        file.PatchUInt32(HeaderVersion, version);

        var e = AssertFailsBounded<KvmException>(file.Bytes, "unsupported kdump header version");

        Assert.Equal(KvmErrorCode.NotSupported, e.Code);
    }

    [Fact]
    public void Open_GarbageAfterSignature_Throws()
    {
        var bytes = new byte[64 << 10];
        new Random(1).NextBytes(bytes);
        "KDUMP   "u8.CopyTo(bytes);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), 6);

        AssertFailsBounded<CorruptImageException>(bytes, "invalid kdump header");
    }

    [Fact]
    public void Open_RandomHeadersAfterSignature_FailCleanlyOrOpen()
    {
        var rng = new Random(99);
        for (int i = 0; i < 300; i++)
        {
            var file = Sample();
            var bytes = file.Bytes;
            int at = rng.Next(8, 4096 + 104);
            for (int k = 0; k < 1 + rng.Next(8); k++)
            {
                bytes[Math.Min(bytes.Length - 1, at + rng.Next(16))] = (byte)rng.Next(256);
            }

            try
            {
                using var image = OpenBytes(_dir, bytes);
                var buffer = new byte[4096];
                foreach (var r in image.PhysicalRanges.Take(4))
                {
                    image.ReadPhysical(r.Start, buffer, out _);
                }
            }
            catch (KvmException)
            {
            }
        }
    }

    [Fact]
    public void Open_TruncatedHeader_Throws()
    {
        AssertFailsBounded<CorruptImageException>(Sample().Bytes[..300], "truncated kdump header");
    }

    [Fact]
    public void Open_NotAKdumpFile_Throws()
    {
        var bytes = Sample().Bytes;
        "KDUMPXXX"u8.CopyTo(bytes);

        AssertFailsBounded<CorruptImageException>(bytes, "not a kdump-compressed file", "KDUMPXXX");
    }

    [Fact]
    public void Open_FileCutInTheBitmaps_Throws()
    {
        var file = Sample();

        AssertFailsBounded<CorruptImageException>(file.Truncated(file.BitmapOffset + 10), "past the end of the file");
    }

    [Fact]
    public void Open_AbsurdNoteSize_Throws()
    {
        var file = Sample();
        file.PatchUInt64(SizeNote, 1UL << 40);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "size 1099511627776 exceeds KvmLimits.MaxNoteBytes");
    }

    [Fact]
    public void Open_NoteOffsetBeyondEndOfFile_Throws()
    {
        var file = Sample();
        file.PatchUInt64(OffsetNote, 1UL << 40);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "note blob", "extend past the end of the file");
    }

    [Fact]
    public void Open_NegativeNoteOffset_Throws()
    {
        var file = Sample();
        file.PatchUInt64(OffsetNote, ulong.MaxValue - 10);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "note blob", "extend past the end of the file");
    }

    [Fact]
    public void Open_AbsurdVmcoreInfoSize_Throws()
    {
        var file = Sample();
        file.PatchUInt64(SizeVmcoreInfo, 1UL << 20);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "exceeds KvmLimits.MaxVmcoreInfoBytes");
    }

    [Fact]
    public void Open_VmcoreInfoOffsetBeyondEndOfFile_Throws()
    {
        var file = Sample();
        file.PatchUInt64(OffsetVmcoreInfo, (ulong)file.Bytes.Length - 2);

        AssertFailsBounded<CorruptImageException>(file.Bytes, "vmcoreinfo", "extend past the end of the file");
    }

    [Fact]
    public void ReadPhysical_DescriptorSizeZero_Throws()
    {
        var file = Sample();
        file.PatchDescriptor(1, size: 0);

        AssertReadFails<CorruptImageException>(file, 1, $"page descriptor 1 at offset 0x{file.DescriptorAt(1):x}: size 0");
    }

    [Fact]
    public void ReadPhysical_AllZeroDescriptorInCompleteDump_Throws()
    {
        var file = Sample();
        file.PatchDescriptor(2, offset: 0, size: 0, flags: 0);

        AssertReadFails<CorruptImageException>(file, 2, "size 0");
    }

    [Fact]
    public void ReadPhysical_DescriptorSizeAboveBlockSize_Throws()
    {
        var file = Sample();
        file.PatchDescriptor(1, size: 5000);

        AssertReadFails<CorruptImageException>(file, 1, $"page descriptor 1 at offset 0x{file.DescriptorAt(1):x}: size 5000 exceeds block size 4096");
    }

    [Fact]
    public void ReadPhysical_DescriptorOffsetBeyondEndOfFile_ReportsTruncated()
    {
        var file = Sample();
        file.PatchDescriptor(1, offset: file.Bytes.Length + 100);
        using var image = OpenBytes(_dir, file.Bytes);

        Read(image, 4096, 8, out var status, out int count);

        Assert.Equal(PhysicalReadStatus.Truncated, status);
        Assert.Equal(0, count);
    }

    [Fact]
    public void ReadPhysical_DescriptorOffsetFarBeyondEndOfFile_ReportsTruncatedWithoutOverflow()
    {
        var file = Sample();
        file.PatchDescriptor(1, offset: long.MaxValue - 2);
        using var image = OpenBytes(_dir, file.Bytes);

        Read(image, 4096, 8, out var status, out _);

        Assert.Equal(PhysicalReadStatus.Truncated, status);
    }

    [Theory]
    [InlineData(-1L)]
    [InlineData(0L)]
    [InlineData(4096L)]
    public void ReadPhysical_DescriptorOffsetIntoTheHeaders_Throws(long offset)
    {
        var file = Sample();
        file.PatchDescriptor(1, offset: offset);

        AssertReadFails<CorruptImageException>(file, 1, "lies before the page descriptors");
    }

    [Fact]
    public void ReadPhysical_RawPageOfWrongSize_Throws()
    {
        var file = Sample();
        var (_, _, flags) = file.ReadDescriptor(3);
        Assert.Equal(0u, flags);
        file.PatchDescriptor(3, size: 100);

        AssertReadFails<CorruptImageException>(file, 3, "raw page size 100 is not the block size 4096");
    }

    [Theory]
    [InlineData(KdumpBuilder.FlagZlib, 2048, "decompressed to 2048 bytes, expected 4096")]
    [InlineData(KdumpBuilder.FlagLzo, 2048, "decompressed to 2048 bytes, expected 4096")]
    [InlineData(KdumpBuilder.FlagSnappy, 2048, "declares 2048 bytes")]
    [InlineData(KdumpBuilder.FlagZstd, 2048, "decompressed to 2048 bytes, expected 4096")]
    [InlineData(KdumpBuilder.FlagZlib, 8192, "more than 4096 bytes")]
    [InlineData(KdumpBuilder.FlagLzo, 8192, "output overrun")]
    [InlineData(KdumpBuilder.FlagSnappy, 8192, "declares 8192 bytes")]
    [InlineData(KdumpBuilder.FlagZstd, 8192, "more than 4096 bytes")]
    public void ReadPhysical_DecompressesToWrongSize_Throws(uint flag, int plainSize, string phrase)
    {
        var plain = new byte[plainSize];
        plain.AsSpan(0, 64).Fill(7);
        var b = new KdumpBuilder().AddStoredPage(0, Pack(flag, plain), flag);
        var file = b.Build();

        AssertReadFails<CorruptImageException>(file, 0, $"page descriptor 0 at offset 0x{file.DescriptorAt(0):x}: page data at offset 0x{file.DataOffset:x}", phrase);
    }

    [Theory]
    [InlineData(KdumpBuilder.FlagZlib)]
    [InlineData(KdumpBuilder.FlagLzo)]
    [InlineData(KdumpBuilder.FlagSnappy)]
    [InlineData(KdumpBuilder.FlagZstd)]
    public void ReadPhysical_GarbageCompressedData_Throws(uint flag)
    {
        var rng = new Random((int)flag);
        for (int i = 0; i < 50; i++)
        {
            var garbage = new byte[rng.Next(1, 4096)];
            rng.NextBytes(garbage);
            var file = new KdumpBuilder().AddStoredPage(0, garbage, flag).Build();

            AssertReadFails<CorruptImageException>(file, 0, "page descriptor 0");
        }
    }

    [Fact]
    public void ReadPhysical_UnknownPageFlags_ThrowsNotSupported()
    {
        var file = new KdumpBuilder().AddStoredPage(0, new byte[4096], 0x40).Build();

        var e = AssertReadFails<KvmException>(file, 0, "unsupported page flags 0x40");

        Assert.Equal(KvmErrorCode.NotSupported, e.Code);
    }

    private static KdumpFile Sample()
    {
        var b = new KdumpBuilder { VmcoreInfo = "OSRELEASE=6.8.0-bounds\n" };
        b.Notes.Add(new KdumpNote("CORE", 1, new byte[336]));
        b.AddPage(0, new byte[4096]);
        b.AddPage(1, KdumpBuilder.PatternPage(1), KdumpPageCompression.Zlib);
        b.AddPage(2, KdumpBuilder.PatternPage(2), KdumpPageCompression.Zstd);
        b.AddPage(3, KdumpBuilder.PatternPage(3));
        b.AddExcludedPages(4, 2);
        b.AddPage(9, KdumpBuilder.PatternPage(9), KdumpPageCompression.Lzo);
        return b.Build();
    }

    private static byte[] Pack(uint flag, byte[] plain)
    {
        switch (flag)
        {
            case KdumpBuilder.FlagZlib:
                using (var ms = new MemoryStream())
                {
                    using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true))
                    {
                        z.Write(plain);
                    }

                    return ms.ToArray();
                }

            case KdumpBuilder.FlagLzo:
                return Lzo1xTestEncoder.Compress(plain);
            case KdumpBuilder.FlagSnappy:
                return Snappy.CompressToArray(plain);
            default:
                using (var c = new Compressor(3))
                {
                    return c.Wrap(plain).ToArray();
                }
        }
    }

    private T AssertFailsBounded<T>(byte[] bytes, params string[] phrases)
        where T : Exception
    {
        string path = _dir.Write($"bad-{Guid.NewGuid():N}", bytes);
        long before = GC.GetAllocatedBytesForCurrentThread();
        var watch = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.ThrowsAny<T>(() => Open(path).Dispose());
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.True(allocated < AllocationBudget, $"allocated {allocated} bytes");
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
        foreach (var phrase in phrases)
        {
            Assert.Contains(phrase, e.Message, StringComparison.Ordinal);
        }

        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        return e;
    }

    private T AssertReadFails<T>(KdumpFile file, ulong pfn, params string[] phrases)
        where T : Exception
    {
        using var image = OpenBytes(_dir, file.Bytes);
        var buffer = new byte[4096];
        var e = Assert.ThrowsAny<T>(() => image.ReadPhysical(pfn * 4096, buffer, out _));
        foreach (var phrase in phrases)
        {
            Assert.Contains(phrase, e.Message, StringComparison.Ordinal);
        }

        Assert.Contains(image.Files[0], e.Message, StringComparison.Ordinal);
        return e;
    }
}
