namespace Kvm.Testing.FreeBsd;

/// <summary>
/// The per-CPU and per-vnet data of a test FreeBSD/amd64 kernel, written on top of <see cref="FreeBsdSystemState"/>
/// and the process table: the DPCPU linker set (<c>__start_set_pcpu</c>, <c>__stop_set_pcpu</c>, variables named
/// <c>pcpu_entry_*</c>) with each present CPU's copy at <c>dpcpu_off[cpu]</c> + the variable (sys/sys/pcpu.h
/// <c>DPCPU_ID_PTR</c>); the VNET linker set (<c>__start_set_vnet</c>, <c>__stop_set_vnet</c>, <c>vnet_entry_*</c>,
/// <c>vnet_head</c>) with two virtual network stacks — vnet0 of <c>prison0</c>, which every process's credential
/// points to, and a jail's vnet for pid 42 — each with its copy at <c>vnet_data_base</c> + the variable (net/vnet.h);
/// a <c>counter(9)</c> allocation with one copy per CPU at the CPU's <c>pc_zpcpu_offset</c> (FreeBSD 13+ amd64, where
/// that offset includes <c>&amp;__pcpu[0]</c> and the counter is an offset from it; without it, as FreeBSD 12 did, at
/// <c>PAGE_SIZE × cpu</c> from a real address); and each CPU's <c>pc_cp_time</c> with <c>stathz</c>. These values
/// are the tests' specification.
/// </summary>
public sealed class FreeBsdPerCpu
{
    private const ulong KernBase = FreeBsdAmd64Kernel.KernBase;

    // Globals in the kernel's .data, clear of FreeBsdSystemState's (which end with cpuid_to_pcpu[70] at 0x300530).
    public const ulong DpcpuStart = KernBase + 0x300600;
    public const ulong DpcpuStop = DpcpuStart + 0x40;
    public const ulong PcpuTicksAddress = DpcpuStart + 0x8;
    public const ulong PcpuRecordAddress = DpcpuStart + 0x10;
    public const ulong DpcpuOffAddress = KernBase + 0x300700;
    public const ulong VnetStart = KernBase + 0x300a00;
    public const ulong VnetStop = VnetStart + 0x40;
    public const ulong VnetIfnetAddress = VnetStart + 0x8;
    public const ulong VnetTcpStatAddress = VnetStart + 0x20;
    public const ulong VnetHeadAddress = KernBase + 0x300a80;
    public const ulong StatHzAddress = KernBase + 0x300a88;
    public const ulong CpTimeAddress = KernBase + 0x300a90;
    public const ulong OutsideSetAddress = KernBase + 0x300ac0;

    // Structures and copies, in the kernel image's 2 MiB pages clear of the process table and FreeBsdSystemState.
    public const ulong PrisonArea = KernBase + 0x5d0000;
    public const ulong Prison0Address = PrisonArea;
    public const ulong JailAddress = PrisonArea + 0x100;
    public const ulong Vnet0Address = PrisonArea + 0x200;
    public const ulong JailVnetAddress = PrisonArea + 0x280;
    public const ulong Vnet0Data = KernBase + 0x5e0000;
    public const ulong JailVnetData = KernBase + 0x5e1000;

    /// <summary>Where the CPUs' <c>struct pcpu</c> array would begin (amd64's <c>__pcpu</c>): the origin of <c>pc_zpcpu_offset</c>.</summary>
    public const ulong PcpuZoneOrigin = KernBase + 0x5e8000;

    /// <summary>FreeBSD 13+ amd64: the counter as UMA hands it out, an offset from <c>&amp;__pcpu[0]</c>.</summary>
    public const ulong CounterOffset = 0x180;

    /// <summary>FreeBSD 12: the counter's real address; CPU <c>i</c>'s copy is <c>PAGE_SIZE × i</c> further.</summary>
    public const ulong OldCounterAddress = KernBase + 0x5f0100;

    /// <summary>The jailed process, whose credential points to the jail with its own vnet.</summary>
    public const int JailedPid = 42;

    /// <summary>net/vnet.h <c>VNET_MAGIC_N</c>.</summary>
    public const uint VnetMagic = 0x3e0d8f29;

    public const int PrisonSize = 0x80, VnetSize = 64;

    /// <summary><c>stathz</c>, or null for a kernel image without it.</summary>
    public int? StatHz { get; init; } = 127;

    /// <summary>A global <c>cp_time[CPUSTATES]</c> (FreeBSD 6 and before), or null.</summary>
    public long[]? GlobalCpTime { get; init; }

    /// <summary>Gives <c>struct pcpu</c> its <c>pc_zpcpu_offset</c> (FreeBSD 13+); without it the counter follows FreeBSD 12.</summary>
    public bool WithZpcpuOffset { get; init; } = true;

    /// <summary>Writes a wrong <c>vnet_magic_n</c> into vnet0.</summary>
    public bool CorruptVnetMagic { get; init; }

    /// <summary>Leaves proc0's credential without a prison (<c>cr_prison</c> NULL).</summary>
    public bool NoPrison { get; init; }

    /// <summary>Symbols to leave out of the kernel's symbol table.</summary>
    public string[] OmitSymbols { get; init; } = [];

    /// <summary><c>dpcpu_off[cpu]</c>: <see cref="FreeBsdSystemState.Dynamic"/> for a present CPU (as the kernel's <c>pc_dynamic</c>), 0 otherwise.</summary>
    public static ulong DpcpuOffset(FreeBsdSystemState state, int cpu) => state.PresentCpus.Contains(cpu) ? FreeBsdSystemState.Dynamic(cpu) : 0;

    /// <summary>CPU <paramref name="cpu"/>'s <c>pcpu_entry_pcputicks</c>.</summary>
    public static uint PcpuTicks(int cpu) => 5000 + (uint)cpu;

    /// <summary>The <c>vnet_entry_ifnet</c> of vnet0 and of the jail's vnet.</summary>
    public static ulong Ifnet(bool jail) => jail ? 0xfffff80000ba5e00UL : 0xfffff80000a11c00UL;

    /// <summary><c>vnet_data_base</c> of vnet0 and of the jail's vnet: its copy of the set less the set's start.</summary>
    public static ulong VnetDataBase(bool jail) => (jail ? JailVnetData : Vnet0Data) - VnetStart;

    /// <summary>CPU <paramref name="cpu"/>'s copy of the counter.</summary>
    public static ulong CounterValue(int cpu) => (1UL << 40) + (ulong)(cpu * 1000) + 7;

    /// <summary>CPU <paramref name="cpu"/>'s <c>pc_cp_time</c>: user nice sys intr idle, in statclock ticks.</summary>
    public static long[] CpTime(int cpu) => [1000 + cpu, 20 + cpu, 3000 + (cpu * 10), 400 + cpu, 900_000 + (cpu * 100)];

    /// <summary><c>pc_zpcpu_offset</c> of CPU <paramref name="cpu"/> (FreeBSD 13+ amd64 <c>zpcpu_offset_cpu</c>).</summary>
    public static ulong ZpcpuOffset(int cpu) => PcpuZoneOrigin + (0x1000UL * (ulong)cpu);

    /// <summary>The CTF of the whole test kernel: processes, system state, these structures and <see cref="FreeBsdSwap"/>'s.</summary>
    public static byte[] Ctf(bool withZpcpuOffset = true)
    {
        var c = new CtfBuilder();
        var (_, thread) = FreeBsdProcessTable.AddTypes(c);
        FreeBsdSystemState.AddTypes(c, thread, withZpcpuOffset);
        AddTypes(c);
        FreeBsdSwap.AddTypes(c);
        return c.Build();
    }

    /// <summary>
    /// Adds <c>struct prison</c> (member names of sys/sys/jail.h; the layout is this builder's own) and
    /// <c>struct vnet</c> (net/vnet.h, FreeBSD 14 amd64: <c>vnet_le</c>, <c>vnet_magic_n</c> at 16,
    /// <c>vnet_ifcnt</c>, <c>vnet_sockcnt</c>, <c>vnet_state</c>, <c>vnet_data_mem</c> at 32,
    /// <c>vnet_data_base</c> at 40, <c>vnet_shutdown</c>; 64 bytes, <c>__aligned(CACHE_LINE_SIZE)</c>).
    /// </summary>
    public static void AddTypes(CtfBuilder c)
    {
        int i32 = c.Int("int", 4);
        int u32 = c.Int("unsigned int", 4, signed: false);
        int ch = c.Int("char", 1, isChar: true);
        int lng = c.Int("long", 8);
        int ulng = c.Int("unsigned long", 8, signed: false);
        int boolean = c.Int("_Bool", 1, signed: false);
        int uptr = c.TypedefOf("uintptr_t", c.TypedefOf("__uintptr_t", ulng));
        int vnet = c.StructOf("vnet");
        int vnetPtr = c.PointerTo(vnet);
        int listEntry = c.StructOf(string.Empty);
        c.SetMembers(listEntry, 16, ("le_next", vnetPtr, 0), ("le_prev", c.PointerTo(vnetPtr), 64));
        c.SetMembers(vnet, VnetSize,
            ("vnet_le", listEntry, 0),
            ("vnet_magic_n", u32, 16 * 8),
            ("vnet_ifcnt", u32, 20 * 8),
            ("vnet_sockcnt", u32, 24 * 8),
            ("vnet_state", u32, 28 * 8),
            ("vnet_data_mem", c.PointerTo(0), 32 * 8),
            ("vnet_data_base", uptr, 40 * 8),
            ("vnet_shutdown", boolean, 48 * 8));
        int prison = c.StructOf("prison");
        c.SetMembers(prison, PrisonSize,
            ("pr_id", i32, 0x10 * 8),
            ("pr_ref", u32, 0x14 * 8),
            ("pr_parent", c.PointerTo(prison), 0x20 * 8),
            ("pr_vnet", vnetPtr, 0x28 * 8),
            ("pr_name", c.ArrayOf(ch, lng, 0x40), 0x40 * 8));
    }

    /// <summary>
    /// Writes the data into <paramref name="kernel"/>'s memory (its processes and <paramref name="state"/> already
    /// written), adds the symbols to its ELF and gives it <see cref="Ctf"/>.
    /// </summary>
    public void Write(FreeBsdAmd64Kernel kernel, FreeBsdSystemState state)
    {
        var memory = kernel.Memory;
        var table = kernel.ProcessTable ?? throw new InvalidOperationException("write the processes (AddSystemState) first");
        void U32(ulong va, uint value) => memory.WriteUInt32(va - KernBase, value);
        void U64(ulong va, ulong value) => memory.WriteUInt64(va - KernBase, value);

        // DPCPU: dpcpu_off[] and each present CPU's copies (sys/kern/subr_pcpu.c dpcpu_init).
        for (int cpu = 0; cpu < state.MaxCpus; cpu++)
        {
            U64(DpcpuOffAddress + ((ulong)cpu * 8), DpcpuOffset(state, cpu));
        }

        U32(PcpuTicksAddress, 0xdead);
        foreach (int cpu in state.PresentCpus)
        {
            U32(PcpuTicksAddress + DpcpuOffset(state, cpu), PcpuTicks(cpu));
        }

        // VNET: prison0 → vnet0 for every process, a jail → its own vnet for pid 42 (sys/kern/kern_jail.c, net/vnet.c).
        WriteVnet(memory, Vnet0Address, Vnet0Data, CorruptVnetMagic ? 0x12345678 : VnetMagic, jail: false);
        WriteVnet(memory, JailVnetAddress, JailVnetData, VnetMagic, jail: true);
        U32(Prison0Address + 0x10, 0);
        U64(Prison0Address + 0x28, Vnet0Address);
        U32(JailAddress + 0x10, 1);
        U64(JailAddress + 0x20, Prison0Address);
        U64(JailAddress + 0x28, JailVnetAddress);
        U64(VnetHeadAddress, Vnet0Address);
        foreach (var (proc, pid) in table.Processes)
        {
            ulong cred = memory.ReadUInt64(proc + 0x20 - KernBase);
            ulong prison = pid == JailedPid ? JailAddress : pid == 0 && NoPrison ? 0 : Prison0Address;
            U64(cred + 0x28, prison);
        }

        // counter(9): one copy per present CPU, at its pc_zpcpu_offset (13+) or PAGE_SIZE × cpu (12).
        foreach (int cpu in state.PresentCpus)
        {
            ulong pcpu = state.Pcpus[cpu];
            if (WithZpcpuOffset)
            {
                U64(pcpu + 176, ZpcpuOffset(cpu));
                U64(CounterOffset + ZpcpuOffset(cpu), CounterValue(cpu));
            }
            else
            {
                U64(OldCounterAddress + (0x1000UL * (ulong)cpu), CounterValue(cpu));
            }

            // pc_cp_time[CPUSTATES] at offset 80 (FreeBsdSystemState's struct pcpu).
            var ticks = CpTime(cpu);
            for (int i = 0; i < ticks.Length; i++)
            {
                U64(pcpu + 80 + ((ulong)i * 8), unchecked((ulong)ticks[i]));
            }
        }

        U32(StatHzAddress, (uint)(StatHz ?? 0));
        if (GlobalCpTime is { } global)
        {
            for (int i = 0; i < global.Length; i++)
            {
                U64(CpTimeAddress + ((ulong)i * 8), unchecked((ulong)global[i]));
            }
        }

        var symbols = new List<(string Name, ulong Address, bool Local)>
        {
            ("__start_set_pcpu", DpcpuStart, false),
            ("__stop_set_pcpu", DpcpuStop, false),
            ("pcpu_entry_pcputicks", PcpuTicksAddress, true),
            ("pcpu_entry_epoch_record", PcpuRecordAddress, false),
            ("dpcpu_off", DpcpuOffAddress, false),
            ("__start_set_vnet", VnetStart, false),
            ("__stop_set_vnet", VnetStop, false),
            ("vnet_entry_ifnet", VnetIfnetAddress, false),
            ("vnet_entry_tcpstat", VnetTcpStatAddress, true),
            ("vnet_head", VnetHeadAddress, false),
            ("proc0", table.Processes[0].Address, false),
            ("pcpu_entry_outside", OutsideSetAddress, false),
        };
        if (StatHz is not null)
        {
            symbols.Add(("stathz", StatHzAddress, false));
        }

        if (GlobalCpTime is not null)
        {
            symbols.Add(("cp_time", CpTimeAddress, false));
        }

        kernel.DataSymbols.AddRange(symbols.Where(s => !OmitSymbols.Contains(s.Name)));
        kernel.Ctf = Ctf(WithZpcpuOffset);
    }

    private static void WriteVnet(PhysicalMemoryBuilder memory, ulong vnet, ulong data, uint magic, bool jail)
    {
        memory.WriteUInt32(vnet + 16 - KernBase, magic);
        memory.WriteUInt64(vnet + 32 - KernBase, data);
        memory.WriteUInt64(vnet + 40 - KernBase, VnetDataBase(jail));
        memory.WriteUInt64(VnetIfnetAddress + VnetDataBase(jail) - KernBase, Ifnet(jail));
    }
}
