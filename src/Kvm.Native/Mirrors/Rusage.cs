using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>struct rusage</c> of glibc on LP64 (the same 144 bytes as FreeBSD amd64's).</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct rusage")]
internal unsafe struct Rusage
{
    [CName("ru_utime")] public Timeval UserTime;
    [CName("ru_stime")] public Timeval SystemTime;

    /// <summary><c>ru_maxrss</c> through <c>ru_nivcsw</c>: 14 longs, not filled.</summary>
    public fixed long Counters[14];
}
