using Kvm.Testing.FakeKernel;

namespace Kvm.Tests.Linux;

/// <summary>Processes and threads of <see cref="FakeSystem"/> through the façade, with layouts only from its BTF.</summary>
public sealed class ProcessTests : IClassFixture<FakeSystemFixture>
{
    private readonly FakeSystemFixture _f;

    public ProcessTests(FakeSystemFixture fixture) => _f = fixture;

    private KernelImage Image => _f.Kernel.Image;

    [Fact]
    public void Processes_AreTheThreadGroupLeadersInTaskListOrder()
    {
        var list = Image.GetProcesses();

        Assert.Empty(list.Errors);
        Assert.Equal([0, 1, 2, 3, 100, 200, 300, 400], list.Processes.Select(p => p.Pid));
        Assert.Equal(list.Processes.Select(p => p.Pid), list.Processes.Select(p => p.Tgid));
        Assert.Equal(["swapper/0", "systemd", "kthreadd", "kworker/0:0H", "bash", "python3", "defunct", "vim"], list.Processes.Select(p => p.Command));
        Assert.Equal([_f.System.K.InitTask, _f.System.Systemd, _f.System.Kthreadd, _f.System.Kworker, _f.System.Bash, _f.System.Python, _f.System.Zombie, _f.System.Vim],
            list.Processes.Select(p => p.TaskAddress));
    }

    [Fact]
    public void ParentPids_ChildrenOfTheIdleTaskReportZero()
    {
        var list = Image.GetProcesses();

        Assert.Equal([0, 0, 0, 2, 1, 100, 100, 100], list.Processes.Select(p => p.ParentPid));
    }

    [Fact]
    public void ProcessGroupAndSession_ComeFromSignalPidsIndexedByTheBtfEnum()
    {
        // FakeKernelLayout renumbers enum pid_type (PGID 3, SID 1): right answers prove the walker took them from BTF.
        var list = Image.GetProcesses();

        Assert.Equal([0, 1, 0, 0, 100, 200, 100, 400], list.Processes.Select(p => p.ProcessGroupId));
        Assert.Equal([0, 1, 0, 0, 100, 100, 100, 100], list.Processes.Select(p => p.SessionId));
    }

    [Fact]
    public void States_FollowTheProcLetters_IdleAndZombieIncluded()
    {
        var list = Image.GetProcesses();

        // swapper R(0), systemd S(1), kthreadd S, kworker TASK_IDLE (0x402) I, bash S, python S,
        // defunct TASK_DEAD + EXIT_ZOMBIE Z, vim __TASK_STOPPED T.
        Assert.Equal("RSSISSZT", new string(list.Processes.Select(p => p.State).ToArray()));
    }

    [Fact]
    public void Credentials_RealAndEffectiveIdsInCredOrder()
    {
        var python = Image.FindProcess(200)!;

        Assert.Equal([1000u, 0u, 0u, 0u], python.Uids);
        Assert.Equal([100u, 50u, 50u, 50u], python.Gids);
        Assert.Equal((1000u, 0u, 100u, 50u), (python.Uid, python.EffectiveUid, python.Gid, python.EffectiveGid));
        Assert.Equal([1000u, 1000u, 1000u, 1000u], Image.FindProcess(100)!.Uids);
        Assert.Equal([0u, 0u, 0u, 0u], Image.FindProcess(1)!.Gids);
    }

    [Fact]
    public void KernelThreads_HavePfKthreadAndNoMm()
    {
        var list = Image.GetProcesses();

        Assert.Equal([true, false, true, true, false, false, false, false], list.Processes.Select(p => p.IsKernelThread));
        var kworker = list.Processes.Single(p => p.Pid == 3);
        Assert.Equal(FakeKernelObjects.PfKthread | 0x4000000UL, kworker.Flags);
        Assert.Equal(0UL, kworker.MmAddress);
        Assert.Equal(FakeKernelObjects.PfExiting, list.Processes.Single(p => p.Pid == 300).Flags);
    }

    [Fact]
    public void Tty_NameAndNewEncodeDevNumber()
    {
        var list = Image.GetProcesses();
        var bash = list.Processes.Single(p => p.Pid == 100);

        Assert.Equal("pts300", bash.TtyName);
        Assert.Equal(FakeSystem.TtyNr, bash.TtyNumber);
        Assert.Equal(1083436u, bash.TtyNumber);
        Assert.All(list.Processes.Where(p => p.Pid < 100), p => Assert.Equal((0u, (string?)null), (p.TtyNumber, p.TtyName)));
    }

    [Fact]
    public void NiceAndPriority_FromStaticPrioAndPrio()
    {
        var list = Image.GetProcesses();

        Assert.Equal((0, 20), (list.Processes[1].Nice, list.Processes[1].Priority));
        Assert.Equal((-20, 0), (list.Processes[3].Nice, list.Processes[3].Priority));
        Assert.Equal((5, 25), (list.Processes[4].Nice, list.Processes[4].Priority));
    }

    [Fact]
    public void Memory_RssSumsFileAnonAndShmem_VirtualSizeIsTotalVmPages()
    {
        var systemd = Image.FindProcess(1)!;

        Assert.Equal(100 + 50 + 3, systemd.ResidentPages);
        Assert.Equal(0x5000UL * 4096, systemd.VirtualSize);
        Assert.Equal(FakeSystem.SystemdArgStart, systemd.ArgStart);
        Assert.Equal(FakeSystem.SystemdArgStart + (ulong)FakeSystem.SystemdArgs.Length, systemd.ArgEnd);
        Assert.Equal(FakeSystem.SystemdEnvStart, systemd.EnvStart);
        Assert.Equal(1, systemd.LastCpu);
        Assert.Equal(TimeSpan.FromMilliseconds(10), systemd.StartTime);
    }

    [Fact]
    public void Times_ProcessIsSignalPlusEveryThread_ThreadIsItsOwn()
    {
        var systemd = Image.FindProcess(1)!;
        var python = Image.FindProcess(200)!;

        Assert.Equal(TimeSpan.FromSeconds(1.5), systemd.UserTime);
        Assert.Equal(TimeSpan.FromSeconds(2), systemd.SystemTime);

        // Per-thread nanoseconds 300 + 400 + 500 = 1200 ns: 12 ticks.
        Assert.Equal(TimeSpan.FromTicks(12), python.UserTime);
        var threads = Image.GetProcesses(new ProcessQuery(ProcessSelector.Pid, 200, IncludeThreads: true)).Processes;
        Assert.Equal([TimeSpan.FromTicks(3), TimeSpan.FromTicks(4), TimeSpan.FromTicks(5)], threads.Select(t => t.UserTime));
    }

    [Fact]
    public void Threads_AreListedWithIncludeThreads()
    {
        var all = Image.GetProcesses(ProcessQuery.Threads);

        Assert.Empty(all.Errors);
        Assert.Equal([0, 1, 2, 3, 100, 200, 201, 202, 300, 400], all.Processes.Select(p => p.Pid));
        var python = all.Processes.Where(p => p.Tgid == 200).ToList();
        Assert.Equal([200, 201, 202], python.Select(p => p.Pid));
        Assert.Equal([false, true, true], python.Select(p => p.IsThread));
        Assert.Equal("SRD", new string(python.Select(p => p.State).ToArray()));
        Assert.Equal(["python3", "python3", "worker"], python.Select(p => p.Command));
        Assert.Equal([0, 3, 0], python.Select(p => p.LastCpu));
        Assert.All(python, p => Assert.Equal(3, p.ThreadCount));
        Assert.All(python, p => Assert.Equal((200, 100, 100), (p.ProcessGroupId, p.SessionId, p.ParentPid)));
    }

    [Theory]
    [InlineData(ProcessSelector.All, 0, new[] { 0, 1, 2, 3, 100, 200, 300, 400 })]
    [InlineData(ProcessSelector.Pid, 200, new[] { 200 })]
    [InlineData(ProcessSelector.Pid, 201, new int[0])]
    [InlineData(ProcessSelector.ProcessGroup, 100, new[] { 100, 300 })]
    [InlineData(ProcessSelector.Session, 100, new[] { 100, 200, 300, 400 })]
    [InlineData(ProcessSelector.Tty, FakeSystem.TtyNr, new[] { 100, 200, 300, 400 })]
    [InlineData(ProcessSelector.Tty, 0, new int[0])]
    [InlineData(ProcessSelector.Uid, 0, new[] { 0, 1, 2, 3, 200 })]
    [InlineData(ProcessSelector.RealUid, 1000, new[] { 100, 200, 300, 400 })]
    [InlineData(ProcessSelector.Gid, 50, new[] { 200 })]
    [InlineData(ProcessSelector.RealGid, 100, new[] { 100, 200, 300, 400 })]
    public void Selectors_PickTheMatchingProcesses(ProcessSelector selector, long argument, int[] pids)
    {
        var list = Image.GetProcesses(new ProcessQuery(selector, argument));

        Assert.Empty(list.Errors);
        Assert.Equal(pids, list.Processes.Select(p => p.Pid));
    }

    [Fact]
    public void Selectors_WithThreads_MatchEachThread_AndIdleCanBeLeftOut()
    {
        var threads = Image.GetProcesses(new ProcessQuery(ProcessSelector.Pid, 200, IncludeThreads: true));
        Assert.Equal([200, 201, 202], threads.Processes.Select(p => p.Pid));

        var noIdle = Image.GetProcesses(new ProcessQuery(IncludeIdle: false));
        Assert.Equal([1, 2, 3, 100, 200, 300, 400], noIdle.Processes.Select(p => p.Pid));
    }
}

/// <summary>One opened <see cref="FakeSystem"/> shared by a test class (the tests only read it).</summary>
public sealed class FakeSystemFixture : IDisposable
{
    public FakeSystemFixture()
    {
        System = new FakeSystem();
        Kernel = System.Open();
    }

    public FakeSystem System { get; }

    public OpenedFakeKernel Kernel { get; }

    public void Dispose() => Kernel.Dispose();
}
