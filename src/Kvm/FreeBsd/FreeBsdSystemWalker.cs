using System.Buffers.Binary;

namespace Kvm.FreeBsd;

/// <summary>
/// A FreeBSD kernel's load average, clocks and CPUs, read from the globals FreeBSD's own libkvm reads on a core, with
/// layouts from the kernel's CTF: <c>averunnable</c> and <c>fscale</c> (lib/libkvm/kvm_getloadavg.c),
/// <c>mp_maxcpus</c>, <c>mp_ncpus</c>, <c>all_cpus</c> and <c>cpuid_to_pcpu</c> (lib/libkvm/kvm_pcpu.c), and
/// <c>time_uptime</c>, <c>time_second</c> and the boot time (sys/kern/kern_tc.c).
/// </summary>
internal sealed class FreeBsdSystemWalker
{
    /// <summary>
    /// Most CPU ids accepted from <c>mp_maxcpus</c>: FreeBSD's <c>MAXCPU</c> is at most 1024 (amd64, arm64 in 14;
    /// sys/amd64/include/param.h), and cpuset_t's <c>CPU_MAXSIZE</c> bounds it; anything far beyond is corruption.
    /// </summary>
    private const int MaxCpuIds = 65536;

    private readonly FreeBsdKernelReader _k;

    public FreeBsdSystemWalker(FreeBsdKernelReader kernel) => _k = kernel;

    /// <summary>
    /// Reads <c>struct loadavg averunnable</c> (sys/sys/resource.h: <c>fixpt_t ldavg[3]; long fscale;</c>); the
    /// global <c>int fscale</c>, when readable, gives the scale instead, as kvm_getloadavg.c takes it.
    /// </summary>
    /// <remarks>FreeBSD keeps no count of threads; <see cref="LoadAverage.TotalThreads"/> is null.</remarks>
    public LoadAverage LoadAverage()
    {
        ulong averunnable = _k.RequireSymbol("averunnable");
        var loadavg = _k.ReadStruct("loadavg", averunnable);
        long scale = _k.Int(loadavg, "loadavg.fscale");
        if (_k.Symbol("fscale") is { } fscale && TryReadInteger(fscale, 4, signed: true, out long global))
        {
            scale = global;
        }

        if (scale <= 0)
        {
            throw new CorruptImageException($"averunnable.fscale (or fscale) is {scale}: the load average's fixed-point scale must be positive (FSCALE is 2048)");
        }

        double Value(int i) => (_k.Int(loadavg, $"loadavg.ldavg[{i}]") & 0xffffffff) / (double)scale;
        return new LoadAverage(Value(0), Value(1), Value(2), null);
    }

    /// <summary>
    /// The uptime is <c>time_uptime</c> (whole seconds, as the kernel counts them at each tick), the wall time
    /// <c>time_second</c>; the boot time is <c>timehands->th_boottime</c> (a <c>struct bintime</c>, FreeBSD 12 and
    /// later), else the global <c>boottimebin</c> (FreeBSD 11) or <c>boottime</c> (a <c>struct timeval</c>, before),
    /// else the wall time less the uptime.
    /// </summary>
    public KernelClock Clock()
    {
        // time_t is 64 bits on every FreeBSD architecture but i386 (sys/i386/include/_types.h: typedef __int32_t
        // __time_t), the only 4-byte-pointer one read here: the pointer size stands in when the CTF lacks time_t.
        int timeSize = _k.IntegerSize("time_t", _k.PointerSize);
        ulong uptimeAddress = _k.RequireSymbol("time_uptime");
        long seconds = _k.ReadInteger(uptimeAddress, timeSize, signed: true);
        if (seconds < 0)
        {
            throw new CorruptImageException($"time_uptime is {seconds}: an uptime cannot be negative");
        }

        var uptime = TimeSpan.FromSeconds(Math.Min(seconds, (long)TimeSpan.MaxValue.TotalSeconds - 1));
        DateTimeOffset? wall = null;
        var sources = new List<string> { "time_uptime" };
        if (_k.Symbol("time_second") is { } timeSecond && TryReadInteger(timeSecond, timeSize, signed: true, out long now) && ToDate(now, 0) is { } date)
        {
            wall = date;
            sources.Add("time_second");
        }

        DateTimeOffset? boot = BootTime(out string? bootSource);
        if (boot is not null)
        {
            sources.Add(bootSource!);
        }
        else if (wall is { } w)
        {
            boot = w - uptime;
        }

        wall ??= boot + uptime;
        return new KernelClock(uptime, wall, boot, string.Join(", ", sources));
    }

    /// <summary>
    /// The CPUs as kvm_pcpu.c sees them: <see cref="CpuSummary.MaxCpus"/> is <c>mp_maxcpus</c> (<c>mp_maxid + 1</c>
    /// on a kernel without it; <c>kvm_getmaxcpu</c>), <see cref="CpuSummary.OnlineCpus"/> is <c>mp_ncpus</c>
    /// (<c>kvm_getncpus</c>), and CPU <c>i</c> is present when <c>cpuid_to_pcpu[i]</c> is set and, where the kernel
    /// has it, <c>all_cpus</c> holds <c>i</c> (CPU ids may have holes). Each present CPU's <c>struct pcpu</c> gives
    /// <c>pc_dynamic</c> (the CPU's offset for DPCPU variables, as <see cref="CpuInfo.PerCpuOffset"/>) and
    /// <c>pc_curthread</c>, whose <c>td_tid</c>, and <c>td_proc</c>'s <c>p_pid</c> and <c>p_comm</c>, name what ran.
    /// </summary>
    public CpuSummary Cpus()
    {
        var table = PcpuTable();
        int? ncpus = _k.Symbol("mp_ncpus") is { } n && TryReadInteger(n, 4, signed: true, out long value) ? (int)value : null;
        var cpus = new List<CpuInfo>(table.MaxCpus);
        for (int cpu = 0; cpu < table.MaxCpus; cpu++)
        {
            cpus.Add(table.Pcpus[cpu] is var pcpu && pcpu == 0 ? new CpuInfo(cpu, false, 0, 0, null, null) : ReadCpu(cpu, pcpu));
        }

        int online = cpus.Count(c => c.IsOnline);
        if (ncpus is { } count && (count <= 0 || count > table.MaxCpus))
        {
            throw new CorruptImageException($"mp_ncpus is {count}, outside 1..mp_maxcpus ({table.MaxCpus})");
        }

        return new CpuSummary(table.MaxCpus, ncpus ?? online, cpus);
    }

    /// <summary>
    /// <c>mp_maxcpus</c> and, for each CPU id below it, the address of its <c>struct pcpu</c>: <c>cpuid_to_pcpu[i]</c>,
    /// or 0 where that is NULL or, on a kernel with <c>all_cpus</c>, the set lacks <c>i</c> (sys/sys/smp.h
    /// <c>CPU_ABSENT</c>: what <c>CPU_FOREACH</c> skips).
    /// </summary>
    public (int MaxCpus, ulong[] Pcpus) PcpuTable()
    {
        ulong table = _k.RequireSymbol("cpuid_to_pcpu");
        int max = MaxCpuId();
        byte[]? allCpus = AllCpus();
        var pointers = new byte[max * _k.PointerSize];
        _k.ReadExactly(table, pointers);
        var pcpus = new ulong[max];
        for (int cpu = 0; cpu < max; cpu++)
        {
            ulong pcpu = _k.PointerSize == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(pointers.AsSpan(cpu * 8)) : BinaryPrimitives.ReadUInt32LittleEndian(pointers.AsSpan(cpu * 4));
            bool listed = allCpus is null || (cpu >> 3 < allCpus.Length && (allCpus[cpu >> 3] & (1 << (cpu & 7))) != 0);
            pcpus[cpu] = listed ? pcpu : 0;
        }

        return (max, pcpus);
    }

    private CpuInfo ReadCpu(int cpu, ulong address)
    {
        var pcpu = _k.ReadStruct("pcpu", address);
        ulong offset = _k.Types.TryGetMember("pcpu.pc_dynamic", out var dynamic) ? _k.PointerAt(pcpu, dynamic) : 0;
        ulong thread = _k.Pointer(pcpu, "pcpu.pc_curthread");
        int? tid = null, pid = null;
        string? command = null;
        if (thread != 0)
        {
            // What ran is a bonus, as on Linux: a thread that cannot be read leaves the CPU listed.
            try
            {
                var td = _k.ReadStruct("thread", thread);
                tid = (int)_k.Int(td, "thread.td_tid");
                if (_k.Pointer(td, "thread.td_proc") is var proc && proc != 0)
                {
                    var p = _k.ReadStruct("proc", proc);
                    pid = (int)_k.Int(p, "proc.p_pid");
                    command = System.Text.Encoding.UTF8.GetString(_k.Text(p, "proc.p_comm"));
                }
            }
            catch (KvmException)
            {
                pid = null;
                command = null;
            }
        }

        return new CpuInfo(cpu, true, offset, thread, pid, command) { CurrentThreadId = tid };
    }

    /// <summary><c>mp_maxcpus</c>, else <c>mp_maxid + 1</c> (sys/kern/subr_smp.c sets one from the other).</summary>
    private int MaxCpuId()
    {
        long max;
        string name;
        if (_k.Symbol("mp_maxcpus") is { } maxcpus)
        {
            max = _k.ReadInteger(maxcpus, 4, signed: true);
            name = "mp_maxcpus";
        }
        else if (_k.Symbol("mp_maxid") is { } maxid)
        {
            max = _k.ReadInteger(maxid, 4, signed: false) + 1;
            name = "mp_maxid + 1";
        }
        else
        {
            throw new SymbolNotFoundException("mp_maxcpus");
        }

        if (max <= 0 || max > MaxCpuIds)
        {
            throw new CorruptImageException($"{name} is {max}, outside 1..{MaxCpuIds}");
        }

        return (int)max;
    }

    /// <summary>The bytes of <c>cpuset_t all_cpus</c> (a bitset of longs, little-endian: bit i is byte i/8, bit i%8), or null.</summary>
    private byte[]? AllCpus()
    {
        if (_k.Symbol("all_cpus") is not { } address)
        {
            return null;
        }

        long size = _k.Types.TryGetSize("cpuset_t", out long s) ? s : _k.StructSize("_cpuset");
        if (size <= 0 || size > 1 << 16)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"{_k.Types.Source}: cpuset_t of {size} bytes is not a plausible size");
        }

        var bytes = new byte[size];
        _k.ReadExactly(address, bytes);
        return bytes;
    }

    private DateTimeOffset? BootTime(out string? source)
    {
        source = null;
        if (_k.Symbol("timehands") is { } timehands && _k.Types.TryGetMember("timehands.th_boottime", out var member))
        {
            ulong th = _k.ReadPointer(timehands);
            if (th != 0)
            {
                var hands = _k.ReadStruct("timehands", th);
                var bintime = hands.AsSpan((int)member.Offset, (int)member.Size).ToArray();
                source = "timehands->th_boottime";
                return BinTime(bintime);
            }
        }

        if (_k.Symbol("boottimebin") is { } boottimebin)
        {
            source = "boottimebin";
            return BinTime(_k.ReadStruct("bintime", boottimebin));
        }

        if (_k.Symbol("boottime") is { } boottime)
        {
            var timeval = _k.ReadStruct("timeval", boottime);
            source = "boottime";
            return ToDate(_k.Int(timeval, "timeval.tv_sec"), _k.Int(timeval, "timeval.tv_usec") * 10);
        }

        return null;
    }

    /// <summary>A <c>struct bintime</c> (sys/sys/time.h: <c>time_t sec; uint64_t frac;</c>, the fraction in units of 2^-64 s).</summary>
    private DateTimeOffset? BinTime(byte[] data)
    {
        long sec = _k.Int(data, "bintime.sec");
        ulong frac = unchecked((ulong)_k.Int(data, "bintime.frac"));
        return ToDate(sec, (long)(((UInt128)frac * TimeSpan.TicksPerSecond) >> 64));
    }

    private static DateTimeOffset? ToDate(long seconds, long ticks) =>
        seconds > 0 && seconds < 253402300799 && ticks is >= 0 and < TimeSpan.TicksPerSecond
            ? DateTimeOffset.FromUnixTimeSeconds(seconds).AddTicks(ticks)
            : null;

    private bool TryReadInteger(ulong address, int size, bool signed, out long value)
    {
        try
        {
            value = _k.ReadInteger(address, size, signed);
            return true;
        }
        catch (MemoryFaultException)
        {
            value = 0;
            return false;
        }
    }
}
