using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Kvm.IntegrationTests.Native;

/// <summary>
/// The three consumer programs of tests/native (ps, dmesg, swapinfo), written only against kvm.h, run on every variant's
/// qemu.elf (with its System.map), one kdump and one flattened file (with no namelist: kallsyms from the dump), and their
/// output compared with what the guest recorded (truth.json).
/// </summary>
public sealed partial class NativeConsumerTests
{
    /// <summary>
    /// Per x86-64 variant: qemu.elf with System.map; makedumpfile's -d 31 kdump and flattened file where the variant has
    /// them, else QEMU's. Per arm64 and i386 variant: qemu.elf and the kdump, with System.map (Debian's arm64 and 686
    /// kallsyms list functions only, so init_task comes from the map); the 686 kernels, built without BTF, get pahole's
    /// through $KVM_BTF.
    /// </summary>
    public static IEnumerable<object[]> Dumps() => DumpLab.Variants.SelectMany(v => new[]
    {
        ("qemu.elf", true),
        (v.Dumps.Any(d => d.Name == "mdf-c-d31.kdump") ? "mdf-c-d31.kdump" : "qemu-kdump-zlib.kdump", false),
        (v.Dumps.Any(d => d.Name == "mdf-F-c-d31.flat") ? "mdf-F-c-d31.flat" : "qemu-kdump-zlib.flat", false),
    }.Where(x => v.Dumps.Any(d => d.Name == x.Item1)).Select(x => new object[] { v.Name, x.Item1, x.Item2 }))
        .Concat(DumpLab.ForeignVariants.SelectMany(v => new[] { "qemu.elf", "qemu-kdump-zlib.kdump" }
            .Where(n => v.Dumps.Any(d => d.Name == n)).Select(n => new object[] { v.Name, n, true })));

    [NativeTheory]
    [MemberData(nameof(Dumps))]
    public void Ps_ListsTheGuestsProcessesWithTheirArguments(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        var dump = v.Dump(name);
        var result = RunTool("ps", dump, systemMap, ["-S", v.SwapImage]);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("  PID  PPID   UID  RUID STAT STARTED COMMAND ARGS", lines[0]);

        var rows = new Dictionary<int, PsRow>();
        foreach (string line in lines.Skip(1))
        {
            var m = PsLine().Match(line);
            Assert.True(m.Success, $"{dump}: ps line not in the documented format: {line}");
            var row = PsRow.From(m);
            Assert.True(rows.TryAdd(row.Pid, row), $"{dump}: pid {row.Pid} listed twice");
        }

        var failures = new List<string>();
        var truth = TruthProcess.All(v);
        int collector = v.Truth.GetProperty("roles").GetProperty("collector").GetInt32();
        var swapped = TruthSwappedPage.All(v).Select(s => s.Pid).ToHashSet();

        // ki_start is boot time + the task's start: /proc's starttime (USER_HZ ticks, truncated) puts every process's
        // boot time estimate in the same 10 ms window.
        var bootEstimates = truth.Where(t => rows.ContainsKey(t.Pid)).Select(t => rows[t.Pid].Start - t.StartTicks / 100.0).ToList();
        double boot = bootEstimates.Min();
        if (bootEstimates.Max() - boot > 0.0105)
        {
            failures.Add($"ki_start - /proc starttime spreads over {bootEstimates.Max() - boot:F4} s (more than one 10 ms tick)");
        }

        foreach (var t in truth)
        {
            if (!rows.TryGetValue(t.Pid, out var p))
            {
                failures.Add($"pid {t.Pid} ({t.Comm}) is missing");
                continue;
            }

            string who = $"pid {t.Pid} ({t.Comm})";
            if (p.Ppid != t.Ppid)
            {
                failures.Add($"{who}: ppid {p.Ppid}, guest {t.Ppid}");
            }

            if (p.Uid != t.Uids[1] || p.Ruid != t.Uids[0])
            {
                failures.Add($"{who}: uid {p.Uid} ruid {p.Ruid}, guest euid {t.Uids[1]} ruid {t.Uids[0]}");
            }

            if (!SameComm(p.Comm, t.Comm))
            {
                failures.Add($"{who}: ki_comm \"{Show(p.Comm)}\"");
            }

            if (p.KernelThread != t.KernelThread)
            {
                failures.Add($"{who}: shown as {(p.KernelThread ? "a kernel thread" : "a process")}, the guest says the opposite (args: {p.RawArgs})");
            }

            // BSD's STAT: the state letter, then N for a positive nice and < for a negative one.
            // A kernel thread may have woken between the guest's snapshot and the stop (see ProcessTests): R is allowed.
            if (t.State is 'S' or 'I' or 'D' && t.Pid != collector && p.Stat[0] != (t.State == 'D' ? 'D' : 'S') && !(t.KernelThread && p.Stat[0] == 'R'))
            {
                failures.Add($"{who}: STAT {p.Stat}, guest state {t.State}");
            }

            if (p.Stat.Contains('N') != (t.Nice > 0) || p.Stat.Contains('<') != (t.Nice < 0))
            {
                failures.Add($"{who}: STAT {p.Stat}, guest nice {t.Nice}");
            }

            if (t.KernelThread || t.Cmdline.Length == 0)
            {
                continue;
            }

            if (p.Argv is { } argv)
            {
                var expected = TruthProcess.Split(t.Cmdline);
                if (!expected.Select(Convert.ToHexString).SequenceEqual(argv.Select(Convert.ToHexString)))
                {
                    failures.Add($"{who}: argv [{string.Join(", ", argv.Select(Show))}], guest [{string.Join(", ", expected.Select(Show))}]");
                }
            }
            else if (dump.KeepsUserPages || swapped.Contains(t.Pid))
            {
                // A full dump has every page; with -S the swapped-out ones come back from the swap image.
                failures.Add($"{who}: no arguments: {StderrFor(result, t.Pid)}");
            }
            else if (!StderrFor(result, t.Pid).Contains("excluded", StringComparison.Ordinal))
            {
                failures.Add($"{who}: no arguments, and the reason does not say the page was excluded: {StderrFor(result, t.Pid)}");
            }
        }

        // Besides the guest's processes: the idle task, and kernel threads started after the guest's snapshot.
        double snapshot = v.Truth.GetProperty("uptimeSeconds").GetDouble();
        var known = truth.Select(t => t.Pid).ToHashSet();
        foreach (var p in rows.Values.Where(p => !known.Contains(p.Pid)))
        {
            if (p.Pid == 0)
            {
                if (Encoding.UTF8.GetString(p.Comm) != "swapper/0" || !p.KernelThread)
                {
                    failures.Add($"pid 0: \"{Show(p.Comm)}\" {p.RawArgs}");
                }
            }
            else if (!p.KernelThread || p.Start - boot < snapshot - 1)
            {
                failures.Add($"pid {p.Pid} ({Show(p.Comm)}) is not in the truth: {(p.KernelThread ? "a kernel thread" : "a process")} started {p.Start - boot:F2} s after boot, the guest's snapshot was at {snapshot:F2} s");
            }
        }

        Assert.True(failures.Count == 0, $"{dump}: ps differs from the guest:\n{string.Join('\n', failures)}");
    }

    [NativeTheory]
    [MemberData(nameof(Dumps))]
    public void Dmesg_PrintsTheGuestsLogAndBanner(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        var dump = v.Dump(name);
        var result = RunTool("dmesg", dump, systemMap, ["-b"]);
        Assert.True(result.Stderr.Length == 0, $"{dump}: dmesg wrote to stderr: {result.Stderr}");
        var lines = result.Stdout.Split('\n').ToList();
        Assert.True(lines.Count > 2 && lines[^1].Length == 0, $"{dump}: the output does not end with a newline");

        // linux_banner, read with kvm_nlist + kvm_read, is /proc/version's text.
        Assert.Equal(v.ProcVersion.TrimEnd('\n'), lines[0]);

        var log = lines.Skip(1).ToList();
        var truth = v.Truth.GetProperty("dmesg").GetString()!.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(truth);
        int at = 0;
        foreach (string line in truth)
        {
            int found = log.IndexOf(line, at);
            Assert.True(found >= 0, $"{dump}: guest dmesg line not found (in order) after our line {at}: {line}");
            at = found + 1;
        }

        string marker = v.Truth.GetProperty("kmsgMarker").GetString()!.Trim();
        Assert.Contains(log, l => l.EndsWith("] " + marker, StringComparison.Ordinal));
    }

    [NativeTheory]
    [MemberData(nameof(Dumps))]
    public void Swapinfo_EqualsProcSwaps(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        var dump = v.Dump(name);
        var result = RunTool("swapinfo", dump, systemMap, []);
        var lines = result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal("Device          1K-blocks     Used    Avail Capacity", lines[0]);
        var rows = lines.Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.All(rows, r => Assert.True(r.Length == 5 && r[4].EndsWith('%'), $"{dump}: swapinfo row not in the documented format: {string.Join(' ', r)}"));

        var truth = v.Truth.GetProperty("swaps").EnumerateArray().ToList();
        Assert.Equal(truth.Count + 1, rows.Count);
        for (int i = 0; i <= truth.Count; i++)
        {
            var r = rows[i];
            long blocks = long.Parse(r[1], CultureInfo.InvariantCulture), used = long.Parse(r[2], CultureInfo.InvariantCulture);
            long avail = long.Parse(r[3], CultureInfo.InvariantCulture);
            if (i < truth.Count)
            {
                // SWIF_DEV_PREFIX keeps "/dev/": the name is /proc/swaps'. Pages in use can only grow between the guest's
                // snapshot and the stop (nothing swaps in while the guest idles).
                Assert.Equal(truth[i].GetProperty("filename").GetString(), r[0]);
                Assert.Equal(truth[i].GetProperty("sizeKiB").GetInt64(), blocks);
                Assert.InRange(used, truth[i].GetProperty("usedKiB").GetInt64(), blocks);
            }
            else
            {
                Assert.Equal("Total", r[0]);
                Assert.Equal(truth.Sum(t => t.GetProperty("sizeKiB").GetInt64()), blocks);
                Assert.Equal(rows.Take(truth.Count).Sum(x => long.Parse(x[2], CultureInfo.InvariantCulture)), used);
            }

            Assert.Equal(blocks - used, avail);
            Assert.Equal($"{Math.Round(used * 100.0 / blocks, MidpointRounding.ToEven).ToString("F0", CultureInfo.InvariantCulture)}%", r[4]);
        }
    }

    private static ProcessResult RunTool(string tool, LabDump dump, bool systemMap, string[] extra)
    {
        var args = new List<string> { "-M", dump.Path };
        if (systemMap)
        {
            args.AddRange(["-N", dump.Variant.SystemMap]);
        }

        args.AddRange(extra);
        var environment = new Dictionary<string, string?> { ["KVM_BTF"] = dump.Variant.Btf };
        var result = NativeToolchain.Run(NativeToolchain.Program(tool), args, environment: environment);
        Assert.True(result.ExitCode == 0 && !result.TimedOut, result.Describe($"{tool} {string.Join(' ', args)}"));
        return result;
    }

    /// <summary>ki_comm is the /proc name cut to COMMLEN (19) bytes; a workqueue worker's "-workqueue" suffix may change after the snapshot.</summary>
    private static bool SameComm(byte[] ours, string truth)
    {
        byte[] t = Encoding.UTF8.GetBytes(truth);
        t = t[..Math.Min(t.Length, 19)];
        if (truth.StartsWith("kworker/", StringComparison.Ordinal))
        {
            static string Own(byte[] b) => Encoding.UTF8.GetString(b).Split('-', '+')[0];
            return Own(ours) == Own(t);
        }

        return ours.AsSpan().SequenceEqual(t);
    }

    private static string StderrFor(ProcessResult result, int pid) =>
        result.Stderr.Split('\n').FirstOrDefault(l => l.StartsWith($"ps: pid {pid}: ", StringComparison.Ordinal)) ?? "(no reason on stderr)";

    private static string Show(byte[] b) => Encoding.UTF8.GetString(b).Replace("\0", "\\0", StringComparison.Ordinal);

    /// <summary>Undoes ps's strvis: \ooo is one byte.</summary>
    private static byte[] Unvis(string text)
    {
        var bytes = new List<byte>();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '\\' && i + 3 < text.Length)
            {
                bytes.Add(Convert.ToByte(text.Substring(i + 1, 3), 8));
                i += 3;
            }
            else
            {
                bytes.Add((byte)text[i]);
            }
        }

        return [.. bytes];
    }

    [GeneratedRegex(@"^\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\S+)\s+(\d+\.\d{6}) (\S+) (.*)$")]
    private static partial Regex PsLine();

    private sealed record PsRow(int Pid, int Ppid, uint Uid, uint Ruid, string Stat, double Start, byte[] Comm, string RawArgs, bool KernelThread, List<byte[]>? Argv)
    {
        public static PsRow From(Match m)
        {
            string comm = m.Groups[7].Value, args = m.Groups[8].Value;
            bool kernel = args == $"[{comm}]";
            bool none = kernel || args == $"({comm})";
            return new PsRow(
                int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture),
                int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture),
                uint.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture),
                uint.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture),
                m.Groups[5].Value,
                double.Parse(m.Groups[6].Value, CultureInfo.InvariantCulture),
                Unvis(comm),
                args,
                kernel,
                none ? null : args.Split(' ').Select(Unvis).ToList());
        }
    }
}
