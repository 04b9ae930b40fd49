using Kvm.Images;
using Kvm.Testing;
using Kvm.Testing.Kdump;
using Kvm.Tests.Images.Elf;
using Kvm.Tests.Images.Kdump;
using static Kvm.Tests.Images.Elf.ElfTestData;

namespace Kvm.Tests.Images;

/// <summary>
/// <see cref="DumpImage.Locate"/> and <see cref="DumpImage.EnumerateStoredRanges"/>: where each format keeps the plain
/// bytes of a physical page, checked by reading the file at the offset given and comparing with ReadPhysical.
/// </summary>
public sealed class PhysicalStorageTests : IDisposable
{
    private readonly TempDumpDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Elf_EveryPage_IsPlainAtItsLoadOffset()
    {
        var low = Pattern(0x3000, 1);
        var high = Pattern(0x2000, 2);
        var elf = new ElfCoreBuilder().AddLoad(0, 0, low).AddLoad(0x100000, 0x100000, high).Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        foreach (ulong pa in new ulong[] { 0, 0x1000, 0x2000, 0x100000, 0x101000 })
        {
            var s = image.Locate(pa, 4096);
            Assert.Equal(StorageKind.Plain, s.Kind);
            Assert.Equal(0, s.FileIndex);
            AssertFileHoldsPhysical(image, elf, pa, s.FileOffset, 4096);
        }

        Assert.Equal(LoadFileOffset(elf, 0x100000) + 0x123, image.Locate(0x100123, 16).FileOffset);
        Assert.Equal(StorageKind.Plain, image.Locate(0, 0x3000).Kind);
        Assert.Equal(StorageKind.NotInImage, image.Locate(0x3000, 4096).Kind);
        Assert.Equal(StorageKind.NotInImage, image.Locate(0x2000, 0x2000).Kind);
        Assert.Equal(StorageKind.NotInImage, image.Locate(0xffffffffffffff00, 0x200).Kind);
        Assert.Equal([new PhysicalRange(0, 0x3000), new PhysicalRange(0x100000, 0x2000)], image.EnumerateStoredRanges());
    }

    [Fact]
    public void Elf_ExcludedTail_IsExcludedAndNotStored()
    {
        // makedumpfile -E: p_filesz < p_memsz; the tail is excluded.
        var data = Pattern(0x2000, 3);
        var elf = new ElfCoreBuilder().AddLoad(0x10000, 0x10000, data, memSize: 0x5000).AddLoad(0x15000, 0x15000, Pattern(0x1000, 4)).Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.Equal(StorageKind.Plain, image.Locate(0x11000, 4096).Kind);
        Assert.Equal(StorageKind.Excluded, image.Locate(0x12000, 4096).Kind);
        Assert.Equal(StorageKind.Excluded, image.Locate(0x11000, 0x2000).Kind);
        Assert.Equal([new PhysicalRange(0x10000, 0x2000), new PhysicalRange(0x15000, 0x1000)], image.EnumerateStoredRanges());
    }

    [Fact]
    public void Elf_RangeAcrossLoadsNotAdjacentInTheFile_IsStoredButNotPlain()
    {
        // Physical 0x0-0x2000 is written after 0x2000-0x3000 in the file: readable, but not one run of bytes.
        var a = Pattern(0x2000, 5);
        var b = Pattern(0x1000, 6);
        var elf = new ElfCoreBuilder().AddLoad(0x2000, 0x2000, b).AddLoad(0, 0, a).Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.Equal(StorageKind.Stored, image.Locate(0x1000, 0x2000).Kind);
        Assert.Equal(-1, image.Locate(0x1000, 0x2000).FileOffset);
        Assert.Equal(StorageKind.Plain, image.Locate(0, 0x2000).Kind);
        Assert.Equal([new PhysicalRange(0, 0x3000)], image.EnumerateStoredRanges());
    }

    [Fact]
    public void Elf_TruncatedFile_IsTruncatedAndStoredRangesStopAtTheEnd()
    {
        var elf = new ElfCoreBuilder().AddLoad(0, 0, Pattern(0x4000, 7)).Build();
        var cut = elf[..(int)(LoadFileOffset(elf, 0) + 0x2800)];
        using var file = new ScratchFile(cut);
        using var image = file.Open();

        Assert.Equal(StorageKind.Plain, image.Locate(0x1000, 4096).Kind);
        Assert.Equal(StorageKind.Truncated, image.Locate(0x2000, 4096).Kind);
        Assert.Equal(StorageKind.Truncated, image.Locate(0x3000, 4096).Kind);
        Assert.Equal([new PhysicalRange(0, 0x2800)], image.EnumerateStoredRanges());
    }

    [Fact]
    public void Raw_OffsetIsThePhysicalAddress()
    {
        var memory = new PhysicalMemoryBuilder();
        memory.Write(0x5000, Pattern(0x1000, 8));
        var raw = memory.ToFlat(1 << 20);
        using var file = new ScratchFile(raw);
        using var image = file.Open();

        var s = image.Locate(0x5000, 4096);
        Assert.Equal(PhysicalStorage.PlainAt(0, 0x5000), s);
        AssertFileHoldsPhysical(image, raw, 0x5000, s.FileOffset, 4096);
        Assert.Equal([new PhysicalRange(0, 1 << 20)], image.EnumerateStoredRanges());
    }

    [Fact]
    public void Lime_OffsetSkipsEachRangeHeader()
    {
        var lime = new LimeBuilder().AddRange(0x1000, Pattern(0x2000, 9)).AddRange(0x8000, Pattern(0x1000, 10)).Build();
        using var file = new ScratchFile(lime);
        using var image = file.Open();

        foreach (ulong pa in new ulong[] { 0x1000, 0x2000, 0x8000 })
        {
            var s = image.Locate(pa, 4096);
            Assert.Equal(StorageKind.Plain, s.Kind);
            AssertFileHoldsPhysical(image, lime, pa, s.FileOffset, 4096);
        }

        Assert.Equal(LimeBuilder.HeaderSize, image.Locate(0x1000, 4096).FileOffset);
    }

    [Fact]
    public void Kdump_RawPagesArePlain_CompressedAndExcludedAreNot()
    {
        var builder = new KdumpBuilder { DumpLevel = 31 }
            .AddPage(1, KdumpBuilder.PatternPage(1))
            .AddPage(2, KdumpBuilder.PatternPage(2), KdumpPageCompression.Zlib)
            .AddPage(3, KdumpBuilder.PatternPage(3))
            .AddPage(4, KdumpBuilder.PatternPage(4))
            .AddExcludedPages(5, 2)
            .AddPage(7, new byte[4096]);
        var kdump = builder.Build();
        string path = _dir.Write("dump", kdump.Bytes);
        using var image = KdumpTestSupport.Open(path);

        var raw = image.Locate(0x1000, 4096);
        Assert.Equal(StorageKind.Plain, raw.Kind);
        AssertFileHoldsPhysical(image, kdump.Bytes, 0x1000, raw.FileOffset, 4096);
        Assert.Equal(PhysicalStorage.Of(StorageKind.Stored), image.Locate(0x2000, 4096));
        Assert.Equal(StorageKind.Plain, image.Locate(0x3000, 0x2000).Kind);
        AssertFileHoldsPhysical(image, kdump.Bytes, 0x3000, image.Locate(0x3000, 0x2000).FileOffset, 0x2000);
        Assert.Equal(image.Locate(0x3000, 4096).FileOffset + 0x10, image.Locate(0x3010, 16).FileOffset);
        Assert.Equal(StorageKind.Stored, image.Locate(0x1000, 0x3000).Kind);
        Assert.Equal(StorageKind.Excluded, image.Locate(0x5000, 4096).Kind);
        Assert.Equal(StorageKind.Excluded, image.Locate(0x4000, 0x2000).Kind);
        Assert.Equal(StorageKind.NotInImage, image.Locate(0, 4096).Kind);
        Assert.Equal(StorageKind.NotInImage, image.Locate(0x8000, 4096).Kind);

        // The zero page shares makedumpfile's pd_zero block: stored, but not bytes of its own.
        Assert.Equal(PhysicalStorage.Of(StorageKind.Stored), image.Locate(0x7000, 4096));

        Assert.Equal([new PhysicalRange(0x1000, 0x4000), new PhysicalRange(0x7000, 0x1000)], image.EnumerateStoredRanges());
    }

    [Fact]
    public void Kdump_FirstDataBlock_IsAZeroPageOnlyWhenItIsZeros()
    {
        // Without zero sharing, the first data block is the first page's own: plain unless it is all zeros, when it
        // cannot be told from makedumpfile's pd_zero block and is reported as a zero page.
        var kdump = new KdumpBuilder { DumpLevel = 0, ShareZeroPages = false }.AddPage(1, KdumpBuilder.PatternPage(1)).AddPage(2, KdumpBuilder.PatternPage(2)).Build();
        string path = _dir.Write("dump", kdump.Bytes);
        using (var image = KdumpTestSupport.Open(path))
        {
            var s = image.Locate(0x1000, 4096);
            Assert.Equal(PhysicalStorage.PlainAt(0, kdump.DataOffset), s);
            AssertFileHoldsPhysical(image, kdump.Bytes, 0x1000, s.FileOffset, 0x2000);
        }

        var zeroFirst = new KdumpBuilder { DumpLevel = 0, ShareZeroPages = false }.AddPage(1, new byte[4096]).AddPage(2, KdumpBuilder.PatternPage(2)).Build();
        using (var image = KdumpTestSupport.Open(_dir.Write("zero", zeroFirst.Bytes)))
        {
            Assert.Equal(PhysicalStorage.Of(StorageKind.Stored), image.Locate(0x1000, 4096));
            Assert.Equal(StorageKind.Plain, image.Locate(0x2000, 4096).Kind);
        }
    }

    [Fact]
    public void Kdump_TruncatedAndIncomplete_AreTruncated()
    {
        var builder = new KdumpBuilder().AddPage(1, KdumpBuilder.PatternPage(1)).AddPage(2, KdumpBuilder.PatternPage(2));
        var whole = builder.Build();
        string cut = _dir.Write("cut", whole.Truncated(whole.Bytes.Length - 100));
        using (var image = KdumpTestSupport.Open(cut))
        {
            Assert.Equal(StorageKind.Plain, image.Locate(0x1000, 4096).Kind);
            Assert.Equal(StorageKind.Truncated, image.Locate(0x2000, 4096).Kind);
            Assert.Equal(StorageKind.Truncated, image.Locate(0x1000, 0x2000).Kind);
        }

        builder.IncompleteAfter = 1;
        string incomplete = _dir.Write("incomplete", builder.Build().Bytes);
        using (var image = KdumpTestSupport.Open(incomplete))
        {
            Assert.Equal(StorageKind.Plain, image.Locate(0x1000, 4096).Kind);
            Assert.Equal(StorageKind.Truncated, image.Locate(0x2000, 4096).Kind);
        }
    }

    [Fact]
    public void Kdump_CorruptDescriptor_Throws()
    {
        var kdump = new KdumpBuilder().AddPage(1, KdumpBuilder.PatternPage(1)).Build();
        kdump.PatchDescriptor(0, size: 0);
        string path = _dir.Write("bad", kdump.Bytes);
        using var image = KdumpTestSupport.Open(path);

        var e = Assert.Throws<CorruptImageException>(() => image.Locate(0x1000, 4096));

        Assert.Contains("page descriptor 0", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(1 << 20)]
    [InlineData(1000)]
    public void Kdump_Flattened_OffsetIsInTheStreamWhereOneRecordHoldsThePage(int recordSize)
    {
        var builder = new KdumpBuilder();
        for (ulong pfn = 1; pfn < 9; pfn++)
        {
            builder.AddPage(pfn, KdumpBuilder.PatternPage((int)pfn), pfn == 4 ? KdumpPageCompression.Zlib : KdumpPageCompression.None);
        }

        var kdump = builder.Build();
        var flat = kdump.ToFlattened(new FlattenOptions { RecordSize = recordSize });
        string path = _dir.Write("flat", flat);
        using var image = KdumpTestSupport.Open(path);

        int plain = 0;
        for (ulong pfn = 1; pfn < 9; pfn++)
        {
            var s = image.Locate(pfn << 12, 4096);
            Assert.True(s.IsStored);
            if (s.Kind == StorageKind.Plain)
            {
                plain++;
                AssertFileHoldsPhysical(image, flat, pfn << 12, s.FileOffset, 4096);
            }
        }

        // With 1000-byte records no page fits in one; with 1 MiB records every raw page does.
        Assert.Equal(recordSize > 4096 ? 7 : 0, plain);
    }

    [Fact]
    public void Kdump_SplitSet_GivesThePartFileAndItsOffset()
    {
        var builder = new KdumpBuilder();
        for (ulong pfn = 0; pfn < 12; pfn++)
        {
            builder.AddPage(pfn, KdumpBuilder.PatternPage((int)pfn + 20));
        }

        var parts = builder.BuildSplit(5);
        var paths = parts.Select((p, i) => _dir.Write($"split.{i}", p.Bytes)).ToArray();
        using var image = KdumpTestSupport.Open(paths);

        for (ulong pfn = 0; pfn < 12; pfn++)
        {
            var s = image.Locate(pfn << 12, 4096);
            Assert.Equal(StorageKind.Plain, s.Kind);
            Assert.Equal(pfn < 5 ? 0 : 1, s.FileIndex);
            AssertFileHoldsPhysical(image, parts[s.FileIndex].Bytes, pfn << 12, s.FileOffset, 4096);
        }

        Assert.Equal(StorageKind.Stored, image.Locate(0x4000, 0x2000).Kind);
    }

    private static void AssertFileHoldsPhysical(DumpImage image, byte[] file, ulong pa, long offset, int length)
    {
        Assert.True(offset >= 0, $"no offset for 0x{pa:x}");
        var expected = new byte[length];
        Assert.Equal(length, image.ReadPhysical(pa, expected, out _));
        Assert.Equal(expected, file.AsSpan((int)offset, length).ToArray());
    }
}
