using Kvm.Testing;

namespace Kvm.Tests.Linux;

/// <summary>The same fake machine on other kernel shapes: 5-level paging, another KASLR offset.</summary>
public sealed class VariantKernelTests
{
    [Fact]
    public void FiveLevelPaging_UserPageTablesAreWalkedWithFiveLevels()
    {
        var sys = new FakeSystem(kernel: new FakeLinuxKernel(fiveLevel: true));
        using var fk = sys.Open();

        Assert.Equal(5, fk.Image.Layout.PagingLevels);
        var list = fk.Image.GetProcesses();
        Assert.Empty(list.Errors);
        Assert.Equal([0, 1, 2, 3, 100, 200, 300, 400], list.Processes.Select(p => p.Pid));
        Assert.Equal(["/sbin/init", "splash"], fk.Image.GetArguments(fk.Image.FindProcess(1)!).Strings);
        var env = fk.Image.GetEnvironment(fk.Image.FindProcess(200)!);
        Assert.Contains($"swapped out: area 0, offset {FakeSystem.SwapOffset}", env.Reason, StringComparison.Ordinal);
        Assert.Equal(["/dev/null", "/tmp/build.log"], fk.Image.GetOpenFiles(100).Files.Take(2).Select(f => f.Path));
    }

    [Fact]
    public void OtherKaslrOffset_GlobalsAndBtfAreFoundThroughTheDisplacedMap()
    {
        var sys = new FakeSystem(kernel: new FakeLinuxKernel(kaslrOffset: 0x1c00000));
        using var fk = sys.Open();

        Assert.Equal(0x1c00000L, fk.Image.KaslrOffset);
        Assert.Equal(1.5, fk.Image.GetLoadAverage().One);
        Assert.Equal(2, fk.Image.GetSwapInfo().Areas.Count);
        Assert.Equal(3, fk.Image.ReadKernelLog().Records.Count);
    }
}
