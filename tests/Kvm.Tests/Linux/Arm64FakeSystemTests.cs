using Kvm.Testing;

namespace Kvm.Tests.Linux;

/// <summary>
/// The whole fake machine of <see cref="FakeSystem"/> on a Linux arm64 kernel: processes, their strings through arm64
/// user page tables (with an arm64 swap entry), files, load, swap, the kernel log and each CPU's current task from
/// <c>__entry_task</c>.
/// </summary>
public sealed class Arm64FakeSystemTests
{
    [Fact]
    public void EverythingAboveMemory_WorksOnArm64()
    {
        var sys = new FakeSystem(kernel: new FakeArm64Kernel());
        using var fk = sys.Open();
        var image = fk.Image;

        Assert.Equal("aarch64", image.Architecture);
        var list = image.GetProcesses();
        Assert.Empty(list.Errors);
        Assert.Equal([0, 1, 2, 3, 100, 200, 300, 400], list.Processes.Select(p => p.Pid));
        Assert.Equal(["/sbin/init", "splash"], image.GetArguments(image.FindProcess(1)!).Strings);
        Assert.Equal(["HOME=/", "TERM=linux"], image.GetEnvironment(image.FindProcess(1)!).Strings);

        // The python environment's second half is an arm64 swap PTE (Linux 6.1 layout: type in bits 7:2, offset from bit 8).
        var env = image.GetEnvironment(image.FindProcess(200)!);
        Assert.Contains($"swapped out: area 0, offset {FakeSystem.SwapOffset}", env.Reason, StringComparison.Ordinal);
        Assert.Equal(MemoryFaultReason.SwappedOut, env.FaultReason);

        Assert.Equal(["/dev/null", "/tmp/build.log"], image.GetOpenFiles(100).Files.Take(2).Select(f => f.Path));
        Assert.Equal(1.5, image.GetLoadAverage().One);
        Assert.Equal(2, image.GetSwapInfo().Areas.Count);
        Assert.Equal(3, image.ReadKernelLog().Records.Count);

        var cpus = image.GetCpus();
        Assert.Equal(4, cpus.MaxCpus);
        Assert.Equal([0, 1, -1, 201], cpus.Cpus.Select(c => c.CurrentPid ?? -1));
    }

    [Fact]
    public void SwappedOutPage_OfALinux63Kernel_DecodesTheFiveBitType()
    {
        // From 6.3 bit 2 is the exclusive marker and the type is in bits 7:3.
        var pte = Arm64PageTableBuilder.SwapEntry(5, 0x777, typeShift: 3) | 4;
        var format = Kvm.Linux.SwapEntryFormat.For(PagingMode.Arm64, "6.3.0-1-arm64");

        Assert.Equal(5, format.Type(pte));
        Assert.Equal(0x777UL, format.Offset(pte));
        Assert.Equal(11, Kvm.Linux.SwapEntryFormat.For(PagingMode.Arm64, "6.1.0-56-arm64").Type(pte));
    }
}
