using System.Globalization;

namespace Kvm;

/// <summary>
/// FreeBSD's CPU states (<c>CPUSTATES</c> in sys/resource.h): the indices of the array
/// <see cref="CpuTimes.ToCpuStates"/> returns, as <c>kvm_getcptime</c> fills <c>cp_time[]</c>.
/// </summary>
public enum CpuState
{
    /// <summary><c>CP_USER</c>: user time, including the time guests ran (Linux counts guest time as user time too).</summary>
    User = 0,

    /// <summary><c>CP_NICE</c>: user time of niced tasks, including niced guests.</summary>
    Nice = 1,

    /// <summary><c>CP_SYS</c>: system time.</summary>
    System = 2,

    /// <summary><c>CP_INTR</c>: hard and soft interrupt time (Linux's irq plus softirq).</summary>
    Interrupt = 3,

    /// <summary><c>CP_IDLE</c>: idle time, including time idle while waiting for I/O (Linux's idle plus iowait).</summary>
    Idle = 4,
}

/// <summary>Where the idle and iowait times of online CPUs come from.</summary>
public enum CpuIdleSource
{
    /// <summary>
    /// The NO_HZ sleep times of <c>tick_cpu_sched</c> (<c>idle_sleeptime</c>, <c>iowait_sleeptime</c>, plus an idle
    /// period in progress measured to the dump's monotonic clock): what <c>/proc/stat</c> reads for online CPUs when
    /// NO_HZ is active (<c>get_cpu_idle_time_us</c>, <c>get_cpu_iowait_time_us</c>).
    /// </summary>
    TickSched,

    /// <summary>
    /// The tick-sampled <c>cpustat[CPUTIME_IDLE]</c> and <c>cpustat[CPUTIME_IOWAIT]</c>: what <c>/proc/stat</c> reads
    /// when NO_HZ is not active, and the fallback when the NO_HZ data cannot be read (see <see cref="CpuTimesSummary.Note"/>).
    /// </summary>
    CpuStat,

    /// <summary>
    /// FreeBSD: every figure is a count of statistics-clock ticks, kept per CPU in <c>struct pcpu</c>'s
    /// <c>pc_cp_time[CPUSTATES]</c> (sys/kern/kern_clock.c <c>statclock</c> adds to the state the CPU is in); there is no
    /// separate idle accounting (see <see cref="CpuTimes.StatClockTicks"/>).
    /// </summary>
    StatClock,
}

/// <summary>
/// The CPU time counters of one CPU (or of all of them): the ten fields of a <c>/proc/stat</c> <c>cpu</c> line, in
/// nanoseconds since boot (the unit of the kernel's <c>u64 cpustat[]</c> since Linux 4.11). Guest time is also counted
/// in user time, and guest-nice time in nice time, as the kernel accounts it.
/// </summary>
/// <param name="Cpu">The CPU number, or -1 for the total over every possible CPU.</param>
/// <param name="IsOnline">True when the CPU is online (always true for the total).</param>
/// <param name="User">Time in user mode (<c>CPUTIME_USER</c>), nanoseconds.</param>
/// <param name="Nice">Time in user mode at a positive nice value (<c>CPUTIME_NICE</c>), nanoseconds.</param>
/// <param name="System">Time in kernel mode (<c>CPUTIME_SYSTEM</c>), nanoseconds.</param>
/// <param name="Idle">Idle time, nanoseconds; see <see cref="CpuTimesSummary.IdleSource"/>.</param>
/// <param name="IoWait">Idle time with a task of the CPU waiting for I/O, nanoseconds.</param>
/// <param name="Irq">Time servicing hard interrupts (<c>CPUTIME_IRQ</c>), nanoseconds.</param>
/// <param name="SoftIrq">Time servicing soft interrupts (<c>CPUTIME_SOFTIRQ</c>), nanoseconds.</param>
/// <param name="Steal">Time the hypervisor ran something else while this virtual CPU wanted to run (<c>CPUTIME_STEAL</c>), nanoseconds.</param>
/// <param name="Guest">Time running a guest's virtual CPU (<c>CPUTIME_GUEST</c>), nanoseconds.</param>
/// <param name="GuestNice">Time running a niced guest's virtual CPU (<c>CPUTIME_GUEST_NICE</c>), nanoseconds.</param>
public sealed record CpuTimes(
    int Cpu,
    bool IsOnline,
    ulong User,
    ulong Nice,
    ulong System,
    ulong Idle,
    ulong IoWait,
    ulong Irq,
    ulong SoftIrq,
    ulong Steal,
    ulong Guest,
    ulong GuestNice)
{
    /// <summary>The clock tick of <c>/proc/stat</c> and of <see cref="ToCpuStates"/>: <c>USER_HZ</c>, 100 per second on x86-64 (and every architecture but Alpha, whose is 1024).</summary>
    public const int UserHz = 100;

    private const ulong NanosecondsPerTick = 1_000_000_000 / UserHz;

    /// <summary>Nanoseconds to <c>USER_HZ</c> clock ticks, truncated, as <c>nsec_to_clock_t</c> converts them.</summary>
    public static long ToClockTicks(ulong nanoseconds) => (long)(nanoseconds / NanosecondsPerTick);

    /// <summary>The ten fields in <c>/proc/stat</c>'s order (user nice system idle iowait irq softirq steal guest guest_nice), in clock ticks.</summary>
    public long[] ToProcStatTicks() =>
        [ToClockTicks(User), ToClockTicks(Nice), ToClockTicks(System), ToClockTicks(Idle), ToClockTicks(IoWait),
         ToClockTicks(Irq), ToClockTicks(SoftIrq), ToClockTicks(Steal), ToClockTicks(Guest), ToClockTicks(GuestNice)];

    /// <summary>
    /// The line <c>/proc/stat</c> prints for these counters: <c>cpuN</c> and the ten tick counts, or <c>cpu</c> and two
    /// spaces for the total.
    /// </summary>
    public string ToProcStatLine() =>
        string.Create(CultureInfo.InvariantCulture, $"{(Cpu < 0 ? "cpu " : $"cpu{Cpu}")} {string.Join(' ', ToProcStatTicks().Select(v => v.ToString(CultureInfo.InvariantCulture)))}");

    /// <summary>
    /// A FreeBSD kernel's own counters: <c>pc_cp_time[CPUSTATES]</c> of this CPU (or, for the total,
    /// <c>kvm_getcptime</c>'s <c>cp_time</c>), in ticks of the statistics clock (<see cref="CpuTimesSummary.StatClockHz"/>
    /// per second), indexed by <see cref="CpuState"/>; null on Linux. The nanosecond fields are these ticks converted
    /// (<c>CP_INTR</c> as <see cref="Irq"/>); <see cref="IoWait"/>, <see cref="SoftIrq"/>, <see cref="Steal"/>,
    /// <see cref="Guest"/> and <see cref="GuestNice"/> have no FreeBSD counter and are 0.
    /// </summary>
    public IReadOnlyList<long>? StatClockTicks { get; init; }

    /// <summary>
    /// FreeBSD's five CPU states, indexed by <see cref="CpuState"/>. From a FreeBSD kernel, its own
    /// <see cref="StatClockTicks"/>. From Linux, clock ticks (<see cref="UserHz"/>): <c>CP_INTR</c> is irq plus softirq
    /// and <c>CP_IDLE</c> idle plus iowait, each summed in nanoseconds and then truncated once; steal time has no
    /// FreeBSD state and is left out, and guest time is already in user and nice.
    /// </summary>
    public long[] ToCpuStates() => StatClockTicks is { } ticks
        ? [.. ticks]
        : [ToClockTicks(User), ToClockTicks(Nice), ToClockTicks(System), SumToClockTicks(Irq, SoftIrq), SumToClockTicks(Idle, IoWait)];

    // Two u64 counters can exceed 64 bits together; their tick count cannot (2^65 / 10^7 fits a long).
    private static long SumToClockTicks(ulong a, ulong b) => (long)(((UInt128)a + b) / NanosecondsPerTick);
}

/// <summary>The CPU time counters of a kernel, per CPU and in total (<c>kvm_getcptime</c>, <c>/proc/stat</c>'s cpu lines).</summary>
/// <param name="Cpus">Every possible CPU, in order, online or not (<c>/proc/stat</c> prints per-CPU lines for the online ones only).</param>
/// <param name="Total">The sum over every possible CPU, as <c>/proc/stat</c>'s first line sums it; its <see cref="CpuTimes.Cpu"/> is -1.</param>
/// <param name="IdleSource">Where the idle and iowait times of the online CPUs come from; offline CPUs always use cpustat, as <c>/proc/stat</c> does.</param>
/// <param name="MonotonicNanoseconds">
/// The dump's "now" that an idle period in progress was measured to: CLOCK_MONOTONIC as the timekeeper last updated it
/// (up to one tick behind the moment the machine stopped), or null when it could not be read.
/// </param>
/// <param name="Note">
/// Null when the figures are what the kernel's <c>/proc/stat</c> would have printed at that "now"; otherwise what could
/// not be reproduced and why (for example NO_HZ data missing from the type information, so cpustat was used).
/// </param>
public sealed record CpuTimesSummary(IReadOnlyList<CpuTimes> Cpus, CpuTimes Total, CpuIdleSource IdleSource, long? MonotonicNanoseconds, string? Note)
{
    /// <summary>
    /// FreeBSD: the statistics clock's rate (<c>stathz</c>, sys/kern/kern_clock.c), the unit of
    /// <see cref="CpuTimes.StatClockTicks"/> and of <see cref="GetCpuStates"/>; null on Linux, and on FreeBSD when
    /// <c>stathz</c> cannot be read (the nanosecond fields are then 0 and <see cref="Note"/> says so).
    /// </summary>
    public int? StatClockHz { get; init; }

    /// <summary>
    /// FreeBSD's <c>cp_time[CPUSTATES]</c> for the whole machine: <see cref="CpuTimes.ToCpuStates"/> of
    /// <see cref="Total"/> — USER_HZ ticks from Linux, the kernel's statistics-clock ticks from FreeBSD.
    /// </summary>
    public long[] GetCpuStates() => Total.ToCpuStates();
}
