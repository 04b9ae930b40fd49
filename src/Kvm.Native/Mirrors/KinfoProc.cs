using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary>
/// FreeBSD 13/14's <c>struct kinfo_proc</c> (sys/sys/user.h), byte for byte on LP64: 1088 bytes. Which fields
/// Linux fills is documented in docs/libkvm-c.md; the rest stay zero.
/// </summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct kinfo_proc")]
internal unsafe struct KinfoProc
{
    /// <summary><c>KINFO_PROC_SIZE</c>.</summary>
    public const int Size = 1088;

    [CName("ki_structsize")] public int StructSize;
    [CName("ki_layout")] public int Layout;
    [CName("ki_args")] public ulong Args;
    [CName("ki_paddr")] public ulong ProcessAddress;
    [CName("ki_addr")] public ulong UserAreaAddress;
    [CName("ki_tracep")] public ulong TraceVnode;
    [CName("ki_textvp")] public ulong TextVnode;
    [CName("ki_fd")] public ulong FileDescriptors;
    [CName("ki_vmspace")] public ulong VmSpace;
    [CName("ki_wchan")] public ulong WaitChannel;
    [CName("ki_pid")] public int Pid;
    [CName("ki_ppid")] public int ParentPid;
    [CName("ki_pgid")] public int ProcessGroupId;
    [CName("ki_tpgid")] public int TtyProcessGroupId;
    [CName("ki_sid")] public int SessionId;
    [CName("ki_tsid")] public int TtySessionId;
    [CName("ki_jobc")] public short JobControlCount;
    [CName("ki_spare_short1")] public short SpareShort1;
    [CName("ki_tdev_freebsd11")] public uint TtyDevice32;
    [CName("ki_siglist")] public KvmSigset SignalsPending;
    [CName("ki_sigmask")] public KvmSigset SignalMask;
    [CName("ki_sigignore")] public KvmSigset SignalsIgnored;
    [CName("ki_sigcatch")] public KvmSigset SignalsCaught;
    [CName("ki_uid")] public uint EffectiveUid;
    [CName("ki_ruid")] public uint RealUid;
    [CName("ki_svuid")] public uint SavedUid;
    [CName("ki_rgid")] public uint RealGid;
    [CName("ki_svgid")] public uint SavedGid;
    [CName("ki_ngroups")] public short GroupCount;
    [CName("ki_spare_short2")] public short SpareShort2;
    [CName("ki_groups")] public fixed uint Groups[16];
    [CName("ki_size")] public ulong VirtualSize;
    [CName("ki_rssize")] public long ResidentPages;
    [CName("ki_swrss")] public long ResidentPagesBeforeSwap;
    [CName("ki_tsize")] public long TextPages;
    [CName("ki_dsize")] public long DataPages;
    [CName("ki_ssize")] public long StackPages;
    [CName("ki_xstat")] public ushort ExitStatus;
    [CName("ki_acflag")] public ushort AccountingFlags;
    [CName("ki_pctcpu")] public uint PercentCpu;
    [CName("ki_estcpu")] public uint EstimatedCpu;
    [CName("ki_slptime")] public uint SleepTime;
    [CName("ki_swtime")] public uint SwapTime;
    [CName("ki_cow")] public uint CopyOnWriteFaults;
    [CName("ki_runtime")] public ulong RunTimeMicroseconds;
    [CName("ki_start")] public Timeval Start;
    [CName("ki_childtime")] public Timeval ChildTime;
    [CName("ki_flag")] public long Flag;
    [CName("ki_kiflag")] public long KiFlag;
    [CName("ki_traceflag")] public int TraceFlag;
    [CName("ki_stat")] public byte Stat;
    [CName("ki_nice")] public sbyte Nice;
    [CName("ki_lock")] public byte Lock;
    [CName("ki_rqindex")] public byte RunQueueIndex;
    [CName("ki_oncpu_old")] public byte OnCpuOld;
    [CName("ki_lastcpu_old")] public byte LastCpuOld;
    [CName("ki_tdname")] public fixed byte ThreadName[17];
    [CName("ki_wmesg")] public fixed byte WaitMessage[9];
    [CName("ki_login")] public fixed byte Login[18];
    [CName("ki_lockname")] public fixed byte LockName[9];
    [CName("ki_comm")] public fixed byte Command[20];
    [CName("ki_emul")] public fixed byte Emulation[17];
    [CName("ki_loginclass")] public fixed byte LoginClass[18];
    [CName("ki_moretdname")] public fixed byte MoreThreadName[4];
    [CName("ki_sparestrings")] public fixed byte SpareStrings[46];
    [CName("ki_spareints")] public fixed int SpareInts[2];
    [CName("ki_tdev")] public ulong TtyDevice;
    [CName("ki_oncpu")] public int OnCpu;
    [CName("ki_lastcpu")] public int LastCpu;
    [CName("ki_tracer")] public int Tracer;
    [CName("ki_flag2")] public int Flag2;
    [CName("ki_fibnum")] public int FibNumber;
    [CName("ki_cr_flags")] public uint CredentialFlags;
    [CName("ki_jid")] public int JailId;
    [CName("ki_numthreads")] public int ThreadCount;
    [CName("ki_tid")] public int ThreadId;
    [CName("ki_pri")] public Priority Priority;
    [CName("ki_rusage")] public Rusage Usage;
    [CName("ki_rusage_ch")] public Rusage ChildUsage;
    [CName("ki_pcb")] public ulong Pcb;
    [CName("ki_kstack")] public ulong KernelStack;
    [CName("ki_udata")] public ulong UserData;
    [CName("ki_tdaddr")] public ulong ThreadAddress;
    [CName("ki_pd")] public ulong PathDescriptor;
    [CName("ki_spareptrs")] public fixed ulong SparePointers[5];
    [CName("ki_sparelongs")] public fixed long SpareLongs[12];
    [CName("ki_sflag")] public long SFlag;
    [CName("ki_tdflags")] public long ThreadFlags;
}
