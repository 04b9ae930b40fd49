using System.Globalization;

namespace Kvm.IntegrationTests;

/// <summary>
/// Debian 12's arm64 kernel (6.1, 4 KiB granule, 48-bit VA, KASLR) dumped by QEMU, against the truth the guest
/// recorded: what is particular to arm64 (the layout from VMCOREINFO, text-only kallsyms, swap PTEs). Its config lacks
/// CONFIG_KALLSYMS_ALL, so the in-memory kallsyms hold text symbols only; the walkers of data structures take the
/// link-time System.map, displaced by VMCOREINFO's KERNELOFFSET. Processes, argv, swap, load, CPUs, files and the log
/// are checked on these dumps by the suites of every architecture (ProcessTests, SystemStateTests, CliLinuxTests…).
/// </summary>
public sealed class Arm64DumpTests
{
    private static LabVariant V => Arm64Lab.Variant!;

    private static KernelImage Open(string dump, bool systemMap = true) => LabImages.Open(V.Dump(dump), systemMap);

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

        // Text symbols only (no CONFIG_KALLSYMS_ALL): _text, before _stext on arm64, is not among them; init_task is
        // not either, but the scan of the image after _etext finds it (TextOnlyKallsymsTests).
        Assert.False(image.TryGetSymbol("_text", out _));
        Assert.Equal(NamelistKind.KernelMemory, image.Namelists[0].Kind);
        Assert.Equal("scan", image.GetSymbol("init_task").Source);
        Assert.True(image.Namelists[0].SymbolCount > 40000, $"{image.Namelists[0].SymbolCount} symbols");
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
}
