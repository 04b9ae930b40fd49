using Kvm.Testing;
using Kvm.Testing.FreeBsd;

namespace Kvm.Tests.FreeBsd;

/// <summary>
/// The dump device's framing (kerneldumpheader v1-v4, leading and trailing, as the kernel writes and savecore reads
/// it) and compressed dumps (savecore -z, dumpon -z/-Z): each reads exactly as the plain minidump does.
/// </summary>
public sealed class FramingAndCompressionTests : IClassFixture<FramingAndCompressionTests.Dumps>
{
    private readonly Dumps _dumps;

    public FramingAndCompressionTests(Dumps dumps)
    {
        _dumps = dumps;
    }

    [Theory]
    [InlineData(1, 512)]
    [InlineData(2, 512)]
    [InlineData(3, 512)]
    [InlineData(4, 512)]
    [InlineData(4, 4096)]
    public void LeadingHeader_EveryVersion_ReadsAsThePlainDump(int version, int block)
    {
        var header = KernelDumpFraming.Header((ulong)_dumps.Minidump.Length, version, blockSize: (uint)block, dumpExtent: (ulong)_dumps.Minidump.Length + 8192);
        var device = KernelDumpFraming.Device(header, _dumps.Minidump);
        using var file = new TempFile(device, "dumpdev");
        using var image = KernelImage.Open(file.Path);
        Assert.Contains($"kerneldumpheader v{version}", image.FormatDescription, StringComparison.Ordinal);
        AssertSameAsPlain(image);

        // Offsets are the device file's: the payload starts a block in.
        var page = image.EnumeratePages().First(p => p.FileOffset >= 0);
        Assert.Equal(_dumps.PlainOffsets[page.PhysicalAddress] + block, page.FileOffset);
    }

    [Theory]
    [InlineData(512)]
    [InlineData(4096)]
    public void DeviceImage_IsFoundByTheTrailingHeader(int sector)
    {
        var header = KernelDumpFraming.Header((ulong)_dumps.Minidump.Length, blockSize: (uint)sector, dumpExtent: (ulong)_dumps.Minidump.Length + 4096);
        var device = KernelDumpFraming.Device(header, _dumps.Minidump, before: 3 * 1 << 20);
        using var file = new TempFile(device, "ada0p3");
        using var image = KernelImage.Open(file.Path);
        AssertSameAsPlain(image);
    }

    [Fact]
    public void FullDumpInsideTheFraming_IsReadToo()
    {
        var header = KernelDumpFraming.Header((ulong)_dumps.Full.Length);
        using var file = new TempFile(KernelDumpFraming.Device(header, _dumps.Full), "dumpdev");
        using var kernel = new TempFile(_dumps.Kernel.KernelElf(), "kernel");
        using var image = KernelImage.Open(file.Path, new KernelImageOptions { Namelists = [kernel.Path] });
        Assert.Equal(DumpFormat.Elf, image.Format);
        Assert.Equal(FreeBsdAmd64Kernel.Osrelease, image.Release);
    }

    [Fact]
    public void HeadersThatDisagree_AreRefused()
    {
        var header = KernelDumpFraming.Header((ulong)_dumps.Minidump.Length);
        var device = KernelDumpFraming.Device(header, _dumps.Minidump);

        // A trailer with another hostname, and a parity that is right for it.
        var trailer = device.AsSpan(device.Length - 512).ToArray();
        trailer[64] ^= 1;
        KernelDumpFraming.SetParity(trailer);
        trailer.CopyTo(device, device.Length - 512);
        using var file = new TempFile(device, "dumpdev");
        var e = Assert.ThrowsAny<KvmException>(() => KernelImage.Open(file.Path));
        Assert.Contains("disagree", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ParityError_IsRefused()
    {
        var header = KernelDumpFraming.Header((ulong)_dumps.Minidump.Length);
        header[100] ^= 0x40;
        using var file = new TempFile(KernelDumpFraming.Device(header, _dumps.Minidump, trailer: false), "dumpdev");
        var e = Assert.Throws<CorruptImageException>(() => KernelImage.Open(file.Path));
        Assert.Contains("parity error", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(KernelDumpFraming.TextDumpMagic, "textdump")]
    [InlineData(KernelDumpFraming.ClearedMagic, "cleared")]
    public void TextDumpsAndClearedHeaders_SayWhatTheyAre(string magic, string expected)
    {
        var header = KernelDumpFraming.Header(4096, magic: magic);
        using var file = new TempFile(KernelDumpFraming.Device(header, new byte[4096]), "dumpdev");
        var e = Assert.Throws<KvmException>(() => KernelImage.Open(file.Path));
        Assert.Equal(KvmErrorCode.NotSupported, e.Code);
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void EncryptedDump_AsksForDecryptcore()
    {
        var header = KernelDumpFraming.Header((ulong)_dumps.Minidump.Length, keySize: 512);
        using var file = new TempFile(KernelDumpFraming.Device(header, _dumps.Minidump, key: new byte[512]), "dumpdev");
        var e = Assert.Throws<KvmException>(() => KernelImage.Open(file.Path));
        Assert.Contains("decryptcore", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownHeaderVersion_IsNamed()
    {
        var header = KernelDumpFraming.Header((ulong)_dumps.Minidump.Length);
        header[35] = 9;
        KernelDumpFraming.SetParity(header);
        using var file = new TempFile(KernelDumpFraming.Device(header, _dumps.Minidump, trailer: false), "dumpdev");
        var e = Assert.Throws<CorruptImageException>(() => KernelImage.Open(file.Path));
        Assert.Contains("unknown version (9)", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("gz")]
    [InlineData("zst")]
    public void SavedCompressedCore_ReadsAsThePlainDump(string kind)
    {
        var bytes = kind == "gz" ? KernelDumpFraming.Gzip(_dumps.Minidump) : KernelDumpFraming.Zstd(_dumps.Minidump);
        using var file = new TempFile(bytes, $"vmcore.0.{kind}");
        using var image = KernelImage.Open(file.Path);
        Assert.Equal(kind == "gz" ? DumpCompression.Gzip : DumpCompression.Zstd, image.Compression);
        Assert.Equal([file.Path], image.Files);
        AssertSameAsPlain(image);

        // The pages are not plain bytes of the file given.
        Assert.All(image.EnumeratePages(), p => Assert.Equal(-1, p.FileOffset));
    }

    [Theory]
    [InlineData(1, "gz")]
    [InlineData(2, "zst")]
    public void CompressedDumpOnTheDevice_ReadsAsThePlainDump(byte compression, string kind)
    {
        var payload = kind == "gz" ? KernelDumpFraming.Gzip(_dumps.Minidump) : KernelDumpFraming.Zstd(_dumps.Minidump);
        var header = KernelDumpFraming.Header((ulong)payload.Length, compression: compression, dumpExtent: (ulong)_dumps.Minidump.Length);
        using var file = new TempFile(KernelDumpFraming.Device(header, payload, before: 1 << 20), "ada0p3");
        using var image = KernelImage.Open(file.Path);
        AssertSameAsPlain(image);
    }

    [Fact]
    public void CompressedFullDump_ReadsThroughThePageTables()
    {
        using var file = new TempFile(KernelDumpFraming.Gzip(_dumps.Full), "vmcore.1.gz");
        using var kernel = new TempFile(_dumps.Kernel.KernelElf(), "kernel");
        using var image = KernelImage.Open(file.Path, new KernelImageOptions { Namelists = [kernel.Path] });
        Assert.Equal("KPML4phys", image.Layout.Method);
        Assert.Contains("gzip-compressed", image.FormatDescription, StringComparison.Ordinal);
        var page = new byte[4096];
        image.ReadExactly(FreeBsdAmd64Kernel.KmemBase, page);
        Assert.Equal(FreeBsdAmd64Kernel.Pattern(0), page);
    }

    [Fact]
    public void CompressedStreamThatInflatesPastTheCap_IsRefused()
    {
        using var file = new TempFile(KernelDumpFraming.Gzip(_dumps.Minidump), "vmcore.0.gz");
        var options = new KernelImageOptions { Limits = new KvmLimits { MaxDecompressedBytes = 1 << 20 } };
        var e = Assert.Throws<CorruptImageException>(() => KernelImage.Open(file.Path, options));
        Assert.Contains("MaxDecompressedBytes", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CorruptCompressedStream_IsNamed()
    {
        var bytes = KernelDumpFraming.Gzip(_dumps.Minidump);
        for (int i = 100; i < 200; i++)
        {
            bytes[i] ^= 0xa5;
        }

        using var file = new TempFile(bytes, "vmcore.0.gz");
        var e = Assert.ThrowsAny<KvmException>(() => KernelImage.Open(file.Path));
        Assert.Contains("vmcore.0.gz", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CompressedFileThatIsNotADump_IsRefusedBeforeDecompressingIt()
    {
        using var file = new TempFile(KernelDumpFraming.Zstd(new byte[10 << 20]), "notes.zst");
        var e = Assert.Throws<KvmException>(() => KernelImage.Open(file.Path));
        Assert.Equal(KvmErrorCode.NotSupported, e.Code);
        Assert.Contains("not a dump Kvm reads", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(4, 0xffffffffffffff00UL)]
    [InlineData(4, 0x7fffffffffffffffUL)]
    [InlineData(1, 0xfffffffffffff000UL)]
    public void AbsurdLengthsInTheHeaders_AreRefused(int version, ulong length)
    {
        var header = KernelDumpFraming.Header(length, version, dumpExtent: length);

        // The header alone at the end (a device image), and at the start.
        using var tail = new TempFile([.. new byte[8192], .. header], "ada0p3");
        Assert.ThrowsAny<KvmException>(() => KernelImage.Open(tail.Path));
        using var head = new TempFile([.. header, .. new byte[8192]], "dumpdev");
        Assert.ThrowsAny<KvmException>(() => KernelImage.Open(head.Path));
    }

    private void AssertSameAsPlain(KernelImage image)
    {
        Assert.Equal(KernelOperatingSystem.FreeBsd, image.OperatingSystem);
        Assert.Equal(DumpFormat.Minidump, image.Format);
        var page = new byte[4096];
        for (int i = 0; i < FreeBsdAmd64Kernel.KmemPages; i++)
        {
            image.ReadExactly(FreeBsdAmd64Kernel.KmemBase + ((ulong)i * 4096), page);
            Assert.Equal(FreeBsdAmd64Kernel.Pattern(i), page);
        }

        Assert.Equal(_dumps.PlainPages, image.EnumeratePages().Select(p => (p.PhysicalAddress, p.KernelMapAddress, p.Length)).ToList());
    }

    /// <summary>One kernel, its minidump and full dump, and the plain minidump's walk, shared by the tests.</summary>
    public sealed class Dumps
    {
        public Dumps()
        {
            Kernel = new FreeBsdAmd64Kernel();
            Minidump = Kernel.Minidump();
            Full = Kernel.FullDump();
            using var file = new TempFile(Minidump, "vmcore.0");
            using var image = KernelImage.Open(file.Path);
            var pages = image.EnumeratePages().ToList();
            PlainPages = pages.Select(p => (p.PhysicalAddress, p.KernelMapAddress, p.Length)).ToList();
            PlainOffsets = pages.Where(p => p.FileOffset >= 0).GroupBy(p => p.PhysicalAddress).ToDictionary(g => g.Key, g => g.First().FileOffset);
        }

        public FreeBsdAmd64Kernel Kernel { get; }

        public byte[] Minidump { get; }

        public byte[] Full { get; }

        public List<(ulong, ulong, ulong)> PlainPages { get; }

        public Dictionary<ulong, long> PlainOffsets { get; }
    }
}
