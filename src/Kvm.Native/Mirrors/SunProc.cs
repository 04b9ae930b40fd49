using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>proc_t</c> (<c>struct proc</c>): one process of the SunOS interface.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("proc_t")]
internal struct SunProc
{
    [CName("p_pid")] public int Pid;
    [CName("p_ppid")] public int ParentPid;
    [CName("p_pgrp")] public int ProcessGroupId;
    [CName("p_sid")] public int SessionId;
    [CName("p_ruid")] public uint RealUid;
    [CName("p_uid")] public uint EffectiveUid;
    [CName("p_suid")] public uint SavedUid;
    [CName("p_rgid")] public uint RealGid;
    [CName("p_gid")] public uint EffectiveGid;
    [CName("p_sgid")] public uint SavedGid;
    [CName("p_stat")] public byte Stat;
    [CName("p_linux_state")] public byte LinuxState;
    [CName("p_nice")] public sbyte Nice;
    [CName("p_pri")] public byte Priority;
    [CName("p_nlwp")] public int ThreadCount;
    [CName("p_flag")] public ulong Flags;
    [CName("p_ttydev")] public ulong TtyDevice;
    [CName("p_size")] public ulong VirtualSize;
    [CName("p_rssize")] public long ResidentPages;
    [CName("p_start")] public Timeval Start;
    [CName("p_utime")] public Timeval UserTime;
    [CName("p_stime")] public Timeval SystemTime;
    [CName("p_addr")] public ulong TaskAddress;
    [CName("p_as")] public ulong MmAddress;
    [CName("p_user")] public SunUser User;
}
