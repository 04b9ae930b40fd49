using System.Buffers.Binary;
using Kvm.Images;
using Kvm.Images.FreeBsd;
using Kvm.Testing;
using Kvm.Testing.FreeBsd;

namespace Kvm.Tests.FreeBsd;

/// <summary>
/// Hostile and damaged minidumps: every size read from the file is checked against the file and the caps, every
/// refusal names what failed (FreeBSD's own words where it has them), and nothing hangs or over-allocates.
/// </summary>
public sealed class MinidumpBoundsTests : IClassFixture<MinidumpBoundsTests.Dump>
{
    private readonly byte[] _dump;

    public MinidumpBoundsTests(Dump dump)
    {
        _dump = dump.Bytes;
    }

    [Theory]
    [InlineData(0u)]
    [InlineData(4u)]
    [InlineData(0xffffffffu)]
    public void WrongVersion_IsRefusedInLibkvmsWords(uint version)
    {
        var e = Open(Patched(24, version));
        Assert.Contains($"wrong minidump version. expected 3 got {version}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void WrongMagic_IsNotAMinidumpForThisPlatform()
    {
        var bytes = (byte[])_dump.Clone();
        "minidump FreeBSD/amd65"u8.CopyTo(bytes);
        var e = Assert.Throws<CorruptImageException>(() => MinidumpHeader.Parse(bytes, "vmcore"));
        Assert.Contains("not a minidump for this platform", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("minidump FreeBSD/riscv")]
    [InlineData("minidump FreeBSD/arm")]
    public void OtherArchitectures_AreNamedAsNotSupported(string magic)
    {
        var bytes = (byte[])_dump.Clone();
        bytes.AsSpan(0, 24).Clear();
        System.Text.Encoding.ASCII.GetBytes(magic).CopyTo(bytes, 0);
        var e = Assert.Throws<KvmException>(() => MinidumpHeader.Parse(bytes, "vmcore"));
        Assert.Equal(KvmErrorCode.NotSupported, e.Code);
        Assert.Contains(magic[9..], e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AbsurdBitmap_IsRefusedByTheCap()
    {
        var e = Open(Patched(32, 0xfffff000));
        Assert.Contains("MaxBitmapBytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AbsurdPageMap_IsRefusedByTheCap()
    {
        var e = Open(Patched(36, 0xfffff000));
        Assert.Contains("MaxMinidumpPageMapBytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BitmapRunningPastTheFile_IsTruncated()
    {
        var (_, bitmap, _, _) = Layout(_dump);
        var e = Open(_dump.AsSpan(0, (int)bitmap + 100).ToArray());
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        Assert.Contains("bitmap", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PageMapRunningPastTheFile_IsTruncated()
    {
        var (_, _, pmap, _) = Layout(_dump);
        var e = Open(_dump.AsSpan(0, (int)pmap + 4096).ToArray());
        Assert.Contains("page map", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedSparseArea_OpensAndSaysWhichPagesWereLost()
    {
        // The first pages in bit order are the kernel image's (physical 2 MiB up); keep ten of them.
        var (_, _, _, sparse) = Layout(_dump);
        var cut = _dump.AsSpan(0, (int)sparse + (10 * 4096) + 100).ToArray();
        using var file = new TempFile(cut, "vmcore.0");
        using var image = KernelImage.Open(file.Path);
        var page = new byte[4096];
        Assert.True(image.TryRead(FreeBsdAmd64Kernel.KernBase + FreeBsdAmd64Kernel.KernelLoad + (9 * 4096), page, out _, out _));
        Assert.False(image.TryRead(FreeBsdAmd64Kernel.KernBase + FreeBsdAmd64Kernel.KernelLoad + (10 * 4096), page, out int n, out var fault));
        Assert.Equal(0, n);
        Assert.Equal(MemoryFaultReason.Truncated, fault!.Reason);
        Assert.Contains("truncated", fault.Message, StringComparison.Ordinal);

        // The page-table pages were lost too: their 4 KiB mappings cannot be listed (libkvm skips them so), and reads
        // through them say the table is not in the image.
        var pages = image.EnumeratePages().ToList();
        Assert.All(pages, p => Assert.Equal(1UL << 21, p.Length));
        Assert.Equal(TranslationFaultKind.TableUnreadable, image.Translate(FreeBsdAmd64Kernel.KmemBase).Fault!.Kind);
        Assert.True(image.ExcludedPages > 0);
    }

    [Fact]
    public void AbsurdDumpAvail_IsRefusedByTheCap()
    {
        var e = Open(Patched(64, 0x7fffffff));
        Assert.Contains("MaxDumpAvailRanges", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void DumpAvail_OutOfOrder_EmptyAndTerminated()
    {
        var ascending = Pairs((0x1000, 0x9f000), (0x100000, 0x200000), (0, 0), (0x900000, 0xa00000));
        Assert.Equal([new PhysicalRange(0x1000, 0x9e000), new PhysicalRange(0x100000, 0x100000)], MinidumpImage.ParseDumpAvail(ascending, "t"));

        var overlapping = Pairs((0x100000, 0x200000), (0x1000, 0x9f000));
        Assert.Contains("out of order", Assert.Throws<CorruptImageException>(() => MinidumpImage.ParseDumpAvail(overlapping, "t")).Message, StringComparison.Ordinal);

        var backwards = Pairs((0x200000, 0x100000));
        Assert.Throws<CorruptImageException>(() => MinidumpImage.ParseDumpAvail(backwards, "t"));

        Assert.Contains("no memory", Assert.Throws<CorruptImageException>(() => MinidumpImage.ParseDumpAvail(new byte[4096], "t")).Message, StringComparison.Ordinal);

        // Empty pairs are skipped; the list ends at the first pair whose end is 0.
        var empty = Pairs((0x5000, 0x5000), (0x6000, 0x8000));
        Assert.Equal([new PhysicalRange(0x6000, 0x2000)], MinidumpImage.ParseDumpAvail(empty, "t"));
    }

    [Fact]
    public void DirectMapEndingBeforeItStarts_IsRefused()
    {
        var bytes = Patched64(56, 0x1000);
        var e = Open(bytes);
        Assert.Contains("direct map", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HeaderShorterThanAPage_IsTruncated()
    {
        var e = Open(_dump.AsSpan(0, 100).ToArray());
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RandomHeaderFields_NeverCrashOrHang()
    {
        var random = new Random(42);
        for (int i = 0; i < 200; i++)
        {
            var bytes = (byte[])_dump.Clone();
            int field = 24 + (random.Next(11) * 4);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(field), (uint)random.Next());
            using var file = new TempFile(bytes.AsSpan(0, Math.Min(bytes.Length, 64 << 10)).ToArray(), "vmcore");
            try
            {
                using var image = KernelImage.Open(file.Path);
                var buffer = new byte[64];
                image.Read(FreeBsdAmd64Kernel.KmemBase, buffer);
                foreach (var unused in image.EnumeratePages().Take(2000))
                {
                }
            }
            catch (KvmException)
            {
            }
        }
    }

    [Fact]
    public void RandomWideFieldsAndDumpAvail_NeverCrashOrHang()
    {
        var (avail, _, _, _) = Layout(_dump);
        var random = new Random(7);
        for (int i = 0; i < 200; i++)
        {
            var bytes = (byte[])_dump.Clone();
            switch (i % 3)
            {
                case 0:
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(40 + (random.Next(3) * 8)), (ulong)random.NextInt64() << random.Next(2));
                    break;
                case 1:
                    BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((int)avail + (random.Next(6) * 8)), (ulong)random.NextInt64() >> random.Next(40));
                    break;
                default:
                    random.NextBytes(bytes.AsSpan((int)avail, 64));
                    break;
            }

            using var file = new TempFile(bytes, "vmcore");
            try
            {
                using var image = KernelImage.Open(file.Path);
                var buffer = new byte[64];
                image.Read(FreeBsdAmd64Kernel.KmemBase, buffer);
                image.Read(Amd64MinidumpBuilder.DmapMinAddress + 0x1200000, buffer);
                foreach (var unused in image.EnumeratePages().Take(3000))
                {
                }
            }
            catch (KvmException)
            {
            }
        }
    }

    private KvmException Open(byte[] bytes)
    {
        using var file = new TempFile(bytes, "vmcore.0");
        return Assert.ThrowsAny<KvmException>(() => KernelImage.Open(file.Path));
    }

    private byte[] Patched(int offset, uint value)
    {
        var bytes = (byte[])_dump.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(offset), value);
        return bytes;
    }

    private byte[] Patched64(int offset, ulong value)
    {
        var bytes = (byte[])_dump.Clone();
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(offset), value);
        return bytes;
    }

    private static (long DumpAvail, long Bitmap, long PageMap, long Sparse) Layout(byte[] dump)
    {
        static long Round(long x) => (x + 4095) / 4096 * 4096;
        uint msgbuf = BinaryPrimitives.ReadUInt32LittleEndian(dump.AsSpan(28));
        uint bitmap = BinaryPrimitives.ReadUInt32LittleEndian(dump.AsSpan(32));
        uint pmap = BinaryPrimitives.ReadUInt32LittleEndian(dump.AsSpan(36));
        uint avail = BinaryPrimitives.ReadUInt32LittleEndian(dump.AsSpan(64));
        long a = 4096 + Round(msgbuf);
        long b = a + Round(avail);
        long p = b + Round(bitmap);
        return (a, b, p, p + Round(pmap));
    }

    private static byte[] Pairs(params (ulong Start, ulong End)[] pairs)
    {
        var bytes = new byte[(pairs.Length + 1) * 16];
        for (int i = 0; i < pairs.Length; i++)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(i * 16), pairs[i].Start);
            BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan((i * 16) + 8), pairs[i].End);
        }

        return bytes;
    }

    /// <summary>A v3 minidump of a small kernel, built once.</summary>
    public sealed class Dump
    {
        public byte[] Bytes { get; } = new FreeBsdAmd64Kernel().Minidump();
    }
}
