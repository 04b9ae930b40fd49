using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>struct rusage</c> of glibc on LP64 (the same 144 bytes as FreeBSD amd64's).</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct rusage")]
internal struct Rusage
{
    [CName("ru_utime")] public Timeval UserTime;
    [CName("ru_stime")] public Timeval SystemTime;

    [CName("ru_maxrss")] public long MaxResidentKilobytes;
    [CName("ru_ixrss")] public long SharedText;
    [CName("ru_idrss")] public long UnsharedData;
    [CName("ru_isrss")] public long UnsharedStack;
    [CName("ru_minflt")] public long MinorFaults;
    [CName("ru_majflt")] public long MajorFaults;
    [CName("ru_nswap")] public long Swaps;
    [CName("ru_inblock")] public long BlockInputs;
    [CName("ru_oublock")] public long BlockOutputs;
    [CName("ru_msgsnd")] public long MessagesSent;
    [CName("ru_msgrcv")] public long MessagesReceived;
    [CName("ru_nsignals")] public long Signals;
    [CName("ru_nvcsw")] public long VoluntarySwitches;
    [CName("ru_nivcsw")] public long InvoluntarySwitches;
}
