using System.Buffers.Binary;
using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Kvm.Images;
using Kvm.Testing;

namespace Kvm.Tests.Images.Swap;

/// <summary>
/// Swap headers written by util-linux <c>mkswap</c> (the independent oracle), checked against what <c>mkswap</c>
/// reports and <c>blkid -p</c> reads back; corrupt headers are mkswap output with one field broken.
/// </summary>
public sealed partial class SwapImageTests
{
    private const string Uuid = "4b564d54-5357-4150-8000-0000000000a1";

    [Theory]
    [InlineData(4096, false)]
    [InlineData(4096, true)]
    [InlineData(16384, false)]
    [InlineData(65536, true)]
    public void Open_MkswapImage_MatchesMkswapAndBlkid(int pageSize, bool bigEndian)
    {
        using var file = new TempFile(new byte[2 << 20], "swap.img");
        string output = Run("mkswap", "-p", pageSize.ToString(CultureInfo.InvariantCulture), "-U", Uuid, "-L", "kvm-label", file.Path);
        if (bigEndian)
        {
            // What a big-endian kernel's mkswap writes: version, last_page and nr_badpages byte-swapped (util-linux
            // 2.38 has no --endianness; libblkid reads either order).
            Patch(file.Path, b =>
            {
                for (int at = 1024; at < 1036; at += 4)
                {
                    BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan(at), BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(at)));
                }
            });
        }

        Assert.True(MkswapSize().IsMatch(output), output);
        long sizeBytes = long.Parse(MkswapSize().Match(output).Groups[1].Value, CultureInfo.InvariantCulture);
        var blkid = Run("blkid", "-o", "export", "-p", file.Path).Split('\n').Select(l => l.Split('=', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);

        using var swap = SwapImage.Open(file.Path);

        Assert.Equal(pageSize, swap.PageSize);
        Assert.Equal(bigEndian, swap.IsBigEndian);
        Assert.Equal(Uuid, swap.Uuid.ToString());
        Assert.Equal(blkid["UUID"], swap.Uuid.ToString());
        Assert.Equal("kvm-label", swap.Label);
        Assert.Equal(blkid["LABEL"], swap.Label);
        // mkswap reports the usable size, (last_page) pages: slots 1..last_page.
        Assert.Equal(sizeBytes / pageSize, swap.LastPage);
        Assert.Empty(swap.BadPages);
        Assert.Equal(file.Path, swap.Path);
    }

    [Fact]
    public void Open_WithoutLabel_HasNullLabel()
    {
        using var file = new TempFile(new byte[1 << 20], "swap.img");
        Run("mkswap", "-U", Uuid, file.Path);

        using var swap = SwapImage.Open(file.Path);

        Assert.Null(swap.Label);
    }

    [Fact]
    public void ReadPage_ReturnsTheSlotAndRejectsHeaderPastEndAndBadPages()
    {
        using var file = new TempFile(new byte[1 << 20], "swap.img");
        Run("mkswap", "-U", Uuid, file.Path);
        Patch(file.Path, b =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(1032), 1);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(1536), 3);
            b.AsSpan(5 * 4096, 4096).Fill(0x5a);
        });
        using var swap = SwapImage.Open(file.Path);
        var page = new byte[4096];

        Assert.Equal(4096, swap.ReadPage(5, page));
        Assert.All(page, b => Assert.Equal(0x5a, b));
        Assert.Equal([3u], swap.BadPages);
        Assert.Contains("header", Assert.ThrowsAny<KvmException>(() => swap.ReadPage(0, page)).Message, StringComparison.Ordinal);
        Assert.Contains("last_page 255", Assert.ThrowsAny<KvmException>(() => swap.ReadPage(256, page)).Message, StringComparison.Ordinal);
        Assert.Contains("bad page", Assert.ThrowsAny<KvmException>(() => swap.ReadPage(3, page)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => swap.ReadPage(5, new byte[100]));
    }

    [Fact]
    public void ReadPage_FileTruncatedAfterOpen_IsCorrupt()
    {
        using var file = new TempFile(new byte[1 << 20], "swap.img");
        Run("mkswap", "-U", Uuid, file.Path);
        using var swap = SwapImage.Open(file.Path);
        using (var stream = new FileStream(file.Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite))
        {
            stream.SetLength(10 * 4096);
        }

        Assert.Throws<CorruptImageException>(() => swap.ReadPage(20, new byte[4096]));
    }

    [Fact]
    public void Open_NoMagic_IsCorrupt()
    {
        using var file = new TempFile(new byte[1 << 20], "swap.img");

        Assert.Contains("SWAPSPACE2", Assert.Throws<CorruptImageException>(() => SwapImage.Open(file.Path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_Version2_IsNotSupported()
    {
        var e = OpenPatched(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(1024), 2));

        Assert.Equal(KvmErrorCode.NotSupported, e.Code);
        Assert.Contains("version 2", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_LastPageBeyondFile_IsCorrupt()
    {
        var e = OpenPatched(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(1028), 1000));

        Assert.IsType<CorruptImageException>(e);
        Assert.Contains("last_page 1000", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_HugeNrBadPages_IsCorrupt()
    {
        var e = OpenPatched(b => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(1032), 0x7fffffff));

        Assert.IsType<CorruptImageException>(e);
        Assert.Contains("nr_badpages", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_BadPageOutsideTheArea_IsCorrupt()
    {
        var e = OpenPatched(b =>
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(1032), 1);
            BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(1536), 5000);
        });

        Assert.IsType<CorruptImageException>(e);
    }

    private static KvmException OpenPatched(Action<byte[]> patch)
    {
        using var file = new TempFile(new byte[1 << 20], "swap.img");
        Run("mkswap", "-U", Uuid, file.Path);
        Patch(file.Path, patch);
        return Assert.ThrowsAny<KvmException>(() => SwapImage.Open(file.Path).Dispose());
    }

    private static void Patch(string path, Action<byte[]> patch)
    {
        byte[] bytes = File.ReadAllBytes(path);
        patch(bytes);
        File.WriteAllBytes(path, bytes);
    }

    private static string Run(string tool, params string[] args)
    {
        string exe = new[] { "/usr/sbin", "/sbin", "/usr/bin", "/bin" }.Select(d => Path.Combine(d, tool)).FirstOrDefault(File.Exists)
            ?? throw new InvalidOperationException($"{tool} (util-linux) is needed by these tests");
        var start = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args)
        {
            start.ArgumentList.Add(a);
        }

        using var process = Process.Start(start)!;
        string stdout = process.StandardOutput.ReadToEnd();
        string stderr = process.StandardError.ReadToEnd();
        process.WaitForExit();
        Assert.True(process.ExitCode == 0, $"{tool} failed ({process.ExitCode}): {stderr}");
        return stdout;
    }

    [GeneratedRegex(@"size = [^(]*\((\d+) bytes\)")]
    private static partial Regex MkswapSize();
}
