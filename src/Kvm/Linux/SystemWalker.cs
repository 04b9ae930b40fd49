using System.Buffers.Binary;

namespace Kvm.Linux;

/// <summary>Load average, clocks and CPUs: globals whose types the kernel's BTF does not carry (formats.md §6.5).</summary>
internal sealed class SystemWalker
{
    // include/linux/sched/loadavg.h: avenrun is fixed point with FSHIFT 11 bits of fraction.
    private const double FixedOne = 1 << 11;

    // include/linux/threads.h: NR_CPUS is at most 8192 on x86-64 (CONFIG_MAXSMP), 4096 on arm64.
    private const int MaxCpus = 8192;

    private readonly LinuxKernel _k;
    private ulong[]? _offsets;

    /// <summary>Creates the walker.</summary>
    public SystemWalker(LinuxKernel kernel) => _k = kernel;

    /// <summary>Reads <c>unsigned long avenrun[3]</c>.</summary>
    public LoadAverage LoadAverage()
    {
        ulong avenrun = _k.RequireSymbol(KernelGlobals.Avenrun.Name);
        var raw = _k.ReadULongs(avenrun, 3, "avenrun");
        double Value(int i) => raw[i] / FixedOne;
        int? threads = _k.Symbol(KernelGlobals.NrThreads.Name) is { } nt ? _k.ReadI32(nt, "nr_threads") : null;
        return new LoadAverage(Value(0), Value(1), Value(2), threads);
    }

    /// <summary>Reads the kernel's clocks from the timekeeper: uptime, wall time and boot time.</summary>
    public KernelClock Clock()
    {
        var (mono, boot, wall) = ReadTimekeeper();
        var uptime = TimeSpan.FromTicks((mono + boot) / 100);
        DateTimeOffset? wallTime = wall > 0 && wall < 253402300799 ? DateTimeOffset.FromUnixTimeSeconds(wall) : null;
        return new KernelClock(uptime, wallTime, wallTime - uptime, "tk_core.timekeeper");
    }

    /// <summary>
    /// CLOCK_MONOTONIC (what <c>ktime_get()</c> returns) at the dump, in nanoseconds, as of the timekeeper's last
    /// update: the clocksource cycles counted since that update are not in memory, so this is up to one tick behind.
    /// </summary>
    public long MonotonicNanoseconds() => ReadTimekeeper().Mono;

    /// <summary>
    /// Reads the timekeeper: <c>tk_core</c> is <c>struct { seqcount_raw_spinlock_t seq; struct timekeeper
    /// timekeeper; }</c> (kernel/time/timekeeping.c), an anonymous type, so the timekeeper's offset is the sequence
    /// counter's size rounded up to the timekeeper's alignment (its 64-bit members': 8 bytes, 4 on i386).
    /// </summary>
    private (long Mono, long Boot, long Wall) ReadTimekeeper()
    {
        var t = _k.Types;
        ulong tkCore = _k.RequireSymbol(KernelGlobals.TkCore.Name);
        if (t.TryGetField("timekeeper.tkr_mono", out var tkrMono) &&
            t.TryGetField("tk_read_base.base", out var monoBase) && t.TryGetField("timekeeper.offs_boot", out var offsBoot) &&
            t.TryGetField("timekeeper.xtime_sec", out var xtimeSec))
        {
            long seqSize = t.TryGetSize("seqcount_raw_spinlock_t", out long s) ? s : t.TryGetSize("seqcount_t", out long s2) ? s2 : 4;
            long align = _k.Int64Alignment;
            ulong tk = tkCore + (ulong)((seqSize + align - 1) & -align);
            long mono = unchecked((long)_k.ReadU64(tk + (ulong)tkrMono.Offset + (ulong)monoBase.Offset, "timekeeper.tkr_mono.base"));

            // base holds whole seconds plus wall_to_monotonic's nanoseconds; the rest of the current second is
            // xtime_nsec >> shift, which ktime_get() adds at read time (kernel/time/timekeeping.c).
            if (t.TryGetField("tk_read_base.xtime_nsec", out var xtimeNsec) && t.TryGetField("tk_read_base.shift", out var shift))
            {
                ulong nsec = _k.ReadU64(tk + (ulong)tkrMono.Offset + (ulong)xtimeNsec.Offset, "timekeeper.tkr_mono.xtime_nsec");
                int sh = (int)(_k.ReadU32(tk + (ulong)tkrMono.Offset + (ulong)shift.Offset, "timekeeper.tkr_mono.shift") & 63);
                mono += (long)(nsec >> sh);
            }

            long boot = unchecked((long)_k.ReadU64(tk + (ulong)offsBoot.Offset, "timekeeper.offs_boot"));
            long wall = unchecked((long)_k.ReadU64(tk + (ulong)xtimeSec.Offset, "timekeeper.xtime_sec"));
            return (mono, boot, wall);
        }

        throw new KvmException(KvmErrorCode.KernelType, "uptime: the kernel's timekeeper (tk_core, struct timekeeper) is not described by the type information available");
    }

    /// <summary>Reads the CPU count, masks, per-CPU offsets and the task current on each CPU.</summary>
    public CpuSummary Cpus()
    {
        int nrCpuIds = _k.ReadI32(_k.RequireSymbol(KernelGlobals.NrCpuIds.Name), "nr_cpu_ids");
        if (nrCpuIds <= 0 || nrCpuIds > MaxCpus)
        {
            throw new CorruptImageException($"nr_cpu_ids is {nrCpuIds}, outside 1..{MaxCpus}");
        }

        var offsets = PerCpuOffsets(nrCpuIds);
        byte[] online = _k.Symbol(KernelGlobals.CpuOnlineMask.Name) is { } m ? _k.ReadBytes(m, Bitmap.Bytes(nrCpuIds, _k.PointerSize), "__cpu_online_mask") : [];
        var cpus = new List<CpuInfo>(nrCpuIds);
        ulong? current = CurrentTaskAddress(out long currentFieldOffset);
        // The current task's name is a bonus: without task_struct in the types, CPUs are still listed.
        var pid = _k.Types.OptionalField("task_struct.pid");
        var comm = _k.Types.OptionalField("task_struct.comm");
        for (int cpu = 0; cpu < nrCpuIds; cpu++)
        {
            bool isOnline = online.Length == 0 ? cpu == 0 : (online[cpu >> 3] & (1 << (cpu & 7))) != 0;
            ulong task = 0;
            int? taskPid = null;
            string? taskComm = null;
            // A corrupt offset wraps around 2^64 here, and the read then fails quietly like any bad address.
            if (current is { } cur && isOnline && _k.TryReadPointer(_k.AddressAdd(cur, offsets[cpu] + (ulong)currentFieldOffset), out task) && task != 0 && pid is { } pidField && comm is { } commField)
            {
                try
                {
                    taskPid = _k.ReadI32(task + (ulong)pidField.Offset, "current task pid");
                    taskComm = _k.ReadCString(task + (ulong)commField.Offset, 16);
                }
                catch (KvmException)
                {
                    taskPid = null;
                }
            }

            cpus.Add(new CpuInfo(cpu, isOnline, offsets[cpu], task, taskPid, taskComm));
        }

        return new CpuSummary(nrCpuIds, cpus.Count(c => c.IsOnline), cpus);
    }

    /// <summary>Reads <c>__per_cpu_offset[0 .. count)</c>; a uniprocessor kernel without it has offset 0.</summary>
    public ulong[] PerCpuOffsets(int count)
    {
        if (_k.Symbol(KernelGlobals.PerCpuOffset.Name) is not { } table)
        {
            return new ulong[count];
        }

        return _k.ReadULongs(table, count, "__per_cpu_offset");
    }

    /// <summary>The address of a per-CPU variable for <paramref name="cpu"/>: its symbol plus the CPU's offset.</summary>
    public ulong PerCpuAddress(ulong symbolAddress, int cpu)
    {
        // nr_cpu_ids and __per_cpu_offset are fixed once the kernel has booted: read them once per image.
        if (_offsets is null)
        {
            int nrCpuIds = _k.ReadI32(_k.RequireSymbol(KernelGlobals.NrCpuIds.Name), "nr_cpu_ids");
            if (nrCpuIds <= 0 || nrCpuIds > MaxCpus)
            {
                throw new CorruptImageException($"nr_cpu_ids is {nrCpuIds}, outside 1..{MaxCpus}");
            }

            _offsets = PerCpuOffsets(nrCpuIds);
        }

        if (cpu < 0 || cpu >= _offsets.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"CPU {cpu} is not below nr_cpu_ids ({_offsets.Length})");
        }

        // Wrapping: a corrupt offset gives a wrapped address, whose read then faults with a clear error; an i386
        // offset below the static per-CPU section is "negative" and wraps at 32 bits, as the kernel's addition does.
        return _k.AddressAdd(symbolAddress, _offsets[cpu]);
    }

    // x86-64: Linux 6.2 gathered the hot per-CPU variables into struct pcpu_hot (current_task among them); before,
    // the per-CPU variable current_task held the pointer directly. arm64 keeps current in SP_EL0 and a per-CPU copy in
    // __entry_task. Elsewhere, the run queue's curr (kernel/sched/sched.h, struct rq) names it on every architecture.
    private ulong? CurrentTaskAddress(out long fieldOffset)
    {
        fieldOffset = 0;
        if (_k.Symbol(KernelGlobals.PcpuHot.Name) is { } hot && _k.Types.TryGetField("pcpu_hot.current_task", out var f))
        {
            fieldOffset = f.Offset;
            return hot;
        }

        if ((_k.Symbol(KernelGlobals.CurrentTask.Name) ?? _k.Symbol(KernelGlobals.EntryTask.Name)) is { } perCpu)
        {
            return perCpu;
        }

        if (_k.Symbol(KernelGlobals.Runqueues.Name) is { } rq && _k.Types.TryGetField("rq.curr", out var curr))
        {
            fieldOffset = curr.Offset;
            return rq;
        }

        return null;
    }
}
