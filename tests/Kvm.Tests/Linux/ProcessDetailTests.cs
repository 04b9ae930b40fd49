using Kvm.Testing.FakeKernel;

namespace Kvm.Tests.Linux;

/// <summary>
/// The controlling terminal's groups, signal sets, fault counts and the files/stack addresses of <see cref="FakeSystem"/>'s
/// tasks through the façade, with layouts only from its BTF (whose offsets, sigaction member order and k_sigaction
/// stride are no real kernel's).
/// </summary>
public sealed class ProcessDetailTests : IClassFixture<FakeSystemFixture>
{
    private readonly FakeSystemFixture _f;

    public ProcessDetailTests(FakeSystemFixture fixture) => _f = fixture;

    private KernelImage Image => _f.Kernel.Image;

    [Fact]
    public void TtyGroups_AreTheTtysForegroundGroupAndSession_MinusOneWithoutTty()
    {
        var list = Image.GetProcesses();

        Assert.Empty(list.Errors);
        Assert.Equal([-1, -1, -1, -1, 200, 200, 200, 200], list.Processes.Select(p => p.TtyProcessGroupId));
        Assert.Equal([0, 0, 0, 0, 100, 100, 100, 100], list.Processes.Select(p => p.TtySessionId));
    }

    [Fact]
    public void SignalDispositions_FromSighandActions_IgnIsOneAndAnythingElseIsCaught()
    {
        var p = Image.GetProcesses().Processes.ToDictionary(p => p.Pid);

        Assert.Equal((1UL << 2, (1UL << 1) | (1UL << 16)), (p[1].IgnoredSignals, p[1].CaughtSignals));
        Assert.Equal((ulong.MaxValue, 0UL), (p[2].IgnoredSignals, p[2].CaughtSignals));
        Assert.Equal(((1UL << 2) | (1UL << 19), (1UL << 1) | (1UL << 16) | (1UL << 32)), (p[100].IgnoredSignals, p[100].CaughtSignals));
        Assert.Equal(((1UL << 12) | (1UL << 63), (1UL << 14) | (1UL << 32)), (p[200].IgnoredSignals, p[200].CaughtSignals));
        Assert.Equal((0UL, 0UL), (p[400].IgnoredSignals, p[400].CaughtSignals));
    }

    [Fact]
    public void PendingAndBlocked_AreTheTasksOwn_SharedPendingTheProcesss()
    {
        var python = Image.FindProcess(200)!;
        Assert.Equal((0UL, 1UL << 14, (1UL << 9) | (1UL << 63)), (python.PendingSignals, python.SharedPendingSignals, python.BlockedSignals));

        var threads = Image.GetProcesses(new ProcessQuery(ProcessSelector.Pid, 200, IncludeThreads: true)).Processes;
        Assert.Equal([0UL, 1UL << 9, 0UL], threads.Select(t => t.PendingSignals));
        Assert.All(threads, t => Assert.Equal(1UL << 14, t.SharedPendingSignals));
        Assert.Equal([(1UL << 9) | (1UL << 63), 0UL, 1UL], threads.Select(t => t.BlockedSignals));
        Assert.All(threads, t => Assert.Equal(python.CaughtSignals, t.CaughtSignals));
    }

    [Fact]
    public void Faults_ProcessIsDeadThreadsPlusEveryLiveThread_ThreadIsItsOwn_ChildrenFromTheSignal()
    {
        var systemd = Image.FindProcess(1)!;
        Assert.Equal((177UL + 10, 3UL + 1, 715UL, 2UL), (systemd.MinorFaults, systemd.MajorFaults, systemd.ChildMinorFaults, systemd.ChildMajorFaults));

        var python = Image.FindProcess(200)!;
        Assert.Equal((1000UL + 100 + 20 + 3, 10UL + 1 + 2 + 0, 5UL, 6UL), (python.MinorFaults, python.MajorFaults, python.ChildMinorFaults, python.ChildMajorFaults));

        var threads = Image.GetProcesses(new ProcessQuery(ProcessSelector.Pid, 200, IncludeThreads: true)).Processes;
        Assert.Equal([(100UL, 1UL), (20UL, 2UL), (3UL, 0UL)], threads.Select(t => (t.MinorFaults, t.MajorFaults)));
        Assert.All(threads, t => Assert.Equal((5UL, 6UL), (t.ChildMinorFaults, t.ChildMajorFaults)));
    }

    [Fact]
    public void TaskWithoutSighand_ShowsNoSignalsAndNoProcessFaults_AsProcUnderLockTaskSighand()
    {
        // The zombie's sighand is NULL (as after __exit_signal()): /proc's task_sig() and do_task_stat(whole) read
        // nothing, though the fake wrote a pending signal and fault counts. The thread's own counts stay.
        var zombie = Image.FindProcess(300)!;
        Assert.Equal((0UL, 0UL, 0UL, 0UL), (zombie.PendingSignals, zombie.BlockedSignals, zombie.IgnoredSignals, zombie.CaughtSignals));
        Assert.Equal((0UL, 0UL, 0UL, 0UL), (zombie.MinorFaults, zombie.MajorFaults, zombie.ChildMinorFaults, zombie.ChildMajorFaults));

        var thread = Image.GetProcesses(new ProcessQuery(ProcessSelector.Pid, 300, IncludeThreads: true)).Processes.Single();
        Assert.Equal((50UL, 5UL, 0UL), (thread.MinorFaults, thread.MajorFaults, thread.ChildMinorFaults));
    }

    [Fact]
    public void FilesAndKernelStack_AreTheTasksPointers()
    {
        var bash = Image.FindProcess(100)!;

        Assert.Equal(_f.System.BashFiles, bash.FilesAddress);
        Assert.Equal(FakeSystem.BashStack, bash.KernelStackAddress);
        Assert.Equal(0UL, Image.FindProcess(2)!.FilesAddress);
    }

    [Fact]
    public void KernelWithoutTheMembers_ListsProcessesWithTheDefaults()
    {
        var sys = new FakeSystem();
        foreach (string member in new[] { "tty_struct.ctrl", "task_struct.sighand", "task_struct.min_flt", "signal_struct.min_flt", "task_struct.stack" })
        {
            sys.K.OmitFromBtf.Add(member);
        }

        using var fk = sys.Open();
        var list = fk.Image.GetProcesses();

        Assert.Empty(list.Errors);
        var python = list.Processes.Single(p => p.Pid == 200);
        Assert.Equal((-1, 0), (python.TtyProcessGroupId, python.TtySessionId));
        Assert.Equal((0UL, 0UL, 0UL), (python.SharedPendingSignals, python.CaughtSignals, python.KernelStackAddress));

        // Without sighand the counts cannot be told to be /proc's empty ones: what is there is summed.
        Assert.Equal((10UL + 1 + 2 + 0, 5UL), (python.MajorFaults, python.ChildMinorFaults));
        Assert.Equal(0UL, python.MinorFaults);
    }
}
