using System.Globalization;
using System.Text.Json;
using Kvm.Cli;

namespace Kvm.IntegrationTests;

/// <summary>
/// The controlling terminal's groups, the signal sets and the fault counters of every process, on real dumps of every
/// architecture (x86-64 variants, arm64, i386 PAE and 2-level), against what the guest's /proc/PID/stat and
/// /proc/PID/status said a few seconds before the dump (truth.json "processes": "stat", "status").
/// </summary>
public sealed class ProcessDetailTests
{
    [LabTheory]
    [MemberData(nameof(DumpLab.AllDumpsBothWays), MemberType = typeof(DumpLab))]
    public void TtyGroups_EqualStatsTpgid(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var ours = image.GetProcesses().Processes.ToDictionary(p => p.Pid);
        int withTty = 0;

        // A controlling terminal and its foreground group change only through the processes of its session (setsid,
        // TIOCSPGRP); the guest's one terminal session, the workload's "tty" process, sleeps from before the snapshot.
        foreach (var t in TruthDetail.All(v))
        {
            var p = ours[t.Pid];
            string who = $"{variant}/{name} pid {t.Pid} ({t.Comm})";
            Assert.True(t.Tpgid == p.TtyProcessGroupId, $"{who}: tpgid {p.TtyProcessGroupId}, guest says {t.Tpgid}");

            // /proc does not print the terminal's session; the guest's terminal is its own session's: the session
            // of every process that has it as controlling terminal.
            int session = t.TtyNr != 0 ? t.Sid : 0;
            Assert.True(session == p.TtySessionId, $"{who}: tty session {p.TtySessionId}, expected {session}");
            withTty += t.TtyNr != 0 ? 1 : 0;
        }

        int ttyRole = v.Truth.GetProperty("roles").GetProperty("tty").GetInt32();
        Assert.True(withTty >= 1, $"{variant}/{name}: no process with a controlling terminal");
        Assert.Equal(ttyRole, ours[ttyRole].TtyProcessGroupId);
    }

    [LabTheory]
    [MemberData(nameof(DumpLab.AllDumpsBothWays), MemberType = typeof(DumpLab))]
    public void SignalSets_EqualProcStatus(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var ours = image.GetProcesses().Processes.ToDictionary(p => p.Pid);
        int collector = v.Truth.GetProperty("roles").GetProperty("collector").GetInt32();
        int compared = 0;
        foreach (var t in TruthDetail.All(v).Where(t => t.Pid != collector))
        {
            var p = ours[t.Pid];
            string who = $"{variant}/{name} pid {t.Pid} ({t.Comm})";

            // Dispositions are set once at start (the workload's, init's; kernel threads ignore everything from
            // kthreadd on): stable whatever ran in between. The collector installs and restores its own as it goes.
            Assert.True(t.SigIgn == p.IgnoredSignals, $"{who}: ignored {p.IgnoredSignals:x16}, guest says {t.SigIgn:x16}");
            Assert.True(t.SigCgt == p.CaughtSignals, $"{who}: caught {p.CaughtSignals:x16}, guest says {t.SigCgt:x16}");

            // Pending and blocked signals move while a task runs (a signal delivered, a mask changed around a
            // critical section); a process asleep at the snapshot that sleeps on to the dump keeps them. The spinner
            // (R) is left out; a sleeping kernel thread may have woken, but none of them takes signals.
            if (t.State is 'S' or 'I')
            {
                Assert.True(t.SigPnd == p.PendingSignals, $"{who}: pending {p.PendingSignals:x16}, guest says {t.SigPnd:x16}");
                Assert.True(t.ShdPnd == p.SharedPendingSignals, $"{who}: shared pending {p.SharedPendingSignals:x16}, guest says {t.ShdPnd:x16}");
                Assert.True(t.SigBlk == p.BlockedSignals, $"{who}: blocked {p.BlockedSignals:x16}, guest says {t.SigBlk:x16}");
                compared++;
            }
        }

        Assert.True(compared >= 10, $"{variant}/{name}: only {compared} sleeping processes compared");

        // What the guest shows that is not all zero: init ignores and catches some, kernel threads ignore all 64, and
        // the threaded workload process catches signal 33 (glibc's SIGSETXID: on i386, bit 0 of sigset_t's second word).
        Assert.NotEqual(0UL, ours[1].CaughtSignals);
        Assert.Equal(ulong.MaxValue, ours[2].IgnoredSignals);
        int threaded = v.Truth.GetProperty("roles").GetProperty("threaded").GetInt32();
        Assert.Equal(1UL << 32, ours[threaded].CaughtSignals & (1UL << 32));
    }

    [LabTheory]
    [MemberData(nameof(DumpLab.AllDumpsBothWays), MemberType = typeof(DumpLab))]
    public void FaultCounts_EqualProcStat_ForProcessesAsleepSinceTheSnapshot(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var ours = image.GetProcesses().Processes.ToDictionary(p => p.Pid);
        int collector = v.Truth.GetProperty("roles").GetProperty("collector").GetInt32();
        int exact = 0;
        foreach (var t in TruthDetail.All(v))
        {
            var p = ours[t.Pid];
            string who = $"{variant}/{name} pid {t.Pid} ({t.Comm})";
            var got = (p.MinorFaults, p.ChildMinorFaults, p.MajorFaults, p.ChildMajorFaults);
            var guest = (t.MinFlt, t.CminFlt, t.MajFlt, t.CmajFlt);

            // Counters only grow, and only while a task of the process runs (its own faults) or a child of it is
            // reaped (the children's). A user process asleep at the snapshot (S, not the collector, which was
            // reading /proc) sleeps on to the dump: its counts are the guest's exactly. The rest may have grown.
            if (t.State == 'S' && !t.KernelThread && t.Pid != collector)
            {
                Assert.True(guest == got, $"{who}: faults (min, cmin, maj, cmaj) {got}, guest says {guest}");
                exact++;
            }
            else
            {
                Assert.True(got.MinorFaults >= guest.MinFlt && got.ChildMinorFaults >= guest.CminFlt && got.MajorFaults >= guest.MajFlt &&
                    got.ChildMajorFaults >= guest.CmajFlt, $"{who}: faults (min, cmin, maj, cmaj) {got} are below the guest's earlier {guest}");
            }
        }

        Assert.True(exact >= 10, $"{variant}/{name}: only {exact} processes compared exactly");

        // The workload's processes have touched their pages, and init has reaped children of its own.
        Assert.NotEqual(0UL, ours[1].MinorFaults);
        Assert.NotEqual(0UL, ours[1].ChildMinorFaults);
    }

    [LabTheory]
    [MemberData(nameof(DumpLab.AllDumpsBothWays), MemberType = typeof(DumpLab))]
    public void ThreadEntries_HaveTheirOwnFaultsAndSharedDispositions(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        int threaded = v.Truth.GetProperty("roles").GetProperty("threaded").GetInt32();
        var process = image.FindProcess(threaded)!;
        var threads = image.GetProcesses(new ProcessQuery(ProcessSelector.Pid, threaded, IncludeThreads: true)).Processes;
        Assert.True(threads.Count > 1, $"{variant}/{name}: pid {threaded} has {threads.Count} threads");

        // do_task_stat(whole): the process's count is its live threads' plus its dead threads' (signal->min_flt);
        // the threads all share one sighand, and the whole process one files_struct.
        Assert.True(process.MinorFaults >= (ulong)threads.Sum(t => (long)t.MinorFaults), $"{variant}/{name}: process minflt {process.MinorFaults} below its threads' sum");
        Assert.All(threads, t => Assert.Equal(process.CaughtSignals, t.CaughtSignals));
        Assert.All(threads, t => Assert.Equal(process.FilesAddress, t.FilesAddress));
        Assert.Equal(threads.Count, threads.Select(t => t.KernelStackAddress).Distinct().Count());
    }

    [LabTheory]
    [MemberData(nameof(DumpLab.AllDumpsBothWays), MemberType = typeof(DumpLab))]
    public void FilesAndKernelStack_AreKernelAddresses(string variant, string name, bool systemMap)
    {
        using var image = LabImages.Open(variant, name, systemMap);
        foreach (var p in image.GetProcesses().Processes.Where(p => p.State != 'Z'))
        {
            // task->stack is the THREAD_SIZE-aligned base of the kernel stack (16 KiB on x86-64 and arm64, 8 KiB on
            // i386); every live task has one, and every live task but the exiting has a files_struct (kernel threads
            // share init_files).
            string who = $"{variant}/{name} pid {p.Pid} ({p.Command})";
            Assert.True(p.KernelStackAddress != 0 && p.KernelStackAddress % 8192 == 0, $"{who}: kernel stack 0x{p.KernelStackAddress:x}");
            Assert.True(p.FilesAddress != 0, $"{who}: no files_struct");
            var probe = new byte[8];
            Assert.Equal(probe.Length, image.Read(p.FilesAddress, probe));
        }
    }

    /// <summary>kmem ps --json on each variant's QEMU ELF dump, with System.map and, where kallsyms lists data, without.</summary>
    [LabTheory]
    [MemberData(nameof(CliLinuxTests.Variants), MemberType = typeof(CliLinuxTests))]
    public void KmemPsJson_CarriesTheNewFields(string variant, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run([.. CliLinuxTests.Args(v, systemMap, "ps"), "--json"], output, error);
        Assert.True(exit == 0, $"kmem exited {exit}: {error}");
        using var doc = JsonDocument.Parse(output.ToString());
        var byPid = doc.RootElement.GetProperty("processes").EnumerateArray().ToDictionary(p => p.GetProperty("pid").GetInt32());
        int ttyRole = v.Truth.GetProperty("roles").GetProperty("tty").GetInt32();
        var truth = TruthDetail.All(v).ToDictionary(t => t.Pid);

        Assert.Equal(ttyRole, byPid[ttyRole].GetProperty("tpgid").GetInt32());
        Assert.Equal(truth[ttyRole].Sid, byPid[ttyRole].GetProperty("tsid").GetInt32());
        Assert.Equal(-1, byPid[1].GetProperty("tpgid").GetInt32());
        Assert.Equal($"0x{truth[1].SigCgt:x}", byPid[1].GetProperty("sigCaught").GetString());
        Assert.Equal($"0x{truth[1].SigIgn:x}", byPid[1].GetProperty("sigIgnored").GetString());
        Assert.Equal("0xffffffffffffffff", byPid[2].GetProperty("sigIgnored").GetString());
        Assert.Equal(truth[ttyRole].MinFlt, byPid[ttyRole].GetProperty("minFlt").GetUInt64());
        Assert.Equal(truth[1].CminFlt, byPid[1].GetProperty("cminFlt").GetUInt64());
        Assert.StartsWith("0x", byPid[1].GetProperty("kernelStack").GetString(), StringComparison.Ordinal);
        Assert.NotEqual("0x0", byPid[1].GetProperty("files").GetString());
    }
}

/// <summary>
/// What truth.json's raw /proc lines of one process say about its terminal, faults and signals: /proc/PID/stat fields
/// 7 (tty_nr), 8 (tpgid), 10–13 (minflt, cminflt, majflt, cmajflt) and /proc/PID/status' SigPnd, ShdPnd, SigBlk,
/// SigIgn, SigCgt (16 hex digits, bit n − 1 for signal n).
/// </summary>
public sealed record TruthDetail(int Pid, string Comm, char State, bool KernelThread, int Sid, long TtyNr, int Tpgid, ulong MinFlt, ulong CminFlt, ulong MajFlt,
    ulong CmajFlt, ulong SigPnd, ulong ShdPnd, ulong SigBlk, ulong SigIgn, ulong SigCgt)
{
    public static IReadOnlyList<TruthDetail> All(LabVariant v) =>
        v.Truth.GetProperty("processes").EnumerateArray().Select(Parse).ToList();

    private static TruthDetail Parse(JsonElement p)
    {
        // The name in parentheses may hold spaces and parentheses: the fields start after the last ')'. f[0] is
        // field 3 (state).
        string stat = p.GetProperty("stat").GetString()!;
        string[] f = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        var status = p.GetProperty("status").GetString()!.Split('\n')
            .Select(l => l.Split(":\t", 2)).Where(kv => kv.Length == 2).ToDictionary(kv => kv[0], kv => kv[1].Trim());
        ulong Mask(string key) => ulong.Parse(status[key], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
        ulong Field(int n) => ulong.Parse(f[n - 3], CultureInfo.InvariantCulture);
        return new TruthDetail(
            p.GetProperty("pid").GetInt32(),
            p.GetProperty("comm").GetString()!,
            f[0][0],
            p.GetProperty("kernelThread").GetBoolean(),
            int.Parse(f[6 - 3], CultureInfo.InvariantCulture),
            long.Parse(f[7 - 3], CultureInfo.InvariantCulture),
            int.Parse(f[8 - 3], CultureInfo.InvariantCulture),
            Field(10),
            Field(11),
            Field(12),
            Field(13),
            Mask("SigPnd"),
            Mask("ShdPnd"),
            Mask("SigBlk"),
            Mask("SigIgn"),
            Mask("SigCgt"));
    }
}
