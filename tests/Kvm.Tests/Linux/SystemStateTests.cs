using Kvm.Testing.FakeKernel;

namespace Kvm.Tests.Linux;

/// <summary>Load average, clock, CPUs and per-CPU addresses of <see cref="FakeSystem"/>.</summary>
public sealed class SystemStateTests : IClassFixture<FakeSystemFixture>
{
    private readonly FakeSystemFixture _f;

    public SystemStateTests(FakeSystemFixture fixture) => _f = fixture;

    private KernelImage Image => _f.Kernel.Image;

    [Fact]
    public void LoadAverage_IsAvenrunOver2048_WithNrThreads()
    {
        var load = Image.GetLoadAverage();

        Assert.Equal([1.5, 0.75, 4660 / 2048.0], load.ToArray());
        Assert.Equal(2.275390625, load.Fifteen);
        Assert.Equal(9, load.TotalThreads);
    }

    [Fact]
    public void Clock_UptimeIsMonoBasePlusOffsBoot_BootTimeIsWallMinusUptime()
    {
        var clock = Image.GetClock();

        // tkr_mono.base 12345.6789 s + offs_boot 5 s.
        var uptime = TimeSpan.FromTicks(123_506_789_000);
        Assert.Equal(uptime, clock.Uptime);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000), clock.WallTime);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(1_700_000_000) - uptime, clock.BootTime);
        Assert.Equal("tk_core.timekeeper", clock.Source);
    }

    [Fact]
    public void Cpus_CountOnlineMaskOffsetsAndCurrentTasks()
    {
        var cpus = Image.GetCpus();

        Assert.Equal(4, cpus.MaxCpus);
        Assert.Equal(3, cpus.OnlineCpus);
        Assert.Equal([true, true, false, true], cpus.Cpus.Select(c => c.IsOnline));
        Assert.Equal(_f.System.PerCpuOffsets, cpus.Cpus.Select(c => c.PerCpuOffset));

        // CPU 2 is offline: its current_task is not read even though the fake put python3 there.
        Assert.Equal([_f.System.K.InitTask, _f.System.Systemd, 0UL, _f.System.Thread201], cpus.Cpus.Select(c => c.CurrentTask));
        Assert.Equal([0, 1, (int?)null, 201], cpus.Cpus.Select(c => c.CurrentPid));
        Assert.Equal(["swapper/0", "systemd", null, "python3"], cpus.Cpus.Select(c => c.CurrentCommand));
    }

    [Fact]
    public void PerCpuAddress_IsSymbolPlusTheCpuOffset()
    {
        for (int cpu = 0; cpu < 4; cpu++)
        {
            Assert.Equal(FakeKernelObjects.RunqueuesPerCpu + _f.System.PerCpuOffsets[cpu], Image.GetPerCpuAddress("runqueues", cpu));
        }

        ulong current = Image.GetPerCpuAddress("current_task", 3);
        Assert.Equal(_f.System.Thread201, Image.Read<ulong>(current));
        Assert.Throws<ArgumentOutOfRangeException>(() => Image.GetPerCpuAddress("runqueues", 4));
        Assert.Throws<SymbolNotFoundException>(() => Image.GetPerCpuAddress("no_such_percpu", 0));
    }

    [Fact]
    public void Btf_IsFoundInKernelMemoryBetweenStartAndStopBtf()
    {
        Assert.NotNull(Image.Types);
        Assert.Null(Image.TypeInformationError);
        Assert.Contains("kernel memory", Image.Types!.Source, StringComparison.Ordinal);
        Assert.True(Image.Types.TryGetMember("mm_struct.arg_start", out var m));
        Assert.Equal(FakeKernelLayout.Offset("mm_struct.arg_start"), m.Offset);
    }
}
