using Kvm.Cli;

namespace Kvm.IntegrationTests;

/// <summary>
/// Bare dumps of kernels whose kallsyms lists functions only (Debian's arm64 and 686 kernels, no CONFIG_KALLSYMS_ALL):
/// the BTF, <c>init_task</c>, the exported variables (__ksymtab) and the per-CPU ones (BTF .data..percpu) are found by
/// scanning the kernel image, at the addresses Debian's link-time System.map plus the guest's KASLR offset give; what
/// still needs a static variable says to give the System.map, and a kernel without BTF says to give --btf.
/// </summary>
public sealed class TextOnlyKallsymsTests
{
    /// <summary>The variants whose kallsyms lists functions only: (variant).</summary>
    public static IEnumerable<object[]> Variants() =>
        DumpLab.AllVariants.Where(v => !v.KallsymsListsData).Select(v => new object[] { v.Name });

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void BareDump_FindsInitTaskAndBtf_WhereTheSystemMapPutsThem(string variant)
    {
        var v = DumpLab.Variant(variant);
        foreach (var dump in v.Dumps.Where(d => d.SplitSet is null))
        {
            using var image = LabImages.Open(dump, withSystemMap: false);
            Assert.Equal(v.SymbolAddress("init_task"), image.GetSymbol("init_task").Address);
            var scan = Assert.Single(image.Namelists, n => n.Kind == NamelistKind.KernelScan);
            if (v.Btf is null)
            {
                // The kernel's own .BTF, exactly where the link-time map puts __start_BTF and __stop_BTF.
                Assert.True(scan.SymbolCount > 1000, $"{scan.SymbolCount} symbols found by the scan");
                Assert.Equal(v.MapSymbolAddress("__start_BTF"), image.GetSymbol("__start_BTF").Address);
                Assert.Equal(v.MapSymbolAddress("__stop_BTF"), image.GetSymbol("__stop_BTF").Address);
                Assert.StartsWith("kernel memory ", image.Types!.Source, StringComparison.Ordinal);
            }
            else
            {
                // No BTF in the image: init_task was recognized with the layout of the --btf file.
                Assert.False(image.TryGetSymbol("__start_BTF", out _));
            }
        }
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void BareDump_DataSymbolsBeyondTheScan_SayToGiveTheSystemMap(string variant)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(v.Dump("qemu.elf"), withSystemMap: false);

        // tk_core is static in kernel/time/timekeeping.c: not exported, not per-CPU.
        var e = Assert.Throws<SymbolNotFoundException>(() => image.GetClock());
        Assert.Equal("tk_core", e.SymbolName);
        Assert.Contains("kallsyms lists functions only", e.Message, StringComparison.Ordinal);
        Assert.Contains("System.map", e.Message, StringComparison.Ordinal);

        var output = new StringWriter();
        var error = new StringWriter();
        string[] btf = v.Btf is null ? [] : ["--btf", v.Btf];
        Assert.NotEqual(0, Program.Run(["-M", v.Dump("qemu.elf").Path, .. btf, "swapinfo"], output, error));
        Assert.Contains("symbol not found: swap_info (", error.ToString(), StringComparison.Ordinal);
        Assert.Contains("-N", error.ToString(), StringComparison.Ordinal);
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void BareDump_ExportedAndPerCpuVariables_AreWhereTheSystemMapPutsThem(string variant)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(v.Dump("qemu.elf"), withSystemMap: false);

        // From __ksymtab (EXPORT_SYMBOL data), and per-CPU variables placed by the BTF's .data..percpu offsets.
        string[] exported = ["avenrun", "nr_cpu_ids", "__per_cpu_offset", "__cpu_online_mask", "__cpu_possible_mask", "kernel_cpustat", "init_uts_ns", "jiffies"];
        string[] perCpu = v.Architecture == "aarch64" ? ["runqueues", "tick_cpu_sched", "__entry_task", "__per_cpu_start", "__per_cpu_end"] : ["runqueues", "tick_cpu_sched", "__per_cpu_start", "__per_cpu_end"];
        foreach (string name in exported.Concat(perCpu))
        {
            Assert.True(image.TryGetSymbol(name, out var symbol), $"{variant}: {name} not found");
            Assert.True(v.MapSymbolAddress(name) == symbol.Address, $"{variant}: {name} at 0x{symbol.Address:x} ({symbol.Source}), System.map + KASLR says 0x{v.MapSymbolAddress(name):x}");
        }
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void BareDump_LoadAverageAndCpus_MatchTheGuest(string variant)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(v.Dump("qemu.elf"), withSystemMap: false);
        var load = image.GetLoadAverage().ToArray();
        var atStop = v.Truth.GetProperty("loadavgAtStop").GetProperty("values").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        for (int i = 0; i < 3; i++)
        {
            Assert.True(Math.Abs(load[i] - atStop[i]) <= 0.01, $"{variant}: loadavg[{i}] {load[i]:F4}, guest printed {atStop[i]:F2}");
        }

        var cpus = image.GetCpus();
        Assert.Equal(v.Manifest.GetProperty("qemu").GetProperty("smp").GetInt32(), cpus.OnlineCpus);
        Assert.All(cpus.Cpus.Where(c => c.IsOnline), c => Assert.NotNull(c.CurrentPid));

        // NO_HZ seen from the CPUs' own tick_sched modes (tick_nohz_active is not exported); the clock is tk_core's,
        // which is static, so an idle period in progress is left out and said so.
        var times = image.GetCpuTimes();
        Assert.Equal(v.HasConfig("CONFIG_NO_HZ_COMMON=y") ? CpuIdleSource.TickSched : CpuIdleSource.CpuStat, times.IdleSource);
        using var mapped = LabImages.Open(v.Dump("qemu.elf"));
        var reference = mapped.GetCpuTimes();
        Assert.Equal(reference.Total.User, times.Total.User);
        Assert.Equal(reference.Total.System, times.Total.System);
        Assert.InRange(times.Total.Idle, reference.Total.Idle - (2 * 10_000_000UL * (ulong)times.Cpus.Count), reference.Total.Idle);
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void BareDump_KmemPs_ListsTheGuestsPids(string variant)
    {
        var v = DumpLab.Variant(variant);
        string[] btf = v.Btf is null ? [] : ["--btf", v.Btf];
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(0, Program.Run(["-M", v.Dump("qemu.elf").Path, .. btf, "ps"], output, error));
        var pids = output.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => int.Parse(l.TrimStart().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture)).ToHashSet();
        Assert.Subset(pids, TruthProcess.All(v).Select(t => t.Pid).ToHashSet());
    }

    [ForeignLabFact]
    public void BareDump_WithoutBtf_SaysToGiveOne()
    {
        var v = DumpLab.AllVariants.FirstOrDefault(x => x.Btf is not null);
        Assert.True(v is not null, "the lab's i386 variants (kernels built without BTF) carry pahole's vmlinux.btf");
        using var image = KernelImage.Open(v.Dump("qemu.elf").Path);
        Assert.Null(image.Types);
        Assert.Contains("--btf", image.TypeInformationError, StringComparison.Ordinal);
        var e = Assert.ThrowsAny<KvmException>(() => image.GetProcesses());
        Assert.Contains("CONFIG_DEBUG_INFO_BTF", e.Message, StringComparison.Ordinal);
    }
}
