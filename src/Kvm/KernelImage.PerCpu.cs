namespace Kvm;

/// <summary>Per-CPU offsets, per-CPU allocations and <c>counter(9)</c>-style counters: <c>kvm_dpcpu_setcpu</c>, <c>kvm_read_zpcpu</c>, <c>kvm_counter_u64_fetch</c>.</summary>
public sealed partial class KernelImage
{
    /// <summary>
    /// The per-CPU offsets, indexed by CPU id: Linux's <c>__per_cpu_offset[0 .. nr_cpu_ids)</c>; FreeBSD's
    /// <c>dpcpu_off[0 .. mp_maxcpus)</c>, 0 for a CPU that does not exist (what <c>kvm_dpcpu_setcpu</c> checks).
    /// </summary>
    /// <exception cref="SymbolNotFoundException">A symbol the offsets need is unknown (the exception names it).</exception>
    public IReadOnlyList<ulong> GetPerCpuOffsets()
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdDpcpu().Offsets;
        }

        return [.. GetCpus().Cpus.Select(c => c.PerCpuOffset)];
    }

    /// <summary>
    /// The address of CPU <paramref name="cpu"/>'s copy of a per-CPU allocation at <paramref name="address"/>, as
    /// <c>kvm_read_zpcpu</c> reads it. Linux: an <c>alloc_percpu</c> pointer, placed as
    /// <see cref="GetPerCpuAddress(ulong, int)"/> places it. FreeBSD: an allocation of a <c>UMA_ZONE_PCPU</c> zone
    /// (a <c>counter_u64_t</c>, for one), at <paramref name="address"/> + <c>zpcpu_offset_cpu(cpu)</c> — the CPU's
    /// <c>pc_zpcpu_offset</c> (FreeBSD 13 and later; on amd64 it includes the <c>__pcpu</c> base the kernel's
    /// allocations are offsets from), else <c>PAGE_SIZE × cpu</c> (FreeBSD 12's <c>UMA_PCPU_ALLOC_SIZE</c>); needs the
    /// kernel's CTF.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpu"/> is not below <c>nr_cpu_ids</c> (FreeBSD: <c>mp_maxcpus</c>).</exception>
    public ulong GetPerCpuAllocationAddress(ulong address, int cpu)
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdZones("FreeBSD per-CPU allocations (pc_zpcpu_offset)").Address(address, cpu);
        }

        return GetPerCpuAddress(address, cpu);
    }

    /// <summary>
    /// The value of the 64-bit per-CPU counter whose per-CPU allocation is at <paramref name="address"/>
    /// (<c>kvm_counter_u64_fetch</c>): the sum, wrapping at 64 bits, of every CPU's copy. Linux: every possible CPU
    /// (below <c>nr_cpu_ids</c>), copies placed by <see cref="GetPerCpuAddress(ulong, int)"/>. FreeBSD: as the kernel's
    /// <c>counter_u64_fetch</c> sums a <c>counter_u64_t</c> — every CPU in <c>all_cpus</c> (<c>CPU_FOREACH</c>), copies
    /// placed by <see cref="GetPerCpuAllocationAddress"/>.
    /// </summary>
    /// <exception cref="MemoryFaultException">A CPU's copy cannot be read.</exception>
    public ulong ReadPerCpuCounter(ulong address)
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdZones("FreeBSD counter(9) values (pc_zpcpu_offset)").Counter(address);
        }

        ulong sum = 0;
        int max = GetCpus().MaxCpus;
        for (int cpu = 0; cpu < max; cpu++)
        {
            sum = unchecked(sum + Read<ulong>(GetPerCpuAddress(address, cpu)));
        }

        return sum;
    }
}
