namespace Kvm;

/// <summary>
/// The load average, as <c>kvm_getloadavg</c> and <c>/proc/loadavg</c> report it: Linux's <c>avenrun</c>, FreeBSD's
/// <c>averunnable</c> (divided by its <c>fscale</c>).
/// </summary>
/// <param name="One">The 1-minute average.</param>
/// <param name="Five">The 5-minute average.</param>
/// <param name="Fifteen">The 15-minute average.</param>
/// <param name="TotalThreads">The number of threads (<c>nr_threads</c>), when readable; null on FreeBSD, which keeps no such count.</param>
public sealed record LoadAverage(double One, double Five, double Fifteen, int? TotalThreads)
{
    /// <summary>The three averages as an array, 1, 5 and 15 minutes.</summary>
    public double[] ToArray() => [One, Five, Fifteen];
}

/// <summary>The kernel's clocks at the time of the dump.</summary>
/// <param name="Uptime">
/// Time since boot, including suspend (CLOCK_BOOTTIME, what <c>/proc/uptime</c> shows); on FreeBSD <c>time_uptime</c>,
/// in whole seconds.
/// </param>
/// <param name="WallTime">The wall-clock time (CLOCK_REALTIME), when readable.</param>
/// <param name="BootTime">When the system booted (wall time minus uptime), when readable.</param>
/// <param name="Source">Where the figures came from (for example <c>tk_core.timekeeper</c>).</param>
public sealed record KernelClock(TimeSpan Uptime, DateTimeOffset? WallTime, DateTimeOffset? BootTime, string Source);

/// <summary>One CPU slot: whether it is online, its per-CPU offset and the task it was running.</summary>
/// <param name="Cpu">The CPU number.</param>
/// <param name="IsOnline">
/// True when the CPU is in <c>cpu_online_mask</c>; on FreeBSD, when <c>cpuid_to_pcpu[Cpu]</c> is set and
/// <c>all_cpus</c> holds the CPU (false for a hole in the CPU ids).
/// </param>
/// <param name="PerCpuOffset">
/// The CPU's <c>__per_cpu_offset</c>: add it to a per-CPU symbol's address. FreeBSD: its <c>struct pcpu</c>'s
/// <c>pc_dynamic</c>, the offset of the CPU's copy of DPCPU variables (0 when the CTF has no such member).
/// </param>
/// <param name="CurrentTask">
/// The kernel address of the task current on this CPU, or 0 when unknown; on FreeBSD the <c>struct thread</c> in
/// <c>pc_curthread</c>.
/// </param>
/// <param name="CurrentPid">That task's pid (FreeBSD: its process's <c>p_pid</c>), when readable.</param>
/// <param name="CurrentCommand">That task's command name (FreeBSD: its process's <c>p_comm</c>), when readable.</param>
public sealed record CpuInfo(int Cpu, bool IsOnline, ulong PerCpuOffset, ulong CurrentTask, int? CurrentPid, string? CurrentCommand)
{
    /// <summary>
    /// The current thread's id, where it differs from <see cref="CurrentPid"/>: FreeBSD's <c>td_tid</c>. Null on
    /// Linux, where the task's pid is its thread id.
    /// </summary>
    public int? CurrentThreadId { get; init; }
}

/// <summary>The CPUs of the kernel (<c>kvm_getmaxcpu</c>, <c>kvm_getncpus</c>).</summary>
/// <param name="MaxCpus">The number of possible CPU ids (<c>nr_cpu_ids</c>; FreeBSD: <c>mp_maxcpus</c>).</param>
/// <param name="OnlineCpus">The number of online CPUs (FreeBSD: <c>mp_ncpus</c>).</param>
/// <param name="Cpus">Every possible CPU, in order.</param>
public sealed record CpuSummary(int MaxCpus, int OnlineCpus, IReadOnlyList<CpuInfo> Cpus);
