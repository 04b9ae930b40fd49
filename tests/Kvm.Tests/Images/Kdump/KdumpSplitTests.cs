using Kvm.Images;
using Kvm.Testing.Kdump;
using static Kvm.Tests.Images.Kdump.KdumpTestSupport;

namespace Kvm.Tests.Images.Kdump;

public sealed class KdumpSplitTests : IDisposable
{
    private const int Pages = 40;
    private readonly TempDumpDir _dir = new();

    public void Dispose() => _dir.Dispose();

    [Theory]
    [InlineData(6)]
    [InlineData(5)]
    [InlineData(2)]
    public void Open_SplitSet_ReadsEveryPageFromItsPart(int version)
    {
        var parts = Builder(version).BuildSplit(13, 27);
        var paths = parts.Select((p, i) => _dir.Write($"split.{i}", p.Bytes)).ToArray();

        using var image = Open(paths);

        Assert.Equal(paths, image.Files);
        Assert.Contains("split in 3 files", image.Description, StringComparison.Ordinal);
        AssertAllPages(image);
    }

    [Fact]
    public void Open_SplitSetInAnyOrder_SortsThePartsByPfn()
    {
        var parts = Builder(6).BuildSplit(13, 27);
        var paths = parts.Select((p, i) => _dir.Write($"split.{i}", p.Bytes)).ToArray();

        using var image = Open(paths[2], paths[0], paths[1]);

        Assert.Equal(paths, image.Files);
        Assert.Equal([0UL, 13UL, 27UL], image.Parts.Select(p => p.StartPfn));
        AssertAllPages(image);
    }

    [Fact]
    public void Open_SplitSetBoundaryInsideABitmapWord_RanksEachPartFromItsStart()
    {
        var parts = Builder(6).BuildSplit(3, 4, 5, 38);
        var paths = parts.Select((p, i) => _dir.Write($"split.{i}", p.Bytes)).ToArray();

        using var image = Open(paths.Reverse().ToArray());

        AssertAllPages(image);
        Assert.Equal(ExcludedCount(), image.ExcludedPages);
    }

    [Fact]
    public void Open_SplitSetMissingAPart_ThrowsIncomplete()
    {
        var parts = Builder(6).BuildSplit(13, 27);
        string a = _dir.Write("a", parts[0].Bytes);
        string c = _dir.Write("c", parts[2].Bytes);

        var e = Assert.Throws<CorruptImageException>(() => Open(a, c));

        Assert.Contains("split set incomplete", e.Message, StringComparison.Ordinal);
        Assert.Contains("0xd-0x1b", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_OnePartOfASplitSet_ThrowsIncomplete()
    {
        var parts = Builder(6).BuildSplit(13);
        string b = _dir.Write("b", parts[1].Bytes);

        var e = Assert.Throws<CorruptImageException>(() => Open(b));

        Assert.Contains("split set incomplete", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_SamePartTwice_ThrowsOverlap()
    {
        var parts = Builder(6).BuildSplit(13);
        string a = _dir.Write("a", parts[0].Bytes);
        string a2 = _dir.Write("a2", parts[0].Bytes);
        string b = _dir.Write("b", parts[1].Bytes);

        var e = Assert.Throws<CorruptImageException>(() => Open(a, b, a2));

        Assert.Contains("overlaps", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_PartsOfDifferentDumps_Throws()
    {
        var first = Builder(6).BuildSplit(13);
        var other = Builder(6);
        other.MaxPfn = Pages + 8;
        var second = other.BuildSplit(13);
        string a = _dir.Write("a", first[0].Bytes);
        string b = _dir.Write("b", second[1].Bytes);

        var e = Assert.Throws<CorruptImageException>(() => Open(a, b));

        Assert.Contains("not a part of the same split dump", e.Message, StringComparison.Ordinal);
        Assert.Contains("max_mapnr", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_TwoWholeDumps_Throws()
    {
        var bytes = Builder(6).Build().Bytes;
        string a = _dir.Write("a", bytes);
        string b = _dir.Write("b", bytes);

        var e = Assert.Throws<CorruptImageException>(() => Open(a, b));

        Assert.Contains("not a split part", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_SplitRangeBeyondMaxMapnr_Throws()
    {
        var parts = Builder(6).BuildSplit(13);
        parts[1].PatchUInt64(4096 + 88, 1000);
        string a = _dir.Write("a", parts[0].Bytes);
        string b = _dir.Write("b", parts[1].Bytes);

        var e = Assert.Throws<CorruptImageException>(() => Open(a, b));

        Assert.Contains("exceeds max_mapnr", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_FlattenedSplitParts_ReadLikePlainParts()
    {
        var parts = Builder(6).BuildSplit(20);
        string a = _dir.Write("a", parts[0].ToFlattened(new FlattenOptions { RewriteOverlaps = true }));
        string b = _dir.Write("b", parts[1].Bytes);

        using var image = Open(b, a);

        Assert.True(image.IsFlattened);
        AssertAllPages(image);
    }

    private static KdumpBuilder Builder(int version)
    {
        var b = new KdumpBuilder { HeaderVersion = version, MaxPfn = Pages };
        for (int pfn = 0; pfn < Pages; pfn++)
        {
            switch (pfn % 6)
            {
                case 0:
                    b.AddPage((ulong)pfn, new byte[4096]);
                    break;
                case 1:
                    b.AddExcludedPages((ulong)pfn);
                    break;
                case 5:
                    break;
                default:
                    b.AddPage((ulong)pfn, KdumpBuilder.PatternPage(pfn), (KdumpPageCompression)(pfn % 5));
                    break;
            }
        }

        return b;
    }

    private static long ExcludedCount() => Enumerable.Range(0, Pages).Count(p => p % 6 == 1);

    private static void AssertAllPages(Kvm.Images.Kdump.KdumpImage image)
    {
        for (int pfn = 0; pfn < Pages; pfn++)
        {
            var data = Read(image, (ulong)pfn * 4096, 4096, out var status, out _);
            switch (pfn % 6)
            {
                case 0:
                    Assert.Equal(PhysicalReadStatus.Complete, status);
                    Assert.Equal(new byte[4096], data);
                    break;
                case 1:
                    Assert.Equal(PhysicalReadStatus.Excluded, status);
                    break;
                case 5:
                    Assert.Equal(PhysicalReadStatus.NotInImage, status);
                    break;
                default:
                    Assert.Equal(PhysicalReadStatus.Complete, status);
                    Assert.Equal(KdumpBuilder.PatternPage(pfn), data);
                    break;
            }
        }
    }
}
