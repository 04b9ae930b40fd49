using Kvm.Testing;
using Kvm.Testing.FreeBsd;
using Kvm.Tests.Native;
using Kvm.Types;

namespace Kvm.Tests.FreeBsd;

/// <summary>
/// CTF (v2 and v3, compressed or not) read into the type catalog, and FreeBSD's <c>allproc</c> walked with it: the
/// process list of a minidump whose kernel carries <c>.SUNW_ctf</c>.
/// </summary>
public sealed unsafe class CtfAndProcessTests
{
    [Theory]
    [InlineData(2, false)]
    [InlineData(2, true)]
    [InlineData(3, false)]
    [InlineData(3, true)]
    public void Ctf_GivesTheSameLayoutsAsTheStructsDeclare(int version, bool compress)
    {
        var types = TypeCatalog.ParseCtf(FreeBsdProcessTable.Ctf(version, compress), "kernel: .SUNW_ctf");

        Assert.Equal(0x28, types.GetMember("proc.p_pid").Offset);
        Assert.Equal(4, types.GetMember("proc.p_pid").Size);
        Assert.Equal(0x50, types.GetMember("proc.p_comm").Offset);
        Assert.Equal(20, types.GetMember("proc.p_comm").Size);
        Assert.Equal(0, types.GetMember("proc.p_list.le_next").Offset);
        Assert.Equal(0x10, types.GetMember("proc.p_threads.tqh_first").Offset);
        Assert.Equal(0x100, types.SizeOf(types.FindStruct("proc")!.Id));
        Assert.True(types.TryGetEnumValue("PRS_ZOMBIE", out long zombie));
        Assert.Equal(2, zombie);
        Assert.True(types.Resolve(types.GetMember("proc.p_pid").TypeId).IntEncoding.IsSigned);
        Assert.Equal("pid_t", Assert.Single(types.FindByName("pid_t")).Name);
        Assert.Equal(BtfKind.Forward, types.FindByName("vmspace").Single().Kind);
        Assert.Contains("CTF v", types.Source, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Ctf_LargeStructs_FunctionsAndQualifiers(int version)
    {
        var c = new CtfBuilder(version);
        int i32 = c.Int("int", 4);
        int big = c.StructOf("big");
        c.SetMembers(big, 0x20000, ("first", i32, 0), ("last", i32, 0x1fff0 * 8));
        int fn = c.FunctionOf(i32, i32, c.ConstOf(c.PointerTo(i32)), 0);
        c.TypedefOf("handler_t", c.PointerTo(fn));
        var types = TypeCatalog.ParseCtf(c.Build(compress: false), "t");

        Assert.Equal(0x1fff0, types.GetMember("big.last").Offset);
        var proto = types.Resolve(types.Resolve(types.FindByName("handler_t").Single().Id).ReferencedTypeId);
        Assert.Equal(BtfKind.FunctionProto, proto.Kind);
        Assert.Equal(2, proto.Parameters.Count);
        Assert.True(proto.IsVariadic);
    }

    [Fact]
    public void Ctf_Corrupt_IsNamed()
    {
        var bytes = FreeBsdProcessTable.Ctf(3, compress: false);
        Assert.Throws<CorruptImageException>(() => TypeCatalog.ParseCtf(bytes.AsSpan(0, 20), "t"));
        var truncated = bytes.AsSpan(0, bytes.Length - 200).ToArray();
        Assert.Contains("do not fit", Assert.Throws<CorruptImageException>(() => TypeCatalog.ParseCtf(truncated, "t")).Message, StringComparison.Ordinal);
        var badKind = (byte[])bytes.Clone();
        badKind[36 + 7] = 0xfc;
        Assert.Throws<CorruptImageException>(() => TypeCatalog.ParseCtf(badKind, "t"));
        var compressed = FreeBsdProcessTable.Ctf(3, compress: true);
        compressed[40] ^= 0xff;
        compressed[41] ^= 0xff;
        Assert.ThrowsAny<KvmException>(() => TypeCatalog.ParseCtf(compressed, "t"));
    }

    [Fact]
    public void GetProcesses_WalksAllproc_WithTheKernelsCtf()
    {
        var kernel = new FreeBsdAmd64Kernel();
        kernel.AddProcesses();
        using var dump = new TempFile(kernel.Minidump(), "vmcore.0");
        using var elf = new TempFile(kernel.KernelElf(), "kernel");
        using var image = KernelImage.Open(dump.Path, new KernelImageOptions { Namelists = [elf.Path] });

        Assert.NotNull(image.Types);
        Assert.Contains(".SUNW_ctf", image.Types!.Source, StringComparison.Ordinal);
        var list = image.GetProcesses();
        Assert.Empty(list.Errors);
        Assert.Equal([0, 1, 42, 43], list.Processes.Select(p => p.Pid));
        var sh = list.Processes.Single(p => p.Pid == 42);
        Assert.Equal("sh", sh.Command);
        Assert.Equal(1, sh.ParentPid);
        Assert.Equal((42, 42), (sh.ProcessGroupId, sh.SessionId));
        Assert.Equal((1001u, 1001u, 2001u), (sh.Uid, sh.EffectiveUid, sh.Uids[2]));
        Assert.Equal((20u, 5u), (sh.Gid, sh.EffectiveGid));
        Assert.Equal('R', sh.State);
        Assert.Equal(-5, sh.Nice);
        Assert.Equal((120, 1), (sh.Priority, sh.LastCpu));
        Assert.False(sh.IsKernelThread);
        Assert.NotEqual(0UL, sh.MmAddress);

        var kernelProc = list.Processes[0];
        Assert.True(kernelProc.IsKernelThread);
        Assert.Equal(2, kernelProc.ThreadCount);
        Assert.Equal('R', kernelProc.State);
        Assert.Equal('S', list.Processes.Single(p => p.Pid == 1).State);
        Assert.Equal('Z', list.Processes.Single(p => p.Pid == 43).State);

        var threads = image.GetProcesses(ProcessQuery.Threads).Processes;
        Assert.Equal([100000, 100001, 100002, 100042, 43], threads.Select(t => t.Pid));
        Assert.Equal("softclock", threads[1].Command);
        Assert.All(threads.Take(2), t => Assert.Equal(0, t.Tgid));

        // Arguments from the kernel's copy (p_args); the environment is nowhere in a FreeBSD dump.
        Assert.Equal(["-sh", "-i"], image.GetArguments(sh).Strings);
        Assert.Equal(["-s"], image.GetArguments(sh, maxBytes: 3).Strings);
        Assert.Equal(["/sbin/init"], image.GetArguments(list.Processes.Single(p => p.Pid == 1)).Strings);
        Assert.Empty(image.GetArguments(kernelProc).Values);
        Assert.Contains("environment", image.GetEnvironment(sh).Reason, StringComparison.Ordinal);

        Assert.Equal(42, image.FindProcess(42)!.Pid);
        Assert.Equal([42, 43], image.GetProcesses(new ProcessQuery(ProcessSelector.RealUid, 1001)).Processes.Select(p => p.Pid));
        Assert.Equal([1, 42, 43], image.GetProcesses(new ProcessQuery(ProcessSelector.All, IncludeIdle: false)).Processes.Select(p => p.Pid));
    }

    [Fact]
    public void KvmGetprocs_AndGetargv_OnAFreeBsdMinidump()
    {
        var kernel = new FreeBsdAmd64Kernel();
        kernel.AddProcesses();
        using var dump = new TempFile(kernel.Minidump(), "vmcore.0");
        using var elf = new TempFile(kernel.KernelElf(), "kernel");
        nint kd = NativeShim.OpenFiles(elf.Path, dump.Path, out string error);
        Assert.True(kd != 0, error);
        try
        {
            const int KernProcProc = 8;
            var procs = NativeShim.GetProcs(kd, KernProcProc, 0, out int count, out _);
            Assert.NotNull(procs);
            Assert.Equal(4, count);
            Assert.Equal([0, 1, 42, 43], procs!.Select(p => p.Pid));
            var sh = procs[2];
            Assert.Equal("sh", NativeShim.Text(sh.Command));
            Assert.Equal(["-sh", "-i"], NativeShim.Strings(kd, 42, environment: false)!);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void GetProcesses_WithoutTheKernel_SaysTheCtfIsMissing()
    {
        var kernel = new FreeBsdAmd64Kernel();
        kernel.AddProcesses();
        using var dump = new TempFile(kernel.Minidump(), "vmcore.0");
        using var image = KernelImage.Open(dump.Path, new KernelImageOptions { Resolver = n => n == "allproc" ? FreeBsdAmd64Kernel.AllprocAddress : null });
        var e = Assert.Throws<KvmException>(() => image.GetProcesses());
        Assert.Equal(KvmErrorCode.KernelType, e.Code);
        Assert.Contains("CTF", e.Message, StringComparison.Ordinal);
        Assert.Contains("-N", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void GetProcesses_ALoopingList_GivesWhatWasReadAndSaysSo()
    {
        var kernel = new FreeBsdAmd64Kernel();
        var table = kernel.AddProcesses();

        // The last process points back at the second.
        kernel.Memory.WriteUInt64(table.Processes[^1].Address - FreeBsdAmd64Kernel.KernBase, table.Processes[1].Address);
        using var dump = new TempFile(kernel.Minidump(), "vmcore.0");
        using var elf = new TempFile(kernel.KernelElf(), "kernel");
        using var image = KernelImage.Open(dump.Path, new KernelImageOptions { Namelists = [elf.Path] });
        var list = image.GetProcesses();
        Assert.Equal(4, list.Processes.Count);
        Assert.Contains("loops", Assert.Single(list.Errors), StringComparison.Ordinal);
    }
}
