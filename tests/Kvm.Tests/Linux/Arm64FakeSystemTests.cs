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

        // The python environment's second half is an arm64 swap PTE (Linux 6.1 layout: type in bits 7:3, offset from bit 8).
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
    public void SwapPte_OfLinux61_KeepsTheExclusiveBitOutOfTheType()
    {
        // Since 5.19 bit 2 is the exclusive marker and the type is in bits 7:3: the PTE 0x304 a Debian 6.1 arm64 guest
        // wrote for an exclusive page in slot 3 of area 0. Before 5.19 the type started at bit 2.
        var format = Kvm.Linux.SwapEntryFormat.For(PagingMode.Arm64, "6.1.0-50-arm64");
        Assert.Equal(0, format.Type(0x304));
        Assert.Equal(3UL, format.Offset(0x304));

        var old = Kvm.Linux.SwapEntryFormat.For(PagingMode.Arm64, "5.10.0-30-arm64");
        Assert.Equal(5, old.Type(Arm64PageTableBuilder.SwapEntry(5, 0x777, typeShift: 2)));
        Assert.Equal(0x777UL, old.Offset(Arm64PageTableBuilder.SwapEntry(5, 0x777, typeShift: 2)));
    }
}
