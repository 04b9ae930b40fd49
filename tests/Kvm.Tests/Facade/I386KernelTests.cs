using Kvm.Testing;

namespace Kvm.Tests.Facade;

/// <summary>
/// A 32-bit x86 kernel end to end through the façade, PAE and 2-level: layout from VMCOREINFO, from QEMU's CR3/CR4
/// alone, and from a memory scan; a relocated kernel with a link-time System.map; processes, argv from high memory
/// (above 4 GiB with PAE) and a swapped-out page; the printk ring with 32-bit longs; the load average.
/// </summary>
public sealed class I386KernelTests
{
    public static TheoryData<bool> Modes => new() { true, false };

    [Theory]
    [MemberData(nameof(Modes))]
    public void Open_WithVmcoreInfo_FindsLayout(bool pae)
    {
        var k = new FakeI386Kernel(pae);
        using var core = new TempFile(k.ToElf(cpuNote: false));
        using var map = new TempFile(k.SystemMap);
        using var image = KernelImage.Open(core.Path, new KernelImageOptions { Namelists = [map.Path] });

        Assert.Equal("i386", image.Architecture);
        Assert.Equal(4, image.PointerSize);
        Assert.Equal(pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel, image.Layout.PagingMode);
        Assert.Equal(pae ? "i386, PAE, 3 levels" : "i386, 2 levels", image.Layout.PagingDescription);
        Assert.Equal(k.SwapperPgDirVa - FakeI386Kernel.PageOffset, image.Layout.PageTableRoot);
        Assert.Equal(FakeI386Kernel.PageOffset, image.Layout.PageOffsetBase);
        Assert.Equal((long)k.Relocation, image.KaslrOffset);
        Assert.Equal("vmcoreinfo", image.Layout.Method);
        Assert.Equal(FakeI386Kernel.Release, image.Release);

        // The link-time System.map is displaced by the relocation, per-CPU-free i386 style: everything above PAGE_OFFSET.
        Assert.Equal(k.TextVa + 0x100000, image.GetSymbol("linux_banner").Address);
        Assert.StartsWith("Linux version 6.1.0-fake-686-pae", image.ReadBanner(), StringComparison.Ordinal);
        Assert.Equal(k.InitTask, image.GetSymbol("init_task").Address);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Open_WithOnlyCpuNote_FindsLayoutAndRelocation(bool pae)
    {
        var k = new FakeI386Kernel(pae, relocation: 0x400000);
        using var core = new TempFile(k.ToElf(vmcoreInfoNote: false));
        using var map = new TempFile(k.SystemMap);
        using var image = KernelImage.Open(core.Path, new KernelImageOptions { Namelists = [map.Path] });

        Assert.Equal("cpu-cr3", image.Layout.Method);
        Assert.Equal(pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel, image.Layout.PagingMode);
        Assert.Equal(0x400000L, image.KaslrOffset);
        Assert.True(image.Layout.KaslrOffsetKnown);
        Assert.StartsWith("Linux version", image.ReadBanner(), StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Open_RawImage_FindsVmcoreInfoByScan(bool pae)
    {
        // A raw image is flat: the PAE fake's page above 4 GiB is left out of it.
        var k = new FakeI386Kernel(pae);
        var raw = new byte[0x5100000];
        foreach (var (start, data) in k.Memory.Runs().Where(r => r.Start + (ulong)r.Data.Length <= (ulong)raw.Length))
        {
            data.CopyTo(raw, (long)start);
        }

        using var core = new TempFile(raw);
        using var image = KernelImage.Open(core.Path);

        Assert.Equal("i386", image.Architecture);
        Assert.Equal(pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel, image.Layout.PagingMode);
        Assert.Equal(k.TextVa, image.GetSymbol("_stext").Address);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Processes_ArgvFromHighMemory_AndSwappedPage(bool pae)
    {
        var k = new FakeI386Kernel(pae);
        using var core = new TempFile(k.ToElf());
        using var map = new TempFile(k.SystemMap);
        using var image = KernelImage.Open(core.Path, new KernelImageOptions { Namelists = [map.Path] });

        var list = image.GetProcesses(ProcessQuery.Processes with { IncludeIdle = true });
        Assert.Empty(list.Errors);
        Assert.Equal([0, 1, 42], list.Processes.Select(p => p.Pid));
        var sh = list.Processes.Single(p => p.Pid == 42);
        Assert.Equal("sh", sh.Command);
        Assert.Equal(1, sh.ParentPid);
        Assert.Equal(1000u, sh.Uid);
        Assert.Equal(42, sh.ProcessGroupId);
        Assert.Equal(1, sh.SessionId);
        Assert.Equal(30, sh.ResidentPages);
        Assert.Equal(0x345UL * 4096, sh.VirtualSize);
        Assert.True(list.Processes.Single(p => p.Pid == 0).IsKernelThread);

        var init = image.GetArguments(list.Processes.Single(p => p.Pid == 1));
        Assert.Equal(["/sbin/init", "splash"], init.Strings);

        // sh's argv crosses from one high-memory page into the next (above 4 GiB with PAE).
        var argv = image.GetArguments(sh);
        Assert.Null(argv.Reason);
        Assert.Equal(["/bin/sh", "-c", "sleep 1000"], argv.Strings);
        Assert.Equal(k.ShArgPhysical + 0xff8, image.Translate(FakeI386Kernel.ShArgStart, UserRoot(image, sh)).PhysicalAddress);

        // Its environment runs into a swapped-out page: the area and offset come from the i386 swap PTE format.
        var env = image.GetEnvironment(sh);
        Assert.Contains($"swapped out: area {FakeI386Kernel.SwapType}, offset {FakeI386Kernel.SwapOffset}", env.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void KernelLog_LocklessRingWith32BitLongs_WrapsAt4GiB(bool pae)
    {
        var k = new FakeI386Kernel(pae);
        using var core = new TempFile(k.ToElf());
        using var image = KernelImage.Open(core.Path, new KernelImageOptions { Namelists = [new TempFile(k.SystemMap).Path] });

        var log = image.ReadKernelLog();

        Assert.Empty(log.Warnings);
        Assert.Equal(FakeI386Kernel.LogLines, log.Records.Select(r => r.Text));
        Assert.All(log.Records, r => Assert.Equal(6, r.Level));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void SignalsAndFaults_TwoWordSigsetsAnd32BitCounters(bool pae)
    {
        var k = new FakeI386Kernel(pae);
        using var core = new TempFile(k.ToElf());
        using var map = new TempFile(k.SystemMap);
        using var image = KernelImage.Open(core.Path, new KernelImageOptions { Namelists = [map.Path] });

        var sh = image.FindProcess(42)!;

        // sigset_t is unsigned long sig[2]: signal 33 is bit 0 of the second word, signal 64 its top bit.
        Assert.Equal((1UL, 1UL << 32), (sh.IgnoredSignals, sh.CaughtSignals));
        Assert.Equal(0x8000_0000_0000_0001UL, sh.BlockedSignals);
        Assert.Equal((1UL << 32, 1UL << 14), (sh.PendingSignals, sh.SharedPendingSignals));

        // unsigned long counters are 4 bytes: min_flt is not read together with the maj_flt after it.
        Assert.Equal((40UL + 7, 2UL + 1, 300UL, 4UL), (sh.MinorFaults, sh.MajorFaults, sh.ChildMinorFaults, sh.ChildMajorFaults));
        Assert.Equal((FakeI386Kernel.ShStack, FakeI386Kernel.ShFiles), ((uint)sh.KernelStackAddress, (uint)sh.FilesAddress));
        Assert.Equal(-1, sh.TtyProcessGroupId);
    }

    [Fact]
    public void LoadAverage_And_PerCpuOffsets_Are32Bit()
    {
        var k = new FakeI386Kernel();
        using var core = new TempFile(k.ToElf());
        using var map = new TempFile(k.SystemMap);
        using var image = KernelImage.Open(core.Path, new KernelImageOptions { Namelists = [map.Path] });

        var load = image.GetLoadAverage();
        Assert.Equal([0.5, 1.0, 2.0], load.ToArray());

        // CPU 1's offset is "negative": the sum wraps at 2^32 as the kernel's pointer arithmetic does.
        Assert.Equal(0xC1600000UL, image.GetPerCpuAddress(0xC0600000, 0));
        Assert.Equal(0xC0500000UL, image.GetPerCpuAddress(0xC0600000, 1));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Pages_KernelMapAboveLowMemory_DirectMapBelow(bool pae)
    {
        var k = new FakeI386Kernel(pae);
        using var core = new TempFile(k.ToElf());
        using var map = new TempFile(k.SystemMap);
        using var image = KernelImage.Open(core.Path, new KernelImageOptions { Namelists = [map.Path] });

        var pages = image.EnumeratePages().ToList();

        // The fake maps nothing above the direct map in the kernel's own table: every page is direct-map-only.
        Assert.All(pages, p => Assert.Equal(0UL, p.KernelMapAddress));
        var banner = pages.Single(p => p.PhysicalAddress == k.PhysicalLoad + 0x100000);
        Assert.Equal(k.TextVa + 0x100000, banner.DirectMapAddress);
        Assert.Equal(0UL, pages.Single(p => p.PhysicalAddress == k.ShArgPhysical).DirectMapAddress);
    }

    private static ulong UserRoot(KernelImage image, KernelProcess p)
    {
        Assert.True(image.TryTranslate(p.PageTableAddress, out ulong root));
        return root;
    }
}
