using Kvm.Cli;

namespace Kvm.IntegrationTests;

/// <summary>
/// Bare dumps of kernels whose kallsyms lists functions only (Debian's arm64 and 686 kernels, no CONFIG_KALLSYMS_ALL):
/// the BTF and <c>init_task</c> are found by scanning the kernel image, at the addresses Debian's link-time System.map
/// plus the guest's KASLR offset give (truth.json "symbols"); what still needs a data symbol says to give the
/// System.map, and a kernel without BTF says to give --btf.
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
                Assert.Equal(3, scan.SymbolCount);
                Assert.Equal(v.MapSymbolAddress("__start_BTF"), image.GetSymbol("__start_BTF").Address);
                Assert.Equal(v.MapSymbolAddress("__stop_BTF"), image.GetSymbol("__stop_BTF").Address);
                Assert.StartsWith("kernel memory ", image.Types!.Source, StringComparison.Ordinal);
            }
            else
            {
                // No BTF in the image: init_task was recognized with the layout of the --btf file.
                Assert.Equal(1, scan.SymbolCount);
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
        var e = Assert.Throws<SymbolNotFoundException>(() => image.GetLoadAverage());
        Assert.Equal("avenrun", e.SymbolName);
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
