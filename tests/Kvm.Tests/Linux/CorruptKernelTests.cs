using Kvm.Testing.FakeKernel;

namespace Kvm.Tests.Linux;

/// <summary>Corrupt task and thread lists, and type information lacking what a walker needs.</summary>
public sealed class CorruptKernelTests
{
    // Kernel virtual addresses in the vmalloc area, which the fake kernel never maps.
    private const ulong Unmapped = 0xffffc90000001000;

    private static ulong Tasks(ulong task) => task + FakeKernelObjects.Off("task_struct.tasks");

    [Fact]
    public void TaskList_Loop_YieldsWhatWasReadAndSaysWhere()
    {
        var sys = new FakeSystem();
        sys.K.WriteU64(Tasks(sys.Vim), Tasks(sys.Bash));
        using var fk = sys.Open();

        var list = fk.Image.GetProcesses();

        Assert.Equal([0, 1, 2, 3, 100, 200, 300, 400], list.Processes.Select(p => p.Pid));
        var error = Assert.Single(list.Errors);
        Assert.Contains("init_task.tasks", error, StringComparison.Ordinal);
        Assert.Contains($"loops back to 0x{Tasks(sys.Bash):x} after 7 entries", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TaskList_NullNext_StopsThere()
    {
        var sys = new FakeSystem();
        sys.K.WriteU64(Tasks(sys.Python), 0);
        using var fk = sys.Open();

        var list = fk.Image.GetProcesses();

        Assert.Equal([0, 1, 2, 3, 100, 200], list.Processes.Select(p => p.Pid));
        var error = Assert.Single(list.Errors);
        Assert.Contains("NULL next pointer after 5 entries", error, StringComparison.Ordinal);
    }

    [Fact]
    public void TaskList_UnreadableTask_IsReportedAndTheWalkStops()
    {
        var sys = new FakeSystem();
        sys.K.WriteU64(Tasks(sys.Bash), Unmapped);
        using var fk = sys.Open();

        var list = fk.Image.GetProcesses();

        Assert.Equal([0, 1, 2, 3, 100], list.Processes.Select(p => p.Pid));
        Assert.Equal(2, list.Errors.Count);
        Assert.Contains($"cannot read the next pointer at 0x{Unmapped:x}", list.Errors[0], StringComparison.Ordinal);
        Assert.StartsWith($"task_struct at 0x{Unmapped - FakeKernelObjects.Off("task_struct.tasks"):x}: ", list.Errors[1], StringComparison.Ordinal);
    }

    [Fact]
    public void TaskWithUnreadableCred_IsSkippedWithAnError_OthersAreListed()
    {
        var sys = new FakeSystem();
        sys.K.Set(sys.Vim, "task_struct.real_cred", Unmapped);
        using var fk = sys.Open();

        var list = fk.Image.GetProcesses();

        Assert.Equal([0, 1, 2, 3, 100, 200, 300], list.Processes.Select(p => p.Pid));
        var error = Assert.Single(list.Errors);
        Assert.Contains($"cannot read cred at 0x{Unmapped:x}", error, StringComparison.Ordinal);
    }

    [Fact]
    public void ThreadList_Loop_KeepsTheProcessAndReportsTheThreadList()
    {
        var sys = new FakeSystem();
        ulong node201 = sys.Thread201 + FakeKernelObjects.Off("task_struct.thread_node");
        sys.K.WriteU64(sys.Thread202 + FakeKernelObjects.Off("task_struct.thread_node"), node201);
        using var fk = sys.Open();

        var threads = fk.Image.GetProcesses(ProcessQuery.Threads);

        Assert.Equal([0, 1, 2, 3, 100, 200, 201, 202, 300, 400], threads.Processes.Select(p => p.Pid));
        var error = Assert.Single(threads.Errors);
        Assert.Contains("thread list of pid 200: the list loops back", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("@task_threads.thread_node", "task_struct.thread_node")]
    [InlineData("@mm_args.arg_start", "mm_struct.arg_start")]
    [InlineData("cred.fsgid", "cred.fsgid")]
    [InlineData("signal_struct.thread_head", "signal_struct.thread_head")]
    public void Btf_LackingAMemberTheProcessWalkerNeeds_FailsNamingIt(string omit, string named)
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add(omit);
        using var fk = sys.Open();

        var e = Assert.Throws<KvmException>(() => fk.Image.GetProcesses());

        Assert.Equal(KvmErrorCode.KernelType, e.Code);
        Assert.StartsWith($"{named}: no such member in the kernel's type information (BTF from kernel memory", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Btf_LackingSwapOrFileMembers_FailsOnlyThoseWalkers()
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("swap_info_struct.inuse_pages");
        sys.K.OmitFromBtf.Add("fdtable.close_on_exec");
        using var fk = sys.Open();

        Assert.Equal(8, fk.Image.GetProcesses().Processes.Count);
        var swap = Assert.Throws<KvmException>(() => fk.Image.GetSwapInfo());
        Assert.StartsWith("swap_info_struct.inuse_pages: no such member", swap.Message, StringComparison.Ordinal);
        var files = Assert.Throws<KvmException>(() => fk.Image.GetOpenFiles());
        Assert.StartsWith("fdtable.close_on_exec: no such member", files.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoBtfAtAll_ProcessesFailWithAClearMessage_LoadAverageStillWorks()
    {
        var sys = new FakeSystem();
        sys.K.BtfInImage = false;
        using var fk = sys.Open();

        Assert.Null(fk.Image.Types);
        Assert.Contains("__start_BTF", fk.Image.TypeInformationError, StringComparison.Ordinal);
        var e = Assert.Throws<KvmException>(() => fk.Image.GetProcesses());
        Assert.Equal(KvmErrorCode.KernelType, e.Code);
        Assert.Contains("task_struct", e.Message, StringComparison.Ordinal);
        Assert.Contains("no BTF", e.Message, StringComparison.Ordinal);
        Assert.Equal(1.5, fk.Image.GetLoadAverage().One);
    }

    [Fact]
    public void Btf_WhoseTaskStructEndsBeforeComm_ReportsEachTaskInsteadOfThrowing()
    {
        // BTF of another kernel: task_struct said to end in the middle of comm, its last member in the fake layout.
        var sys = new FakeSystem();
        sys.K.BtfSizeOverrides["task_struct"] = FakeKernelLayout.Offset("task_struct.comm") + 8;
        using var fk = sys.Open();

        var list = fk.Image.GetProcesses();

        Assert.Empty(list.Processes);
        Assert.Equal(8, list.Errors.Count);
        Assert.All(list.Errors, e => Assert.Contains("task_struct.comm", e, StringComparison.Ordinal));
    }
}

/// <summary>A bad pointer hanging off one task costs that field, not the task.</summary>
public sealed class PartialTaskTests
{
    private const ulong Unmapped = 0xffffc90000002000;

    [Fact]
    public void UnreadableParent_KeepsTheTaskWithPpidZeroAndReportsIt()
    {
        var sys = new FakeSystem();
        sys.K.WriteU64(sys.Vim + FakeKernelObjects.Off("task_struct.real_parent"), Unmapped);
        using var fk = sys.Open();

        var list = fk.Image.GetProcesses();

        var vim = Assert.Single(list.Processes, p => p.Pid == 400);
        Assert.Equal(0, vim.ParentPid);
        Assert.Equal(400, vim.ProcessGroupId);
        var error = Assert.Single(list.Errors);
        Assert.StartsWith($"pid 400 (task 0x{sys.Vim:x}): cannot read real_parent->tgid", error, StringComparison.Ordinal);
    }
}
