using System.Runtime.InteropServices;
using System.Text;
using Kvm.Cli;
using Kvm.Native.Exports;
using Kvm.Native.Mirrors;
using Kvm.Testing;
using Kvm.Testing.FreeBsd;
using Kvm.Tests.Native;

namespace Kvm.Tests.FreeBsd;

/// <summary>
/// The FreeBSD walkers on a 32-bit kernel: a builder-made FreeBSD/i386 kernel (<see cref="FreeBsdI386Kernel"/>: 4-byte
/// pointers, longs and <c>time_t</c>) through its minidump, PAE and not, and its full dump. Every expected value comes
/// from what the builder wrote.
/// </summary>
public sealed unsafe class I386KernelWalkerTests
{
    private const int KernProcProc = 8;

    /// <summary>A dump and the ELF of a builder-made i386 kernel, opened.</summary>
    private sealed class Opened : IDisposable
    {
        public Opened(bool pae, bool fullDump = false)
        {
            Kernel = new FreeBsdI386Kernel(pae);
            Dump = new TempFile(fullDump ? Kernel.FullDump() : Kernel.Minidump(), fullDump ? "vmcore.1" : "vmcore.0");
            Elf = new TempFile(Kernel.KernelElf(), "kernel");
            Image = KernelImage.Open(Dump.Path, new KernelImageOptions { Namelists = [Elf.Path] });
        }

        public FreeBsdI386Kernel Kernel { get; }

        public FreeBsdSystemState State => Kernel.State;

        public TempFile Dump { get; }

        public TempFile Elf { get; }

        public KernelImage Image { get; }

        public void Dispose()
        {
            Image.Dispose();
            Dump.Dispose();
            Elf.Dispose();
        }
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(true, false)]
    [InlineData(false, true)]
    [InlineData(true, true)]
    public void GetProcesses_WalksAllproc_WithFourBytePointers(bool pae, bool fullDump)
    {
        using var o = new Opened(pae, fullDump);
        Assert.Equal((4, "i386"), (o.Image.PointerSize, o.Image.Architecture));
        Assert.Equal(pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel, o.Image.Layout.PagingMode);

        var list = o.Image.GetProcesses();
        Assert.Empty(list.Errors);
        Assert.Equal(o.Kernel.Processes.Processes.Select(p => p.Pid), list.Processes.Select(p => p.Pid));
        Assert.Equal(o.Kernel.Processes.Processes.Select(p => p.Address), list.Processes.Select(p => p.TaskAddress));
        Assert.Equal(["kernel", "init", "sh", "sleep"], list.Processes.Select(p => p.Command));
        Assert.Equal([0, 0, 1, 42], list.Processes.Select(p => p.ParentPid));

        var sh = list.Processes.Single(p => p.Pid == 42);
        Assert.Equal((42, 42), (sh.ProcessGroupId, sh.SessionId));
        Assert.Equal((1001u, 1001u, 2001u), (sh.Uid, sh.EffectiveUid, sh.Uids[2]));
        Assert.Equal((20u, 5u, 1020u), (sh.Gid, sh.EffectiveGid, sh.Gids[2]));
        Assert.Equal(('R', -5, 1), (sh.State, sh.Nice, sh.ThreadCount));
        Assert.Equal((120, 1), (sh.Priority, sh.LastCpu));
        Assert.NotEqual(0UL, sh.MmAddress);
        Assert.True(sh.MmAddress <= uint.MaxValue);

        var kernel = list.Processes[0];
        Assert.True(kernel.IsKernelThread);
        Assert.Equal((2, 'R'), (kernel.ThreadCount, kernel.State));
        Assert.Equal('S', list.Processes.Single(p => p.Pid == 1).State);
        Assert.Equal('Z', list.Processes.Single(p => p.Pid == 43).State);

        var threads = o.Image.GetProcesses(ProcessQuery.Threads).Processes;
        Assert.Equal([100000, 100001, 100002, 100042, 43], threads.Select(t => t.Pid));
        Assert.Equal(["swapper", "softclock", "init", "sh", "sleep"], threads.Select(t => t.Command));
        Assert.Equal(o.Kernel.Processes.Threads.Select(t => t.Address), threads.Take(4).Select(t => t.TaskAddress));
        Assert.Equal([42, 43], o.Image.GetProcesses(new ProcessQuery(ProcessSelector.RealUid, 1001)).Processes.Select(p => p.Pid));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Arguments_AreTheKernelsCopyInPArgs(bool pae)
    {
        using var o = new Opened(pae);
        var list = o.Image.GetProcesses().Processes;
        var sh = list.Single(p => p.Pid == 42);

        Assert.Equal(["-sh", "-i"], o.Image.GetArguments(sh).Strings);
        Assert.Equal(["-s"], o.Image.GetArguments(sh, maxBytes: 3).Strings);
        Assert.Equal(["/sbin/init"], o.Image.GetArguments(list.Single(p => p.Pid == 1)).Strings);
        Assert.Empty(o.Image.GetArguments(list[0]).Values);
        Assert.Equal((ulong)"-sh\0-i\0".Length, sh.ArgEnd - sh.ArgStart);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void KvmGetprocs_AndGetargv_ThroughTheCExports(bool pae)
    {
        using var o = new Opened(pae);
        nint kd = NativeShim.OpenFiles(o.Elf.Path, o.Dump.Path, out string error);
        Assert.True(kd != 0, error);
        try
        {
            var procs = NativeShim.GetProcs(kd, KernProcProc, 0, out int count, out _);
            Assert.NotNull(procs);
            Assert.Equal(4, count);
            Assert.Equal([0, 1, 42, 43], procs!.Select(p => p.Pid));
            var sh = procs[2];
            Assert.Equal("sh", NativeShim.Text(sh.Command));
            Assert.Equal((1, 42, 42), (sh.ParentPid, sh.ProcessGroupId, sh.SessionId));
            Assert.Equal((1001u, 1001u, 20u), (sh.EffectiveUid, sh.RealUid, sh.RealGid));
            Assert.Equal(["-sh", "-i"], NativeShim.Strings(kd, 42, environment: false)!);
            Assert.Equal(["/sbin/init"], NativeShim.Strings(kd, 1, environment: false)!);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void KmemPs_ListsTheProcesses()
    {
        using var o = new Opened(pae: true);
        var (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "ps", "-o", "pid,ppid,comm");
        Assert.True(exit == 0, err);
        var rows = output.TrimEnd('\n').Split('\n').Select(r => string.Join(' ', r.Split(' ', StringSplitOptions.RemoveEmptyEntries))).ToList();
        Assert.Equal(["PID PPID COMMAND", "0 0 kernel", "1 0 init", "42 1 sh", "43 42 sleep"], rows);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void KernelLog_IsTheMsgbuf_OfFourBytePointers(bool pae)
    {
        using var o = new Opened(pae);
        var log = o.Image.ReadKernelLog();

        Assert.Empty(log.Warnings);
        Assert.Equal($"FreeBSD msgbuf ({o.State.RingSize} bytes, not wrapped)", log.Layout);
        var lines = o.State.Text.Split('\n')[..^1];
        Assert.Equal(lines.Select(FreeBsdSystemState.StripPriority), log.Records.Select(r => r.Text));
        var offsets = lines.Select((_, i) => (ulong)lines.Take(i).Sum(l => Encoding.UTF8.GetByteCount(l) + 1));
        Assert.Equal(offsets, log.Records.Select(r => r.Sequence));

        var (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "dmesg");
        Assert.True(exit == 0, err);
        Assert.Equal("link up\nplain line\nwarning: hot\n", output);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void LoadAverage_IsThirtyTwoBitFixptOverAThirtyTwoBitLongFscale(bool pae)
    {
        using var o = new Opened(pae);
        Assert.Equal(o.State.Load.Select(v => v / 2048.0), o.Image.GetLoadAverage().ToArray());

        nint kd = NativeShim.OpenFiles(o.Elf.Path, o.Dump.Path, out string error);
        Assert.True(kd != 0, error);
        try
        {
            delegate* unmanaged<nint, double*, int, int> loadavg = &KvmSystem.GetLoadAverage;
            var samples = new double[3];
            fixed (double* s = samples)
            {
                Assert.Equal(3, loadavg(kd, s, 3));
            }

            Assert.Equal(o.State.Load.Select(v => v / 2048.0), samples);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void LoadAverage_WithoutTheGlobalFscale_IsTheStructsThirtyTwoBitLong()
    {
        var state = new FreeBsdSystemState { MaxCpus = FreeBsdI386Kernel.MaxCpu, PresentCpus = [0, 1], CurrentThreads = [3, 1], StructFscale = 1000, GlobalFscale = null };
        var kernel = new FreeBsdI386Kernel(pae: false, state);
        using var dump = new TempFile(kernel.Minidump(), "vmcore.0");
        using var elf = new TempFile(kernel.KernelElf(), "kernel");
        using var image = KernelImage.Open(dump.Path, new KernelImageOptions { Namelists = [elf.Path] });
        Assert.Equal(state.Load.Select(v => v / 1000.0), image.GetLoadAverage().ToArray());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Cpus_FollowCpuidToPcpu_OfFourBytePointers(bool pae)
    {
        using var o = new Opened(pae);
        var cpus = o.Image.GetCpus();
        var threads = o.Kernel.Processes.Threads;

        Assert.Equal((FreeBsdI386Kernel.MaxCpu, 2), (cpus.MaxCpus, cpus.OnlineCpus));
        Assert.Equal([0, 1], cpus.Cpus.Where(c => c.IsOnline).Select(c => c.Cpu));
        var cpu0 = cpus.Cpus[0];
        Assert.Equal((threads[3].Address, 42, "sh", threads[3].Tid), (cpu0.CurrentTask, cpu0.CurrentPid, cpu0.CurrentCommand, cpu0.CurrentThreadId));
        Assert.Equal(FreeBsdSystemState.Dynamic(0), cpu0.PerCpuOffset);
        var cpu1 = cpus.Cpus[1];
        Assert.Equal((threads[1].Address, 0, "kernel", threads[1].Tid), (cpu1.CurrentTask, cpu1.CurrentPid, cpu1.CurrentCommand, cpu1.CurrentThreadId));
        Assert.Equal(FreeBsdSystemState.Dynamic(1), cpu1.PerCpuOffset);

        nint kd = NativeShim.OpenFiles(o.Elf.Path, o.Dump.Path, out string error);
        Assert.True(kd != 0, error);
        try
        {
            delegate* unmanaged<nint, int> maxcpu = &KvmSystem.GetMaxCpu;
            delegate* unmanaged<nint, int> ncpus = &KvmSystem.GetCpuCount;
            delegate* unmanaged<nint, int, nint> pcpu = &KvmSystem.GetPcpu;
            Assert.Equal((FreeBsdI386Kernel.MaxCpu, 2), (maxcpu(kd), ncpus(kd)));
            var p = (Pcpu*)pcpu(kd, 1);
            Assert.True(p is not null && (nint)p != -1);
            Assert.Equal((threads[1].Address, 1u, 0, FreeBsdSystemState.Dynamic(1)), (p->CurrentThread, p->CpuId, p->CurrentPid, (ulong)p->Dynamic));
            NativeMemory.Free(p);
            Assert.Equal(0, pcpu(kd, 2));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void CpuTimes_AreEachCpusPcCpTimeOfThirtyTwoBitLongs()
    {
        using var o = new Opened(pae: false);
        var times = o.Image.GetCpuTimes();

        Assert.Equal(FreeBsdI386Kernel.StatHz, times.StatClockHz);
        Assert.Equal(FreeBsdPerCpu.CpTime(0), times.Cpus[0].ToCpuStates());
        Assert.Equal(FreeBsdPerCpu.CpTime(1), times.Cpus[1].ToCpuStates());
        Assert.Equal(new long[5], times.Cpus[2].ToCpuStates());
        Assert.Equal(Enumerable.Range(0, 5).Select(i => FreeBsdPerCpu.CpTime(0)[i] + FreeBsdPerCpu.CpTime(1)[i]), times.Total.ToCpuStates());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Clock_IsAThirtyTwoBitTimeUptime_TimeSecond_AndTheTwelveByteBintime(bool pae)
    {
        using var o = new Opened(pae);
        var clock = o.Image.GetClock();

        Assert.Equal(TimeSpan.FromSeconds(o.State.Uptime), clock.Uptime);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(o.State.TimeSecond), clock.WallTime);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(o.State.BootTime.Seconds).AddMilliseconds(500), clock.BootTime);
        Assert.Equal("time_uptime, time_second, timehands->th_boottime", clock.Source);

        var (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "uptime");
        Assert.True(exit == 0, err);
        Assert.StartsWith("up 1 day, 2:03, load averages: 1.25, 0.50, 3.90\n", output, StringComparison.Ordinal);
        Assert.Contains("booted 2023-11-14 22:13:20 UTC", output, StringComparison.Ordinal);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }
}
