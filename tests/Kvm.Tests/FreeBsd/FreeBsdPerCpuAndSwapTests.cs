using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Kvm.Cli;
using Kvm.Native.Exports;
using Kvm.Native.Mirrors;
using Kvm.Testing;
using Kvm.Testing.FreeBsd;
using Kvm.Tests.Native;

namespace Kvm.Tests.FreeBsd;

/// <summary>
/// The rest of FreeBSD's libkvm system API on a FreeBSD minidump: DPCPU and VNET symbols in <c>kvm_nlist</c>
/// (<c>kvm_dpcpu_setcpu</c>), per-CPU allocations and <c>counter(9)</c> (<c>kvm_read_zpcpu</c>,
/// <c>kvm_counter_u64_fetch</c>), swap (<c>kvm_getswapinfo</c>) and CPU times (<c>kvm_getcptime</c>,
/// <c>kvm_getpcpu</c>'s <c>pc_cp_time</c>) — through the façade, the C exports and kmem. Every expected value comes from
/// what <see cref="FreeBsdPerCpu"/>, <see cref="FreeBsdSwap"/> and <see cref="FreeBsdSystemState"/> wrote.
/// </summary>
public sealed unsafe class FreeBsdPerCpuAndSwapTests
{
    private const int NotFound = 2, Invalid = 22;   // ENOENT, EINVAL
    private const int SwifDevPrefix = 0x2;

    /// <summary>A builder-made FreeBSD kernel with system state, per-CPU data and swap, as a minidump and its kernel, opened.</summary>
    private sealed class Opened : IDisposable
    {
        public Opened(FreeBsdPerCpu? perCpu = null, FreeBsdSwap? swap = null)
        {
            Kernel = new FreeBsdAmd64Kernel();
            State = Kernel.AddSystemState();
            PerCpu = perCpu ?? new FreeBsdPerCpu();
            PerCpu.Write(Kernel, State);
            Swap = swap ?? new FreeBsdSwap();
            Swap.Write(Kernel);
            Dump = new TempFile(Kernel.Minidump(), "vmcore.0");
            Elf = new TempFile(Kernel.KernelElf(), "kernel");
            Image = KernelImage.Open(Dump.Path, new KernelImageOptions { Namelists = [Elf.Path] });
        }

        public FreeBsdAmd64Kernel Kernel { get; }

        public FreeBsdSystemState State { get; }

        public FreeBsdPerCpu PerCpu { get; }

        public FreeBsdSwap Swap { get; }

        public TempFile Dump { get; }

        public TempFile Elf { get; }

        public KernelImage Image { get; }

        public nint OpenNative()
        {
            nint kd = NativeShim.OpenFiles(Elf.Path, Dump.Path, out string error);
            Assert.True(kd != 0, error);
            return kd;
        }

        public void Dispose()
        {
            Image.Dispose();
            Dump.Dispose();
            Elf.Dispose();
        }
    }

    // ---- DPCPU and VNET symbols -------------------------------------------------------------------------------------

    [Fact]
    public void LookupNamelist_FindsDpcpuVariablesUnderTheirPrefix_AtTheChosenCpusCopy()
    {
        using var o = new Opened();

        var entry = o.Image.LookupNamelist("pcputicks");
        Assert.Equal(("pcpu_entry_pcputicks", NamelistRelocation.DynamicPerCpu), (entry.Symbol!.Value.Name, entry.Relocation));
        Assert.Equal(FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(0), entry.Value);
        Assert.Equal(FreeBsdPerCpu.PcpuTicks(0), o.Image.Read<uint>(entry.Value));

        // One leading underscore is dropped before the prefix, as kvm_fdnlist_prefix does.
        Assert.Equal(entry.Value, o.Image.LookupNamelist("_pcputicks").Value);
        foreach (int cpu in new[] { 1, 3 })
        {
            ulong copy = o.Image.LookupNamelist("pcputicks", cpu).Value;
            Assert.Equal(FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(cpu), copy);
            Assert.Equal(FreeBsdPerCpu.PcpuTicks(cpu), o.Image.Read<uint>(copy));
        }

        // Found under its own name, a symbol keeps its value: libkvm relocates only what the prefixed retry found.
        var raw = o.Image.LookupNamelist("pcpu_entry_pcputicks");
        Assert.Equal((FreeBsdPerCpu.PcpuTicksAddress, NamelistRelocation.None), (raw.Value, raw.Relocation));

        // Outside [__start_set_pcpu, __stop_set_pcpu) a prefixed symbol is not relocated (_kvm_dpcpu_validaddr).
        var outside = o.Image.LookupNamelist("outside");
        Assert.Equal(("pcpu_entry_outside", FreeBsdPerCpu.OutsideSetAddress, NamelistRelocation.None), (outside.Symbol!.Value.Name, outside.Value, outside.Relocation));

        // CPU 2 is a hole (dpcpu_off[2] is 0): libkvm's offset for it is 0. Past mp_maxcpus is the caller's error.
        Assert.Equal(FreeBsdPerCpu.PcpuTicksAddress, o.Image.LookupNamelist("pcputicks", 2).Value);
        Assert.Throws<ArgumentOutOfRangeException>(() => o.Image.LookupNamelist("pcputicks", 4));

        var missing = o.Image.LookupNamelist("no_such_thing");
        Assert.Equal((false, 0UL, (string?)null), (missing.IsFound, missing.Value, missing.Note));
    }

    [Fact]
    public void LookupNamelist_FindsVnetVariables_InVnet0_OrInTheVnetOfAJailedProcess()
    {
        using var o = new Opened();

        var ifnet = o.Image.LookupNamelist("ifnet");
        Assert.Equal(("vnet_entry_ifnet", NamelistRelocation.VirtualNetwork), (ifnet.Symbol!.Value.Name, ifnet.Relocation));
        Assert.Equal(FreeBsdPerCpu.VnetIfnetAddress + FreeBsdPerCpu.VnetDataBase(jail: false), ifnet.Value);
        Assert.Equal(FreeBsdPerCpu.Ifnet(jail: false), o.Image.Read<ulong>(ifnet.Value));

        var jailed = o.Image.LookupNamelist("_ifnet", vnetPid: FreeBsdPerCpu.JailedPid);
        Assert.Equal(FreeBsdPerCpu.VnetIfnetAddress + FreeBsdPerCpu.VnetDataBase(jail: true), jailed.Value);
        Assert.Equal(FreeBsdPerCpu.Ifnet(jail: true), o.Image.Read<ulong>(jailed.Value));

        // A static VNET variable (a local symbol) is found too; pid 0 is proc0, as the default.
        Assert.Equal(FreeBsdPerCpu.VnetTcpStatAddress + FreeBsdPerCpu.VnetDataBase(jail: false), o.Image.LookupNamelist("tcpstat", vnetPid: 0).Value);
        Assert.Equal(FreeBsdPerCpu.VnetIfnetAddress, o.Image.LookupNamelist("vnet_entry_ifnet").Value);
        Assert.Contains("no such process", Assert.Throws<ArgumentException>(() => o.Image.LookupNamelist("ifnet", vnetPid: 999)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetPerCpuAddress_PlacesDpcpuVariablesWithDpcpuOff()
    {
        using var o = new Opened();

        Assert.Equal(FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(1), o.Image.GetPerCpuAddress("pcputicks", 1));
        Assert.Equal(FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(3), o.Image.GetPerCpuAddress("pcpu_entry_pcputicks", 3));
        Assert.Equal(FreeBsdPerCpu.PcpuRecordAddress + FreeBsdSystemState.Dynamic(0), o.Image.GetPerCpuAddress(FreeBsdPerCpu.PcpuRecordAddress, 0));
        Assert.Equal(Enumerable.Range(0, o.State.MaxCpus).Select(c => FreeBsdPerCpu.DpcpuOffset(o.State, c)), o.Image.GetPerCpuOffsets());
        Assert.True(o.Image.IsPerCpuSymbol(o.Image.GetSymbol("pcpu_entry_pcputicks")));
        Assert.False(o.Image.IsPerCpuSymbol(o.Image.GetSymbol("allproc")));

        Assert.Throws<ArgumentOutOfRangeException>(() => o.Image.GetPerCpuAddress("pcputicks", 4));
        Assert.Contains("CPU 2 not found", Assert.Throws<ArgumentException>(() => o.Image.GetPerCpuAddress("pcputicks", 2)).Message, StringComparison.Ordinal);
        Assert.Contains("not a DPCPU variable", Assert.Throws<ArgumentException>(() => o.Image.GetPerCpuAddress("allproc", 0)).Message, StringComparison.Ordinal);
        Assert.Equal("no_such_thing", Assert.Throws<SymbolNotFoundException>(() => o.Image.GetPerCpuAddress("no_such_thing", 0)).SymbolName);
    }

    [Theory]
    [InlineData("dpcpu_off")]
    [InlineData("__start_set_pcpu")]
    [InlineData("__stop_set_pcpu")]
    public void Dpcpu_WithASymbolMissing_NamesIt_AndKvmNlistSkipsThePrefix(string omitted)
    {
        using var o = new Opened(new FreeBsdPerCpu { OmitSymbols = [omitted] }, null);
        Assert.Equal(omitted, Assert.Throws<SymbolNotFoundException>(() => o.Image.GetPerCpuAddress("pcputicks", 0)).SymbolName);

        // libkvm tries the pcpu_entry_ prefix only once DPCPU is set up: the name is missing, and the note says why.
        var entry = o.Image.LookupNamelist("pcputicks");
        Assert.False(entry.IsFound);
        Assert.Contains($"symbol not found: {omitted}", entry.Note, StringComparison.Ordinal);
    }

    [Fact]
    public void Vnet_ThatCannotBeSelected_LeavesVnetNamesMissing_AndSaysWhy()
    {
        using (var o = new Opened(new FreeBsdPerCpu { CorruptVnetMagic = true }))
        {
            var entry = o.Image.LookupNamelist("ifnet");
            Assert.False(entry.IsFound);
            Assert.Contains("invalid vnet magic# 0x12345678", entry.Note, StringComparison.Ordinal);

            // The jail's vnet is sound.
            Assert.Equal(FreeBsdPerCpu.Ifnet(jail: true), o.Image.Read<ulong>(o.Image.LookupNamelist("ifnet", vnetPid: FreeBsdPerCpu.JailedPid).Value));
        }

        using (var o = new Opened(new FreeBsdPerCpu { NoPrison = true }))
        {
            Assert.Contains("no jail", o.Image.LookupNamelist("ifnet").Note, StringComparison.Ordinal);
        }

        using (var o = new Opened(new FreeBsdPerCpu { OmitSymbols = ["vnet_head"] }))
        {
            Assert.Contains("symbol not found: vnet_head", o.Image.LookupNamelist("ifnet").Note, StringComparison.Ordinal);
        }
    }

    // ---- Per-CPU allocations and counter(9) -------------------------------------------------------------------------

    [Fact]
    public void PerCpuAllocation_IsAtEachCpusZpcpuOffset_AndTheCounterSumsEveryCpuInAllCpus()
    {
        using var o = new Opened();
        foreach (int cpu in o.State.PresentCpus)
        {
            ulong copy = o.Image.GetPerCpuAllocationAddress(FreeBsdPerCpu.CounterOffset, cpu);
            Assert.Equal(FreeBsdPerCpu.CounterOffset + FreeBsdPerCpu.ZpcpuOffset(cpu), copy);
            Assert.Equal(FreeBsdPerCpu.CounterValue(cpu), o.Image.Read<ulong>(copy));
        }

        // CPU 2 has no struct pcpu; zpcpu_offset_cpu is linear in the CPU id.
        Assert.Equal(FreeBsdPerCpu.CounterOffset + FreeBsdPerCpu.ZpcpuOffset(2), o.Image.GetPerCpuAllocationAddress(FreeBsdPerCpu.CounterOffset, 2));

        // CPU 3 is beyond mp_ncpus (3): CPU_FOREACH counts it, as the kernel's counter_u64_fetch does.
        ulong expected = o.State.PresentCpus.Aggregate(0UL, (sum, cpu) => sum + FreeBsdPerCpu.CounterValue(cpu));
        Assert.Equal(expected, o.Image.ReadPerCpuCounter(FreeBsdPerCpu.CounterOffset));

        Assert.Throws<ArgumentOutOfRangeException>(() => o.Image.GetPerCpuAllocationAddress(FreeBsdPerCpu.CounterOffset, 4));
        Assert.Throws<MemoryFaultException>(() => o.Image.ReadPerCpuCounter(0x7000_0000_0000));
    }

    [Fact]
    public void PerCpuAllocation_WithoutPcZpcpuOffset_IsPageSizeTimesTheCpu_AsFreeBsd12()
    {
        using var o = new Opened(new FreeBsdPerCpu { WithZpcpuOffset = false });
        foreach (int cpu in o.State.PresentCpus)
        {
            Assert.Equal(FreeBsdPerCpu.OldCounterAddress + (0x1000UL * (ulong)cpu), o.Image.GetPerCpuAllocationAddress(FreeBsdPerCpu.OldCounterAddress, cpu));
        }

        Assert.Equal(o.State.PresentCpus.Aggregate(0UL, (sum, cpu) => sum + FreeBsdPerCpu.CounterValue(cpu)), o.Image.ReadPerCpuCounter(FreeBsdPerCpu.OldCounterAddress));
    }

    // ---- Swap -------------------------------------------------------------------------------------------------------

    [Fact]
    public void Swap_ListsSwtailq_SizesLessDmmax_NamesFromTheDevicesCdev()
    {
        using var o = new Opened();
        var swap = o.Image.GetSwapInfo();
        var devices = o.Swap.Devices;

        Assert.Equal(o.Image.PageSize, swap.PageSize);
        Assert.Equal(["/dev/ada0p3", "[NFS swap]", "/dev/md0"], swap.Areas.Select(a => a.Name));
        Assert.Equal(devices.Select(d => (long)(d.Blocks - o.Swap.DmMax)), swap.Areas.Select(a => a.TotalPages));
        Assert.Equal(devices.Select(d => (long)d.Used), swap.Areas.Select(a => a.UsedPages));
        Assert.Equal(devices.Select(d => (long)d.Blocks), swap.Areas.Select(a => a.MaxPages));
        Assert.Equal(devices.Select(d => (ulong)d.Flags), swap.Areas.Select(a => a.Flags));
        Assert.Equal([false, true, false], swap.Areas.Select(a => a.IsFile));
        Assert.Equal([true, true, false], swap.Areas.Select(a => a.IsWriteable));   // md0 is SW_CLOSING
        Assert.Equal([0, 1, 2], swap.Areas.Select(a => a.Type));
        Assert.Equal(devices.Sum(d => (long)(d.Blocks - o.Swap.DmMax)), swap.TotalPages);
    }

    [Fact]
    public void Swap_FromFreeBsd12sDmmax_AndWithAnUnreadableVnode_NamedAsDevnameNamesUnknownDevices()
    {
        using var o = new Opened(swap: new FreeBsdSwap { OldDmMax = true, DmMax = 16, UnreadableVnode = true });
        var swap = o.Image.GetSwapInfo();
        Assert.Equal("/dev/#C:0x5a", swap.Areas[0].Name);
        Assert.Equal(o.Swap.Devices.Select(d => (long)(d.Blocks - 16)), swap.Areas.Select(a => a.TotalPages));
    }

    [Fact]
    public void Swap_ALoopingSwtailq_IsAnErrorNamingIt()
    {
        using var o = new Opened(swap: new FreeBsdSwap { LoopBack = true });
        var e = Assert.Throws<CorruptImageException>(() => o.Image.GetSwapInfo());
        Assert.Contains("swtailq", e.Message, StringComparison.Ordinal);
        Assert.Contains($"loops back to struct swdevt 0x{FreeBsdSwap.Swdevt(0):x} after 3 entries", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Swap_WithoutSwtailqOrDmmax_NamesTheSymbol()
    {
        using (var o = new Opened(swap: new FreeBsdSwap { OmitSymbols = ["swtailq"] }))
        {
            Assert.Equal("swtailq", Assert.Throws<SymbolNotFoundException>(() => o.Image.GetSwapInfo()).SymbolName);
        }

        using (var o = new Opened(swap: new FreeBsdSwap { OmitSymbols = ["nsw_cluster_max"] }))
        {
            var e = Assert.Throws<SymbolNotFoundException>(() => o.Image.GetSwapInfo());
            Assert.Equal("dmmax", e.SymbolName);
            Assert.Contains("nsw_cluster_max", e.Message, StringComparison.Ordinal);
        }
    }

    // ---- CPU times --------------------------------------------------------------------------------------------------

    [Fact]
    public void CpuTimes_AreEachCpusPcCpTime_AndTheTotalTheirSum()
    {
        using var o = new Opened();
        var times = o.Image.GetCpuTimes();
        var present = o.State.PresentCpus;
        long[] sum = [.. Enumerable.Range(0, 5).Select(i => present.Sum(c => FreeBsdPerCpu.CpTime(c)[i]))];

        Assert.Equal((CpuIdleSource.StatClock, (long?)null, (string?)null, (int?)127), (times.IdleSource, times.MonotonicNanoseconds, times.Note, times.StatClockHz));
        Assert.Equal(Enumerable.Range(0, o.State.MaxCpus), times.Cpus.Select(c => c.Cpu));
        Assert.Equal(Enumerable.Range(0, o.State.MaxCpus).Select(present.Contains), times.Cpus.Select(c => c.IsOnline));
        foreach (var row in times.Cpus)
        {
            Assert.Equal(present.Contains(row.Cpu) ? FreeBsdPerCpu.CpTime(row.Cpu) : new long[5], row.ToCpuStates());
        }

        Assert.Equal(sum, times.GetCpuStates());
        Assert.Equal(-1, times.Total.Cpu);

        // Nanoseconds through stathz: ticks × 10^9 / 127, truncated; intr is Linux's irq.
        var cpu1 = times.Cpus[1];
        var ticks1 = FreeBsdPerCpu.CpTime(1);
        Assert.Equal((ulong)(ticks1[0] * 1_000_000_000L / 127), cpu1.User);
        Assert.Equal((ulong)(ticks1[3] * 1_000_000_000L / 127), cpu1.Irq);
        Assert.Equal((ulong)(ticks1[4] * 1_000_000_000L / 127), cpu1.Idle);
        Assert.Equal((0UL, 0UL, 0UL), (cpu1.IoWait, cpu1.SoftIrq, cpu1.Steal));
    }

    [Fact]
    public void CpuTimes_AGlobalCpTime_IsTheTotal_AndWithoutStathzTheNanosecondsAreZero()
    {
        long[] global = [11, 22, 33, 44, 55];
        using var o = new Opened(new FreeBsdPerCpu { GlobalCpTime = global, StatHz = null });
        var times = o.Image.GetCpuTimes();
        Assert.Equal(global, times.GetCpuStates());
        Assert.Equal(FreeBsdPerCpu.CpTime(0), times.Cpus[0].ToCpuStates());
        Assert.Equal((0UL, (int?)null), (times.Cpus[0].User, times.StatClockHz));
        Assert.Contains("stathz", times.Note, StringComparison.Ordinal);
    }

    [Fact]
    public void WithoutTheKernelsCtf_SwapCpuTimesAndCountersSaySo_WhileDpcpuNeedsNone()
    {
        var kernel = new FreeBsdAmd64Kernel();
        var state = kernel.AddSystemState();
        new FreeBsdPerCpu().Write(kernel, state);
        new FreeBsdSwap().Write(kernel);
        kernel.Ctf = null;
        using var dump = new TempFile(kernel.Minidump(), "vmcore.0");
        using var elf = new TempFile(kernel.KernelElf(), "kernel");
        using var image = KernelImage.Open(dump.Path, new KernelImageOptions { Namelists = [elf.Path] });
        foreach (var call in new Action[] { () => image.GetSwapInfo(), () => image.GetCpuTimes(), () => image.ReadPerCpuCounter(FreeBsdPerCpu.CounterOffset) })
        {
            var e = Assert.Throws<KvmException>(call);
            Assert.Equal(KvmErrorCode.KernelType, e.Code);
            Assert.Contains("CTF", e.Message, StringComparison.Ordinal);
        }

        // lib/libkvm reads DPCPU from symbols and words alone.
        Assert.Equal(FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(1), image.LookupNamelist("pcputicks", 1).Value);
    }

    // ---- The C exports ----------------------------------------------------------------------------------------------

    [Fact]
    public void CExports_Nlist_AndDpcpuSetcpu_FollowLibkvm()
    {
        using var o = new Opened();
        nint kd = o.OpenNative();
        try
        {
            delegate* unmanaged<nint, uint, int> setCpu = &KvmSystem.SetDpcpuCpu;
            var (missing, entries) = NativeShim.Nlist(kd, "_pcputicks", "ifnet", "pcpu_entry_pcputicks", "no_such_thing");
            Assert.Equal(1, missing);
            Assert.Equal(((byte)0x06, FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(0)), entries[0]);       // N_DATA: a static
            Assert.Equal(((byte)(0x06 | 0x01), FreeBsdPerCpu.VnetIfnetAddress + FreeBsdPerCpu.VnetDataBase(jail: false)), entries[1]);
            Assert.Equal(((byte)0x06, FreeBsdPerCpu.PcpuTicksAddress), entries[2]);
            Assert.Equal(((byte)0, 0UL), entries[3]);

            Assert.Equal(0, setCpu(kd, 3));
            Assert.Equal(FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(3), NativeShim.Nlist(kd, "pcputicks").Entries[0].Value);

            // kvm_pcpu.c _kvm_dpcpu_setcpu: a hole is "not found", past mp_maxcpus "too big"; the CPU stays 3.
            Assert.Equal((-1, NotFound), Call(() => setCpu(kd, 2)));
            Assert.Equal("kvm_dpcpu_setcpu: CPU 2 not found", NativeShim.GetError(kd));
            Assert.Equal((-1, Invalid), Call(() => setCpu(kd, 4)));
            Assert.Equal("kvm_dpcpu_setcpu: CPU 4 too big", NativeShim.GetError(kd));
            Assert.Equal(FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(3), NativeShim.Nlist(kd, "pcputicks").Entries[0].Value);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void CExports_DpcpuSetcpu_WithoutDpcpuOff_InitFails_AndNlistSaysWhy()
    {
        using var o = new Opened(new FreeBsdPerCpu { OmitSymbols = ["dpcpu_off"] });
        nint kd = o.OpenNative();
        try
        {
            delegate* unmanaged<nint, uint, int> setCpu = &KvmSystem.SetDpcpuCpu;
            Assert.Equal((-1, NotFound), Call(() => setCpu(kd, 0)));
            Assert.Equal("kvm_dpcpu_setcpu: init failed: symbol not found: dpcpu_off (needed for DPCPU variables (lib/libkvm/kvm_pcpu.c _kvm_dpcpu_init))", NativeShim.GetError(kd));

            var (missing, entries) = NativeShim.Nlist(kd, "pcputicks");
            Assert.Equal((1, ((byte)0, 0UL)), (missing, entries[0]));
            Assert.Contains("pcpu_entry_pcputicks exists but the DPCPU data is unavailable", NativeShim.GetError(kd), StringComparison.Ordinal);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void CExports_ReadZpcpu_AndCounterFetch()
    {
        using var o = new Opened();
        nint kd = o.OpenNative();
        try
        {
            delegate* unmanaged<nint, nuint, byte*, nuint, int, nint> zpcpu = &KvmSystem.ReadZpcpu;
            delegate* unmanaged<nint, nuint, ulong> counter = &KvmSystem.FetchCounter;
            ulong value;
            foreach (int cpu in o.State.PresentCpus)
            {
                Assert.Equal(8, zpcpu(kd, (nuint)FreeBsdPerCpu.CounterOffset, (byte*)&value, 8, cpu));
                Assert.Equal(FreeBsdPerCpu.CounterValue(cpu), value);
            }

            Assert.Equal(-1, zpcpu(kd, (nuint)FreeBsdPerCpu.CounterOffset, (byte*)&value, 8, 9));
            Assert.Contains("mp_maxcpus", NativeShim.GetError(kd), StringComparison.Ordinal);
            Assert.Equal(o.State.PresentCpus.Aggregate(0UL, (sum, cpu) => sum + FreeBsdPerCpu.CounterValue(cpu)), counter(kd, (nuint)FreeBsdPerCpu.CounterOffset));
            Assert.Equal(0UL, counter(kd, unchecked((nuint)0x7000_0000_0000)));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void CExports_Swapinfo_FillsRowsAndTheTotal_AsLibkvm()
    {
        using var o = new Opened();
        nint kd = o.OpenNative();
        try
        {
            delegate* unmanaged<nint, KvmSwap*, int, int, int> swapinfo = &KvmSystem.GetSwapInfo;
            var devices = o.Swap.Devices;
            var rows = new KvmSwap[4];
            fixed (KvmSwap* r = rows)
            {
                Assert.Equal(3, swapinfo(kd, r, 4, 0));
                Assert.Equal(["ada0p3", "[NFS swap]", "md0", ""], Names(r, 4));
                Assert.Equal(devices.Select(d => (uint)(d.Blocks - o.Swap.DmMax)).Append((uint)devices.Sum(d => d.Blocks - o.Swap.DmMax)), rows.Select(x => x.Total));
                Assert.Equal(devices.Select(d => (uint)d.Used).Append((uint)devices.Sum(d => d.Used)), rows.Select(x => x.Used));
                Assert.Equal(devices.Select(d => d.Flags).Append(0), rows.Select(x => x.Flags));

                Assert.Equal(3, swapinfo(kd, r, 4, SwifDevPrefix));
                Assert.Equal(["/dev/ada0p3", "[NFS swap]", "/dev/md0"], Names(r, 3));

                // Two rows: the first device, then the total over all three.
                Assert.Equal(1, swapinfo(kd, r, 2, 0));
                Assert.Equal(("ada0p3", "", (uint)devices.Sum(d => d.Blocks - o.Swap.DmMax)), (NativeShim.Text(r[0].DevName), NativeShim.Text(r[1].DevName), r[1].Total));
            }
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void CExports_Cptime_AndPcpusCpTime_AreTheKernelsTicks()
    {
        using var o = new Opened();
        nint kd = o.OpenNative();
        try
        {
            delegate* unmanaged<nint, long*, int> cptime = &KvmSystem.GetCpTime;
            delegate* unmanaged<nint, int, nint> pcpu = &KvmSystem.GetPcpu;
            var counters = new long[5];
            fixed (long* c = counters)
            {
                Assert.Equal(0, cptime(kd, c));
            }

            Assert.Equal(Enumerable.Range(0, 5).Select(i => o.State.PresentCpus.Sum(c => FreeBsdPerCpu.CpTime(c)[i])), counters);

            var p = (Pcpu*)pcpu(kd, 3);
            Assert.True(p is not null && (nint)p != -1);
            Assert.Equal(FreeBsdPerCpu.CpTime(3), new Span<long>(p->CpuTime, Pcpu.CpuStates).ToArray());
            NativeMemory.Free(p);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void CExports_ALoopingSwtailq_FailsWithItsName()
    {
        using var o = new Opened(swap: new FreeBsdSwap { LoopBack = true });
        nint kd = o.OpenNative();
        try
        {
            delegate* unmanaged<nint, KvmSwap*, int, int, int> swapinfo = &KvmSystem.GetSwapInfo;
            var rows = new KvmSwap[8];
            fixed (KvmSwap* r = rows)
            {
                Assert.Equal(-1, swapinfo(kd, r, 8, 0));
            }

            Assert.StartsWith("swtailq: the list of swap devices loops back", NativeShim.GetError(kd), StringComparison.Ordinal);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    // ---- kmem -------------------------------------------------------------------------------------------------------

    [Fact]
    public void Kmem_Nlist_ShowsTheCopyOfDpcpuAndVnetVariables()
    {
        using var o = new Opened();
        var (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "nlist", "pcputicks", "ifnet", "pcpu_entry_pcputicks", "-c", "1");
        Assert.True(exit == 0, err);
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal($"{FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(1):x16} d pcputicks (pcpu_entry_pcputicks of CPU 1)", lines[0]);
        Assert.Equal($"{FreeBsdPerCpu.VnetIfnetAddress + FreeBsdPerCpu.VnetDataBase(jail: false):x16} D ifnet (vnet_entry_ifnet of the vnet of proc0)", lines[1]);
        Assert.Equal($"{FreeBsdPerCpu.PcpuTicksAddress:x16} d pcpu_entry_pcputicks", lines[2]);

        (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "--json", "nlist", "ifnet", "--vnet-pid", "42");
        Assert.True(exit == 0, err);
        using var doc = JsonDocument.Parse(output);
        var entry = doc.RootElement[0];
        Assert.Equal($"0x{FreeBsdPerCpu.VnetIfnetAddress + FreeBsdPerCpu.VnetDataBase(jail: true):x}", entry.GetProperty("address").GetString());
        Assert.Equal(("vnet_entry_ifnet", "vnet"), (entry.GetProperty("symbol").GetString(), entry.GetProperty("relocation").GetString()));
    }

    [Fact]
    public void Kmem_Pcpu_Counter_Swapinfo_AndCptime()
    {
        using var o = new Opened();
        var (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "pcpu", "pcputicks");
        Assert.True(exit == 0, err);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries)[1..];
        Assert.Equal(o.State.PresentCpus.Select(c => $"{FreeBsdPerCpu.PcpuTicksAddress + FreeBsdSystemState.Dynamic(c):x16}"), rows.Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries)[^1]));

        (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "counter", $"0x{FreeBsdPerCpu.CounterOffset:x}");
        Assert.True(exit == 0, err);
        ulong total = o.State.PresentCpus.Aggregate(0UL, (sum, cpu) => sum + FreeBsdPerCpu.CounterValue(cpu));
        Assert.EndsWith($"total {total}\n", output, StringComparison.Ordinal);
        Assert.Contains(string.Create(CultureInfo.InvariantCulture, $"  3 {FreeBsdPerCpu.CounterOffset + FreeBsdPerCpu.ZpcpuOffset(3):x16} {FreeBsdPerCpu.CounterValue(3)}"), output, StringComparison.Ordinal);

        (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "swapinfo");
        Assert.True(exit == 0, err);
        long kib = (o.Swap.Devices[0].Blocks - o.Swap.DmMax) * 4L;
        Assert.Matches($@"(?m)^/dev/ada0p3\s+{kib}\s+{o.Swap.Devices[0].Used * 4}\s", output);
        Assert.Contains("[NFS swap]", output, StringComparison.Ordinal);

        (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "cptime");
        Assert.True(exit == 0, err);
        long[] sum = [.. Enumerable.Range(0, 5).Select(i => o.State.PresentCpus.Sum(c => FreeBsdPerCpu.CpTime(c)[i]))];
        Assert.Contains($"cp_time: user {sum[0]} nice {sum[1]} sys {sum[2]} intr {sum[3]} idle {sum[4]} (statclock ticks of 1/127 s)", output, StringComparison.Ordinal);
    }

    private static string[] Names(KvmSwap* rows, int count)
    {
        var names = new string[count];
        for (int i = 0; i < count; i++)
        {
            names[i] = NativeShim.Text(rows[i].DevName);
        }

        return names;
    }

    private static (int Result, int Errno) Call(Func<int> call)
    {
        Marshal.SetLastSystemError(0);
        int result = call();
        return (result, Marshal.GetLastSystemError());
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }
}
