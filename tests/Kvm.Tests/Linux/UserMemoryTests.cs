using System.Text;

namespace Kvm.Tests.Linux;

/// <summary>argv and environment (kvm_getargv/kvm_getenvv) through each process's own page tables in <see cref="FakeSystem"/>.</summary>
public sealed class UserMemoryTests : IClassFixture<FakeSystemFixture>
{
    private readonly FakeSystemFixture _f;

    public UserMemoryTests(FakeSystemFixture fixture) => _f = fixture;

    private KernelImage Image => _f.Kernel.Image;

    [Fact]
    public void Arguments_StringCrossingAPageBoundary_AreReadWhole()
    {
        // "/sbin/" is the last 6 bytes of one user page and "init\0splash\0" starts the next.
        Assert.Equal(0UL, (FakeSystem.SystemdArgStart + 6) & 0xfff);
        var args = Image.GetArguments(Image.FindProcess(1)!);

        Assert.True(args.IsComplete);
        Assert.Null(args.Reason);
        Assert.False(args.Truncated);
        Assert.Equal(["/sbin/init", "splash"], args.Strings);
    }

    [Fact]
    public void Environment_IsSplitAtNuls()
    {
        var env = Image.GetEnvironment(Image.FindProcess(1)!);

        Assert.True(env.IsComplete);
        Assert.Equal(["HOME=/", "TERM=linux"], env.Strings);
    }

    [Fact]
    public void Arguments_EmptyArgumentAndInvalidUtf8_AreKeptByteExact()
    {
        var args = Image.GetArguments(Image.FindProcess(200)!);

        Assert.True(args.IsComplete);
        Assert.Equal(4, args.Values.Count);
        Assert.Equal("python3"u8.ToArray(), args.Values[0]);
        Assert.Empty(args.Values[1]);
        Assert.Equal("-c"u8.ToArray(), args.Values[2]);
        Assert.Equal(new byte[] { 0xff, 0xfe, (byte)'x' }, args.Values[3]);
        Assert.Equal("\uFFFD\uFFFDx", args.Strings[3]);
    }

    [Fact]
    public void Arguments_MaxBytesLimit_TruncatesLikeNchr()
    {
        var systemd = Image.FindProcess(1)!;

        var eight = Image.GetArguments(systemd, maxBytes: 8);
        Assert.True(eight.Truncated);
        Assert.True(eight.IsComplete);
        Assert.Equal(["/sbin/i"], eight.Strings); // 7 bytes and the NUL

        var eleven = Image.GetArguments(systemd, maxBytes: 11);
        Assert.Equal(["/sbin/init"], eleven.Strings);
        Assert.True(eleven.Truncated);

        var exact = Image.GetArguments(systemd, maxBytes: FakeSystem.SystemdArgs.Length);
        Assert.False(exact.Truncated);
        Assert.Equal(["/sbin/init", "splash"], exact.Strings);
    }

    [Fact]
    public void Environment_SwappedOutPage_WithoutSwapImage_StopsThereWithTheSwapEntry()
    {
        var env = Image.GetEnvironment(Image.FindProcess(200)!);

        Assert.False(env.IsComplete);
        Assert.Equal(MemoryFaultReason.SwappedOut, env.FaultReason);
        Assert.Contains($"swapped out: area 0, offset {FakeSystem.SwapOffset}", env.Reason, StringComparison.Ordinal);
        Assert.Contains($"page 0x{FakeSystem.PythonEnvStart + 0x10:x}", env.Reason, StringComparison.Ordinal);
        Assert.Equal(["A=1", "LC_ALL=C.UTF"], env.Strings);
    }

    [Fact]
    public void Environment_NotPresentPage_StopsThereWithTheReason()
    {
        var env = Image.GetEnvironment(Image.FindProcess(100)!);

        Assert.False(env.IsComplete);
        Assert.Equal(MemoryFaultReason.NotMapped, env.FaultReason);
        Assert.Contains($"page 0x{FakeSystem.BashEnvStart + 0x20:x} is not mapped", env.Reason, StringComparison.Ordinal);
        Assert.Equal(["USER=u", "LANG=C.UTF-8", "PATH=/usr/b"], env.Strings);
        Assert.Equal(["-bash"], Image.GetArguments(Image.FindProcess(100)!).Strings);
    }

    [Fact]
    public void KernelThread_HasNoUserAddressSpace()
    {
        var args = Image.GetArguments(Image.FindProcess(2)!);

        Assert.False(args.IsComplete);
        Assert.Empty(args.Values);
        Assert.Contains("kernel thread", args.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void ReadUser_ReadsThroughTheProcessPageTables_AcrossPages()
    {
        var systemd = Image.FindProcess(1)!;
        var bytes = Image.ReadUser(systemd, FakeSystem.SystemdArgStart, FakeSystem.SystemdArgs.Length, out string? error);

        Assert.Null(error);
        Assert.Equal(FakeSystem.SystemdArgs, bytes);

        // The same virtual address means nothing in another process.
        var other = Image.ReadUser(Image.FindProcess(100)!, FakeSystem.SystemdArgStart, 4, out error);
        Assert.Empty(other);
        Assert.NotNull(error);
        Assert.Equal("/sbin/", Encoding.ASCII.GetString(bytes, 0, 6));
    }

    [Theory]
    [InlineData(0, 1UL)]
    [InlineData(2, 0x1234_5678UL)]
    [InlineData(31, (1UL << 50) - 1)]
    public void ReadUser_SwapEntry_TypeAndOffsetAreDecoded(int type, ulong offset)
    {
        var sys = new FakeSystem();
        const ulong page = 0x7ffe_0010_0000;
        sys.PythonMm.WriteUser(page - 8, "tail of "u8);
        sys.PythonMm.SwapOut(page, type, offset);
        using var fk = sys.Open();

        var bytes = fk.Image.ReadUser(fk.Image.FindProcess(200)!, page - 8, 16, out string? error);

        Assert.Equal("tail of "u8.ToArray(), bytes);
        Assert.Equal($"page 0x{page:x} is swapped out: area {type}, offset {offset} (no swap image given)", error);
    }
}
