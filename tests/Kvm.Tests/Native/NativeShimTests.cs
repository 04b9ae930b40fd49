using System.Runtime.InteropServices;
using Kvm.Native.Exports;
using Kvm.Native.Mirrors;
using Kvm.Testing;
using Kvm.Testing.FakeKernel;
using Kvm.Tests.Linux;

namespace Kvm.Tests.Native;

/// <summary>The fake system written to an ELF core and a System.map, for opening through the C exports.</summary>
public sealed class NativeFakeSystemFixture : IDisposable
{
    public NativeFakeSystemFixture()
    {
        System = new FakeSystem();
        Core = new TempFile(System.K.ToElf());
        Map = new TempFile(System.K.SystemMap);
    }

    public FakeSystem System { get; }

    public TempFile Core { get; }

    public TempFile Map { get; }

    public void Dispose()
    {
        Core.Dispose();
        Map.Dispose();
    }
}

/// <summary>libkvm's C interface on <see cref="FakeSystem"/>, called in-process through the exports.</summary>
public sealed unsafe class NativeShimTests : IClassFixture<NativeFakeSystemFixture>
{
    private const int EINVAL = 22, ESRCH = 3;
    private const int KernProcAll = 0, KernProcPid = 1, KernProcTty = 4, KernProcUid = 5, KernProcProc = 8, KernProcIncThread = 0x10;
    private readonly NativeFakeSystemFixture _f;

    public NativeShimTests(NativeFakeSystemFixture fixture) => _f = fixture;

    private nint OpenFake(int flags = NativeShim.ORdOnly)
    {
        nint kd = NativeShim.OpenFiles(_f.Map.Path, _f.Core.Path, out string error, flags);
        Assert.True(kd != 0, error);
        Assert.Equal("", error);
        return kd;
    }

    [Fact]
    public void Close_NullOrClosedDescriptor_ReturnsMinusOneWithEinval()
    {
        Marshal.SetLastSystemError(0);
        Assert.Equal(-1, NativeShim.Close(0));
        Assert.Equal(EINVAL, Marshal.GetLastSystemError());

        nint kd = OpenFake();
        Assert.Equal(0, NativeShim.Close(kd));
        Marshal.SetLastSystemError(0);
        Assert.Equal(-1, NativeShim.Close(kd));
        Assert.Equal(EINVAL, Marshal.GetLastSystemError());
    }

    [Fact]
    public void GetError_Null_IsEmptyNotNull()
    {
        Assert.Equal("", NativeShim.GetError(0));
        Assert.Equal("", NativeShim.GetError(12345));
    }

    [Fact]
    public void OpenFiles_NonexistentCore_FailsWithFileNameAndStrerror()
    {
        nint kd = NativeShim.OpenFiles(null, "/nonexistent", out string error);

        Assert.Equal(0, kd);
        Assert.Equal("/nonexistent: No such file or directory", error);
    }

    [Fact]
    public void Open2_NullErrorBuffer_FailsWithoutWriting()
    {
        nint kd = NativeShim.Open2(null, "/nonexistent", out string error, null, withBuffer: false);

        Assert.Equal(0, kd);
        Assert.Equal("", error);
    }

    [Theory]
    [InlineData(NativeShim.OWrOnly)]
    [InlineData(NativeShim.ORdOnly | NativeShim.OCreat)]
    [InlineData(NativeShim.ORdWr | 0x80000)]
    public void Open_FlagsOtherThanReadOnlyOrReadWrite_AreRefused(int flags)
    {
        nint kd = NativeShim.OpenFiles(_f.Map.Path, _f.Core.Path, out string error, flags);

        Assert.Equal(0, kd);
        Assert.Equal("bad flags arg", error);
    }

    [Fact]
    public void Open_ExecFileNameOf1024Characters_IsTooLong()
    {
        nint kd = NativeShim.OpenFiles(new string('x', 1024), _f.Core.Path, out string error);

        Assert.Equal(0, kd);
        Assert.Equal("exec file name too long", error);
    }

    [Fact]
    public void Open_TextFileAsNamelist_FailsWithTheLoadersReason()
    {
        using var text = new TempFile("this is a text file\n"u8.ToArray());
        nint kd = NativeShim.OpenFiles(text.Path, _f.Core.Path, out string error);

        Assert.Equal(0, kd);
        Assert.Contains("no symbols found", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Nlist_FoundMissingAndUnderscored()
    {
        nint kd = OpenFake();
        try
        {
            ulong initTask = _f.System.K.InitTask;
            var (result, entries) = NativeShim.Nlist(kd, "init_task", "_init_task", "no_such_symbol");

            Assert.Equal(1, result);
            Assert.Equal(((byte)0x07, initTask), entries[0]); // D in System.map: N_DATA | N_EXT
            Assert.Equal(entries[0], entries[1]);
            Assert.Equal(((byte)0, 0UL), entries[2]);
            Assert.Equal((0, Array.Empty<(byte, ulong)>()), (NativeShim.Nlist(kd).Result, NativeShim.Nlist(kd).Entries));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void Nlist_PerCpuVariable_IsTheSelectedCpusCopy()
    {
        nint kd = OpenFake();
        try
        {
            delegate* unmanaged<nint, uint, int> setCpu = &KvmSystem.SetDpcpuCpu;
            ulong offset = FakeKernelObjects.RunqueuesPerCpu;

            Assert.Equal(offset + _f.System.PerCpuOffsets[0], NativeShim.Nlist(kd, "runqueues").Entries[0].Value);
            Assert.Equal(0, setCpu(kd, 3));
            Assert.Equal(offset + _f.System.PerCpuOffsets[3], NativeShim.Nlist(kd, "runqueues").Entries[0].Value);
            Assert.Equal(-1, setCpu(kd, 4));
            Assert.Equal("kvm_dpcpu_setcpu: CPU 4 too big", NativeShim.GetError(kd));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void Read_MappedUnmappedAndCrossing_FollowFreeBsd()
    {
        nint kd = OpenFake();
        try
        {
            var image = _f.System.K;
            var buffer = new byte[8];

            Assert.Equal(8, NativeShim.Read(kd, image.InitTask, buffer));
            Assert.Equal(0, NativeShim.Read(kd, image.InitTask, []));

            // An address that was never mapped: -1 and "invalid address (0x…)".
            const ulong Unmapped = 0xffff_c900_dead_0000;
            Assert.Equal(-1, NativeShim.Read(kd, Unmapped, buffer));
            Assert.StartsWith($"invalid address (0x{Unmapped:x})", NativeShim.GetError(kd), StringComparison.Ordinal);

            // A successful call leaves the error text alone.
            Assert.Equal(8, NativeShim.Read(kd, image.InitTask, buffer));
            Assert.StartsWith($"invalid address (0x{Unmapped:x})", NativeShim.GetError(kd), StringComparison.Ordinal);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void Read_RunningIntoAnUnmappedPage_IsMinusOneButKreadIsPartial()
    {
        nint kd = OpenFake();
        try
        {
            // systemd's argv starts 6 bytes before a page end in its own address space; the kernel's direct map of
            // its last page is followed by unmapped space at the end of the fake's RAM mapping.
            ulong lastMapped = FindLastMappedKernelPage(kd);
            var buffer = new byte[0x20];

            Assert.Equal(-1, NativeShim.Read(kd, lastMapped + 0xff0, buffer));
            Assert.Equal(0x10, NativeShim.KernelRead(kd, lastMapped + 0xff0, buffer));
            Assert.Equal(-1, NativeShim.KernelRead(kd, lastMapped + 0x1000, buffer));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void Write_ReadOnlyDescriptor_FailsAndSetsTheErrorText()
    {
        nint kd = OpenFake();
        try
        {
            Assert.Equal(-1, NativeShim.Write(kd, _f.System.K.InitTask, [1]));
            Assert.Contains("not opened for writing", NativeShim.GetError(kd), StringComparison.Ordinal);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void Write_ReadWriteDescriptor_WritesInPlace()
    {
        using var copy = new TempFile(File.ReadAllBytes(_f.Core.Path));
        nint kd = NativeShim.OpenFiles(_f.Map.Path, copy.Path, out string error, NativeShim.ORdWr);
        Assert.True(kd != 0, error);
        try
        {
            ulong address = _f.System.K.InitTask;
            Assert.Equal(4, NativeShim.Write(kd, address, [0xde, 0xad, 0xbe, 0xef]));
            var back = new byte[4];
            Assert.Equal(4, NativeShim.Read(kd, address, back));
            Assert.Equal(new byte[] { 0xde, 0xad, 0xbe, 0xef }, back);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void GetProcs_Proc_OneEntryPerProcessWithFreeBsdFields()
    {
        nint kd = OpenFake();
        try
        {
            var entries = NativeShim.GetProcs(kd, KernProcProc, 0, out int count, out _)!;

            Assert.Equal(8, count);
            Assert.All(entries, e => Assert.Equal(KinfoProc.Size, e.StructSize));
            Assert.Equal([0, 1, 2, 3, 100, 200, 300, 400], entries.Select(e => e.Pid));
            Assert.Equal([0, 0, 0, 2, 1, 100, 100, 100], entries.Select(e => e.ParentPid));
            Assert.Equal(["swapper/0", "systemd", "kthreadd", "kworker/0:0H", "bash", "python3", "defunct", "vim"], entries.Select(Comm));

            // States: R, S, S, I, S, S, Z, T as SRUN 2, SSLEEP 3, SZOMB 5, SSTOP 4; S and I sleep interruptibly.
            Assert.Equal(new byte[] { 2, 3, 3, 3, 3, 3, 5, 4 }, entries.Select(e => e.Stat));
            Assert.Equal([0L, 8, 8, 8, 8, 8, 0, 0], entries.Select(e => e.ThreadFlags));

            var bash = entries[4];
            Assert.Equal(FakeSystem.TtyNr, bash.TtyDevice);
            Assert.Equal(0x2L, bash.Flag & 0x2); // P_CONTROLT
            Assert.Equal(0x3L, bash.KiFlag);       // KI_CTTY | KI_SLEADER
            Assert.Equal(ulong.MaxValue, entries[1].TtyDevice);
            Assert.Equal(0x204L, entries[2].Flag & 0x204); // kthreadd: P_SYSTEM | P_KPROC

            // python3 is setuid: real 1000, effective 0; gid real 100, effective 50.
            var python = entries[5];
            Assert.Equal((1000u, 0u, 100u, 50u), (python.RealUid, python.EffectiveUid, python.RealGid, python.Groups[0]));
            Assert.Equal(3, python.ThreadCount);
            Assert.Equal(_f.System.Python, python.ProcessAddress);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void GetProcs_TtyGroupsSignalsFaultsAndKernelAddresses()
    {
        nint kd = OpenFake();
        try
        {
            var entries = NativeShim.GetProcs(kd, KernProcProc, 0, out _, out _)!.ToDictionary(e => e.Pid);

            // ki_tpgid / ki_tsid: pts300's foreground group 200 and session 100; −1 and 0 without a terminal.
            Assert.Equal((200, 100), (entries[100].TtyProcessGroupId, entries[100].TtySessionId));
            Assert.Equal((-1, 0), (entries[1].TtyProcessGroupId, entries[1].TtySessionId));

            // Linux signal n at bit n − 1 of FreeBSD's __bits[4]: python3 has 15 pending for the process (its own set
            // is empty), blocks 10 and 64, ignores 13 and 64, catches 15 and 33.
            var python = entries[200];
            Assert.Equal([0x4000u, 0u, 0u, 0u], Bits(python.SignalsPending));
            Assert.Equal([0x200u, 0x8000_0000u, 0u, 0u], Bits(python.SignalMask));
            Assert.Equal([0x1000u, 0x8000_0000u, 0u, 0u], Bits(python.SignalsIgnored));
            Assert.Equal([0x4000u, 1u, 0u, 0u], Bits(python.SignalsCaught));
            Assert.Equal([0xffff_ffffu, 0xffff_ffffu, 0u, 0u], Bits(entries[2].SignalsIgnored));

            // ru_minflt/ru_majflt as /proc/PID/stat: dead threads' plus every live thread's; the children's from the signal.
            Assert.Equal((1123L, 13L), (python.Usage.MinorFaults, python.Usage.MajorFaults));
            Assert.Equal((5L, 6L), (python.ChildUsage.MinorFaults, python.ChildUsage.MajorFaults));
            Assert.Equal((187L, 4L, 715L, 2L), (entries[1].Usage.MinorFaults, entries[1].Usage.MajorFaults, entries[1].ChildUsage.MinorFaults, entries[1].ChildUsage.MajorFaults));

            // ki_fd and ki_kstack are the kernel's pointers, as FreeBSD's are; ki_wchan stays 0.
            Assert.Equal((_f.System.BashFiles, FakeSystem.BashStack), (entries[100].FileDescriptors, entries[100].KernelStack));
            Assert.All(entries.Values, e => Assert.Equal(0UL, e.WaitChannel));

            // A thread's entry: its own pending set with the process's, its own mask and faults.
            var thread201 = NativeShim.GetProcs(kd, KernProcAll, 0, out _, out _)!.Single(e => e.ThreadId == 201);
            Assert.Equal([0x4200u, 0u, 0u, 0u], Bits(thread201.SignalsPending));
            Assert.Equal([0u, 0u, 0u, 0u], Bits(thread201.SignalMask));
            Assert.Equal((20L, 2L), (thread201.Usage.MinorFaults, thread201.Usage.MajorFaults));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void GetProcs_All_OneEntryPerThreadNamedAfterItsProcess()
    {
        nint kd = OpenFake();
        try
        {
            var entries = NativeShim.GetProcs(kd, KernProcAll, 0, out int count, out _)!;
            var python = entries.Where(e => e.Pid == 200).ToList();

            Assert.Equal([200, 201, 202], python.Select(e => e.ThreadId));
            Assert.All(python, e => Assert.Equal("python3", Comm(e)));
            Assert.All(python, e => Assert.Equal(_f.System.Python, e.ProcessAddress));
            Assert.Equal([_f.System.Python, _f.System.Thread201, _f.System.Thread202], python.Select(e => e.ThreadAddress));
            Assert.Equal(3, python[1].OnCpu); // thread 201 is current on CPU 3
            Assert.Equal(-1, python[2].OnCpu);
            Assert.Equal(10, count);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void GetProcs_Selectors()
    {
        nint kd = OpenFake();
        try
        {
            Assert.Equal([100], NativeShim.GetProcs(kd, KernProcPid, 100, out _, out _)!.Select(e => e.Pid));
            Assert.Equal([100, 200, 300, 400], NativeShim.GetProcs(kd, KernProcTty, (int)FakeSystem.TtyNr, out _, out _)!.Select(e => e.Pid));
            Assert.Equal([100, 300, 400], NativeShim.GetProcs(kd, KernProcUid, 1000, out _, out _)!.Select(e => e.Pid));
            Assert.Equal([200, 200, 200], NativeShim.GetProcs(kd, KernProcPid | KernProcIncThread, 200, out _, out _)!.Select(e => e.Pid));

            Assert.Null(NativeShim.GetProcs(kd, KernProcPid, 9999, out int none, out int errno));
            Assert.Equal((0, ESRCH), (none, errno));

            Assert.Null(NativeShim.GetProcs(kd, 77, 0, out _, out errno));
            Assert.Equal(EINVAL, errno);
            Assert.Equal("kvm_getprocs: invalid op 77", NativeShim.GetError(kd));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void GetArgv_ReadsThroughTheProcessPageTables_KernelThreadsGiveNull()
    {
        nint kd = OpenFake();
        try
        {
            Assert.Equal(["/sbin/init", "splash"], NativeShim.Strings(kd, 1, environment: false)!);
            Assert.Equal(["HOME=/", "TERM=linux"], NativeShim.Strings(kd, 1, environment: true)!);
            Assert.Null(NativeShim.Strings(kd, 2, environment: false));

            // nchr counts the NULs: 11 bytes hold "/sbin/init\0" only.
            Assert.Equal(["/sbin/init"], NativeShim.Strings(kd, 1, environment: false, maxBytes: 11)!);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void GetArgvAndGetEnvv_HaveSeparateBuffers()
    {
        nint kd = OpenFake();
        try
        {
            delegate* unmanaged<nint, int, int, int*, KinfoProc*> procs = &KvmProcs.GetProcs;
            delegate* unmanaged<nint, KinfoProc*, int, nint> argv = &KvmProcs.GetArgv;
            delegate* unmanaged<nint, KinfoProc*, int, nint> envv = &KvmProcs.GetEnvv;
            int n;
            KinfoProc* entries = procs(kd, KernProcPid, 1, &n);
            nint args = argv(kd, entries, 0);
            nint env = envv(kd, entries, 0);

            Assert.Equal(["/sbin/init", "splash"], NativeShim.Vector(args)!);
            Assert.Equal(["HOME=/", "TERM=linux"], NativeShim.Vector(env)!);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void SwapInfo_RowsTotalAndDevicePrefix()
    {
        nint kd = OpenFake();
        try
        {
            delegate* unmanaged<nint, KvmSwap*, int, int, int> f = &KvmSystem.GetSwapInfo;
            var rows = new KvmSwap[4];
            fixed (KvmSwap* r = rows)
            {
                Assert.Equal(2, f(kd, r, 4, 0));
                Assert.Equal(["/swapfile", "sda2", ""], Names(r, 3));
                Assert.Equal([262143u, 524287u, 786430u], rows.Take(3).Select(x => x.Total));
                Assert.Equal([1000u, 17u, 1017u], rows.Take(3).Select(x => x.Used));

                Assert.Equal(2, f(kd, r, 4, 0x2));
                Assert.Equal(["/swapfile", "/dev/sda2", ""], Names(r, 3));

                Assert.Equal(0, f(kd, r, 1, 0));
                Assert.Equal(786430u, rows[0].Total);
                Assert.Equal(-1, f(kd, r, 0, 0));
                Assert.Equal(0, f(0, null, 0, 0));
            }
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void LoadAverageAndCpus()
    {
        nint kd = OpenFake();
        try
        {
            delegate* unmanaged<nint, double*, int, int> loadavg = &KvmSystem.GetLoadAverage;
            delegate* unmanaged<nint, int> maxcpu = &KvmSystem.GetMaxCpu;
            delegate* unmanaged<nint, int> ncpus = &KvmSystem.GetCpuCount;
            delegate* unmanaged<nint, int, nint> pcpu = &KvmSystem.GetPcpu;
            var samples = new double[3];
            fixed (double* s = samples)
            {
                Assert.Equal(2, loadavg(kd, s, 2));
                Assert.Equal([1.5, 0.75, 0], samples);
                Assert.Equal(3, loadavg(kd, s, 10));
            }

            Assert.Equal((4, 3, 0), (maxcpu(kd), ncpus(kd), maxcpu(0)));
            var p = (Pcpu*)pcpu(kd, 3);
            Assert.True(p is not null && (nint)p != -1);
            Assert.Equal((_f.System.Thread201, 3u, 201, _f.System.PerCpuOffsets[3]), (p->CurrentThread, p->CpuId, p->CurrentPid, (ulong)p->Dynamic));
            Assert.Equal("python3", NativeShim.Text(p->CurrentCommand));

            // FakeSystem's /proc/stat line "cpu3 50 25 75 1200000 4025 0 500 …": user, nice, system, irq+softirq, idle+iowait.
            Assert.Equal([50L, 25, 75, 500, 1204025], new Span<long>(p->CpuTime, Pcpu.CpuStates).ToArray());
            NativeMemory.Free(p);
            Assert.Equal(0, pcpu(kd, 2)); // offline
            Assert.Equal(0, pcpu(kd, 4)); // beyond nr_cpu_ids
            Assert.Equal(0, pcpu(0, 0));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void GetCpTime_IsTheProcStatCpuLineInCpuStates()
    {
        nint kd = OpenFake();
        try
        {
            delegate* unmanaged<nint, long*, int> cptime = &KvmSystem.GetCpTime;
            var states = new long[5];
            fixed (long* s = states)
            {
                Assert.Equal(0, cptime(kd, s));
                Assert.Equal(0, cptime(0, null));
                Assert.Equal(-1, cptime(kd, null));
            }

            // "cpu  10850 225 3575 3636150 6875 51 525 12 1000 100" (FakeSystem): CP_INTR = irq + softirq, CP_IDLE = idle + iowait.
            Assert.Equal([10850L, 225, 3575, 576, 3643025], states);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void ReadZpcpuAndCounterFetch_AddTheCpuOffsets()
    {
        nint kd = OpenFake();
        try
        {
            delegate* unmanaged<nint, nuint, byte*, nuint, int, nint> zpcpu = &KvmSystem.ReadZpcpu;
            delegate* unmanaged<nint, nuint, ulong> counter = &KvmSystem.FetchCounter;

            // current_task (per-CPU offset 0x1f000) holds each CPU's current task: a per-CPU u64 to sum.
            const ulong CurrentTask = 0x1f000;
            ulong value;
            Assert.Equal(8, zpcpu(kd, (nuint)CurrentTask, (byte*)&value, 8, 3));
            Assert.Equal(_f.System.Thread201, value);
            ulong expected = unchecked(_f.System.K.InitTask + _f.System.Systemd + _f.System.Python + _f.System.Thread201);
            Assert.Equal(expected, counter(kd, (nuint)CurrentTask));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void SunProcesses_IterateRewindFindAndReadUserMemory()
    {
        nint kd = OpenFake();
        try
        {
            delegate* unmanaged<nint, SunProc*> next = &KvmSun.NextProc;
            delegate* unmanaged<nint, int> setproc = &KvmSun.SetProc;
            delegate* unmanaged<nint, int, SunProc*> getproc = &KvmSun.GetProc;
            delegate* unmanaged<nint, SunProc*, SunUser*> getu = &KvmSun.GetU;
            delegate* unmanaged<nint, SunProc*, SunUser*, byte***, byte***, int> getcmd = &KvmSun.GetCmd;
            delegate* unmanaged<nint, nuint, byte*, nuint, nint> uread = &KvmSun.UserRead;

            var pids = new List<int>();
            for (SunProc* p; (p = next(kd)) is not null;)
            {
                pids.Add(p->Pid);
            }

            Assert.Equal([0, 1, 2, 3, 100, 200, 300, 400], pids);
            Assert.Equal(0, setproc(kd));
            Assert.Equal(0, next(kd)->Pid);

            SunProc* systemd = getproc(kd, 1);
            Assert.Equal((1, (byte)'S', (byte)1), (systemd->Pid, systemd->LinuxState, systemd->Stat));
            Assert.Equal(2, next(kd)->Pid); // getproc rewound and scanned: nextproc continues after it
            Assert.True(getproc(kd, 9999) is null);

            systemd = getproc(kd, 1);
            SunUser* u = getu(kd, systemd);
            Assert.True(u == &systemd->User);
            Assert.Equal(("systemd", "/sbin/init splash", 2), (NativeShim.Text(u->Command), NativeShim.Text(u->PsArgs), u->ArgumentCount));

            byte** argv;
            byte** envp;
            Assert.Equal(0, getcmd(kd, systemd, u, &argv, &envp));
            Assert.Equal(["/sbin/init", "splash"], NativeShim.Vector((nint)argv)!);
            Assert.Equal(["HOME=/", "TERM=linux"], NativeShim.Vector((nint)envp)!);
            NativeMemory.Free(argv);
            NativeMemory.Free(envp);

            var bytes = new byte[FakeSystem.SystemdArgs.Length];
            fixed (byte* b = bytes)
            {
                Assert.Equal(bytes.Length, uread(kd, unchecked((nuint)FakeSystem.SystemdArgStart), b, (nuint)bytes.Length));
            }

            Assert.Equal(FakeSystem.SystemdArgs, bytes);
            Assert.Equal(-1, getcmd(kd, getproc(kd, 2), null, &argv, null)); // kthreadd: a system process
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void Exports_OnAClosedDescriptor_FailWithEinvalNotACrash()
    {
        nint kd = OpenFake();
        NativeShim.Close(kd);

        Marshal.SetLastSystemError(0);
        Assert.Equal(-1, NativeShim.Read(kd, 0, new byte[8]));
        Assert.Equal(EINVAL, Marshal.GetLastSystemError());
        Assert.Null(NativeShim.GetProcs(kd, KernProcProc, 0, out int count, out int errno));
        Assert.Equal((0, EINVAL), (count, errno));
        Assert.Equal(-1, NativeShim.Nlist(kd, "init_task").Result);
    }

    [Fact]
    public void Open2_Resolver_IsConsultedFirstAndGivesDataExternSymbols()
    {
        nint kd = NativeShim.Open2(_f.Map.Path, _f.Core.Path, out string error, &Resolve);
        Assert.True(kd != 0, error);
        try
        {
            var (result, entries) = NativeShim.Nlist(kd, "resolver_only", "init_task", "nowhere");

            Assert.Equal(1, result);
            Assert.Equal(((byte)0x07, 0xffff_ffff_8100_1234UL), entries[0]);  // N_DATA | N_EXT, from the resolver
            Assert.Equal(_f.System.K.InitTask, entries[1].Value);             // the resolver said no: System.map
            Assert.Equal(((byte)0, 0UL), entries[2]);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void WalkPages_GivesTheFacadesPagesAsVersion2Records_AndStopsWhenTold()
    {
        nint kd = OpenFake();
        try
        {
            delegate* unmanaged<nint, delegate* unmanaged<KvmPage*, void*, int>, void*, int> walk = &KvmMemory.WalkPages;
            using var image = KernelImage.Open(_f.Core.Path, new KernelImageOptions { Namelists = [_f.Map.Path] });
            var expected = image.EnumeratePages().ToList();
            var seen = new WalkState { Limit = int.MaxValue };
            var handle = GCHandle.Alloc(seen);
            try
            {
                Assert.Equal(1, walk(kd, &Collect, (void*)GCHandle.ToIntPtr(handle)));
                Assert.Equal(expected.Count, seen.Pages.Count);
                Assert.All(seen.Pages, p => Assert.Equal(KvmPage.CurrentVersion, p.Version));
                Assert.Equal(
                    expected.Select(p => (p.PhysicalAddress, p.KernelMapAddress, p.DirectMapAddress, (byte)p.Protection, p.FileOffset, p.Length)),
                    seen.Pages.Select(p => (p.PhysicalAddress, p.KernelMapAddress, p.DirectMapAddress, p.Protection, p.Offset, (ulong)p.Length)));

                seen.Pages.Clear();
                seen.Limit = 3;
                Assert.Equal(0, walk(kd, &Collect, (void*)GCHandle.ToIntPtr(handle)));
                Assert.Equal(3, seen.Pages.Count);
                Assert.Equal(0, walk(kd, null, null));
            }
            finally
            {
                handle.Free();
            }
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [UnmanagedCallersOnly]
    private static int Collect(KvmPage* page, void* closure)
    {
        var state = (WalkState)GCHandle.FromIntPtr((nint)closure).Target!;
        state.Pages.Add(*page);
        return state.Pages.Count < state.Limit ? 1 : 0;
    }

    private sealed class WalkState
    {
        public List<KvmPage> Pages { get; } = [];

        public int Limit { get; set; }
    }

    [UnmanagedCallersOnly]
    private static int Resolve(byte* name, ulong* address)
    {
        if (Marshal.PtrToStringUTF8((nint)name) == "resolver_only")
        {
            *address = 0xffff_ffff_8100_1234;
            return 0;
        }

        return 1;
    }

    private static string Comm(KinfoProc e) => NativeShim.Text(e.Command);

    private static uint[] Bits(KvmSigset set) => [set.Bits[0], set.Bits[1], set.Bits[2], set.Bits[3]];

    private static string[] Names(KvmSwap* rows, int count) =>
        Enumerable.Range(0, count).Select(i => NativeShim.Text(rows[i].DevName)).ToArray();

    private ulong FindLastMappedKernelPage(nint kd)
    {
        // Walk up from init_task's page to the last page the kernel map translates.
        ulong page = _f.System.K.InitTask & ~0xfffUL;
        var one = new byte[1];
        while (NativeShim.Read(kd, page + 0x1000, one) == 1)
        {
            page += 0x1000;
        }

        return page;
    }
}
