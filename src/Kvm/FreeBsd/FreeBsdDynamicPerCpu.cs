using System.Buffers.Binary;

namespace Kvm.FreeBsd;

/// <summary>
/// A FreeBSD kernel's dynamic per-CPU (DPCPU) data as lib/libkvm/kvm_pcpu.c <c>_kvm_dpcpu_init</c> sets it up: the
/// linker set <c>set_pcpu</c> (<c>[__start_set_pcpu, __stop_set_pcpu)</c>), where every <c>DPCPU_DEFINE</c>d variable
/// lives under the name <c>pcpu_entry_NAME</c>, and <c>dpcpu_off[mp_maxcpus]</c>, the offset of each CPU's copy
/// (sys/sys/pcpu.h <c>DPCPU_ID_PTR</c>: the copy of CPU <c>i</c> is at <c>dpcpu_off[i]</c> + the variable's address;
/// 0 for a CPU that does not exist). Only symbols and plain words are read: no CTF is needed, as libkvm needs none.
/// </summary>
internal sealed class FreeBsdDynamicPerCpu
{
    /// <summary>sys/sys/pcpu.h <c>DPCPU_SYMPREFIX</c>.</summary>
    public const string SymbolPrefix = "pcpu_entry_";

    /// <summary>The most CPU ids accepted from <c>mp_maxcpus</c>, as <see cref="FreeBsdSystemWalker"/> bounds it.</summary>
    private const uint MaxCpuIds = 65536;

    private FreeBsdDynamicPerCpu(ulong start, ulong stop, ulong[] offsets)
    {
        Start = start;
        Stop = stop;
        Offsets = offsets;
    }

    /// <summary><c>__start_set_pcpu</c>.</summary>
    public ulong Start { get; }

    /// <summary><c>__stop_set_pcpu</c>.</summary>
    public ulong Stop { get; }

    /// <summary><c>dpcpu_off[0 .. mp_maxcpus)</c>.</summary>
    public IReadOnlyList<ulong> Offsets { get; }

    /// <summary>
    /// Reads the four things <c>_kvm_dpcpu_init</c> needs — <c>__start_set_pcpu</c>, <c>__stop_set_pcpu</c>,
    /// <c>dpcpu_off</c> and <c>mp_maxcpus</c> (an <c>u_int</c>; libkvm takes no <c>mp_maxid</c> fallback here) — and
    /// the <c>dpcpu_off</c> array itself.
    /// </summary>
    /// <exception cref="SymbolNotFoundException">One of the four symbols is missing (the exception names it).</exception>
    /// <exception cref="CorruptImageException"><c>mp_maxcpus</c> or the set's bounds are implausible.</exception>
    /// <exception cref="MemoryFaultException"><c>mp_maxcpus</c> or <c>dpcpu_off</c> cannot be read.</exception>
    public static FreeBsdDynamicPerCpu Load(Func<ulong, byte[], int> read, Func<string, ulong?> symbol, int pointerSize)
    {
        ulong Require(string name) => symbol(name) ?? throw new SymbolNotFoundException(name, "needed for DPCPU variables (lib/libkvm/kvm_pcpu.c _kvm_dpcpu_init)");

        ulong start = Require("__start_set_pcpu");
        ulong stop = Require("__stop_set_pcpu");
        ulong table = Require("dpcpu_off");
        ulong maxcpusAddress = Require("mp_maxcpus");
        if (stop < start)
        {
            throw new CorruptImageException($"__stop_set_pcpu (0x{stop:x}) lies below __start_set_pcpu (0x{start:x})");
        }

        uint maxcpus = BinaryPrimitives.ReadUInt32LittleEndian(ReadExactly(read, maxcpusAddress, 4, "mp_maxcpus"));
        if (maxcpus == 0 || maxcpus > MaxCpuIds)
        {
            throw new CorruptImageException($"mp_maxcpus is {maxcpus}, outside 1..{MaxCpuIds}");
        }

        var words = ReadExactly(read, table, (int)maxcpus * pointerSize, $"dpcpu_off[{maxcpus}]");
        var offsets = new ulong[maxcpus];
        for (int i = 0; i < offsets.Length; i++)
        {
            offsets[i] = pointerSize == 8
                ? BinaryPrimitives.ReadUInt64LittleEndian(words.AsSpan(i * 8))
                : BinaryPrimitives.ReadUInt32LittleEndian(words.AsSpan(i * 4));
        }

        return new FreeBsdDynamicPerCpu(start, stop, offsets);
    }

    /// <summary>True when <paramref name="value"/> lies in <c>[__start_set_pcpu, __stop_set_pcpu)</c>.</summary>
    public bool Contains(ulong value) => value >= Start && value < Stop;

    /// <summary>
    /// What <c>_kvm_dpcpu_validaddr</c> makes of a <c>pcpu_entry_</c> symbol's value with CPU <paramref name="cpu"/>
    /// chosen: inside the set, the value plus <c>dpcpu_off[cpu]</c> (0 for an absent CPU, as libkvm's
    /// <c>dpcpu_curoff</c> stays 0 when <c>kvm_dpcpu_setcpu(kd, 0)</c> finds no CPU 0); 0 and values outside, unchanged.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpu"/> is not below <c>mp_maxcpus</c>.</exception>
    public ulong ValidateAddress(ulong value, int cpu, int pointerSize)
    {
        if (cpu < 0 || cpu >= Offsets.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"CPU {cpu} is not below mp_maxcpus ({Offsets.Count})");
        }

        return value == 0 || !Contains(value) ? value : Add(value, Offsets[cpu], pointerSize);
    }

    /// <summary>
    /// The address of CPU <paramref name="cpu"/>'s copy of the DPCPU data at <paramref name="address"/>
    /// (<c>DPCPU_ID_PTR</c>): <paramref name="address"/> + <c>dpcpu_off[cpu]</c>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpu"/> is not below <c>mp_maxcpus</c>.</exception>
    /// <exception cref="ArgumentException">The CPU does not exist (<c>dpcpu_off[cpu]</c> is 0).</exception>
    public ulong Relocate(ulong address, int cpu, int pointerSize)
    {
        if (cpu < 0 || cpu >= Offsets.Count)
        {
            throw new ArgumentOutOfRangeException(nameof(cpu), cpu, $"CPU {cpu} is not below mp_maxcpus ({Offsets.Count})");
        }

        if (Offsets[cpu] == 0)
        {
            throw new ArgumentException($"CPU {cpu} not found: dpcpu_off[{cpu}] is 0 (the CPU does not exist)", nameof(cpu));
        }

        return Add(address, Offsets[cpu], pointerSize);
    }

    /// <summary>Adds as the kernel's <c>uintptr_t</c> does: wrapping at the pointer's width.</summary>
    internal static ulong Add(ulong address, ulong offset, int pointerSize)
    {
        ulong sum = unchecked(address + offset);
        return pointerSize == 4 ? sum & 0xffffffff : sum;
    }

    private static byte[] ReadExactly(Func<ulong, byte[], int> read, ulong address, int length, string what)
    {
        var buffer = new byte[length];
        int n = read(address, buffer);
        if (n != length)
        {
            throw new MemoryFaultException(address + (ulong)n, AddressSpace.KernelVirtual, MemoryFaultReason.NotMapped, $"cannot read {what} ({length} bytes at 0x{address:x}, read {n})");
        }

        return buffer;
    }
}
