using Kvm.Cli;

namespace Kvm.IntegrationTests;

/// <summary>
/// CPU time counters (<c>GetCpuTimes</c>, <c>kmem cptime</c>) of every dump against the cpu lines of /proc/stat that the
/// guest printed on its console at most ~100 ms before the host stopped it (truth.json "procStatAtStop").
/// </summary>
public sealed class CpuTimeTests
{
    public static IEnumerable<object[]> DumpsBothWays() => DumpLab.AllDumpsBothWays();

    [LabTheory]
    [MemberData(nameof(DumpsBothWays))]
    public void CpuTimes_LieBetweenTheGuestsLastProcStatAndWhatItsCpusCouldDoBeforeTheStop(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        var truth = TruthProcStat.AtStop(v);
        Assert.True(truth is not null, $"{v.Directory}: truth.json has no procStatAtStop (a lab made before it existed: run scripts/make-test-dumps.sh)");
        using var image = LabImages.Open(variant, name, systemMap);
        var times = image.GetCpuTimes();

        // Debian's 6.1 runs NO_HZ on amd64 and arm64: idle and iowait come from tick_cpu_sched, exactly as the guest's
        // /proc/stat read them. Its 686 kernels have no NO_HZ: /proc/stat reads the tick-sampled cpustat, and so do we.
        Assert.Equal(v.HasConfig("CONFIG_NO_HZ_COMMON=y") ? CpuIdleSource.TickSched : CpuIdleSource.CpuStat, times.IdleSource);
        Assert.Null(times.Note);
        var online = times.Cpus.Where(c => c.IsOnline).ToList();
        Assert.Equal(truth!.Cpus.Keys.Order(), online.Select(c => c.Cpu));

        // How long the guest ran between reading /proc/stat and the stop, in ticks: it read /proc/uptime just before
        // /proc/stat, and the dump's uptime is the timekeeper's at the stop (a tick, 4 ms at Debian's HZ=250, behind it
        // at most; the collector's line is printed every ~100 ms, so this is about 0-20 ticks).
        double elapsed = (image.GetClock().Uptime.TotalSeconds - truth.UptimeSeconds) * CpuTimes.UserHz;
        Assert.InRange(elapsed, -1, 50);

        // Each CPU can account at most that much more time, plus:
        // - 1 tick: tick-based fields (user, system, softirq...) grow by a whole 4 ms jiffy (TICK_NSEC) per timer
        //   interrupt, covering time since the previous one, which may lie before the read; and the first tick after an
        //   idle period charges a jiffy that overlaps the NO_HZ idle time already counted (0.4 + 0.4 of a 10 ms tick);
        // - 1 tick per field: every field is truncated to ticks on its own (nsec_to_clock_t), so a field that grew by
        //   d ticks can print up to floor(d) + 1 more.
        // Counters never go down between the read and the stop, with one exception the dump cannot avoid: an idle
        // period in progress is measured by the guest to ktime_get() at the read, by us to the timekeeper's last
        // update, up to 4 ms older; if the stop came within that tick, our idle (or iowait) is at most 1 tick lower.
        // (iowait time of an idle period in progress can also move to idle when its I/O completes, kernel/time/
        // tick-sched.c's "partially broken" note; the lab does no I/O by the time it prints these lines.)
        long perCpu = (long)Math.Ceiling(Math.Max(elapsed, 0)) + 1;
        foreach (var c in online)
        {
            Check($"cpu{c.Cpu}", truth.Cpus[c.Cpu], c.ToProcStatTicks(), perCpu);
        }

        // The total line sums every possible CPU in nanoseconds and truncates once: the same bounds, over all CPUs.
        Check("cpu", truth.Total, times.Total.ToProcStatTicks(), perCpu * times.Cpus.Count);

        void Check(string label, long[] guest, long[] ours, long growth)
        {
            for (int f = 0; f < TruthProcStat.Fields.Length; f++)
            {
                long below = TruthProcStat.Fields[f] is "idle" or "iowait" ? 1 : 0;
                Assert.True(
                    ours[f] >= guest[f] - below && ours[f] <= guest[f] + growth + 1,
                    $"{variant}/{name}: {label} {TruthProcStat.Fields[f]}: ours {ours[f]}, guest {guest[f]} ({elapsed:F1} ticks before the stop; allowed {guest[f] - below}..{guest[f] + growth + 1})");
            }

            long sum = ours.Zip(guest, (o, g) => o - g).Take(8).Sum();
            Assert.True(sum <= growth + TruthProcStat.Fields.Length, $"{variant}/{name}: {label}: the fields grew by {sum} ticks in all, in {elapsed:F1} ticks");
        }
    }

    [LabTheory]
    [MemberData(nameof(CliLinuxTests.Variants), MemberType = typeof(CliLinuxTests))]
    public void Kmem_Cptime_PrintsTheSameLinesAsTheLibrary(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        string dump = Path.Combine(v.Directory, "qemu.elf");
        string[] args = [.. CliLinuxTests.Args(v, namelist, "cptime")];
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(0, Program.Run(args, output, error));
        Assert.Equal(string.Empty, error.ToString());

        using var image = LabImages.Open(v.Dump("qemu.elf"), namelist);
        var times = image.GetCpuTimes();
        var lines = output.ToString().TrimEnd('\n').Split('\n');
        Assert.Equal([times.Total.ToProcStatLine(), .. times.Cpus.Where(c => c.IsOnline).Select(c => c.ToProcStatLine())], lines[..^2]);
        Assert.StartsWith("cp_time: user ", lines[^2], StringComparison.Ordinal);
        Assert.StartsWith(times.IdleSource == CpuIdleSource.TickSched ? "idle and iowait: tick_cpu_sched (NO_HZ)" : "idle and iowait: cpustat", lines[^1], StringComparison.Ordinal);
    }
}
