using Kvm.Testing.FakeKernel;

namespace Kvm.Tests.Linux;

/// <summary>
/// Members renamed or moved across kernel versions: the walkers take the newest name the BTF has and fall back to the
/// older ones. The fake carries both spellings with values a test can tell apart.
/// </summary>
public sealed class KernelVersionFallbackTests
{
    [Fact]
    public void StateBefore514_LongStateIsReadWhenThereIsNoUnderscoreState()
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("task_struct.__state");
        using var fk = sys.Open();

        Assert.Equal("RSSISSZT", new string(fk.Image.GetProcesses().Processes.Select(p => p.State).ToArray()));
    }

    [Fact]
    public void StartTime_FallsBackToStartTime_WhenStartBoottimeIsMissing()
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("task_struct.start_boottime");
        using var fk = sys.Open();

        // The fake writes start_time = start_boottime / 2: 5 ms for systemd.
        Assert.Equal(TimeSpan.FromMilliseconds(5), fk.Image.FindProcess(1)!.StartTime);
    }

    [Fact]
    public void Cpu_IsMinusOne_WhenNeitherThreadInfoCpuNorCpuExists()
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("thread_info.cpu");
        using var fk = sys.Open();

        Assert.All(fk.Image.GetProcesses().Processes, p => Assert.Equal(-1, p.LastCpu));
    }

    [Fact]
    public void CurrentTask_ComesFromPcpuHot_WhenTheKernelHasIt()
    {
        // Linux 6.2+ keeps current_task in struct pcpu_hot; the fake points it at other tasks than current_task.
        const ulong pcpuHot = 0x2d000;
        var sys = new FakeSystem();
        sys.K.AddPerCpuSymbol("pcpu_hot", pcpuHot);
        ulong field = FakeKernelObjects.Off("pcpu_hot.current_task");
        sys.K.WritePerCpu(0, pcpuHot + field, sys.Bash);
        sys.K.WritePerCpu(1, pcpuHot + field, sys.Vim);
        sys.K.WritePerCpu(3, pcpuHot + field, sys.Thread202);
        using var fk = sys.Open();

        var cpus = fk.Image.GetCpus();

        Assert.Equal([100, 400, (int?)null, 202], cpus.Cpus.Select(c => c.CurrentPid));
        Assert.Equal(["bash", "vim", null, "worker"], cpus.Cpus.Select(c => c.CurrentCommand));
    }

    [Fact]
    public void Rss_From62PercpuCounters_SumsTheirCounts()
    {
        // 6.2+: struct percpu_counter rss_stat[NR_MM_COUNTERS] and no struct mm_rss_stat.
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("mm_rss_stat");
        sys.K.BtfMemberTypeOverrides["@mm_body.rss_stat"] = "percpu_counter[4]";
        ulong mm = sys.K.ReadU64(sys.Systemd + FakeKernelObjects.Off("task_struct.mm"));
        ulong rss = mm + FakeKernelObjects.Off("mm_struct.rss_stat");
        long[] counts = [1000, 200, 77, 30]; // MM_FILEPAGES, MM_ANONPAGES, MM_SWAPENTS, MM_SHMEMPAGES
        for (int i = 0; i < counts.Length; i++)
        {
            sys.K.WriteU64(rss + (ulong)(i * FakeKernelLayout.SizeOf("percpu_counter")) + FakeKernelObjects.Off("percpu_counter.count"), (ulong)counts[i]);
        }

        using var fk = sys.Open();

        Assert.Equal(1000 + 200 + 30, fk.Image.FindProcess(1)!.ResidentPages);
    }
}
