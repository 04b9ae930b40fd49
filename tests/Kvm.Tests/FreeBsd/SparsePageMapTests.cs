using System.Numerics;
using Kvm.Images.FreeBsd;

namespace Kvm.Tests.FreeBsd;

/// <summary>The sparse page map's rank index and <c>dump_avail</c> bit ids against a naive count.</summary>
public sealed class SparsePageMapTests
{
    [Theory]
    [InlineData(1, 0.5)]
    [InlineData(7, 0.01)]
    [InlineData(4096, 0.9)]
    [InlineData(65536 + 13, 0.3)]
    public void Offsets_AreTheCountOfSetBitsBefore(int bitmapBytes, double density)
    {
        var random = new Random(bitmapBytes);
        var bitmap = new byte[bitmapBytes];
        for (int i = 0; i < bitmap.Length * 8; i++)
        {
            if (random.NextDouble() < density)
            {
                bitmap[i / 8] |= (byte)(1 << (i % 8));
            }
        }

        const long Sparse = 0x10000;
        var map = new SparsePageMap(bitmap, null, 4096, Sparse, long.MaxValue);
        long rank = 0;
        for (int bit = 0; bit < bitmap.Length * 8; bit++)
        {
            bool set = (bitmap[bit / 8] & (1 << (bit % 8))) != 0;
            var status = map.Find((ulong)bit * 4096 + 17, out long offset);
            if (set)
            {
                Assert.Equal(SparsePageStatus.Present, status);
                Assert.Equal(Sparse + (rank * 4096), offset);
                rank++;
            }
            else
            {
                Assert.Equal(SparsePageStatus.Excluded, status);
            }
        }

        Assert.Equal(rank, map.SetBits);
        Assert.Equal(rank, map.EnumeratePresentPages().Count());
        Assert.Equal(SparsePageStatus.NotInImage, map.Find((ulong)bitmapBytes * 8 * 4096, out _));
    }

    [Fact]
    public void DumpAvailBitIds_CountOnlyThePagesOfTheRanges()
    {
        // Three ranges; the second ends mid-page, so its last page is a bit of its own (howmany).
        var ranges = new[] { new PhysicalRange(0x1000, 0x9e000), new PhysicalRange(0x100000, 0x1800), new PhysicalRange(0x400000, 0x4000) };
        var bitmap = Enumerable.Repeat((byte)0xff, 32).ToArray();
        var map = new SparsePageMap(bitmap, ranges, 4096, 0, long.MaxValue);

        Assert.True(map.TryGetBit(0x1000, out ulong b0));
        Assert.Equal(0UL, b0);
        Assert.True(map.TryGetBit(0x9e000, out ulong b1));
        Assert.Equal(0x9dUL, b1);
        Assert.True(map.TryGetBit(0x101000, out ulong b2));
        Assert.Equal(0x9eUL + 1, b2);
        Assert.True(map.TryGetBit(0x400000, out ulong b3));
        Assert.Equal(0x9eUL + 2, b3);
        Assert.Equal(0x9eUL + 2 + 4, map.BitsDescribed);

        // Holes between ranges are in no range: never another page's bit (FreeBSD's arithmetic would alias them).
        Assert.False(map.TryGetBit(0xa0000, out _));
        Assert.False(map.TryGetBit(0x200000, out _));
        Assert.False(map.TryGetBit(0, out _));
        Assert.Equal(SparsePageStatus.NotInImage, map.Find(0x300000, out _));

        for (ulong bit = 0; bit < map.BitsDescribed; bit++)
        {
            Assert.True(map.TryGetPhysical(bit, out ulong pa));
            Assert.True(map.TryGetBit(pa, out ulong back));
            Assert.Equal(bit, back);
        }

        Assert.False(map.TryGetPhysical(map.BitsDescribed, out _));
    }

    [Fact]
    public void PagesBeyondTheFile_AreTruncated()
    {
        var bitmap = new byte[] { 0b1011 };
        var map = new SparsePageMap(bitmap, null, 4096, 8192, 8192 + 4096 + 4096 + 10);
        Assert.Equal(3, map.SetBits);
        Assert.Equal(2, map.StoredPages);
        Assert.Equal(SparsePageStatus.Present, map.Find(0, out _));
        Assert.Equal(SparsePageStatus.Present, map.Find(0x1000, out _));
        Assert.Equal(SparsePageStatus.Excluded, map.Find(0x2000, out _));
        Assert.Equal(SparsePageStatus.Truncated, map.Find(0x3000, out _));
        Assert.Equal(2, map.EnumeratePresentPages().Count());
    }

    [Fact]
    public void SixteenKilobytePages_CountInSixteenKilobytes()
    {
        var bitmap = new byte[] { 0b110 };
        var map = new SparsePageMap(bitmap, [new PhysicalRange(0x40000000, 0x20000)], 16384, 0x8000, long.MaxValue);
        Assert.Equal(SparsePageStatus.Present, map.Find(0x40004000 + 0x3fff, out long first));
        Assert.Equal(0x8000L, first);
        Assert.Equal(SparsePageStatus.Present, map.Find(0x40008000, out long second));
        Assert.Equal(0x8000L + 16384, second);
        Assert.Equal(BitOperations.PopCount(0b110u), (int)map.SetBits);
    }
}
