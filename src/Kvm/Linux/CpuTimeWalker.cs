using System.Buffers.Binary;

namespace Kvm.Linux;

/// <summary>
/// CPU time counters as the kernel's <c>/proc/stat</c> prints them (fs/proc/stat.c <c>show_stat</c>, Linux 6.1): for
/// every possible CPU the per-CPU <c>kernel_cpustat</c>, with idle and iowait of online CPUs taken from the NO_HZ sleep
/// times of the per-CPU <c>tick_cpu_sched</c> when NO_HZ is active (<c>get_idle_time</c>, <c>get_iowait_time</c>).
/// Per-CPU offsets and the online mask come from <see cref="SystemWalker"/>; field offsets and enumerators are resolved
/// once, when the walker is created.
/// </summary>
internal sealed class CpuTimeWalker
{
    // kernel/time/tick-sched.h, 6.9+: TS_FLAG_IDLE_ACTIVE, the bit of tick_sched.flags that replaced idle_active.
    private const ulong TsFlagIdleActive = 1UL << 2;

    private const long NanosecondsPerMicrosecond = 1000;

    private readonly LinuxKernel _k;
    private readonly SystemWalker _system;
    private readonly FieldLayout _cpustat;
    private readonly long _cpustatBytes;
    private readonly int _user, _nice, _sys, _softIrq, _irq, _idle, _ioWait, _steal, _guest, _guestNice;
    private readonly FieldLayout? _idleSleeptime, _iowaitSleeptime, _idleEntrytime, _idleActive, _flags, _nrIowait;
    private readonly long _tickSchedBytes;
    private readonly string? _tickSchedMissing;

    /// <summary>Resolves the layouts; throws a <see cref="KvmException"/> naming what is missing from <c>kernel_cpustat</c>.</summary>
    public CpuTimeWalker(LinuxKernel kernel, SystemWalker system)
    {
        _k = kernel;
        _system = system;
        var t = kernel.Types;

        // struct kernel_cpustat { u64 cpustat[NR_STATS]; } (include/linux/kernel_stat.h). BTF gives the array's size;
        // a VMCOREINFO OFFSET() does not, and then the structure's size bounds it.
        _cpustat = t.Field("kernel_cpustat.cpustat");
        _cpustatBytes = _cpustat.Size > 0 ? _cpustat.Size : t.Size("kernel_cpustat") - _cpustat.Offset;

        // enum cpu_usage_stat: in this order since 3.2 (CPUTIME_FORCEIDLE, 5.14 with CONFIG_SCHED_CORE, comes after
        // GUEST_NICE); the BTF's values are used when it has them.
        _user = Index(t, "CPUTIME_USER", 0);
        _nice = Index(t, "CPUTIME_NICE", 1);
        _sys = Index(t, "CPUTIME_SYSTEM", 2);
        _softIrq = Index(t, "CPUTIME_SOFTIRQ", 3);
        _irq = Index(t, "CPUTIME_IRQ", 4);
        _idle = Index(t, "CPUTIME_IDLE", 5);
        _ioWait = Index(t, "CPUTIME_IOWAIT", 6);
        _steal = Index(t, "CPUTIME_STEAL", 7);
        _guest = Index(t, "CPUTIME_GUEST", 8);
        _guestNice = Index(t, "CPUTIME_GUEST_NICE", 9);

        // struct tick_sched (kernel/time/tick-sched.h): ktime_t (s64 nanoseconds) sleep times and idle entry time.
        // idle_active is a one-bit bitfield up to 6.8; 6.9 folded the bitfields into tick_sched.flags.
        _idleSleeptime = t.OptionalField("tick_sched.idle_sleeptime");
        _iowaitSleeptime = t.OptionalField("tick_sched.iowait_sleeptime");
        _idleEntrytime = t.OptionalField("tick_sched.idle_entrytime");
        _idleActive = t.OptionalField("tick_sched.idle_active");
        _flags = _idleActive is null ? t.OptionalField("tick_sched.flags") : null;
        var missing = new List<string>();
        foreach (var (field, name) in new[] { (_idleSleeptime, "idle_sleeptime"), (_iowaitSleeptime, "iowait_sleeptime"), (_idleEntrytime, "idle_entrytime"), (_idleActive ?? _flags, "idle_active / flags") })
        {
            if (field is null)
            {
                missing.Add($"tick_sched.{name}");
            }
        }

        _tickSchedMissing = missing.Count == 0 ? null : $"{string.Join(", ", missing)}: no such member in the kernel's type information ({t.Source})";
        _tickSchedBytes = t.TryGetSize("tick_sched", out long size) && size > 0
            ? size
            : new[] { _idleSleeptime, _iowaitSleeptime, _idleEntrytime, _idleActive, _flags }.Max(f => f is { } x ? x.Offset + 8 : 0);

        // nr_iowait_cpu(cpu) is atomic_read(&cpu_rq(cpu)->nr_iowait): it decides whether an idle period in progress
        // counts as idle or as iowait.
        _nrIowait = t.OptionalField("rq.nr_iowait");
    }

    /// <summary>Reads the counters of every possible CPU and their total.</summary>
    /// <exception cref="KvmException">A CPU's counters cannot be read (a bad per-CPU offset, memory missing from the dump) or are impossible.</exception>
    public CpuTimesSummary Read()
    {
        var cpus = _system.Cpus();
        ulong cpustat = _k.RequireSymbol(KernelGlobals.KernelCpustat.Name);
        byte[] possible = _k.Symbol(KernelGlobals.CpuPossibleMask.Name) is { } m ? _k.ReadBytes(m, Bitmap.Bytes(cpus.MaxCpus, _k.PointerSize), "__cpu_possible_mask") : [];
        var idle = IdleSetup(cpus);

        var rows = new List<CpuTimes>(cpus.Cpus.Count);
        foreach (var c in cpus.Cpus)
        {
            // for_each_possible_cpu: a CPU id below nr_cpu_ids can still be impossible, and then has no per-CPU area.
            if (possible.Length > 0 && (possible[c.Cpu >> 3] & (1 << (c.Cpu & 7))) == 0)
            {
                continue;
            }

            ulong at = _k.AddressAdd(cpustat, c.PerCpuOffset);
            var raw = _k.ReadBytes(at, _cpustatBytes, $"kernel_cpustat of CPU {c.Cpu}");
            ulong Stat(int index) => BinaryPrimitives.ReadUInt64LittleEndian(raw.AsSpan(index * 8));

            ulong idleNs = Stat(_idle), ioWaitNs = Stat(_ioWait);
            if (c.IsOnline && idle.TickSched is { } tickSched)
            {
                (idleNs, ioWaitNs) = SleepTimes(c, tickSched, idle.Runqueues, idle.Now);
            }

            rows.Add(new CpuTimes(c.Cpu, c.IsOnline, Stat(_user), Stat(_nice), Stat(_sys), idleNs, ioWaitNs, Stat(_irq), Stat(_softIrq), Stat(_steal), Stat(_guest), Stat(_guestNice)));
        }

        return new CpuTimesSummary(rows, Total(rows), idle.TickSched is null ? CpuIdleSource.CpuStat : CpuIdleSource.TickSched, idle.Now, idle.Note);
    }

    private int Index(IKernelTypes t, string enumerator, int fallback)
    {
        long value = t.EnumValue(enumerator, fallback);
        return value >= 0 && (value + 1) * 8 <= _cpustatBytes
            ? (int)value
            : throw new KvmException(KvmErrorCode.KernelType, $"{enumerator} is {value}, not an index into the {_cpustatBytes}-byte kernel_cpustat.cpustat ({t.Source})");
    }

    /// <summary>
    /// Decides, as <c>get_cpu_idle_time_us</c> does, whether the NO_HZ sleep times are usable: <c>tick_nohz_active</c> set
    /// (else <c>/proc/stat</c> itself uses cpustat), and here also the members and symbols needed to read them.
    /// </summary>
    private (ulong? TickSched, ulong? Runqueues, long? Now, string? Note) IdleSetup(CpuSummary cpus)
    {
        uint active;
        if (_k.Symbol(KernelGlobals.TickNohzActive.Name) is not { } activeSymbol)
        {
            // tick_nohz_idle_enter is a function of kernel/time/tick-sched.c built only with CONFIG_NO_HZ_COMMON, and
            // functions are in every kallsyms: without it the kernel has no NO_HZ (Debian's 686), /proc/stat reads
            // cpustat, and so do we, exactly. With it, only the data symbol is missing (kallsyms without
            // KALLSYMS_ALL and no System.map): the CPUs' own modes say the same, else cpustat is a noted fallback.
            if (_k.Symbol("tick_nohz_idle_enter") is null)
            {
                return (null, null, null, null);
            }

            if (AnyCpuInNohzMode(cpus) is not { } anyNohz)
            {
                return (null, null, null, "tick_nohz_active is not in the symbol table (give the kernel's System.map): idle and iowait are cpustat's, which stop counting while a CPU's tick is stopped");
            }

            active = anyNohz ? 1u : 0u;
        }
        else
        {
            try
            {
                active = _k.ReadU32(activeSymbol, "tick_nohz_active");
            }
            catch (MemoryFaultException e)
            {
                return (null, null, null, $"{e.Message}: idle and iowait are cpustat's");
            }
        }

        if ((active & 1) == 0)
        {
            return (null, null, null, null);
        }

        if (_tickSchedMissing is not null)
        {
            return (null, null, null, $"NO_HZ is active but {_tickSchedMissing}: idle and iowait are cpustat's, which stop counting while a CPU's tick is stopped");
        }

        if (_k.Symbol(KernelGlobals.TickCpuSched.Name) is not { } tickSched)
        {
            return (null, null, null, "NO_HZ is active but tick_cpu_sched is not in the symbol table (a namelist without static data symbols?): idle and iowait are cpustat's, which stop counting while a CPU's tick is stopped");
        }

        var notes = new List<string>();
        long? now = null;
        try
        {
            now = _system.MonotonicNanoseconds();
        }
        catch (KvmException e)
        {
            notes.Add($"the monotonic clock cannot be read ({e.Message}): idle periods in progress at the dump are left out");
        }

        ulong? runqueues = _nrIowait is null ? null : _k.Symbol(KernelGlobals.Runqueues.Name);
        if (runqueues is null)
        {
            string why = _nrIowait is null ? "rq.nr_iowait is not in the type information" : "runqueues is not in the symbol table";
            notes.Add($"{why}: an idle period in progress counts as idle, never as iowait");
        }

        return (tickSched, runqueues, now, notes.Count == 0 ? null : string.Join("; ", notes));
    }

    /// <summary>
    /// Whether some online CPU switched its tick to NO_HZ, which is exactly when <c>tick_nohz_active</c> is set:
    /// <c>tick_nohz_activate</c> sets the CPU's <c>tick_sched.nohz_mode</c> and the global's bit together
    /// (kernel/time/tick-sched.c, up to 6.8; 6.9 moved the mode into <c>tick_sched.flags</c>). Null when
    /// <c>tick_cpu_sched</c> or <c>nohz_mode</c> is unknown or unreadable.
    /// </summary>
    private bool? AnyCpuInNohzMode(CpuSummary cpus)
    {
        if (_k.Symbol(KernelGlobals.TickCpuSched.Name) is not { } tickSched || _k.Types.OptionalField("tick_sched.nohz_mode") is not { } mode)
        {
            return null;
        }

        try
        {
            // enum tick_nohz_mode: NOHZ_MODE_INACTIVE is 0.
            return cpus.Cpus.Where(c => c.IsOnline).Any(c => _k.ReadU32(_k.AddressAdd(tickSched, c.PerCpuOffset + (ulong)mode.Offset), $"tick_cpu_sched.nohz_mode of CPU {c.Cpu}") != 0);
        }
        catch (MemoryFaultException)
        {
            return null;
        }
    }

    /// <summary>
    /// <c>get_cpu_idle_time_us(cpu, NULL)</c> and <c>get_cpu_iowait_time_us(cpu, NULL)</c> in nanoseconds: the sleep
    /// times, plus, while the CPU is idle, the time since <c>idle_entrytime</c> added to iowait when tasks of the CPU
    /// wait for I/O and to idle otherwise; each truncated to microseconds as <c>ktime_to_us</c> does.
    /// </summary>
    private (ulong Idle, ulong IoWait) SleepTimes(CpuInfo c, ulong tickSched, ulong? runqueues, long? now)
    {
        ulong at = _k.AddressAdd(tickSched, c.PerCpuOffset);
        var ts = _k.ReadBytes(at, _tickSchedBytes, $"tick_cpu_sched of CPU {c.Cpu}");
        long idle = unchecked((long)LinuxKernel.Field(ts, _idleSleeptime!.Value, 8));
        long ioWait = unchecked((long)LinuxKernel.Field(ts, _iowaitSleeptime!.Value, 8));
        long entry = unchecked((long)LinuxKernel.Field(ts, _idleEntrytime!.Value, 8));
        if (idle < 0 || ioWait < 0 || entry < 0)
        {
            throw new CorruptImageException($"tick_cpu_sched of CPU {c.Cpu} at 0x{at:x}: idle_sleeptime {idle}, iowait_sleeptime {ioWait}, idle_entrytime {entry}: a ktime_t since boot cannot be negative");
        }

        bool idleActive = _idleActive is { } bit ? LinuxKernel.Field(ts, bit) != 0 : (LinuxKernel.Field(ts, _flags!.Value) & TsFlagIdleActive) != 0;
        ulong idleNs = (ulong)idle, ioWaitNs = (ulong)ioWait;
        if (idleActive && now is { } n)
        {
            // idle_entrytime came from ktime_get(), which counts clocksource cycles past the timekeeper's last update;
            // the dump's "now" does not, so an idle period that began after that update has not lasted measurably.
            ulong delta = n > entry ? (ulong)(n - entry) : 0;
            bool waitingForIo = runqueues is { } rq && _k.ReadI32(_k.AddressAdd(rq, c.PerCpuOffset + (ulong)_nrIowait!.Value.Offset), $"runqueues.nr_iowait of CPU {c.Cpu}") != 0;
            if (waitingForIo)
            {
                ioWaitNs += delta;
            }
            else
            {
                idleNs += delta;
            }
        }

        return (idleNs / NanosecondsPerMicrosecond * NanosecondsPerMicrosecond, ioWaitNs / NanosecondsPerMicrosecond * NanosecondsPerMicrosecond);
    }

    private static CpuTimes Total(List<CpuTimes> rows)
    {
        ulong Sum(Func<CpuTimes, ulong> field, string name)
        {
            UInt128 total = 0;
            foreach (var r in rows)
            {
                total += field(r);
            }

            return total <= ulong.MaxValue
                ? (ulong)total
                : throw new CorruptImageException($"the CPUs' {name} times add up to more than 2^64 nanoseconds (584 years): a corrupt kernel_cpustat");
        }

        return new CpuTimes(-1, true, Sum(r => r.User, "user"), Sum(r => r.Nice, "nice"), Sum(r => r.System, "system"), Sum(r => r.Idle, "idle"), Sum(r => r.IoWait, "iowait"),
            Sum(r => r.Irq, "irq"), Sum(r => r.SoftIrq, "softirq"), Sum(r => r.Steal, "steal"), Sum(r => r.Guest, "guest"), Sum(r => r.GuestNice, "guest_nice"));
    }
}
