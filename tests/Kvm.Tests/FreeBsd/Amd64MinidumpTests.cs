using System.Text;
using Kvm.Testing;
using Kvm.Testing.FreeBsd;

namespace Kvm.Tests.FreeBsd;

/// <summary>
/// amd64 minidumps of every version, made by <see cref="Amd64MinidumpBuilder"/> as the kernel writes them, read
/// through the façade: the kernel map through the page map, the direct map, faults, symbols and the page walk.
/// </summary>
public sealed class Amd64MinidumpTests
{
    private readonly FreeBsdAmd64Kernel _kernel = new();

    [Theory]
    [InlineData(1u)]
    [InlineData(2u)]
    [InlineData(3u)]
    public void EveryVersion_ReadsTheKernelMapTheKernelImageAndTheDirectMap(uint version)
    {
        using var dump = new TempFile(_kernel.Minidump(version), "vmcore.0");
        using var image = KernelImage.Open(dump.Path);

        Assert.Equal(KernelOperatingSystem.FreeBsd, image.OperatingSystem);
        Assert.Equal(DumpFormat.Minidump, image.Format);
        Assert.Equal("amd64", image.Architecture);
        Assert.Equal($"FreeBSD amd64 minidump v{version}", image.FormatDescription);
        Assert.Equal(PagingMode.X64FourLevel, image.Layout.PagingMode);
        Assert.Equal(0, image.KaslrOffset);

        var page = new byte[4096];
        for (int i = 0; i < FreeBsdAmd64Kernel.HighKmemPages; i++)
        {
            image.ReadExactly(FreeBsdAmd64Kernel.HighKmemBase + ((ulong)i * 4096), page);
            Assert.Equal(FreeBsdAmd64Kernel.Pattern(100 + i), page);
        }

        // Through the 2 MiB pages of the kernel image (v1 holds them as 512 PTEs each).
        Assert.Equal(FreeBsdAmd64Kernel.Osrelease, image.ReadCString(FreeBsdAmd64Kernel.OsreleaseAddress));
        if (version >= 2)
        {
            // v2 and v3 start the page map at VM_MIN_KERNEL_ADDRESS, below KERNBASE.
            for (int i = 0; i < FreeBsdAmd64Kernel.KmemPages; i++)
            {
                image.ReadExactly(FreeBsdAmd64Kernel.KmemBase + ((ulong)i * 4096), page);
                Assert.Equal(FreeBsdAmd64Kernel.Pattern(i), page);
            }

            Assert.Equal("two megabytes", image.ReadCString(FreeBsdAmd64Kernel.Kmem2M + 0x1234));
        }

        // The direct map is arithmetic: dmapbase + pa.
        Assert.Equal("uma page at 0x1200000", image.ReadCString(Amd64MinidumpBuilder.DmapMinAddress + 0x1200000));
        Assert.True(image.TryTranslate(Amd64MinidumpBuilder.DmapMinAddress + 0x1201abc, out ulong pa));
        Assert.Equal(0x1201abcUL, pa);
    }

    [Fact]
    public void Faults_SayWhyAnAddressIsNotInTheMinidump()
    {
        using var dump = new TempFile(_kernel.Minidump(), "vmcore.0");
        using var image = KernelImage.Open(dump.Path);
        var buffer = new byte[16];

        // Below both maps (user space): not minidumped.
        Assert.False(image.TryRead(0x400000, buffer, out int n, out var user));
        Assert.Equal(0, n);
        Assert.Equal(TranslationFaultKind.NotDumped, user!.Fault!.Kind);
        Assert.Contains("not minidumped", user.Message, StringComparison.Ordinal);

        // A hole in the kernel map: the PDE is not valid.
        Assert.False(image.TryRead(Amd64MinidumpBuilder.VmMinKernelAddress + 0x8000_0000, buffer, out _, out var hole));
        Assert.Equal(TranslationFaultKind.NotPresent, hole!.Fault!.Kind);

        // Mapped, but device memory the dump does not hold.
        Assert.False(image.TryRead(FreeBsdAmd64Kernel.DeviceVa, buffer, out _, out var device));
        Assert.Equal(MemoryFaultReason.NotInImage, device!.Reason);

        // RAM the minidump left out, through the direct map.
        Assert.False(image.TryRead(Amd64MinidumpBuilder.DmapMinAddress + 0x1400000, buffer, out _, out var excluded));
        Assert.Equal(MemoryFaultReason.Excluded, excluded!.Reason);

        // A read that runs from a mapped page into a hole stops at the hole.
        ulong last = FreeBsdAmd64Kernel.KmemBase + ((FreeBsdAmd64Kernel.KmemPages - 1) * 4096UL);
        var span = new byte[8192];
        Assert.False(image.TryRead(last, span, out int partial, out _));
        Assert.Equal(4096, partial);
    }

    [Fact]
    public void Describe_ShowsThePageMapStepThenThePageTablePage()
    {
        using var dump = new TempFile(_kernel.Minidump(), "vmcore.0");
        using var image = KernelImage.Open(dump.Path);

        var walk = image.Translate(FreeBsdAmd64Kernel.KmemBase + 0x2345);
        Assert.True(walk.Succeeded);
        Assert.Equal("minidump pmap", walk.Method);
        Assert.Equal(2, walk.Steps.Count);
        Assert.Equal("pmap", walk.Steps[0].Level);
        Assert.Equal("pte", walk.Steps[1].Level);
        Assert.True(walk.Steps[1].IsLeaf);

        var large = image.Translate(FreeBsdAmd64Kernel.Kmem2M + 5);
        Assert.Equal(1UL << 21, large.PageSize);
        Assert.Equal(FreeBsdAmd64Kernel.Kmem2MPhysical + 5, large.PhysicalAddress);
        Assert.Single(large.Steps);

        var dmap = image.Translate(Amd64MinidumpBuilder.DmapMinAddress + 0x5000);
        Assert.Equal("direct map", dmap.Method);
        Assert.Empty(dmap.Steps);
    }

    [Fact]
    public void WithoutANamelist_MemoryWorks_AndSymbolsComeFromTheKernelElf()
    {
        using var dump = new TempFile(_kernel.Minidump(), "vmcore.0");
        using (var bare = KernelImage.Open(dump.Path))
        {
            Assert.Empty(bare.Namelists);
            Assert.False(bare.TryGetSymbol("version", out _));
            Assert.Null(bare.Release);
        }

        using var kernel = new TempFile(_kernel.KernelElf(), "kernel");
        using var image = KernelImage.Open(dump.Path, new KernelImageOptions { Namelists = [kernel.Path] });
        Assert.Equal(NamelistKind.FreeBsdKernel, image.Namelists.Single().Kind);
        Assert.Equal(0, image.Namelists.Single().Displacement);
        Assert.Equal(FreeBsdAmd64Kernel.KernBase, image.GetSymbol("kernbase").Address);
        Assert.Equal(FreeBsdAmd64Kernel.KPml4PhysAddress, image.GetSymbol("_KPML4phys").Address);
        Assert.Equal(FreeBsdAmd64Kernel.Osrelease, image.Release);
        Assert.Equal(FreeBsdAmd64Kernel.Version, image.ReadBanner());
        Assert.Equal(123456UL, image.Read<ulong>(image.GetSymbol("ticks").Address));
    }

    [Fact]
    public void AnUnbrandedKernel_IsKnownByItsSymbols()
    {
        using var dump = new TempFile(_kernel.Minidump(), "vmcore.0");
        using var kernel = new TempFile(_kernel.KernelElf(brand: false), "kernel.debug");
        using var image = KernelImage.Open(dump.Path, new KernelImageOptions { Namelists = [kernel.Path] });
        Assert.Equal(NamelistKind.FreeBsdKernel, image.Namelists.Single().Kind);
    }

    [Fact]
    public void AResolver_IsConsultedFirst()
    {
        using var dump = new TempFile(_kernel.Minidump(), "vmcore.0");
        using var image = KernelImage.Open(dump.Path, new KernelImageOptions { Resolver = name => name == "osrelease" ? FreeBsdAmd64Kernel.OsreleaseAddress : null });
        Assert.Equal(FreeBsdAmd64Kernel.Osrelease, image.Release);
        Assert.Equal("resolver", image.GetSymbol("osrelease").Source);
    }

    [Fact]
    public void WithoutTheKernel_FreeBsdWalkersAskForItsCtf_AndLinuxOnlyWalkersRefuse()
    {
        using var dump = new TempFile(_kernel.Minidump(), "vmcore.0");
        using var image = KernelImage.Open(dump.Path);

        // Processes need the kernel's CTF, which is in the kernel file, not in the dump.
        var procs = Assert.Throws<KvmException>(() => image.GetProcesses());
        Assert.Equal(KvmErrorCode.KernelType, procs.Code);
        Assert.Contains("CTF", procs.Message, StringComparison.Ordinal);

        // Open files read Linux structures only.
        var files = Assert.Throws<KvmException>(() => image.GetOpenFiles());
        Assert.Equal(KvmErrorCode.NotSupported, files.Code);
        Assert.Contains("FreeBSD", files.Message, StringComparison.Ordinal);

        // DPCPU needs symbols only (FreeBsdPerCpuAndSwapTests has them); this kernel has none.
        Assert.Equal("__start_set_pcpu", Assert.Throws<SymbolNotFoundException>(() => image.GetPerCpuAddress(0x1000UL, 0)).SymbolName);

        // The FreeBSD walkers of system state need the CTF too (SystemStateTests reads them with it).
        foreach (var call in new Action[] { () => image.GetLoadAverage(), () => image.ReadKernelLog(), () => image.GetCpus(), () => image.GetClock(), () => image.GetSwapInfo(), () => image.GetCpuTimes() })
        {
            var e = Assert.Throws<KvmException>(call);
            Assert.Equal(KvmErrorCode.KernelType, e.Code);
            Assert.Contains("CTF", e.Message, StringComparison.Ordinal);
        }

        Assert.Null(image.Types);
        Assert.Contains("CTF", image.TypeInformationError, StringComparison.Ordinal);
        Assert.False(image.TryReadUtsname(out _));
    }

    [Fact]
    public void ALinuxNamelist_WithAFreeBsdDump_IsRefused()
    {
        using var dump = new TempFile(_kernel.Minidump(), "vmcore.0");
        using var map = new TempFile("ffffffff81000000 T _text\n");
        var e = Assert.Throws<KvmException>(() => KernelImage.Open(dump.Path, new KernelImageOptions { Namelists = [map.Path] }));
        Assert.Contains("FreeBSD dump", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MessageBuffer_IsStoredAfterTheHeader()
    {
        var bytes = _kernel.Minidump(configure: b => b.MessageBuffer = Encoding.ASCII.GetBytes("panic: here\n"));
        Assert.Equal("panic: here\n", Encoding.ASCII.GetString(bytes, 4096, 12));
    }
}
