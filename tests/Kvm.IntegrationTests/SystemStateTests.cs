using System.Globalization;

namespace Kvm.IntegrationTests;

/// <summary>
/// Issue 4 on real dumps of every architecture: load average, uptime, swap areas, open files, the kernel log and CPUs
/// against what the guest recorded, with the variant's System.map and with no namelist at all (open files and the log
/// on every bare dump; the rest where the kernel's kallsyms lists data symbols).
/// </summary>
public sealed class SystemStateTests
{
    public static IEnumerable<object[]> DumpsBothWays() => DumpLab.AllDumpsBothWays();

    [LabTheory]
    [MemberData(nameof(DumpsBothWays))]
    public void LoadAverage_IsWithinAHundredthOfTheGuestAtStop(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var load = image.GetLoadAverage().ToArray();
        var atStop = v.Truth.GetProperty("loadavgAtStop").GetProperty("values").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(Math.Abs(load[i] - atStop[i]) <= 0.01, $"{variant}/{name}: loadavg[{i}] {load[i]:F4}, guest printed {atStop[i]:F2}");
        }
    }

    [LabTheory]
    [MemberData(nameof(DumpsBothWays))]
    public void Uptime_LiesBetweenTheGuestSnapshotAndTheStop(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var clock = image.GetClock();
        double before = v.Truth.GetProperty("uptimeSeconds").GetDouble();
        double atStop = v.Truth.GetProperty("loadavgAtStop").GetProperty("uptimeSeconds").GetDouble();

        // The guest printed its uptime every ~100 ms until the host stopped it; the timekeeper advances at each tick
        // (Debian's HZ=250: 4 ms), so the dump's uptime is at or just after the last line printed.
        Assert.InRange(clock.Uptime.TotalSeconds, Math.Max(before, atStop - 0.05), atStop + 0.5);
        Assert.NotNull(clock.BootTime);
    }

    [LabTheory]
    [MemberData(nameof(DumpsBothWays))]
    public void SwapAreas_EqualProcSwaps(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var swap = image.GetSwapInfo();
        var truth = v.Truth.GetProperty("swaps").EnumerateArray().ToList();
        Assert.Equal(truth.Count, swap.Areas.Count);
        for (int i = 0; i < truth.Count; i++)
        {
            var a = swap.Areas[i];
            Assert.Equal(truth[i].GetProperty("filename").GetString(), a.Name);
            Assert.Equal(truth[i].GetProperty("sizeKiB").GetInt64(), a.TotalPages * swap.PageSize / 1024);
            Assert.Equal(truth[i].GetProperty("priority").GetInt32(), a.Priority);
            Assert.Equal(truth[i].GetProperty("type").GetString() == "file", a.IsFile);

            // Pages in use can only grow between the snapshot and the stop (nothing swaps in while the guest idles).
            Assert.InRange(a.UsedPages * swap.PageSize / 1024, truth[i].GetProperty("usedKiB").GetInt64(), a.TotalPages * swap.PageSize / 1024);
        }

        Assert.Equal(truth.Sum(t => t.GetProperty("sizeKiB").GetInt64()), swap.TotalPages * swap.PageSize / 1024);
    }

    [LabTheory]
    [MemberData(nameof(ProcessTests.DumpsBothWays), MemberType = typeof(ProcessTests))]
    public void OpenFiles_EqualProcFd(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var files = v.Truth.GetProperty("files");
        int pid = files.GetProperty("pid").GetInt32();
        var list = image.GetOpenFiles(pid);
        Assert.Empty(list.Errors);
        var truth = files.GetProperty("fds").EnumerateArray().ToList();
        Assert.Equal(truth.Select(f => f.GetProperty("fd").GetInt32()), list.Files.Select(f => f.Fd));
        foreach (var t in truth)
        {
            var f = list.Files.Single(x => x.Fd == t.GetProperty("fd").GetInt32());
            Assert.Equal(t.GetProperty("path").GetString(), f.Path);
            Assert.Equal(Convert.ToUInt32(t.GetProperty("flags").GetString(), 8), f.Flags);
            Assert.Equal(t.GetProperty("pos").GetInt64(), f.Position);
        }
    }

    [LabTheory]
    [MemberData(nameof(ProcessTests.DumpsBothWays), MemberType = typeof(ProcessTests))]
    public void KernelLog_HoldsEveryLineOfTheGuestDmesgInOrder(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var log = image.ReadKernelLog();
        Assert.Empty(log.Warnings);
        var ours = log.Records.SelectMany(r => r.Format().Split('\n')).ToList();
        var truth = v.Truth.GetProperty("dmesg").GetString()!.Split('\n').Where(l => l.Length > 0).ToList();
        int at = 0;
        foreach (var line in truth)
        {
            int found = ours.IndexOf(line, at);
            Assert.True(found >= 0, $"{variant}/{name}: guest dmesg line not found (in order) after our line {at}: {line}");
            at = found + 1;
        }

        string marker = v.Truth.GetProperty("kmsgMarker").GetString()!.Trim();
        Assert.Contains(log.Records, r => r.Text == marker);
    }

    [LabTheory]
    [MemberData(nameof(DumpsBothWays))]
    public void Cpus_MatchTheGuest(string variant, string name, bool systemMap)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, systemMap);
        var cpus = image.GetCpus();
        int guestCpus = v.Truth.GetProperty("meminfo").ValueKind == System.Text.Json.JsonValueKind.Undefined ? 0 : CountCpus(v);
        Assert.Equal(guestCpus, cpus.OnlineCpus);

        // Every online CPU ran some task; a per-CPU variable's address is the symbol plus that CPU's offset.
        Assert.All(cpus.Cpus.Where(c => c.IsOnline), c => Assert.NotNull(c.CurrentPid));
        ulong rq = image.GetSymbol("runqueues").Address;
        Assert.Equal(rq + cpus.Cpus[^1].PerCpuOffset, image.GetPerCpuAddress("runqueues", cpus.Cpus.Count - 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => image.GetPerCpuAddress("runqueues", cpus.MaxCpus));
    }

    private static int CountCpus(LabVariant v)
    {
        string path = Path.Combine(v.Directory, "manifest.json");
        var qemu = v.Manifest.GetProperty("qemu");
        return qemu.TryGetProperty("smp", out var smp) ? smp.GetInt32() : int.Parse(File.ReadAllText(path).Contains("\"smp\"", StringComparison.Ordinal) ? "0" : "2", CultureInfo.InvariantCulture);
    }
}

/// <summary>The BTF read from the dump's memory against the layouts the kernel's own compiler wrote into VMCOREINFO.</summary>
public sealed class DumpTypeTests
{
    [LabTheory]
    [MemberData(nameof(ProcessTests.DumpsBothWays), MemberType = typeof(ProcessTests))]
    public void BtfFromMemory_AgreesWithEveryVmcoreInfoOffsetAndSize(string variant, string name, bool systemMap)
    {
        using var image = LabImages.Open(variant, name, systemMap);
        var types = image.Types;
        Assert.True(types is not null, image.TypeInformationError);
        var v = DumpLab.Variant(variant);
        if (v.Btf is null)
        {
            Assert.StartsWith("kernel memory ", types!.Source, StringComparison.Ordinal);
        }
        else
        {
            // A kernel built without BTF (Debian's 686): pahole's encoding of its DWARF, checked below against the
            // layouts the kernel's own compiler wrote into VMCOREINFO.
            Assert.Contains(Path.GetFileName(v.Btf), types!.Source, StringComparison.Ordinal);
        }

        if (!systemMap)
        {
            Assert.Contains(image.Namelists, n => n.Kind == NamelistKind.KernelMemory && n.SymbolCount > 40_000);
        }

        if (image.VmcoreInfo is null)
        {
            // Only a dump without the VMCOREINFO note, opened with a System.map (the layout then needs no scan).
            Assert.False(v.HasVmcoreInfo && systemMap, "no VMCOREINFO");
            return;
        }

        int compared = 0;
        foreach (var (key, value) in image.VmcoreInfo.Values)
        {
            if (key.StartsWith("OFFSET(", StringComparison.Ordinal) && types.TryGetMember(key[7..^1], out var member))
            {
                Assert.True(long.Parse(value, System.Globalization.CultureInfo.InvariantCulture) == member.Offset, $"{key}={value}, BTF says {member.Offset}");
                compared++;
            }
            else if (key.StartsWith("SIZE(", StringComparison.Ordinal) && types.TryGetSize(key[5..^1], out long size))
            {
                Assert.True(long.Parse(value, System.Globalization.CultureInfo.InvariantCulture) == size, $"{key}={value}, BTF says {size}");
                compared++;
            }
        }

        Assert.True(compared >= 40, $"only {compared} VMCOREINFO layouts had a BTF counterpart");
    }
}
