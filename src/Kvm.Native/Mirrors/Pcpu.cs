using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>struct pcpu</c> of <c>kvm.h</c>: what Linux tells of one CPU, under FreeBSD's field names.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct pcpu")]
internal unsafe struct Pcpu
{
    /// <summary><c>CPUSTATES</c>.</summary>
    public const int CpuStates = 5;

    [CName("pc_curthread")] public ulong CurrentThread;
    [CName("pc_idlethread")] public ulong IdleThread;
    [CName("pc_cpuid")] public uint CpuId;
    [CName("pc_curpid")] public int CurrentPid;
    [CName("pc_dynamic")] public nuint Dynamic;
    [CName("pc_cp_time")] public fixed long CpuTime[CpuStates];
    [CName("pc_curcomm")] public fixed byte CurrentCommand[17];
}
