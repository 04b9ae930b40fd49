using System.Runtime.CompilerServices;
using Kvm.FreeBsd;
using Kvm.Linux;

namespace Kvm;

/// <summary>CPU time counters: <c>kvm_getcptime</c> and the cpu lines of <c>/proc/stat</c>.</summary>
public sealed partial class KernelImage
{
    private CpuTimeWalker? _cpuTimeWalker;

    /// <summary>
    /// Reads the CPU time counters of every possible CPU and their total, as the kernel's <c>/proc/stat</c> would have
    /// printed them at the dump: <c>kernel_cpustat</c>, with the idle and iowait times of online CPUs from the NO_HZ
    /// sleep times (an idle period in progress measured to the dump's monotonic clock) when NO_HZ is active.
    /// <see cref="CpuTimesSummary.GetCpuStates"/> gives FreeBSD's <c>cp_time[CPUSTATES]</c>. FreeBSD: each CPU's
    /// <c>pc_cp_time</c> (<see cref="CpuTimes.StatClockTicks"/>, converted to nanoseconds with <c>stathz</c>), every
    /// possible CPU listed (absent ones as offline zeros), and the total as lib/libkvm/kvm_cptime.c gives it: the
    /// global <c>cp_time</c> where the kernel has one, else the sum over the CPUs; <see cref="CpuTimesSummary.IdleSource"/>
    /// is <see cref="CpuIdleSource.StatClock"/> and <see cref="CpuTimesSummary.MonotonicNanoseconds"/> null. Needs the
    /// kernel's CTF.
    /// </summary>
    /// <exception cref="KvmException">
    /// The kernel's types do not describe <c>kernel_cpustat</c>, a symbol is unknown, or a CPU's counters cannot be read
    /// (the message names the CPU and the address).
    /// </exception>
    public CpuTimesSummary GetCpuTimes()
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdCpuTimes.Read(FreeBsdKernel("the FreeBSD CPU times (pc_cp_time)"), FreeBsdSystem("the FreeBSD CPU times (pc_cp_time)"));
        }

        return CpuTimeCounters().Read();
    }

    private CpuTimeWalker CpuTimeCounters([CallerMemberName] string? caller = null)
    {
        lock (_linuxLock)
        {
            return _cpuTimeWalker ??= new CpuTimeWalker(Linux(caller), SystemState(caller));
        }
    }
}
