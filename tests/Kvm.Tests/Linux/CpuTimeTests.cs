using Kvm.Testing.FakeKernel;

namespace Kvm.Tests.Linux;

/// <summary>CPU time counters (<c>/proc/stat</c>'s cpu lines, <c>kvm_getcptime</c>) of <see cref="FakeSystem"/>.</summary>
public sealed class CpuTimeTests : IClassFixture<FakeSystemFixture>
{
    // Kernel virtual addresses in the vmalloc area, which the fake kernel never maps.
    private const ulong Unmapped = 0xffffc90000001000;

    private readonly FakeSystemFixture _f;

    public CpuTimeTests(FakeSystemFixture fixture) => _f = fixture;

    [Fact]
    public void Counters_AreKernelCpustat_IdleAndIoWaitOfOnlineCpusFromTickSched()
    {
        var times = _f.Kernel.Image.GetCpuTimes();

        Assert.Equal(CpuIdleSource.TickSched, times.IdleSource);
        Assert.Null(times.Note);
        Assert.Equal(FakeSystem.MonotonicNow, times.MonotonicNanoseconds);
        Assert.Equal([0, 1, 2, 3], times.Cpus.Select(c => c.Cpu));
        Assert.Equal([true, true, false, true], times.Cpus.Select(c => c.IsOnline));

        // CPU 0 is busy: its sleep times, truncated to microseconds as ktime_to_us() does; every other field is cpustat's,
        // read at the BTF's (renumbered) enum cpu_usage_stat indices.
        Assert.Equal(
            new CpuTimes(0, true, 100_005_000_000, 2_000_000_000, 30_000_000_000, 12_000_000_123_000, 5_500_000_000, 500_000_000, 250_000_000, 125_000_000, 10_000_000_000, 1_000_000_000),
            times.Cpus[0]);

        // CPU 1 has been idle for 1.5 s, measured to the monotonic clock (not to the uptime, which adds offs_boot), and no
        // task of it waits for I/O: the 1.5 s are idle time.
        Assert.Equal(new CpuTimes(1, true, 7_000_000_000, 0, 3_000_000_000, 12_301_500_000_000, 20_000_000_000, 10_000_000, 0, 0, 0, 0), times.Cpus[1]);

        // CPU 2 is offline: /proc/stat takes its cpustat idle and iowait, whatever its tick_cpu_sched says.
        Assert.Equal(new CpuTimes(2, false, 1_000_000_000, 0, 2_000_000_000, 60_000_000_000, 3_000_000_000, 0, 0, 0, 0, 0), times.Cpus[2]);

        // CPU 3 has been idle for 0.25 s with two tasks waiting for I/O: that is iowait time.
        Assert.Equal(new CpuTimes(3, true, 500_000_000, 250_000_000, 750_000_000, 12_000_000_000_000, 40_250_000_000, 0, 5_000_000_000, 0, 0, 0), times.Cpus[3]);
    }

    [Fact]
    public void Total_SumsEveryPossibleCpu_AndPrintsAsProcStat()
    {
        var times = _f.Kernel.Image.GetCpuTimes();

        Assert.Equal(
            new CpuTimes(-1, true, 108_505_000_000, 2_250_000_000, 35_750_000_000, 36_361_500_123_000, 68_750_000_000, 510_000_000, 5_250_000_000, 125_000_000, 10_000_000_000, 1_000_000_000),
            times.Total);
        Assert.Equal("cpu  10850 225 3575 3636150 6875 51 525 12 1000 100", times.Total.ToProcStatLine());
        Assert.Equal("cpu0 10000 200 3000 1200000 550 50 25 12 1000 100", times.Cpus[0].ToProcStatLine());
        Assert.Equal("cpu3 50 25 75 1200000 4025 0 500 0 0 0", times.Cpus[3].ToProcStatLine());

        // FreeBSD's cp_time: CP_INTR = irq + softirq, CP_IDLE = idle + iowait, each summed in nanoseconds then truncated.
        Assert.Equal([10850L, 225, 3575, 576, 3643025], times.GetCpuStates());
    }

    [Fact]
    public void CpuStates_SumInNanosecondsBeforeTruncating_AndDoNotOverflow()
    {
        // 5 ms of irq and 5 ms of softirq are one 10 ms tick together, none apart.
        var t = new CpuTimes(0, true, 0, 0, 0, ulong.MaxValue, ulong.MaxValue, 5_000_000, 5_000_000, 0, 0, 0);

        Assert.Equal([0L, 0, 0, 1844674407370, 1844674407370, 0, 0, 0, 0, 0], t.ToProcStatTicks());
        Assert.Equal(1, t.ToCpuStates()[(int)CpuState.Interrupt]);
        Assert.Equal(3689348814741, t.ToCpuStates()[(int)CpuState.Idle]);
        Assert.Equal(1844674407370, CpuTimes.ToClockTicks(ulong.MaxValue));
    }

    [Fact]
    public void NoHzInactive_IdleAndIoWaitAreCpustat_AsProcStatPrintsThem()
    {
        var sys = new FakeSystem();
        sys.K.SetNohzActive(false);
        using var fk = sys.Open();

        var times = fk.Image.GetCpuTimes();

        Assert.Equal(CpuIdleSource.CpuStat, times.IdleSource);
        Assert.Null(times.Note);
        Assert.Equal([999_000_000_000UL, 8_000_000_000, 60_000_000_000, 1_000_000], times.Cpus.Select(c => c.Idle));
        Assert.Equal([1_000_000_000UL, 4_000_000_000, 3_000_000_000, 2_000_000], times.Cpus.Select(c => c.IoWait));
    }

    [Fact]
    public void TickSchedMemberMissing_FallsBackToCpustat_AndSaysWhy()
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("tick_sched.iowait_sleeptime");
        using var fk = sys.Open();

        var times = fk.Image.GetCpuTimes();

        Assert.Equal(CpuIdleSource.CpuStat, times.IdleSource);
        Assert.Contains("tick_sched.iowait_sleeptime: no such member", times.Note, StringComparison.Ordinal);
        Assert.Equal(999_000_000_000UL, times.Cpus[0].Idle);
    }

    [Fact]
    public void TickNohzActiveUnknown_FallsBackToCpustat_AndSaysWhy()
    {
        var sys = new FakeSystem();
        sys.K.RemoveSymbol("tick_nohz_active");
        using var fk = sys.Open();

        var times = fk.Image.GetCpuTimes();

        Assert.Equal(CpuIdleSource.CpuStat, times.IdleSource);
        Assert.StartsWith("tick_nohz_active is not in the symbol table", times.Note, StringComparison.Ordinal);
        Assert.Equal(4_000_000_000UL, times.Cpus[1].IoWait);
    }

    [Fact]
    public void KernelWithoutNoHz_ReadsCpustat_WithNoNote()
    {
        // Debian's 686 kernels: no CONFIG_NO_HZ_COMMON, so neither tick_nohz_active nor tick_nohz_idle_enter exists and
        // /proc/stat itself reads the tick-sampled cpustat: nothing is missing, so nothing is noted.
        var sys = new FakeSystem();
        sys.K.RemoveSymbol("tick_nohz_active");
        sys.K.RemoveSymbol("tick_nohz_idle_enter");
        using var fk = sys.Open();

        var times = fk.Image.GetCpuTimes();

        Assert.Equal(CpuIdleSource.CpuStat, times.IdleSource);
        Assert.Null(times.Note);
        Assert.Equal(4_000_000_000UL, times.Cpus[1].IoWait);
    }

    [Fact]
    public void Linux69Flags_IdleActiveIsTsFlagIdleActive_WhenTheBitfieldIsGone()
    {
        // 6.9 folded idle_active into tick_sched.flags. Here CPU 1's flags say busy while its old bitfield says idle:
        // only a walker reading the flags word leaves the 1.5 s out.
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("tick_sched.idle_active");
        sys.K.Set(sys.K.PerCpu(1, FakeKernelObjects.TickCpuSchedPerCpu), "tick_sched.flags", 0);
        using var fk = sys.Open();

        var times = fk.Image.GetCpuTimes();

        Assert.Null(times.Note);
        Assert.Equal(12_300_000_000_000UL, times.Cpus[1].Idle);
        Assert.Equal(40_250_000_000UL, times.Cpus[3].IoWait);
    }

    [Fact]
    public void NrIowaitUnknown_CountsTheIdlePeriodInProgressAsIdle_AndSaysSo()
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("rq.nr_iowait");
        using var fk = sys.Open();

        var times = fk.Image.GetCpuTimes();

        Assert.Equal(CpuIdleSource.TickSched, times.IdleSource);
        Assert.Contains("rq.nr_iowait is not in the type information", times.Note, StringComparison.Ordinal);
        Assert.Equal(12_000_250_000_000UL, times.Cpus[3].Idle);
        Assert.Equal(40_000_000_000UL, times.Cpus[3].IoWait);
    }

    [Fact]
    public void IdleEntryAfterTheTimekeepersLastUpdate_AddsNothing()
    {
        // ktime_get() at idle entry counts clocksource cycles the timekeeper in memory has not folded in yet.
        var sys = new FakeSystem();
        sys.K.SetTickSched(1, 12_300_000_000_000, 20_000_000_000, FakeSystem.MonotonicNow + 3_000_000, idleActive: true);
        using var fk = sys.Open();

        Assert.Equal(12_300_000_000_000UL, fk.Image.GetCpuTimes().Cpus[1].Idle);
    }

    [Fact]
    public void ImpossibleCpu_IsNeitherListedNorSummed()
    {
        var sys = new FakeSystem();
        sys.K.WriteU64(sys.K.CpuPossibleMask, 0b1011);
        using var fk = sys.Open();

        var times = fk.Image.GetCpuTimes();

        Assert.Equal([0, 1, 3], times.Cpus.Select(c => c.Cpu));
        Assert.Equal(107_505_000_000UL, times.Total.User);
    }

    [Fact]
    public void KernelCpustatMissingFromBtf_IsAClearKernelTypeError()
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("kernel_cpustat");
        using var fk = sys.Open();

        var e = Assert.Throws<KvmException>(() => fk.Image.GetCpuTimes());

        Assert.Equal(KvmErrorCode.KernelType, e.Code);
        Assert.StartsWith("kernel_cpustat.cpustat: no such member in the kernel's type information", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CpuUsageStatOutsideTheArray_IsAClearKernelTypeError()
    {
        var sys = new FakeSystem();
        sys.K.BtfMemberTypeOverrides["kernel_cpustat.cpustat"] = "u64[4]";
        using var fk = sys.Open();

        var e = Assert.Throws<KvmException>(() => fk.Image.GetCpuTimes());

        Assert.Equal(KvmErrorCode.KernelType, e.Code);
        Assert.Contains("is 7, not an index into the 32-byte kernel_cpustat.cpustat", e.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(Unmapped)]
    [InlineData(0xffff_ffff_ffff_f000)] // wraps around 2^64 when added to the per-CPU symbol: no overflow trap, a fault
    public void BadPerCpuOffset_IsAnErrorNamingTheCpu(ulong offset)
    {
        var sys = new FakeSystem();
        sys.K.WriteU64(sys.K.PerCpuOffset + (3 * 8), offset);
        using var fk = sys.Open();

        var e = Assert.ThrowsAny<KvmException>(() => fk.Image.GetCpuTimes());

        Assert.StartsWith($"cannot read kernel_cpustat of CPU 3 at 0x{unchecked(FakeKernelObjects.KernelCpustatPerCpu + offset):x}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NegativeSleepTime_IsACorruptImageError()
    {
        var sys = new FakeSystem();
        sys.K.SetTickSched(1, -5, 20_000_000_000, 0, idleActive: false);
        using var fk = sys.Open();

        var e = Assert.Throws<CorruptImageException>(() => fk.Image.GetCpuTimes());

        Assert.Contains("tick_cpu_sched of CPU 1", e.Message, StringComparison.Ordinal);
        Assert.Contains("idle_sleeptime -5", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CountersOverflowingTheirSum_AreACorruptImageError()
    {
        var sys = new FakeSystem();
        sys.K.SetCpuStat(0, steal: ulong.MaxValue);
        sys.K.SetCpuStat(1, steal: 1);
        using var fk = sys.Open();

        var e = Assert.Throws<CorruptImageException>(() => fk.Image.GetCpuTimes());

        Assert.Contains("steal times add up to more than 2^64 nanoseconds", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnreadableClock_LeavesIdlePeriodsInProgressOut_AndSaysSo()
    {
        var sys = new FakeSystem();
        sys.K.OmitFromBtf.Add("timekeeper.tkr_mono");
        using var fk = sys.Open();

        var times = fk.Image.GetCpuTimes();

        Assert.Equal(CpuIdleSource.TickSched, times.IdleSource);
        Assert.Null(times.MonotonicNanoseconds);
        Assert.Contains("the monotonic clock cannot be read", times.Note, StringComparison.Ordinal);
        Assert.Equal(12_300_000_000_000UL, times.Cpus[1].Idle);
        Assert.Equal(40_000_000_000UL, times.Cpus[3].IoWait);
    }
}
