namespace Kvm.IntegrationTests;

/// <summary>
/// Issue 4 on real dumps of every architecture (x86-64, arm64, i386 PAE and 2-level): processes, argv and
/// environment against what the guest's /proc recorded, with the variant's System.map and with no namelist at all
/// (symbols then come from the kernel's own kallsyms; where those list functions only, the BTF and init_task are found
/// by scanning the kernel image).
/// </summary>
public sealed class ProcessTests
{
    public static IEnumerable<object[]> DumpsBothWays() => DumpLab.AllDumpsWithAndWithoutSystemMap();

    [LabTheory]
    [MemberData(nameof(DumpsBothWays))]
    public void Processes_EqualGuestProc(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var list = image.GetProcesses();
        Assert.Empty(list.Errors);
        var ours = list.Processes.Where(p => p.Pid != 0).ToDictionary(p => p.Pid);
        var truth = TruthProcess.All(v);

        // The guest read /proc a few seconds before the host stopped it: a kernel thread the kernel started in
        // between (a new kworker) may be in the dump. Nothing else may differ.
        double snapshot = v.Truth.GetProperty("uptimeSeconds").GetDouble();
        var born = ours.Values.Where(p => p.IsKernelThread && p.StartTime.TotalSeconds >= snapshot - 1).Select(p => p.Pid).ToHashSet();
        Assert.Equal(truth.Select(t => t.Pid).Order(), ours.Keys.Where(pid => !born.Contains(pid) || truth.Any(t => t.Pid == pid)).Order());
        Assert.Contains(list.Processes, p => p.Pid == 0 && p.Command == "swapper/0");

        int collector = v.Truth.GetProperty("roles").GetProperty("collector").GetInt32();
        foreach (var t in truth)
        {
            var p = ours[t.Pid];
            string who = $"{variant}/{name} pid {t.Pid}";
            Assert.True(t.Ppid == p.ParentPid, $"{who}: ppid {p.ParentPid}, guest says {t.Ppid}");
            Assert.True(t.Tgid == p.Tgid, $"{who}: tgid");
            Assert.True(t.Pgid == p.ProcessGroupId, $"{who}: pgid {p.ProcessGroupId}, guest says {t.Pgid}");
            Assert.True(t.Sid == p.SessionId, $"{who}: sid {p.SessionId}, guest says {t.Sid}");
            Assert.Equal(t.Uids, p.Uids);
            Assert.Equal(t.Gids, p.Gids);
            // A workqueue worker's name carries the workqueue of its latest work item, which may change between the
            // guest's snapshot and the dump; the worker's own name may not.
            if ((p.Flags & 0x20) != 0 && t.Comm != p.Command)
            {
                Assert.Equal(p.Command.Split('-', '+')[0], t.Comm.Split('-', '+')[0]);
            }
            else
            {
                Assert.Equal(t.Comm, p.Command);
            }

            Assert.True(t.KernelThread == p.IsKernelThread, $"{who}: kernel thread flag");
            Assert.True(t.Nice == p.Nice, $"{who}: nice {p.Nice}, guest says {t.Nice}");
            Assert.True(t.NumThreads == p.ThreadCount, $"{who}: threads {p.ThreadCount}, guest says {t.NumThreads}");
            Assert.True(t.TtyNr == p.TtyNumber, $"{who}: tty_nr {p.TtyNumber}, guest says {t.TtyNr}");

            Assert.True(t.Priority == p.Priority, $"{who}: priority {p.Priority}, guest says {t.Priority}");

            // /proc/PID/stat's starttime is in USER_HZ (100) ticks: nsec_to_clock_t(start_boottime).
            Assert.True(t.StartTicks == (long)(p.StartTime.Ticks / (TimeSpan.TicksPerSecond / 100)), $"{who}: start {p.StartTime.TotalSeconds}s, guest says {t.StartTicks} ticks");
            if (t.Pid != collector)
            {
                Assert.True(t.VsizeBytes == p.VirtualSize, $"{who}: vsize {p.VirtualSize}, guest says {t.VsizeBytes}");
                Assert.True(t.RssPages == p.ResidentPages, $"{who}: rss {p.ResidentPages}, guest says {t.RssPages}");
            }

            // A sleeping process of the workload stays asleep until the dump; the collector was running when it read
            // /proc. A kernel thread may have woken in between (rcu_preempt, a kworker, was seen running on a CPU at
            // the stop of one lab run), so it may also be R.
            if (t.State is 'S' or 'I' && t.Pid != collector)
            {
                Assert.True(t.State == p.State || (t.KernelThread && p.State == 'R'), $"{who} ({t.Comm}): state {p.State}, guest says {t.State}");
            }
        }
    }

    [LabTheory]
    [MemberData(nameof(DumpsBothWays))]
    public void Threads_EqualGuestTaskDirectories(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var threads = image.GetProcesses(ProcessQuery.Threads).Processes;
        foreach (var t in TruthProcess.All(v))
        {
            var ours = threads.Where(p => p.Tgid == t.Pid).Select(p => p.Pid).Order();
            Assert.Equal(t.Threads.Order(), ours);
        }
    }

    [LabTheory]
    [MemberData(nameof(DumpsBothWays))]
    public void ArgvAndEnv_AreByteExact_OrSayWhyNot(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        var dump = v.Dump(name);
        var swapped = TruthSwappedPage.All(v);
        using var image = LabImages.Open(variant, name, systemMap);
        var ours = image.GetProcesses().Processes.ToDictionary(p => p.Pid);
        int checkedExact = 0, excluded = 0;
        foreach (var t in TruthProcess.All(v).Where(t => !t.KernelThread && t.Cmdline.Length > 0))
        {
            var p = ours[t.Pid];
            var argv = image.GetArguments(p);
            var env = image.GetEnvironment(p);
            string who = $"{variant}/{name} pid {t.Pid} ({t.Comm})";
            var pidSwapped = swapped.Where(s => s.Pid == t.Pid).ToList();
            if (pidSwapped.Count > 0)
            {
                // Swapped-out pages are in no dump; the reason names the swap slot the guest recorded.
                var first = pidSwapped.MinBy(s => s.Va)!;
                var failed = argv.IsComplete ? env : argv;
                Assert.False(failed.IsComplete, $"{who}: a swapped-out area read as complete");
                Assert.Equal(MemoryFaultReason.SwappedOut, failed.FaultReason);
                Assert.Contains($"swapped out: area {first.SwapType}, offset ", failed.Reason);
                Assert.Contains(pidSwapped, s => failed.Reason!.Contains($"page 0x{s.Va:x} is swapped out: area {s.SwapType}, offset {s.SwapOffset}"));
                continue;
            }

            if (!dump.KeepsUserPages && !argv.IsComplete)
            {
                // -d 31 drops user pages (a page makedumpfile kept must still read byte-exact below).
                Assert.Equal(MemoryFaultReason.Excluded, argv.FaultReason);
                Assert.Contains("excluded", argv.Reason);
                excluded++;
                continue;
            }

            Assert.True(argv.IsComplete, $"{who}: {argv.Reason}");
            Assert.True(env.IsComplete, $"{who}: {env.Reason}");
            AssertStrings(TruthProcess.Split(t.Cmdline), argv.Values, who + " argv");
            AssertStrings(TruthProcess.Split(t.Environ), env.Values, who + " env");
            checkedExact++;
        }

        Assert.True(checkedExact + excluded >= 8, $"only {checkedExact} processes were compared and {excluded} excluded");
        if (dump.KeepsUserPages)
        {
            Assert.True(checkedExact >= 8, $"only {checkedExact} processes were compared");
        }
        else if (dump.Format == "kdump")
        {
            Assert.True(excluded >= 8, $"{variant}/{name}: only {excluded} processes had excluded argv pages at dump level {dump.DumpLevel}");
        }
    }

    /// <summary>The swap image is matched to its area through swap_info: a data symbol, so bare dumps only where kallsyms lists data.</summary>
    [LabTheory]
    [MemberData(nameof(DumpLab.AllDumpsBothWays), MemberType = typeof(DumpLab))]
    public void SwappedOutArgvAndEnv_AreByteExact_WithTheSwapImage(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        var dump = v.Dump(name);
        using var image = LabImages.Open(dump, systemMap, withSwapImage: true);
        var ours = image.GetProcesses().Processes.ToDictionary(p => p.Pid);
        var pids = TruthSwappedPage.All(v).Select(s => s.Pid).Distinct().ToList();
        Assert.NotEmpty(pids);
        foreach (var t in TruthProcess.All(v).Where(t => pids.Contains(t.Pid)))
        {
            string who = $"{variant}/{name} pid {t.Pid} ({t.Comm})";
            var argv = image.GetArguments(ours[t.Pid]);
            var env = image.GetEnvironment(ours[t.Pid]);
            if (!dump.KeepsUserPages && (!argv.IsComplete || !env.IsComplete))
            {
                // Pages still in RAM are excluded by -d 31; only the swapped ones come back.
                Assert.Equal(MemoryFaultReason.Excluded, (argv.IsComplete ? env : argv).FaultReason);
                continue;
            }

            Assert.True(argv.IsComplete, $"{who}: {argv.Reason}");
            Assert.True(env.IsComplete, $"{who}: {env.Reason}");
            AssertStrings(TruthProcess.Split(t.Cmdline), argv.Values, who + " argv");
            AssertStrings(TruthProcess.Split(t.Environ), env.Values, who + " env");
        }
    }

    [LabFact]
    public void Argv_HonoursTheByteLimit()
    {
        var v = DumpLab.Variants[0];
        using var image = LabImages.Open(v.Name, "qemu.elf");
        int pid = v.Truth.GetProperty("roles").GetProperty("argv").GetInt32();
        var p = image.FindProcess(pid)!;
        var full = image.GetArguments(p);
        var cut = image.GetArguments(p, 10);
        Assert.True(cut.Truncated);
        Assert.Equal(full.Values[0].AsSpan(0, 9).ToArray(), cut.Values[0]); // nchr 10: 9 bytes and the NUL
    }

    [LabFact]
    public void Filters_SelectLikeLibkvm()
    {
        var v = DumpLab.Variants[0];
        using var image = LabImages.Open(v.Name, "qemu.elf");
        var truth = TruthProcess.All(v);
        var nonRoot = truth.Single(t => t.Pid == v.Truth.GetProperty("roles").GetProperty("nonRoot").GetInt32());
        Assert.Equal([nonRoot.Pid], image.GetProcesses(new ProcessQuery(ProcessSelector.Uid, nonRoot.Uids[1])).Processes.Select(p => p.Pid));
        Assert.Equal([nonRoot.Pid], image.GetProcesses(new ProcessQuery(ProcessSelector.RealGid, nonRoot.Gids[0])).Processes.Select(p => p.Pid));
        var tty = truth.Single(t => t.Pid == v.Truth.GetProperty("roles").GetProperty("tty").GetInt32());
        Assert.Equal(truth.Where(t => t.Sid == tty.Sid).Select(t => t.Pid).Order(), image.GetProcesses(new ProcessQuery(ProcessSelector.Session, tty.Sid)).Processes.Select(p => p.Pid).Order());
        Assert.Equal(truth.Where(t => t.TtyNr == tty.TtyNr).Select(t => t.Pid).Order(), image.GetProcesses(new ProcessQuery(ProcessSelector.Tty, tty.TtyNr)).Processes.Select(p => p.Pid).Order());
        Assert.Equal(truth.Where(t => t.Pgid == tty.Pgid).Select(t => t.Pid).Order(), image.GetProcesses(new ProcessQuery(ProcessSelector.ProcessGroup, tty.Pgid)).Processes.Where(p => p.Pid != 0).Select(p => p.Pid).Order());
        Assert.Empty(image.GetProcesses(ProcessQuery.ForPid(999_999)).Processes);
    }

    private static void AssertStrings(List<byte[]> expected, IReadOnlyList<byte[]> actual, string who)
    {
        Assert.True(expected.Count == actual.Count, $"{who}: {actual.Count} strings, guest has {expected.Count}");
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.True(expected[i].AsSpan().SequenceEqual(actual[i]), $"{who}[{i}]: {Convert.ToHexString(actual[i])} != guest {Convert.ToHexString(expected[i])}");
        }
    }
}
