using Kvm.Testing.FakeKernel;

namespace Kvm.Tests.Linux;

/// <summary>Processes and threads of <see cref="FakeSystem"/> through the façade, with layouts only from its BTF.</summary>
public sealed class ProcessTests
{
    [Fact]
    public void Processes_AreTheThreadGroupLeadersInTaskListOrder()
    {
        var sys = new FakeSystem();
        using var fk = sys.Open();
        var list = fk.Image.GetProcesses();

        Assert.Empty(list.Errors);
        Assert.Equal([0, 1, 2, 3, 100, 200, 300, 400], list.Processes.Select(p => p.Pid));
        Assert.Equal(["swapper/0", "systemd", "kthreadd", "kworker/0:0H", "bash", "python3", "defunct", "vim"], list.Processes.Select(p => p.Command));
        Assert.Equal([0, 0, 0, 2, 1, 100, 100, 100], list.Processes.Select(p => p.ParentPid));
        Assert.Equal([0, 1, 0, 0, 100, 200, 100, 400], list.Processes.Select(p => p.ProcessGroupId));
        Assert.Equal([0, 1, 0, 0, 100, 100, 100, 100], list.Processes.Select(p => p.SessionId));
        Assert.Equal("RSSISSZT", new string(list.Processes.Select(p => p.State).ToArray()));
        Assert.Equal([true, false, true, true, false, false, false, false], list.Processes.Select(p => p.IsKernelThread));
        Assert.Equal(sys.Bash, list.Processes[4].TaskAddress);
    }
}
