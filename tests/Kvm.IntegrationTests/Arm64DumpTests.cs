using System.Globalization;
using System.Text;

namespace Kvm.IntegrationTests;

/// <summary>
/// Debian 12's arm64 kernel (6.1, 4 KiB granule, 48-bit VA, KASLR) dumped by QEMU, against the truth the guest
/// recorded. Its config lacks CONFIG_KALLSYMS_ALL, so the in-memory kallsyms hold text symbols only; the walkers of
/// data structures take the link-time System.map, displaced by VMCOREINFO's KERNELOFFSET.
/// </summary>
public sealed class Arm64DumpTests
{
    private static LabVariant V => Arm64Lab.Variant!;

    private static KernelImage Open(string dump, bool systemMap = true, bool swap = false) =>
        KernelImage.Open(Path.Combine(V.Directory, dump), new KernelImageOptions
        {
            Namelists = systemMap ? [V.SystemMap] : [],
            SwapFiles = swap ? [V.SwapImage] : [],
        });

    private static ulong Hex(string name) => V.Truth.GetProperty(name).GetString() is { } s && s.StartsWith('-')
        ? unchecked((ulong)-(long)ulong.Parse(s.AsSpan(3), NumberStyles.HexNumber, CultureInfo.InvariantCulture))
        : ulong.Parse(V.Truth.GetProperty(name).GetString()!.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    private static ulong Symbol(string name) => ulong.Parse(V.Truth.GetProperty("symbols").GetProperty(name).GetString()!, NumberStyles.HexNumber, CultureInfo.InvariantCulture);

    [Arm64LabTheory]
    [MemberData(nameof(Arm64Lab.Dumps), MemberType = typeof(Arm64Lab))]
    public void Layout_MatchesTheGuest(string dump)
    {
        using var image = Open(dump);
        var paging = V.Manifest.GetProperty("paging");

        Assert.Equal("aarch64", image.Architecture);
        Assert.Equal(PagingMode.Arm64, image.Layout.PagingMode);
        Assert.Equal(paging.GetProperty("pageSize").GetInt32(), image.Layout.GranuleSize);
        Assert.Equal(paging.GetProperty("vaBits").GetInt32(), image.Layout.VirtualAddressBits);
        Assert.Equal(paging.GetProperty("levels").GetInt32(), image.Layout.PagingLevels);
        Assert.Equal(V.KaslrOffset, image.KaslrOffset);
        Assert.Equal(Hex("pageOffset"), image.Layout.PageOffsetBase);
        Assert.Equal(unchecked((long)Hex("physOffset")), image.Layout.PhysBase);
        Assert.Equal(Hex("kimageVoffset"), image.Layout.KimageVoffset);
        Assert.Equal(V.ProcVersion.TrimEnd('\n'), image.ReadBanner().TrimEnd('\n'));
        Assert.Equal(Symbol("init_task"), image.GetSymbol("init_task").Address);
    }

    [Arm64LabFact]
    public void BareDump_ReadsKallsymsFromMemory()
    {
        using var image = Open("qemu.elf", systemMap: false);

        Assert.Null(image.KallsymsError);
        Assert.Equal(Symbol("_stext"), image.GetSymbol("_stext").Address);

        // Text symbols only (no CONFIG_KALLSYMS_ALL): _text, before _stext on arm64, is not among them.
        Assert.False(image.TryGetSymbol("_text", out _));
        Assert.False(image.TryGetSymbol("init_task", out _));
        Assert.True(image.Namelists[0].SymbolCount > 40000, $"{image.Namelists[0].SymbolCount} symbols");
    }

    [Arm64LabTheory]
    [MemberData(nameof(Arm64Lab.Dumps), MemberType = typeof(Arm64Lab))]
    public void Processes_AndTheirArguments_MatchTheTruth(string dump)
    {
        using var image = Open(dump, swap: true);
        var list = image.GetProcesses();
        Assert.Empty(list.Errors);
        var byPid = list.Processes.ToDictionary(p => p.Pid);
        foreach (var t in V.Truth.GetProperty("processes").EnumerateArray())
        {
            int pid = t.GetProperty("pid").GetInt32();
            var p = byPid[pid];
            Assert.Equal(t.GetProperty("ppid").GetInt32(), p.ParentPid);
            Assert.Equal(t.GetProperty("uid")[0].GetUInt32(), p.Uid);
            if (!t.GetProperty("kernelThread").GetBoolean())
            {
                // argv through the process's own arm64 page tables; swapped-out pages from the swap image.
                string[] expected = Encoding.UTF8.GetString(Convert.FromHexString(t.GetProperty("cmdlineHex").GetString()!)).TrimEnd('\0').Split('\0');
                var args = image.GetArguments(p);
                Assert.True(args.IsComplete, $"pid {pid}: {args.Reason}");
                Assert.Equal(expected, args.Strings);
            }
        }
    }

    [Arm64LabFact]
    public void SwappedOutPages_DecodeAsTheGuestsPagemapSays()
    {
        // The guest's /proc/PID/pagemap gave each swapped page's area and slot; the PTE in the dump must say the same.
        using var image = Open("qemu.elf");
        var format = Kvm.Linux.SwapEntryFormat.For(PagingMode.Arm64, image.Release);
        var pages = V.Truth.GetProperty("swappedPages").EnumerateArray().ToList();
        Assert.NotEmpty(pages);
        foreach (var s in pages)
        {
            var p = image.FindProcess(s.GetProperty("pid").GetInt32())!;
            ulong root = image.Translate(p.PageTableAddress).PhysicalAddress!.Value;
            ulong va = ulong.Parse(s.GetProperty("va").GetString()!.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            var fault = image.Translate(va, root).Fault;
            Assert.Equal(TranslationFaultKind.SwapEntry, fault?.Kind);
            Assert.Equal(s.GetProperty("swapType").GetInt32(), format.Type(fault!.Entry));
            Assert.Equal(s.GetProperty("swapOffset").GetUInt64(), format.Offset(fault.Entry));
        }
    }

    [Arm64LabFact]
    public void SystemState_MatchesTheTruth()
    {
        using var image = Open("qemu.elf");

        var cpus = image.GetCpus();
        Assert.Equal(V.Manifest.GetProperty("qemu").GetProperty("smp").GetInt32(), cpus.OnlineCpus);
        Assert.All(cpus.Cpus, c => Assert.NotNull(c.CurrentPid));

        var swap = Assert.Single(image.GetSwapInfo().Areas);
        Assert.Equal(V.Truth.GetProperty("swaps")[0].GetProperty("sizeKiB").GetInt64(), swap.TotalPages * 4);

        var log = image.ReadKernelLog();
        Assert.Contains(log.Records, r => r.Text.Contains(V.Truth.GetProperty("kmsgMarker").GetString()!, StringComparison.Ordinal));

        double[] truthLoad = [.. V.Truth.GetProperty("loadavgAtStop").GetProperty("values").EnumerateArray().Select(x => x.GetDouble())];
        var load = image.GetLoadAverage();
        Assert.Equal(truthLoad[0], Math.Floor((load.One + (10.0 / 2048)) * 100) / 100, 2);
    }
}
