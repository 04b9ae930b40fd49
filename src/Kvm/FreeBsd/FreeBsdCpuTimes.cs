namespace Kvm.FreeBsd;

/// <summary>
/// A FreeBSD kernel's CPU time counters as lib/libkvm/kvm_cptime.c <c>kvm_getcptime</c> reads them from a core: the
/// global <c>cp_time[CPUSTATES]</c> where the kernel has it (FreeBSD 6 and before), else the sum over the CPUs of
/// each <c>struct pcpu</c>'s <c>pc_cp_time[CPUSTATES]</c> (sys/sys/pcpu.h) — the sum the live <c>kern.cp_time</c>
/// sysctl computes too (sys/kern/kern_clock.c). The counters are statistics-clock ticks (<c>stathz</c> a second), in
/// the order <c>CP_USER CP_NICE CP_SYS CP_INTR CP_IDLE</c> (sys/sys/resource.h).
/// </summary>
internal static class FreeBsdCpuTimes
{
    /// <summary>sys/sys/resource.h <c>CPUSTATES</c>.</summary>
    private const int CpuStates = 5;

    public static CpuTimesSummary Read(FreeBsdKernelReader k, FreeBsdSystemWalker system)
    {
        var (max, pcpus) = system.PcpuTable();
        int longSize = k.IntegerSize("long", k.PointerSize);
        var member = k.Types.GetMember("pcpu.pc_cp_time");
        if (member.Size != CpuStates * longSize)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"{k.Types.Source}: pcpu.pc_cp_time is {member.Size} bytes, not CPUSTATES ({CpuStates}) longs");
        }

        int? hz = StatHz(k);
        var rows = new List<CpuTimes>(max);
        var sum = new long[CpuStates];
        for (int cpu = 0; cpu < max; cpu++)
        {
            var ticks = new long[CpuStates];
            if (pcpus[cpu] != 0)
            {
                var pcpu = k.ReadStruct("pcpu", pcpus[cpu]);
                for (int i = 0; i < CpuStates; i++)
                {
                    ticks[i] = k.Int(pcpu, $"pcpu.pc_cp_time[{i}]");
                    sum[i] = unchecked(sum[i] + ticks[i]);
                }
            }

            rows.Add(Row(cpu, pcpus[cpu] != 0, ticks, hz));
        }

        // kvm_cptime.c: "If this kernel has a cp_time[] symbol, then just read that."
        if (k.Symbol("cp_time") is { } global)
        {
            for (int i = 0; i < CpuStates; i++)
            {
                sum[i] = k.ReadInteger(global + (ulong)(i * longSize), longSize, signed: true);
            }
        }

        string? note = hz is null ? "stathz is unknown or not positive: the nanosecond figures are 0; the cp_time ticks are the kernel's" : null;
        return new CpuTimesSummary(rows, Row(-1, true, sum, hz), CpuIdleSource.StatClock, null, note) { StatClockHz = hz };
    }

    private static CpuTimes Row(int cpu, bool online, long[] ticks, int? hz)
    {
        ulong Nanoseconds(long count) => hz is { } rate && count > 0 ? (ulong)UInt128.Min((UInt128)(ulong)count * 1_000_000_000UL / (ulong)rate, ulong.MaxValue) : 0;

        return new CpuTimes(
            cpu,
            online,
            Nanoseconds(ticks[(int)CpuState.User]),
            Nanoseconds(ticks[(int)CpuState.Nice]),
            Nanoseconds(ticks[(int)CpuState.System]),
            Nanoseconds(ticks[(int)CpuState.Idle]),
            0,
            Nanoseconds(ticks[(int)CpuState.Interrupt]),
            0,
            0,
            0,
            0)
        { StatClockTicks = ticks };
    }

    /// <summary>sys/kern/kern_clock.c <c>int stathz</c>, when readable and positive.</summary>
    private static int? StatHz(FreeBsdKernelReader k)
    {
        if (k.Symbol("stathz") is not { } address)
        {
            return null;
        }

        try
        {
            long hz = k.ReadInteger(address, 4, signed: true);
            return hz > 0 ? (int)hz : null;
        }
        catch (MemoryFaultException)
        {
            return null;
        }
    }
}
