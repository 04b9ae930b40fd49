namespace Kvm.Tests.Linux;

/// <summary>Swap areas and open files of <see cref="FakeSystem"/>: paths rebuilt through dentries and mounts.</summary>
public sealed class SwapAndFileTests : IClassFixture<FakeSystemFixture>
{
    private readonly FakeSystemFixture _f;

    public SwapAndFileTests(FakeSystemFixture fixture) => _f = fixture;

    private KernelImage Image => _f.Kernel.Image;

    [Fact]
    public void SwapInfo_KeepsSwpUsedAreas_WithNamesFromDPath()
    {
        var swap = Image.GetSwapInfo();

        Assert.Equal(4096, swap.PageSize);
        Assert.Equal(2, swap.Areas.Count);
        Assert.Equal(new SwapArea(0, "/swapfile", true, 262143, 1000, -2, 262144, 3, true), swap.Areas[0]);
        Assert.Equal(new SwapArea(2, "/dev/sda2", false, 524287, 17, 10, 524288, 0x41, false), swap.Areas[1]);
        Assert.Equal(262143 + 524287, swap.TotalPages);
        Assert.Equal(1017, swap.UsedPages);
    }

    [Fact]
    public void OpenFiles_PathsFlagsPositionsAndTypes()
    {
        var list = Image.GetOpenFiles(100);

        Assert.Empty(list.Errors);
        Assert.Equal([0, 1, 2, 3, 5, 70], list.Files.Select(f => f.Fd));
        Assert.Equal(["/dev/null", "/tmp/build.log", $"pipe:[{FakeSystem.PipeInode}]", "/home/user/notes.txt", "/home/user", "/tmp"], list.Files.Select(f => f.Path));

        // O_CLOEXEC (0x80000) comes from the close_on_exec bitmap (fds 3, 5 and 70, the last in the second word).
        Assert.Equal([0x8000u, 0x8401u, 0x1u, 0x88002u, 0x98000u, 0x90000u], list.Files.Select(f => f.Flags));
        Assert.Equal([0L, 4096L, 0L, 123L, 0L, 0L], list.Files.Select(f => f.Position));
        Assert.Equal(
            [OpenFileType.CharacterDevice, OpenFileType.Regular, OpenFileType.Fifo, OpenFileType.Regular, OpenFileType.Directory, OpenFileType.Directory],
            list.Files.Select(f => f.Type));
        Assert.Equal([5UL, 77UL, FakeSystem.PipeInode, 131073UL, 12UL, 1UL], list.Files.Select(f => f.Inode));
        Assert.All(list.Files, f => Assert.Equal((100, "bash"), (f.Pid, f.Command)));
    }

    [Fact]
    public void OpenFiles_OfEveryProcess_SkipKernelThreadsAndProcessesWithoutFiles()
    {
        var list = Image.GetOpenFiles();

        Assert.Empty(list.Errors);
        Assert.Equal([100, 100, 100, 100, 100, 100, 200], list.Files.Select(f => f.Pid));
        var pipeReader = list.Files[^1];
        Assert.Equal((0, $"pipe:[{FakeSystem.PipeInode}]", 0u, OpenFileType.Fifo), (pipeReader.Fd, pipeReader.Path, pipeReader.Flags, pipeReader.Type));
    }
}
