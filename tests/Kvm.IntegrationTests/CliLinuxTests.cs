using System.Text.Json;
using Kvm.Cli;

namespace Kvm.IntegrationTests;

/// <summary>
/// kmem's Linux commands (ps, fstat, swapinfo, dmesg, uptime) run in-process on the real dumps, their --json output
/// compared with the truth recorded inside the guest, on every architecture. Every test runs with the variant's
/// System.map and, where the kernel's kallsyms lists data symbols, with no namelist at all (symbols and BTF then have
/// to come from the dump itself).
/// </summary>
public sealed class CliLinuxTests
{
    private const string Dump = "qemu.elf";

    /// <summary>
    /// Every variant of every architecture with <c>-N System.map</c>, and without a namelist where the kernel's kallsyms
    /// lists data symbols (Debian's x86-64 kernel; its arm64 and i386 kernels list functions only).
    /// </summary>
    public static IEnumerable<object[]> Variants() =>
        DumpLab.AllVariants.SelectMany(v => v.KallsymsListsData ? new[] { new object[] { v.Name, true }, [v.Name, false] } : [[v.Name, true]]);

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Ps_ListsTheGuestsProcesses(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        using var doc = RunJson(v, namelist, "ps");
        var root = doc.RootElement;
        Assert.Empty(root.GetProperty("errors").EnumerateArray());
        var ours = root.GetProperty("processes").EnumerateArray().ToList();

        var idle = Assert.Single(ours, p => p.GetProperty("pid").GetInt32() == 0);
        Assert.Equal("swapper/0", Text(idle.GetProperty("comm")));
        Assert.True(idle.GetProperty("kernelThread").GetBoolean());

        var truth = v.Truth.GetProperty("processes").EnumerateArray().ToList();
        // The truth was taken a few seconds before the dump: a kernel worker may have started in between, so
        // besides the truth's processes only kernel threads may appear.
        var byPid = ours.ToDictionary(p => p.GetProperty("pid").GetInt32());
        var truthPids = truth.Select(t => t.GetProperty("pid").GetInt32()).ToHashSet();
        Assert.Subset(byPid.Keys.ToHashSet(), truthPids);
        Assert.All(byPid.Where(kv => kv.Key != 0 && !truthPids.Contains(kv.Key)), kv => Assert.True(kv.Value.GetProperty("kernelThread").GetBoolean(), $"pid {kv.Key} is not in the truth"));
        foreach (var t in truth)
        {
            int pid = t.GetProperty("pid").GetInt32();
            var p = byPid[pid];
            Assert.Equal(t.GetProperty("ppid").GetInt32(), p.GetProperty("ppid").GetInt32());
            Assert.Equal(t.GetProperty("tgid").GetInt32(), p.GetProperty("tgid").GetInt32());
            Assert.Equal(t.GetProperty("uid")[0].GetUInt32(), p.GetProperty("uid").GetUInt32());
            Assert.Equal(t.GetProperty("uid")[1].GetUInt32(), p.GetProperty("euid").GetUInt32());
            Assert.Equal(t.GetProperty("gid")[0].GetUInt32(), p.GetProperty("gid").GetUInt32());
            Assert.Equal(t.GetProperty("gid")[1].GetUInt32(), p.GetProperty("egid").GetUInt32());
            Assert.Equal(t.GetProperty("kernelThread").GetBoolean(), p.GetProperty("kernelThread").GetBoolean());
            Assert.Equal(t.GetProperty("nice").GetInt32(), p.GetProperty("nice").GetInt32());
            Assert.Equal(t.GetProperty("numThreads").GetInt32(), p.GetProperty("threads").GetInt32());

            // comm is the name as /proc prints it (a kernel thread's full name, a worker's "-workqueue" suffix). A
            // worker's workqueue may change between the guest's snapshot and the dump; its own name may not.
            string comm = Text(p.GetProperty("comm"));
            string truthComm = t.GetProperty("comm").GetString()!;
            if (comm.StartsWith("kworker/", StringComparison.Ordinal))
            {
                Assert.Equal(truthComm.Split('-', '+')[0], comm.Split('-', '+')[0]);
            }
            else
            {
                Assert.Equal(truthComm, comm);
            }
        }
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Ps_ArgvAndEnv_AreTheGuestsBytes(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        using var doc = RunJson(v, namelist, "ps");
        var byPid = doc.RootElement.GetProperty("processes").EnumerateArray().ToDictionary(p => p.GetProperty("pid").GetInt32());
        var swapped = v.Truth.GetProperty("swappedPages").EnumerateArray().ToList();
        int compared = 0;
        foreach (var t in v.Truth.GetProperty("processes").EnumerateArray().Where(t => !t.GetProperty("kernelThread").GetBoolean()))
        {
            int pid = t.GetProperty("pid").GetInt32();
            var p = byPid[pid];
            bool argvSwapped = swapped.Any(s => s.GetProperty("pid").GetInt32() == pid && s.GetProperty("containsArgv").GetBoolean());
            bool envSwapped = swapped.Any(s => s.GetProperty("pid").GetInt32() == pid && s.GetProperty("containsEnv").GetBoolean());
            if (argvSwapped)
            {
                // No -S: the page is in swap, and the reason says so.
                Assert.Contains("swapped out", p.GetProperty("argvError").GetString(), StringComparison.Ordinal);
            }
            else
            {
                Assert.Equal(JsonValueKind.Null, p.GetProperty("argvError").ValueKind);
                Assert.Equal(SplitNul(t.GetProperty("cmdlineHex").GetString()!), Strings(p.GetProperty("argv")));
                compared++;
            }

            if (!envSwapped)
            {
                Assert.Equal(SplitNul(t.GetProperty("environHex").GetString()!), Strings(p.GetProperty("env")));
            }
        }

        // The argv role's invalid UTF-8 made it through the escaping: at least one escaped byte was compared.
        Assert.True(compared >= 5, $"only {compared} processes compared");
        Assert.Contains("\\udc", byPid[v.Truth.GetProperty("roles").GetProperty("argv").GetInt32()].GetProperty("argv").GetRawText(), StringComparison.Ordinal);
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Ps_WithSwapImage_ReadsSwappedOutArgv(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        using var doc = RunJson(v, namelist, "-S", v.SwapImage, "ps");
        var byPid = doc.RootElement.GetProperty("processes").EnumerateArray().ToDictionary(p => p.GetProperty("pid").GetInt32());
        foreach (int pid in v.Truth.GetProperty("swappedPages").EnumerateArray().Select(s => s.GetProperty("pid").GetInt32()).Distinct())
        {
            var t = v.Truth.GetProperty("processes").EnumerateArray().Single(t => t.GetProperty("pid").GetInt32() == pid);
            var p = byPid[pid];
            Assert.True(p.GetProperty("argvError").ValueKind == JsonValueKind.Null, $"pid {pid}: {p.GetProperty("argvError")}");
            Assert.Equal(SplitNul(t.GetProperty("cmdlineHex").GetString()!), Strings(p.GetProperty("argv")));
            Assert.Equal(SplitNul(t.GetProperty("environHex").GetString()!), Strings(p.GetProperty("env")));
        }
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Ps_Text_ShowsKernelThreadsInBracketsAndArguments(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        var (exit, output, error) = Run(Args(v, namelist, "ps"));
        Assert.True(exit == 0, error);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Matches(@"^\s*PID\s+PPID\s+UID\s+STAT\s+TIME\s+COMMAND$", lines[0]);
        Assert.Matches(@"^\s*0\s+0\s+0\s+\S+\s+\d\d:\d\d:\d\d \[swapper/0\]$", lines[1]);
        Assert.Contains(lines, l => l.EndsWith(" [kthreadd]", StringComparison.Ordinal));
        Assert.Contains(lines, l => l.Contains(" kvmtest-argv hello world ", StringComparison.Ordinal));
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Fstat_PathsAreTheGuests(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        var files = v.Truth.GetProperty("files");
        int pid = files.GetProperty("pid").GetInt32();
        using var doc = RunJson(v, namelist, "fstat", "-p", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        var ours = doc.RootElement.GetProperty("files").EnumerateArray().ToList();
        Assert.All(ours, f => Assert.Equal(pid, f.GetProperty("pid").GetInt32()));
        Assert.Equal(
            files.GetProperty("fds").EnumerateArray().Select(f => (f.GetProperty("fd").GetInt32(), f.GetProperty("path").GetString())),
            ours.Select(f => (f.GetProperty("fd").GetInt32(), f.GetProperty("path").GetString())));
        Assert.Equal(
            files.GetProperty("fds").EnumerateArray().Select(f => f.GetProperty("pos").GetInt64()),
            ours.Select(f => f.GetProperty("pos").GetInt64()));
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Swapinfo_SizesAreTheGuests(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        using var doc = RunJson(v, namelist, "swapinfo");
        var truth = v.Truth.GetProperty("swaps").EnumerateArray().ToList();
        Assert.Equal(truth.Sum(s => s.GetProperty("sizeKiB").GetInt64()), doc.RootElement.GetProperty("totalKiB").GetInt64());
        var areas = doc.RootElement.GetProperty("areas").EnumerateArray().ToList();
        Assert.Equal(truth.Select(s => s.GetProperty("filename").GetString()), areas.Select(a => a.GetProperty("name").GetString()));
        Assert.Equal(truth.Select(s => s.GetProperty("type").GetString()), areas.Select(a => a.GetProperty("type").GetString()));
        Assert.Equal(truth.Select(s => s.GetProperty("priority").GetInt32()), areas.Select(a => a.GetProperty("priority").GetInt32()));
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Dmesg_HasTheMarker(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        string marker = v.Truth.GetProperty("kmsgMarker").GetString()!;
        using var doc = RunJson(v, namelist, "dmesg");
        var records = doc.RootElement.GetProperty("records").EnumerateArray().ToList();
        var record = Assert.Single(records, r => Text(r.GetProperty("text")).Contains(marker, StringComparison.Ordinal));
        Assert.Equal(1, record.GetProperty("facility").GetInt32());
        Assert.Equal(record.GetProperty("timestampNs").GetUInt64() / 1000 / 1e6, record.GetProperty("timestamp").GetDouble(), 6);
        Assert.Equal(v.FirstKernelLogText, Text(records[0].GetProperty("text")));

        var (exit, output, _) = Run(Args(v, namelist, "dmesg", "--tail", "15"));
        Assert.Equal(0, exit);
        Assert.Contains(marker, output, StringComparison.Ordinal);
        Assert.Matches(@"^\[\s*\d+\.\d{6}\] ", output);
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Uptime_HasLoadAverageAndUptime(string variant, bool namelist)
    {
        var v = DumpLab.Variant(variant);
        using var doc = RunJson(v, namelist, "uptime");
        var root = doc.RootElement;
        var load = root.GetProperty("loadavg").EnumerateArray().Select(e => e.GetDouble()).ToList();
        Assert.Equal(3, load.Count);
        Assert.All(load, l => Assert.InRange(l, 0, 100));

        // The truth was recorded a little before the dump was taken.
        double truthUptime = v.Truth.GetProperty("uptimeSeconds").GetDouble();
        Assert.InRange(root.GetProperty("uptimeSeconds").GetDouble(), truthUptime - 1, truthUptime + 120);
        Assert.True(root.GetProperty("threads").GetInt32() > 0);
    }

    /// <summary>kmem's arguments for the variant's QEMU ELF dump: -N System.map when asked, --btf for a kernel built without BTF.</summary>
    internal static string[] Args(LabVariant v, bool namelist, params string[] command) =>
        [.. new[] { "-M", Path.Combine(v.Directory, Dump) }, .. namelist ? new[] { "-N", v.SystemMap } : [], .. v.Btf is null ? [] : new[] { "--btf", v.Btf }, .. command];

    private static JsonDocument RunJson(LabVariant v, bool namelist, params string[] command)
    {
        var (exit, output, error) = Run([.. Args(v, namelist, command), "--json"]);
        Assert.True(exit == 0, $"kmem exited {exit}: {error}");
        return JsonDocument.Parse(output);
    }

    private static (int Exit, string Out, string Err) Run(string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    /// <summary>A JSON string as kmem escapes it, back to text (lone surrogates kept).</summary>
    private static string Text(JsonElement e) => SurrogateEscape.ParseJsonLiteral(e.GetRawText());

    /// <summary>A JSON array of escaped strings, back to the exact bytes (surrogateescape undone).</summary>
    private static List<string> Strings(JsonElement array) =>
        array.EnumerateArray().Select(e => Convert.ToHexStringLower(SurrogateEscape.Encode(Text(e)))).ToList();

    /// <summary>/proc/PID/cmdline-style hex: NUL-terminated strings, as hex per string.</summary>
    private static List<string> SplitNul(string hex)
    {
        var bytes = Convert.FromHexString(hex);
        var result = new List<string>();
        int start = 0;
        for (int i = 0; i < bytes.Length; i++)
        {
            if (bytes[i] == 0)
            {
                result.Add(Convert.ToHexStringLower(bytes, start, i - start));
                start = i + 1;
            }
        }

        if (start < bytes.Length)
        {
            result.Add(Convert.ToHexStringLower(bytes, start, bytes.Length - start));
        }

        return result;
    }
}
