using System.Text.RegularExpressions;

namespace Kvm.IntegrationTests.Native;

/// <summary>
/// The C test programs of tests/native, compiled against the installed kvm.h and libkvm.so, run on the lab's real dumps.
/// Each prints one line per check ("ok - …" / "not ok - …: detail") and exits non-zero when a check failed; the
/// assertion message lists the failing lines.
/// </summary>
public sealed partial class NativeLibraryTests
{
    /// <summary>FreeBSD's 13 cases: on an ELF core with System.map, a compressed kdump and a dump without VMCOREINFO with none.</summary>
    public static IEnumerable<object[]> CaseDumps() => Pick(("default", "qemu.elf", true), ("default", "qemu-kdump-zlib.kdump", false), ("novmcoreinfo", "qemu.elf", false));

    /// <summary>The 5.5 checks: ELF with System.map (and the truncated core), a -d 31 kdump, a 5-level-paging ELF.</summary>
    public static IEnumerable<object[]> CheckDumps() => Pick(("default", "qemu.elf", true), ("default", "mdf-c-d31.kdump", false), ("la57", "qemu.elf", false));

    /// <summary>The SunOS interface: dumps that keep user pages (argv and environment are compared byte for byte).</summary>
    public static IEnumerable<object[]> SunDumps() => Pick(("default", "qemu.elf", true), ("default", "qemu-kdump-zlib.kdump", false), ("nokaslr", "qemu.elf", false));

    /// <summary>Concurrent reads: an ELF core, a zlib kdump and an LZO -d 31 kdump.</summary>
    public static IEnumerable<object[]> ThreadDumps() => Pick(("default", "qemu.elf", false), ("default", "qemu-kdump-zlib.kdump", false), ("default", "mdf-l-d31.kdump", false));

    /// <summary>CPU times: an ELF core with System.map and a zlib kdump.</summary>
    public static IEnumerable<object[]> CpuTimeDumps() => Pick(("default", "qemu.elf", true), ("la57", "qemu-kdump-zlib.kdump", false));

    /// <summary>Page walks: an ELF core and a zlib kdump.</summary>
    public static IEnumerable<object[]> WalkDumps() => Pick(("default", "qemu.elf", true), ("default", "qemu-kdump-zlib.kdump", false));

    [NativeTheory]
    [MemberData(nameof(CaseDumps))]
    public void FreeBsdTestCases_Pass(string variant, string dump, bool systemMap) =>
        RunChecks("kvm_bsd_cases", variant, dump, systemMap, minimumChecks: 40);

    [NativeTheory]
    [MemberData(nameof(CheckDumps))]
    public void FreeBsdAcceptanceChecks_Pass(string variant, string dump, bool systemMap)
    {
        // The truncated copy of a kdump checks 5.5-9 once, with the ELF core that has System.map.
        string[] extra = systemMap ? ["-X", NativeToolchain.TruncatedCore] : [];
        RunChecks("kvm_checks", variant, dump, systemMap, minimumChecks: 70, extra);
    }

    [NativeTheory]
    [MemberData(nameof(SunDumps))]
    public void SunInterface_MatchesTheTruth(string variant, string dump, bool systemMap) =>
        RunChecks("kvm_sun", variant, dump, systemMap, minimumChecks: 150, ["-S", DumpLab.Variant(variant).SwapImage]);

    /// <summary>Without the swap image, the processes whose argument pages the guest swapped out fail, naming the swap slot.</summary>
    [NativeFact]
    public void SunInterface_WithoutTheSwapImage_SaysWhatIsSwappedOut() =>
        RunChecks("kvm_sun", "default", "qemu-kdump-zlib.kdump", systemMap: false, minimumChecks: 150);

    [NativeTheory]
    [MemberData(nameof(ThreadDumps))]
    public void ConcurrentReads_EqualSingleThreadedReads(string variant, string dump, bool systemMap) =>
        RunChecks("kvm_threads", variant, dump, systemMap, minimumChecks: 11);

    /// <summary>kvm_getcptime and pc_cp_time against the guest's last /proc/stat: an ELF core and a compressed kdump.</summary>
    [NativeTheory]
    [MemberData(nameof(CpuTimeDumps))]
    public void CpuTimes_MatchTheGuestsProcStat(string variant, string dump, bool systemMap) =>
        RunChecks("kvm_cptime", variant, dump, systemMap, minimumChecks: 7);

    /// <summary>kvm_walk_pages on an ELF core (kp_offset given) and a compressed kdump (kp_offset −1). Declared in kvm.h: this fails (to link) until libkvm.so defines it.</summary>
    [NativeTheory]
    [MemberData(nameof(WalkDumps))]
    public void PageWalk_ReportsConsistentPages(string variant, string dump, bool systemMap) =>
        RunChecks("kvm_walk", variant, dump, systemMap, minimumChecks: 5);

    /// <summary>Runs one C test program on a dump and asserts that every check passed.</summary>
    internal static void RunChecks(string program, string variant, string dump, bool systemMap, int minimumChecks, string[]? extra = null)
    {
        var d = DumpLab.Variant(variant).Dump(dump);
        string exe = NativeToolchain.Program(program);
        var args = new List<string> { "-M", d.Path, "-E", NativeToolchain.Expectations(d) };
        if (systemMap)
        {
            args.AddRange(["-N", d.Variant.SystemMap]);
        }

        args.AddRange(extra ?? []);
        var result = NativeToolchain.Run(exe, args);
        string what = $"{program} {string.Join(' ', args)}";
        Assert.True(result.ExitCode == 0 && !result.TimedOut, result.Describe(what));

        var summary = SummaryLine().Match(result.Stdout);
        Assert.True(summary.Success, $"{what}: no summary line\n{result.Describe(what)}");
        int checks = int.Parse(summary.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(checks >= minimumChecks, $"{what}: only {checks} checks ran (expected at least {minimumChecks})");
        Assert.Equal("0", summary.Groups[2].Value);
    }

    private static IEnumerable<object[]> Pick(params (string Variant, string Dump, bool SystemMap)[] wanted) =>
        wanted.Where(w => DumpLab.Variants.Any(v => v.Name == w.Variant && v.Dumps.Any(d => d.Name == w.Dump)))
            .Select(w => new object[] { w.Variant, w.Dump, w.SystemMap });

    [GeneratedRegex(@"^# (\d+) checks, (\d+) failed$", RegexOptions.Multiline)]
    private static partial Regex SummaryLine();
}
