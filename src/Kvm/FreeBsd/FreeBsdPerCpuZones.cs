namespace Kvm.FreeBsd;

/// <summary>
/// Per-CPU allocations of a FreeBSD kernel (UMA's <c>UMA_ZONE_PCPU</c> zones, which back <c>counter(9)</c>): CPU
/// <c>i</c>'s copy of the allocation at <c>base</c> is at <c>base + zpcpu_offset_cpu(i)</c> (sys/sys/pcpu.h
/// <c>zpcpu_get_cpu</c>). FreeBSD 12 defines <c>zpcpu_offset_cpu(i)</c> as <c>UMA_PCPU_ALLOC_SIZE * i</c>
/// (<c>UMA_PCPU_ALLOC_SIZE</c> is <c>PAGE_SIZE</c>); FreeBSD 13 and later keep each CPU's value in its
/// <c>struct pcpu</c> as <c>pc_zpcpu_offset</c> (sys/kern/subr_pcpu.c <c>pcpu_init</c>), which on amd64 also adds
/// <c>&amp;__pcpu[0]</c> because the kernel hands out the allocations as offsets from it (sys/amd64/include/pcpu.h
/// <c>zpcpu_base_to_offset</c>). So the kernel's own <c>pc_zpcpu_offset</c> is used when its CTF has the member, else
/// the FreeBSD 12 formula.
/// </summary>
/// <remarks>
/// lib/libkvm/kvm_pcpu.c <c>kvm_read_zpcpu</c> adds <c>sizeof(struct pcpu) * cpu</c>, which equals
/// <c>UMA_PCPU_ALLOC_SIZE * cpu</c> on x86 (sys/sys/pcpu.h asserts it) but not on arm64, and misses the amd64
/// <c>__pcpu</c> base of FreeBSD 13 and later; the kernel's own offsets are what its counters use. Its
/// <c>kvm_counter_u64_fetch</c> sums CPUs <c>0 .. mp_ncpus − 1</c>; the kernel's <c>counter_u64_fetch</c>
/// (sys/amd64/include/counter.h and the other <c>counter.h</c>) sums <c>CPU_FOREACH</c>, every CPU in <c>all_cpus</c>,
/// which is what is summed here: the two differ only when the CPU ids have holes.
/// </remarks>
internal sealed class FreeBsdPerCpuZones
{
    private readonly FreeBsdKernelReader _k;
    private readonly FreeBsdSystemWalker _system;
    private readonly ulong _pageSize;

    public FreeBsdPerCpuZones(FreeBsdKernelReader kernel, FreeBsdSystemWalker system, int pageSize)
    {
        _k = kernel;
        _system = system;
        _pageSize = (ulong)pageSize;
    }

    /// <summary>The address of CPU <paramref name="cpu"/>'s copy of the per-CPU allocation at <paramref name="address"/>.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpu"/> is not below <c>mp_maxcpus</c>.</exception>
    public ulong Address(ulong address, int cpu)
    {
        var (offsets, _) = Offsets();
        if (cpu < 0 || cpu >= offsets.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"CPU {cpu} is not below mp_maxcpus ({offsets.Length})");
        }

        return FreeBsdDynamicPerCpu.Add(address, offsets[cpu], _k.PointerSize);
    }

    /// <summary>
    /// The value of the <c>counter_u64_t</c> whose per-CPU allocation is at <paramref name="address"/>: the sum, wrapping
    /// as <c>uint64_t</c> does, of every present CPU's 64-bit copy (<c>counter_u64_fetch</c>).
    /// </summary>
    /// <exception cref="MemoryFaultException">A CPU's copy cannot be read (the message names the CPU's address).</exception>
    public ulong Counter(ulong address)
    {
        var (offsets, present) = Offsets();
        ulong sum = 0;
        foreach (int cpu in present)
        {
            ulong copy = FreeBsdDynamicPerCpu.Add(address, offsets[cpu], _k.PointerSize);
            sum = unchecked(sum + (ulong)_k.ReadInteger(copy, 8, signed: false));
        }

        return sum;
    }

    /// <summary>Every CPU id's <c>zpcpu_offset_cpu</c>, and the present CPUs (<c>CPU_FOREACH</c> order).</summary>
    private (ulong[] Offsets, List<int> Present) Offsets()
    {
        var (max, pcpus) = _system.PcpuTable();
        var present = Enumerable.Range(0, max).Where(c => pcpus[c] != 0).ToList();
        var offsets = new ulong[max];
        if (!_k.Types.TryGetMember("pcpu.pc_zpcpu_offset", out var member))
        {
            for (int cpu = 0; cpu < max; cpu++)
            {
                offsets[cpu] = _pageSize * (ulong)cpu;
            }

            return (offsets, present);
        }

        foreach (int cpu in present)
        {
            offsets[cpu] = _k.PointerAt(_k.ReadStruct("pcpu", pcpus[cpu]), member);
        }

        // An absent CPU has no struct pcpu to say it; zpcpu_offset_cpu is linear in the CPU id on every architecture,
        // so its value follows from any present CPU's.
        if (present.Count > 0)
        {
            int known = present[0];
            ulong origin = unchecked(offsets[known] - (_pageSize * (ulong)known));
            for (int cpu = 0; cpu < max; cpu++)
            {
                if (pcpus[cpu] == 0)
                {
                    offsets[cpu] = unchecked(origin + (_pageSize * (ulong)cpu));
                }
            }
        }

        return (offsets, present);
    }
}
