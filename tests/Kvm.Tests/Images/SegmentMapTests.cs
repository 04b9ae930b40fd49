using Kvm.Images;
using Entry = Kvm.Images.SegmentMap.Entry;

namespace Kvm.Tests.Images;

public sealed class SegmentMapTests
{
    [Fact]
    public void Constructor_DisjointSegmentsOutOfOrder_AreSortedByStart()
    {
        var map = new SegmentMap([new Entry(0x5000, 0x1000, 300, 0x1000), new Entry(0x1000, 0x1000, 100, 0x1000), new Entry(0x3000, 0x1000, 200, 0x1000)]);

        Assert.Equal([0x1000UL, 0x3000UL, 0x5000UL], map.Entries.Select(e => e.Start));
        Assert.Equal([100L, 200L, 300L], map.Entries.Select(e => e.FileOffset));
    }

    [Fact]
    public void Constructor_PartialOverlap_FirstStartingSegmentKeepsTheOverlap()
    {
        var map = new SegmentMap([new Entry(0x2000, 0x3000, 1000, 0x3000), new Entry(0x1000, 0x2000, 100, 0x2000)]);

        Assert.Equal(
            [
                new Entry(0x1000, 0x2000, 100, 0x2000),
                new Entry(0x3000, 0x2000, 1000 + 0x1000, 0x2000),
            ],
            map.Entries);
    }

    [Fact]
    public void Constructor_ContainedSegment_IsDropped()
    {
        var map = new SegmentMap([new Entry(0x1000, 0x4000, 0, 0x4000), new Entry(0x2000, 0x1000, 9999, 0x1000)]);

        Assert.Equal([new Entry(0x1000, 0x4000, 0, 0x4000)], map.Entries);
        Assert.True(map.TryFind(0x2800, out var e));
        Assert.Equal(0L, e.FileOffset);
    }

    [Fact]
    public void Constructor_SameStart_LongerSegmentWins()
    {
        var map = new SegmentMap([new Entry(0x1000, 0x1000, 10, 0x1000), new Entry(0x1000, 0x3000, 20, 0x3000)]);

        Assert.Equal([new Entry(0x1000, 0x3000, 20, 0x3000)], map.Entries);
    }

    [Fact]
    public void Constructor_ZeroLengthSegment_IsIgnored()
    {
        var map = new SegmentMap([new Entry(0x1000, 0, 10, 0), new Entry(0x2000, 0x1000, 20, 0x1000)]);

        Assert.Equal([new Entry(0x2000, 0x1000, 20, 0x1000)], map.Entries);
        Assert.False(map.TryFind(0x1000, out _));
    }

    [Theory]
    [InlineData(0x1800UL, 0x800UL)]  // file data reaches 0x800 into the kept part
    [InlineData(0x800UL, 0x0UL)]     // file data ends inside the overlap: the kept part is all excluded
    [InlineData(0x1000UL, 0x0UL)]
    public void Constructor_TrimmedSegment_KeepsTheRightFileLength(ulong fileLength, ulong expectedFileLength)
    {
        var map = new SegmentMap([new Entry(0x1000, 0x2000, 100, 0x2000), new Entry(0x2000, 0x3000, 1000, fileLength)]);

        Assert.Equal(new Entry(0x3000, 0x2000, 1000 + 0x1000, expectedFileLength), map.Entries[1]);
    }

    [Fact]
    public void Constructor_OverlapWithExcludedTail_FirstSegmentStillKeepsIt()
    {
        // The rule is by start address, not by which segment has data.
        var map = new SegmentMap([new Entry(0x1000, 0x2000, 0, 0x800), new Entry(0x2000, 0x1000, 5000, 0x1000)]);

        Assert.Equal([new Entry(0x1000, 0x2000, 0, 0x800)], map.Entries);
    }

    [Theory]
    [InlineData(0x0fffUL, false, 0UL)]
    [InlineData(0x1000UL, true, 0x1000UL)]
    [InlineData(0x1fffUL, true, 0x1000UL)]
    [InlineData(0x2000UL, false, 0UL)]
    [InlineData(0x3000UL, true, 0x3000UL)]
    [InlineData(0x3fffUL, true, 0x3000UL)]
    [InlineData(0x4000UL, true, 0x4000UL)]
    [InlineData(0x4fffUL, true, 0x4000UL)]
    [InlineData(0x5000UL, false, 0UL)]
    [InlineData(0xffffffffffffffffUL, false, 0UL)]
    public void TryFind_Boundaries(ulong address, bool found, ulong start)
    {
        var map = new SegmentMap([new Entry(0x1000, 0x1000, 0, 0x1000), new Entry(0x3000, 0x1000, 0x1000, 0x1000), new Entry(0x4000, 0x1000, 0x2000, 0x1000)]);

        Assert.Equal(found, map.TryFind(address, out var e));
        if (found)
        {
            Assert.Equal(start, e.Start);
        }
    }

    [Fact]
    public void ToRanges_CoalescesAdjacentButNotSeparatedEntries()
    {
        var map = new SegmentMap([new Entry(0x1000, 0x1000, 0, 0x1000), new Entry(0x2000, 0x1000, 0x5000, 0x10), new Entry(0x4000, 0x1000, 0x1000, 0x1000)]);

        Assert.Equal([new PhysicalRange(0x1000, 0x2000), new PhysicalRange(0x4000, 0x1000)], map.ToRanges());
    }

    [Fact]
    public void EmptyMap_FindsNothing()
    {
        var map = new SegmentMap([]);

        Assert.Empty(map.Entries);
        Assert.Empty(map.ToRanges());
        Assert.False(map.TryFind(0, out _));
    }

    [Fact]
    public void TryFind_ManySegments_FindsEveryOne()
    {
        var entries = Enumerable.Range(0, 1000).Select(i => new Entry((ulong)i * 0x3000, 0x1000, i, 0x1000)).Reverse().ToList();
        var map = new SegmentMap(entries);

        for (int i = 0; i < 1000; i++)
        {
            Assert.True(map.TryFind(((ulong)i * 0x3000) + 0xfff, out var e));
            Assert.Equal((long)i, e.FileOffset);
            Assert.False(map.TryFind(((ulong)i * 0x3000) + 0x1000, out _));
        }
    }
}
