using Kvm.Images.Kdump;

namespace Kvm.Tests.Images.Kdump;

public sealed class KdumpBitmapTests
{
    [Theory]
    [InlineData(0, 0.0)]
    [InlineData(1, 1.0)]
    [InlineData(63, 0.5)]
    [InlineData(64, 0.5)]
    [InlineData(511, 0.3)]
    [InlineData(512, 0.9)]
    [InlineData(4097, 0.5)]
    [InlineData(100_003, 0.02)]
    [InlineData(100_003, 0.98)]
    public void Rank_MatchesNaiveCount(int bits, double density)
    {
        var rng = new Random(bits);
        var bytes = new byte[(bits + 7) / 8 + 16];
        var set = new bool[bits];
        for (int i = 0; i < bits; i++)
        {
            set[i] = rng.NextDouble() < density;
            if (set[i])
            {
                bytes[8 + (i / 8)] |= (byte)(1 << (i % 8));
            }
        }

        var bitmap = new KdumpBitmap((ulong)bits);
        bitmap.Load(new MemoryView(bytes), 8, 0, (ulong)bits, "test bitmap");
        bitmap.BuildRankIndex();

        long count = 0;
        for (int i = 0; i <= bits; i++)
        {
            Assert.Equal(count, bitmap.Rank((ulong)i));
            if (i < bits)
            {
                Assert.Equal(set[i], bitmap.Get((ulong)i));
                count += set[i] ? 1 : 0;
            }
        }

        Assert.False(bitmap.Get((ulong)bits));
        Assert.Equal(count, bitmap.Rank(ulong.MaxValue));
    }

    [Fact]
    public void Load_Range_CopiesOnlyBitsInsideIt()
    {
        var ones = Enumerable.Repeat((byte)0xFF, 64).ToArray();
        var bitmap = new KdumpBitmap(300);

        bitmap.Load(new MemoryView(ones), 0, 5, 130, "test bitmap");

        for (ulong i = 0; i < 300; i++)
        {
            Assert.Equal(i is >= 5 and < 130, bitmap.Get(i));
        }
    }

    [Fact]
    public void Runs_CoalescesSetBits()
    {
        var bytes = new byte[32];
        foreach (int bit in new[] { 0, 1, 2, 10, 63, 64, 65, 200, 255 })
        {
            bytes[bit / 8] |= (byte)(1 << (bit % 8));
        }

        var bitmap = new KdumpBitmap(256);
        bitmap.Load(new MemoryView(bytes), 0, 0, 256, "test bitmap");

        Assert.Equal([(0UL, 3UL), (10UL, 1UL), (63UL, 3UL), (200UL, 1UL), (255UL, 1UL)], bitmap.Runs(100, "test"));
    }

    [Fact]
    public void Runs_TooManyRuns_Throws()
    {
        var bytes = Enumerable.Repeat((byte)0x55, 128).ToArray();
        var bitmap = new KdumpBitmap(1024);
        bitmap.Load(new MemoryView(bytes), 0, 0, 1024, "test bitmap");

        var e = Assert.Throws<CorruptImageException>(() => bitmap.Runs(100, "vmcore"));

        Assert.Contains("more than 100 separate memory ranges", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ShortFile_Throws()
    {
        var bitmap = new KdumpBitmap(1024);

        var e = Assert.Throws<CorruptImageException>(() => bitmap.Load(new MemoryView(new byte[10]), 0, 0, 1024, "memory bitmap"));

        Assert.Contains("truncated memory bitmap", e.Message, StringComparison.Ordinal);
    }

    private sealed class MemoryView(byte[] bytes) : IKdumpFileView
    {
        public string Path => "memory";

        public long Length => bytes.Length;

        public bool IsFlattened => false;

        public int Read(long offset, Span<byte> buffer)
        {
            if (offset >= bytes.Length)
            {
                return 0;
            }

            int n = (int)Math.Min(buffer.Length, bytes.Length - offset);
            bytes.AsSpan((int)offset, n).CopyTo(buffer);
            return n;
        }

        public long FileOffsetOf(long offset, long length) => offset >= 0 && length >= 0 && offset <= bytes.Length - length ? offset : -1;
    }
}
