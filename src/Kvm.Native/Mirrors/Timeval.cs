using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>struct timeval</c> of glibc on LP64 (and of FreeBSD amd64): seconds and microseconds.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct timeval")]
internal struct Timeval
{
    [CName("tv_sec")] public long Seconds;
    [CName("tv_usec")] public long Microseconds;

    /// <summary>Converts a span of time.</summary>
    public static Timeval From(TimeSpan time)
    {
        long us = time.Ticks / TimeSpan.TicksPerMicrosecond;
        return new Timeval { Seconds = us / 1_000_000, Microseconds = us % 1_000_000 };
    }
}
