using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using Kvm.Cli;
using Kvm.Native.Exports;
using Kvm.Native.Mirrors;
using Kvm.Testing;
using Kvm.Testing.FreeBsd;
using Kvm.Tests.Native;

namespace Kvm.Tests.FreeBsd;

/// <summary>
/// A FreeBSD kernel's system state read from a minidump, as FreeBSD's tools read it from a core: the message buffer
/// (dmesg), the load average (kvm_getloadavg), the CPUs (kvm_getmaxcpu, kvm_getncpus, kvm_getpcpu) and the clocks.
/// Every expected value comes from what <see cref="FreeBsdSystemState"/> wrote.
/// </summary>
public sealed unsafe class FreeBsdSystemStateTests
{
    /// <summary>A minidump and kernel of a builder-made FreeBSD kernel, opened.</summary>
    private sealed class Opened : IDisposable
    {
        public Opened(FreeBsdSystemState? state = null, KvmLimits? limits = null)
        {
            Kernel = new FreeBsdAmd64Kernel();
            State = Kernel.AddSystemState(state);
            Dump = new TempFile(Kernel.Minidump(), "vmcore.0");
            Elf = new TempFile(Kernel.KernelElf(), "kernel");
            Image = KernelImage.Open(Dump.Path, new KernelImageOptions { Namelists = [Elf.Path], Limits = limits ?? KvmLimits.Default });
        }

        public FreeBsdAmd64Kernel Kernel { get; }

        public FreeBsdSystemState State { get; }

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

    [Fact]
    public void KernelLog_NotWrapped_IsEveryLine_PrioritiesStripped_NoTimestamps()
    {
        using var o = new Opened();
        var log = o.Image.ReadKernelLog();

        Assert.Empty(log.Warnings);
        Assert.Equal($"FreeBSD msgbuf ({o.State.RingSize} bytes, not wrapped)", log.Layout);
        var lines = o.State.Text.Split('\n')[..^1];
        Assert.Equal(lines.Select(FreeBsdSystemState.StripPriority), log.Records.Select(r => r.Text));
        Assert.Equal(new int?[] { 6, null, 6, 4 }, log.Records.Select(r => r.Level));
        Assert.Equal(new int?[] { 0, null, 1, 0 }, log.Records.Select(r => r.Facility));

        // "<14>" is LOG_USER|LOG_INFO: dmesg shows it only with -a.
        Assert.Equal([true, true, false, true], log.Records.Select(r => r.IsShownByDefault));
        Assert.All(log.Records, r => Assert.False(r.HasTimestamp));
        Assert.Equal("link up", log.Records[0].Format());

        // Sequence numbers are the byte positions at which msgbuf_addchar wrote each line's first byte.
        var offsets = lines.Select((_, i) => (ulong)lines.Take(i).Sum(l => Encoding.UTF8.GetByteCount(l) + 1));
        Assert.Equal(offsets, log.Records.Select(r => r.Sequence));
    }

    [Fact]
    public void KernelLog_Wrapped_StartsAtTheWritePosition_AndHidesThePartialFirstLine()
    {
        // 100 lines of 12 bytes through a 64-byte ring: past SEQMOD (16 × 64) too, so sequence numbers wrap.
        string text = string.Concat(Enumerable.Range(0, 100).Select(i => $"<6>line {i:D3}\n"));
        using var o = new Opened(new FreeBsdSystemState { RingSize = 64, Text = text });
        var log = o.Image.ReadKernelLog();

        Assert.Empty(log.Warnings);
        Assert.Equal("FreeBSD msgbuf (64 bytes, wrapped)", log.Layout);
        string tail = text[^64..];
        var lines = tail.Split('\n')[..^1];
        Assert.Equal(lines.Select(FreeBsdSystemState.StripPriority), log.Records.Select(r => r.Text));
        Assert.Equal([false, .. Enumerable.Repeat(true, lines.Length - 1)], log.Records.Select(r => r.IsShownByDefault));
        Assert.Equal("line 099", log.Records[^1].Text);
        int start = text.Length - 64;
        var sequences = lines.Select((_, i) => (ulong)((start + lines.Take(i).Sum(l => l.Length + 1)) % (64 * 16)));
        Assert.Equal(sequences, log.Records.Select(r => r.Sequence));
    }

    [Fact]
    public void KernelLog_PriorityPrefixes_AreOnlyWhatDmesgAccepts()
    {
        string text = "<abc>not a priority\n<7 unclosed\n<3>error\n<99999999999>too big\n<>empty\n<0>emergency\nno newline at the end";
        using var o = new Opened(new FreeBsdSystemState { Text = text });
        var records = o.Image.ReadKernelLog().Records;

        Assert.Equal(["<abc>not a priority", "<7 unclosed", "error", "<99999999999>too big", "<>empty", "emergency", "no newline at the end"], records.Select(r => r.Text));
        Assert.Equal(new int?[] { null, null, 3, null, null, 0, null }, records.Select(r => r.Level));
        Assert.All(records, r => Assert.True(r.IsShownByDefault));
    }

    [Theory]
    [InlineData(0x1234u, null, "msg_magic is 0x1234")]
    [InlineData(FreeBsdSystemState.MsgMagic, 0u, "msg_size 0")]
    [InlineData(FreeBsdSystemState.MsgMagic, 0x7fffffffu, "msg_size 2147483647")]
    public void KernelLog_CorruptMsgbuf_NamesTheField(uint magic, uint? size, string expected)
    {
        using var o = new Opened(new FreeBsdSystemState { Magic = magic, SizeField = size });
        var e = Assert.Throws<CorruptImageException>(() => o.Image.ReadKernelLog());
        Assert.Contains(expected, e.Message, StringComparison.Ordinal);
        Assert.Contains($"struct msgbuf at 0x{FreeBsdSystemState.MsgbufAddress:x}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void KernelLog_AnInconsistentSeqmod_IsAWarning_AndTheLinesAreStillRead()
    {
        using var o = new Opened(new FreeBsdSystemState { SeqmodField = 1000 });
        var log = o.Image.ReadKernelLog();
        Assert.Equal("msg_seqmod is 1000, not SEQMOD(msg_size) = 4096; sequence numbers are taken modulo SEQMOD", Assert.Single(log.Warnings));
        Assert.Equal(o.State.Text.Split('\n')[..^1].Select(FreeBsdSystemState.StripPriority), log.Records.Select(r => r.Text));
    }

    [Fact]
    public void KernelLog_SizeBeyondTheLimit_NullPointers_AndNoMsgbufp_AreClearErrors()
    {
        using (var o = new Opened(limits: new KvmLimits { MaxKernelLogBytes = 128 }))
        {
            Assert.Contains("KvmLimits.MaxKernelLogBytes (128)", Assert.Throws<CorruptImageException>(() => o.Image.ReadKernelLog()).Message, StringComparison.Ordinal);
        }

        using (var o = new Opened(new FreeBsdSystemState { NullRingPointer = true }))
        {
            Assert.Contains("msg_ptr is NULL", Assert.Throws<CorruptImageException>(() => o.Image.ReadKernelLog()).Message, StringComparison.Ordinal);
        }

        using (var o = new Opened(new FreeBsdSystemState { NullMsgbufp = true }))
        {
            Assert.Contains("msgbufp is NULL", Assert.Throws<CorruptImageException>(() => o.Image.ReadKernelLog()).Message, StringComparison.Ordinal);
        }

        using (var o = new Opened(new FreeBsdSystemState { OmitSymbols = ["msgbufp"] }))
        {
            Assert.Equal("msgbufp", Assert.Throws<SymbolNotFoundException>(() => o.Image.ReadKernelLog()).SymbolName);
        }
    }

    [Fact]
    public void LoadAverage_IsAverunnableOverFscale()
    {
        using var o = new Opened();
        var load = o.Image.GetLoadAverage();
        Assert.Equal(o.State.Load.Select(v => v / 2048.0), load.ToArray());
        Assert.Null(load.TotalThreads);
    }

    [Fact]
    public void LoadAverage_TheGlobalFscaleWins_AsInKvmGetloadavg_AndAZeroScaleIsCorrupt()
    {
        using (var o = new Opened(new FreeBsdSystemState { StructFscale = 1000, GlobalFscale = 2048 }))
        {
            Assert.Equal(o.State.Load.Select(v => v / 2048.0), o.Image.GetLoadAverage().ToArray());
        }

        using (var o = new Opened(new FreeBsdSystemState { StructFscale = 1000, GlobalFscale = null }))
        {
            Assert.Equal(o.State.Load.Select(v => v / 1000.0), o.Image.GetLoadAverage().ToArray());
        }

        using (var o = new Opened(new FreeBsdSystemState { StructFscale = 0, GlobalFscale = null }))
        {
            Assert.Contains("fscale", Assert.Throws<CorruptImageException>(() => o.Image.GetLoadAverage()).Message, StringComparison.Ordinal);
        }

        using (var o = new Opened(new FreeBsdSystemState { OmitSymbols = ["averunnable"] }))
        {
            Assert.Equal("averunnable", Assert.Throws<SymbolNotFoundException>(() => o.Image.GetLoadAverage()).SymbolName);
        }
    }

    [Fact]
    public void Cpus_FollowCpuidToPcpu_WithAHoleInAllCpus()
    {
        using var o = new Opened();
        var cpus = o.Image.GetCpus();
        var threads = o.Kernel.ProcessTable!.Threads;

        Assert.Equal(o.State.MaxCpus, cpus.MaxCpus);
        Assert.Equal(o.State.PresentCpus.Length, cpus.OnlineCpus);
        Assert.Equal(Enumerable.Range(0, o.State.MaxCpus), cpus.Cpus.Select(c => c.Cpu));
        Assert.Equal(Enumerable.Range(0, o.State.MaxCpus).Select(c => o.State.PresentCpus.Contains(c)), cpus.Cpus.Select(c => c.IsOnline));

        // CPU 0 runs sh's thread (threads[3]), CPU 1 proc0's softclock (threads[1]), CPU 3 nothing.
        var cpu0 = cpus.Cpus[0];
        Assert.Equal((threads[3].Address, 42, "sh", threads[3].Tid), (cpu0.CurrentTask, cpu0.CurrentPid, cpu0.CurrentCommand, cpu0.CurrentThreadId));
        Assert.Equal(FreeBsdSystemState.Dynamic(0), cpu0.PerCpuOffset);
        var cpu1 = cpus.Cpus[1];
        Assert.Equal((threads[1].Address, 0, "kernel", threads[1].Tid), (cpu1.CurrentTask, cpu1.CurrentPid, cpu1.CurrentCommand, cpu1.CurrentThreadId));
        Assert.Equal((0UL, (int?)null, FreeBsdSystemState.Dynamic(3)), (cpus.Cpus[3].CurrentTask, cpus.Cpus[3].CurrentPid, cpus.Cpus[3].PerCpuOffset));
        Assert.Equal((false, 0UL, 0UL), (cpus.Cpus[2].IsOnline, cpus.Cpus[2].CurrentTask, cpus.Cpus[2].PerCpuOffset));
    }

    [Fact]
    public void Cpus_BeyondTheFirstWordOfAllCpus_AndFromMpMaxid()
    {
        using var o = new Opened(new FreeBsdSystemState { MaxCpus = 70, PresentCpus = [0, 65, 69], CurrentThreads = [-1, 2, -1], WithMpMaxcpus = false });
        var cpus = o.Image.GetCpus();

        Assert.Equal(70, cpus.MaxCpus);
        Assert.Equal(3, cpus.OnlineCpus);
        Assert.Equal([0, 65, 69], cpus.Cpus.Where(c => c.IsOnline).Select(c => c.Cpu));
        Assert.Equal((1, "init"), (cpus.Cpus[65].CurrentPid, cpus.Cpus[65].CurrentCommand));
        Assert.Equal(FreeBsdSystemState.Dynamic(69), cpus.Cpus[69].PerCpuOffset);
    }

    [Fact]
    public void Cpus_WithoutCpuidToPcpu_NameTheSymbol()
    {
        using var o = new Opened(new FreeBsdSystemState { OmitSymbols = ["cpuid_to_pcpu"] });
        Assert.Equal("cpuid_to_pcpu", Assert.Throws<SymbolNotFoundException>(() => o.Image.GetCpus()).SymbolName);
    }

    [Fact]
    public void Clock_IsTimeUptime_TimeSecond_AndTheBootTimeOfTimehands()
    {
        using var o = new Opened();
        var clock = o.Image.GetClock();
        var boot = DateTimeOffset.FromUnixTimeSeconds(o.State.BootTime.Seconds).AddMilliseconds(500);

        Assert.Equal(TimeSpan.FromSeconds(o.State.Uptime), clock.Uptime);
        Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(o.State.TimeSecond), clock.WallTime);
        Assert.Equal(boot, clock.BootTime);
        Assert.Equal("time_uptime, time_second, timehands->th_boottime", clock.Source);
    }

    [Fact]
    public void Clock_FromAnOldBoottime_AndWithoutTimeUptime()
    {
        using (var o = new Opened(new FreeBsdSystemState { OldBoottime = true }))
        {
            var clock = o.Image.GetClock();
            Assert.Equal(DateTimeOffset.FromUnixTimeSeconds(o.State.BootTime.Seconds).AddMilliseconds(500), clock.BootTime);
            Assert.EndsWith("boottime", clock.Source, StringComparison.Ordinal);
        }

        using (var o = new Opened(new FreeBsdSystemState { OmitSymbols = ["time_uptime"] }))
        {
            Assert.Equal("time_uptime", Assert.Throws<SymbolNotFoundException>(() => o.Image.GetClock()).SymbolName);
        }
    }

    [Fact]
    public void WithoutTheKernelsCtf_TheWalkersSaySo()
    {
        var kernel = new FreeBsdAmd64Kernel();
        kernel.AddSystemState();
        using var dump = new TempFile(kernel.Minidump(), "vmcore.0");
        using var image = KernelImage.Open(dump.Path);
        foreach (var call in new Action[] { () => image.ReadKernelLog(), () => image.GetLoadAverage(), () => image.GetCpus(), () => image.GetClock() })
        {
            var e = Assert.Throws<KvmException>(call);
            Assert.Equal(KvmErrorCode.KernelType, e.Code);
            Assert.Contains("CTF", e.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void CExports_Loadavg_Maxcpu_Ncpus_Pcpu_AndDmesg()
    {
        using var o = new Opened();
        nint kd = NativeShim.OpenFiles(o.Elf.Path, o.Dump.Path, out string error);
        Assert.True(kd != 0, error);
        try
        {
            delegate* unmanaged<nint, double*, int, int> loadavg = &KvmSystem.GetLoadAverage;
            delegate* unmanaged<nint, int> maxcpu = &KvmSystem.GetMaxCpu;
            delegate* unmanaged<nint, int> ncpus = &KvmSystem.GetCpuCount;
            delegate* unmanaged<nint, int, nint> pcpu = &KvmSystem.GetPcpu;
            delegate* unmanaged<nint, nuint*, nint> dmesg = &KvmLinux.Dmesg;
            var samples = new double[3];
            fixed (double* s = samples)
            {
                Assert.Equal(3, loadavg(kd, s, 3));
            }

            Assert.Equal(o.State.Load.Select(v => v / 2048.0), samples);
            Assert.Equal((4, 3), (maxcpu(kd), ncpus(kd)));

            var p = (Pcpu*)pcpu(kd, 0);
            Assert.True(p is not null && (nint)p != -1);
            var thread = o.Kernel.ProcessTable!.Threads[3];
            Assert.Equal((thread.Address, 0u, 42, FreeBsdSystemState.Dynamic(0)), (p->CurrentThread, p->CpuId, p->CurrentPid, (ulong)p->Dynamic));
            Assert.Equal("sh", NativeShim.Text(p->CurrentCommand));
            NativeMemory.Free(p);
            Assert.Equal(0, pcpu(kd, 2));   // a hole in all_cpus
            Assert.Equal(0, pcpu(kd, 4));   // beyond mp_maxcpus

            nuint length;
            nint text = dmesg(kd, &length);
            Assert.NotEqual(0, text);
            Assert.Equal("link up\nplain line\nwarning: hot\n", Marshal.PtrToStringUTF8(text, (int)length));
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void Kmem_Dmesg_Uptime_AndPcpu()
    {
        string text = "<6>tab\there, back\\slash, escape \u001b[0m, caf\u00e9\n<14>from user land\n";
        using var o = new Opened(new FreeBsdSystemState { Text = text });

        var (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "dmesg");
        Assert.True(exit == 0, err);
        Assert.Equal("tab\there, back\\134slash, escape \\^[[0m, caf\u00e9\n", output);

        (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "dmesg", "-a");
        Assert.True(exit == 0, err);
        Assert.EndsWith("caf\u00e9\nfrom user land\n", output, StringComparison.Ordinal);

        (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "--json", "dmesg");
        Assert.True(exit == 0, err);
        using (var doc = JsonDocument.Parse(output))
        {
            var record = doc.RootElement.GetProperty("records")[0];
            Assert.Equal(JsonValueKind.Null, record.GetProperty("timestamp").ValueKind);
            Assert.Equal(6, record.GetProperty("level").GetInt32());
        }

        (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "uptime");
        Assert.True(exit == 0, err);

        // 93784 s is 1 day, 2:03; 2560/2048, 1024/2048 and 7987/2048 through "%.2f".
        Assert.StartsWith("up 1 day, 2:03, load averages: 1.25, 0.50, 3.90\n", output, StringComparison.Ordinal);
        Assert.Contains("booted 2023-11-14 22:13:20 UTC", output, StringComparison.Ordinal);

        (exit, output, err) = Run("-M", o.Dump.Path, "-N", o.Elf.Path, "pcpu");
        Assert.True(exit == 0, err);
        var rows = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, rows.Length);
        Assert.Matches(@"^\s+0 yes\s+0000000000010000\s+[0-9a-f]{16}\s+42 sh$", rows[1]);
        Assert.Matches(@"^\s+2 no\b", rows[3]);
    }

    [Theory]
    [InlineData(0.125, "0.12")]
    [InlineData(0.375, "0.38")]
    [InlineData(0.295, "0.29")]
    [InlineData(3.8999023437500, "3.90")]
    [InlineData(12.0, "12.00")]
    public void Printf2_RoundsTheExactValue_TiesToEven(double value, string expected) =>
        Assert.Equal(expected, Kvm.Cli.Commands.UptimeCommand.Printf2(value));

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }
}
