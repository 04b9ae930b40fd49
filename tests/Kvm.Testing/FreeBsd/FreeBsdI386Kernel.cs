using System.Text;

namespace Kvm.Testing.FreeBsd;

/// <summary>
/// A small FreeBSD/i386 kernel in physical memory: the kernel image loaded at physical 4 MiB and mapped at
/// <c>KERNBASE</c> + 4 MiB with large pages (4 MiB without PAE, 2 MiB with), <c>IdlePTD</c> or <c>IdlePDPT</c> holding
/// the page directory's physical address, and in it <c>allproc</c> with its processes (<see cref="FreeBsdProcessTable"/>
/// with 4-byte pointers, in that builder's own packed layout), and the message buffer, the load average, two CPUs and
/// the clocks laid out as FreeBSD 14 lays them out on i386 — an ILP32 kernel whose <c>time_t</c> is 32 bits (sys/i386/include/_types.h:
/// <c>typedef __int32_t __time_t</c>, <c>typedef __uint32_t __uintptr_t</c>, <c>typedef long long __int64_t</c>) —
/// with the CTF describing it all. It makes minidumps (PAE or not), a full dump and the kernel's ELF32 (EM_386).
/// The values come from a <see cref="FreeBsdSystemState"/>, the tests' specification; only its layout is i386's here.
/// </summary>
public sealed class FreeBsdI386Kernel
{
    public const ulong KernBase = I386MinidumpBuilder.KernBase;

    /// <summary>sys/i386/include/param.h <c>MAXCPU</c> (SMP): the slots of <c>cpuid_to_pcpu</c> and <c>mp_maxcpus</c>.</summary>
    public const int MaxCpu = 32;

    public const ulong KernelLoad = 0x400000;
    public const ulong TextAddress = KernBase + KernelLoad;
    public const ulong VersionAddress = KernBase + 0x480000;
    public const ulong OsreleaseAddress = KernBase + 0x480200;

    // The kernel's .data: globals packed one after another, so that a reader taking a 4-byte variable for 8 bytes
    // reads its neighbour too.
    public const ulong DataAddress = KernBase + 0x500000;
    public const ulong AllprocAddress = DataAddress;
    public const ulong MsgbufpAddress = DataAddress + 0x4;
    public const ulong AverunnableAddress = DataAddress + 0x8;
    public const ulong FscaleAddress = DataAddress + 0x18;
    public const ulong MpNcpusAddress = DataAddress + 0x1c;
    public const ulong MpMaxidAddress = DataAddress + 0x20;
    public const ulong MpMaxcpusAddress = DataAddress + 0x24;
    public const ulong TimeUptimeAddress = DataAddress + 0x28;
    public const ulong TimeSecondAddress = DataAddress + 0x2c;
    public const ulong TimehandsAddress = DataAddress + 0x30;
    public const ulong AllCpusAddress = DataAddress + 0x34;
    public const ulong CpuidToPcpuAddress = DataAddress + 0x38;
    public const ulong IdlePtdAddress = CpuidToPcpuAddress + (MaxCpu * 4);
    public const ulong StathzAddress = IdlePtdAddress + 4;

    /// <summary>sys/kern/kern_clock.c <c>stathz</c>.</summary>
    public const int StatHz = 127;

    public const ulong ProcessArea = KernBase + 0x600000;
    public const ulong SystemArea = KernBase + 0x700000;
    public const ulong MsgbufAddress = SystemArea;
    public const ulong RingAddress = SystemArea + 0x100;
    public const ulong TimehandsStructAddress = SystemArea + 0x800;
    public const ulong PcpuArea = SystemArea + 0x1000;

    /// <summary>Sizes of FreeBSD 14's structures on i386 (see <see cref="AddSystemTypes"/>); <c>struct pcpu</c>'s is this builder's.</summary>
    public const int MsgbufSize = 56, LoadavgSize = 16, BintimeSize = 12, TimehandsSize = 88, PcpuSize = 0x100, CpusetSize = 4;

    public const string Version = "FreeBSD 14.0-RELEASE releng/14.0-n265380-f9716eee8ab4 GENERIC i386\n";
    public const string Osrelease = "14.0-RELEASE";

    /// <param name="pae">Whether the kernel runs with PAE (<c>IdlePDPT</c>, 64-bit PTEs) or not (<c>IdlePTD</c>, 32-bit PTEs).</param>
    /// <param name="state">The values to write; by default <see cref="FreeBsdSystemState"/>'s, on two CPUs.</param>
    public FreeBsdI386Kernel(bool pae, FreeBsdSystemState? state = null)
    {
        Pae = pae;
        State = state ?? new FreeBsdSystemState { MaxCpus = MaxCpu, PresentCpus = [0, 1], CurrentThreads = [3, 1] };
        Memory = new PhysicalMemoryBuilder(allocationBase: 0xc00000);
        DumpAvail = [(0x1000, 0x9f000), (0x100000, 0x1000000)];
        Tables = new I386PageTableBuilder(Memory, pae);
        for (ulong offset = 0; offset < 0x400000; offset += Tables.LargePageSize)
        {
            Tables.Map(TextAddress + offset, KernelLoad + offset, large: true);
        }

        Memory.Write(VersionAddress - KernBase, Encoding.ASCII.GetBytes(Version + "\0"));
        Memory.Write(OsreleaseAddress - KernBase, Encoding.ASCII.GetBytes(Osrelease + "\0"));
        U32(IdlePtdAddress, (uint)(pae ? Tables.Pdpt : Tables.PageDirectory));

        // proc0 (kernel, two threads), init, a shell and a zombie, as the amd64 kernel has them.
        Processes = new FreeBsdProcessTable(Memory, ProcessArea, ProcessArea - KernBase, pointerSize: 4);
        Processes.AddProcess(0, "kernel", -1, 0, 0, 0, 0, 0, 0, 1, 0x204, 0, (100000, "swapper", 1), (100001, "softclock", 4));
        Processes.AddProcess(1, "init", ["/sbin/init"], 0, 0, 0, 0, 0, 1, 1, 1, 0x4000, 0, (100002, "init", 1));
        Processes.AddProcess(42, "sh", ["-sh", "-i"], 1, 1001, 1001, 20, 5, 42, 42, 1, 0x4002, -5, (100042, "sh", 4));
        Processes.AddProcess(43, "sleep", 2, 1001, 0, 20, 0, 42, 42, 2, 0x4000, 0);
        Processes.WriteAllproc(AllprocAddress - KernBase);
        WriteSystemState();

        var c = new CtfBuilder();
        var (_, thread) = FreeBsdProcessTable.AddTypes(c, pointerSize: 4);
        AddSystemTypes(c, thread);
        Ctf = c.Build();
    }

    public bool Pae { get; }

    /// <summary>The values written.</summary>
    public FreeBsdSystemState State { get; }

    public PhysicalMemoryBuilder Memory { get; }

    public I386PageTableBuilder Tables { get; }

    public List<(ulong Start, ulong End)> DumpAvail { get; }

    /// <summary>The processes in <c>allproc</c>.</summary>
    public FreeBsdProcessTable Processes { get; }

    /// <summary>The <c>struct pcpu</c> address of each present CPU.</summary>
    public Dictionary<int, ulong> Pcpus { get; } = [];

    /// <summary>The CTF the kernel's ELF carries as .SUNW_ctf.</summary>
    public byte[] Ctf { get; }

    /// <summary>A minidump of <paramref name="version"/> (sys/i386/i386/minidump_machdep_base.c).</summary>
    public byte[] Minidump(uint version = 2) =>
        new I386MinidumpBuilder(Memory, Tables) { Version = version, DumpAvail = DumpAvail }.Build();

    /// <summary>A full dump: every <c>dump_avail</c> chunk, read through the kernel's own page tables.</summary>
    public byte[] FullDump() => FreeBsdFullDump.I386(Memory, DumpAvail);

    /// <summary>The kernel's ELF32 (EM_386), FreeBSD-branded, with its .symtab and CTF.</summary>
    public byte[] KernelElf()
    {
        var elf = new ElfExecutableBuilder
        {
            Is64 = false,
            Machine = 3,
            OsAbi = 9,
            TextBase = TextAddress,
            RodataBase = KernBase + 0x480000,
            DataBase = DataAddress,
            BssBase = KernBase + 0x580000,
        };
        elf.AddSymbol("kernbase", KernBase, ElfExecutableBuilder.ShnAbs, type: ElfExecutableBuilder.SttNotype)
            .AddSymbol("btext", TextAddress, ElfExecutableBuilder.Text)
            .AddSymbol("version", VersionAddress, ElfExecutableBuilder.Rodata, type: ElfExecutableBuilder.SttObject)
            .AddSymbol("osrelease", OsreleaseAddress, ElfExecutableBuilder.Rodata, type: ElfExecutableBuilder.SttObject)
            .AddSymbol(Pae ? "IdlePDPT" : "IdlePTD", IdlePtdAddress, ElfExecutableBuilder.Data, type: ElfExecutableBuilder.SttObject);
        foreach (var (name, address) in new[]
        {
            ("allproc", AllprocAddress), ("msgbufp", MsgbufpAddress), ("averunnable", AverunnableAddress),
            ("mp_ncpus", MpNcpusAddress), ("mp_maxid", MpMaxidAddress), ("mp_maxcpus", MpMaxcpusAddress), ("all_cpus", AllCpusAddress),
            ("cpuid_to_pcpu", CpuidToPcpuAddress), ("time_uptime", TimeUptimeAddress), ("time_second", TimeSecondAddress),
            ("stathz", StathzAddress),
        })
        {
            elf.AddSymbol(name, address, ElfExecutableBuilder.Data, type: ElfExecutableBuilder.SttObject);
        }

        if (State.GlobalFscale is not null)
        {
            elf.AddSymbol("fscale", FscaleAddress, ElfExecutableBuilder.Data, type: ElfExecutableBuilder.SttObject);
        }

        // kern_tc.c: static struct timehands *volatile timehands — a local symbol.
        elf.AddSymbol("timehands", TimehandsAddress, ElfExecutableBuilder.Data, ElfExecutableBuilder.StbLocal, ElfExecutableBuilder.SttObject);
        elf.ExtraSections.Add((".SUNW_ctf", Ctf));
        return elf.Build();
    }

    /// <summary>
    /// Adds the system structures' types, FreeBSD 14's layouts on i386 (4-byte pointers, longs and <c>time_t</c>;
    /// 64-bit integers 4-byte aligned in structures, as the i386 System V ABI has it): <c>struct lock_object</c>
    /// (sys/sys/_lock.h, 16 bytes), <c>struct mtx</c> (sys/sys/_mutex.h, 20), <c>struct msgbuf</c> (sys/sys/msgbuf.h,
    /// 56), <c>struct loadavg</c> (sys/sys/resource.h: <c>fixpt_t ldavg[3]; long fscale;</c>, 16; sys/sys/types.h
    /// <c>typedef __uint32_t fixpt_t</c>), <c>cpuset_t</c> (sys/sys/_cpuset.h: in the kernel <c>CPU_SETSIZE</c> is
    /// <c>MAXCPU</c>, 32, so one long), <c>struct pcpu</c>'s machine-independent members (sys/sys/pcpu.h),
    /// <c>struct bintime</c> (sys/sys/time.h: <c>time_t sec; uint64_t frac;</c>, 12),
    /// <c>struct timeval</c> and <c>struct timespec</c> (8) and <c>struct timehands</c> (sys/kern/kern_tc.c, 88).
    /// </summary>
    public static void AddSystemTypes(CtfBuilder c, int thread)
    {
        int i32 = c.Int("int", 4);
        int u32 = c.Int("unsigned int", 4, signed: false);
        int ch = c.Int("char", 1, isChar: true);
        int lng = c.Int("long", 4);
        int ll = c.Int("long long", 8);
        int ull = c.Int("unsigned long long", 8, signed: false);
        int uint32 = c.TypedefOf("__uint32_t", u32);
        int u64 = c.TypedefOf("uint64_t", c.TypedefOf("__uint64_t", ull));
        int i64 = c.TypedefOf("int64_t", c.TypedefOf("__int64_t", ll));
        int uptr = c.TypedefOf("uintptr_t", c.TypedefOf("__uintptr_t", uint32));
        int time = c.TypedefOf("time_t", c.TypedefOf("__time_t", c.TypedefOf("__int32_t", i32)));
        int threadPtr = c.PointerTo(thread);
        int voidPtr = c.PointerTo(0);

        int lockObject = c.StructOf("lock_object");
        c.SetMembers(lockObject, 16, ("lo_name", c.PointerTo(c.ConstOf(ch)), 0), ("lo_flags", u32, 32), ("lo_data", u32, 64), ("lo_witness", voidPtr, 96));
        int mtx = c.StructOf("mtx");
        c.SetMembers(mtx, 20, ("lock_object", lockObject, 0), ("mtx_lock", uptr, 16 * 8));
        int msgbuf = c.StructOf("msgbuf");
        c.SetMembers(msgbuf, MsgbufSize,
            ("msg_ptr", c.PointerTo(ch), 0),
            ("msg_magic", u32, 4 * 8),
            ("msg_size", u32, 8 * 8),
            ("msg_wseq", u32, 12 * 8),
            ("msg_rseq", u32, 16 * 8),
            ("msg_cksum", u32, 20 * 8),
            ("msg_seqmod", u32, 24 * 8),
            ("msg_lastpri", i32, 28 * 8),
            ("msg_flags", u32, 32 * 8),
            ("msg_lock", mtx, 36 * 8));

        int fixpt = c.TypedefOf("fixpt_t", uint32);
        int loadavg = c.StructOf("loadavg");
        c.SetMembers(loadavg, LoadavgSize, ("ldavg", c.ArrayOf(fixpt, lng, 3), 0), ("fscale", lng, 12 * 8));

        int cpuset = c.StructOf("_cpuset");
        c.SetMembers(cpuset, CpusetSize, ("__bits", c.ArrayOf(lng, lng, 1), 0));
        c.TypedefOf("cpuset_t", cpuset);

        int pcpu = c.StructOf("pcpu");
        int stailq = c.StructOf(string.Empty);
        c.SetMembers(stailq, 4, ("stqe_next", c.PointerTo(pcpu), 0));
        c.SetMembers(pcpu, PcpuSize,
            ("pc_curthread", threadPtr, 0),
            ("pc_idlethread", threadPtr, 4 * 8),
            ("pc_fpcurthread", threadPtr, 8 * 8),
            ("pc_deadthread", threadPtr, 12 * 8),
            ("pc_curpcb", voidPtr, 16 * 8),
            ("pc_sched", voidPtr, 20 * 8),
            ("pc_switchtime", u64, 24 * 8),
            ("pc_switchticks", i32, 32 * 8),
            ("pc_cpuid", u32, 36 * 8),
            ("pc_allcpu", stailq, 40 * 8),
            ("pc_spinlocks", voidPtr, 44 * 8),
            ("pc_cp_time", c.ArrayOf(lng, lng, 5), 48 * 8),
            ("pc_device", voidPtr, 68 * 8),
            ("pc_netisr", voidPtr, 72 * 8),
            ("pc_domain", i32, 80 * 8),
            ("pc_dynamic", uptr, 92 * 8),
            ("pc_early_dummy_counter", u64, 96 * 8),
            ("pc_zpcpu_offset", uptr, 104 * 8));

        int bintime = c.StructOf("bintime");
        c.SetMembers(bintime, BintimeSize, ("sec", time, 0), ("frac", u64, 32));
        int timeval = c.StructOf("timeval");
        c.SetMembers(timeval, 8, ("tv_sec", time, 0), ("tv_usec", c.TypedefOf("suseconds_t", c.TypedefOf("__suseconds_t", lng)), 32));
        int timespec = c.StructOf("timespec");
        c.SetMembers(timespec, 8, ("tv_sec", time, 0), ("tv_nsec", lng, 32));
        int timehands = c.StructOf("timehands");
        c.SetMembers(timehands, TimehandsSize,
            ("th_counter", voidPtr, 0),
            ("th_adjustment", i64, 4 * 8),
            ("th_scale", u64, 12 * 8),
            ("th_large_delta", u32, 20 * 8),
            ("th_offset_count", u32, 24 * 8),
            ("th_offset", bintime, 28 * 8),
            ("th_bintime", bintime, 40 * 8),
            ("th_microtime", timeval, 52 * 8),
            ("th_nanotime", timespec, 60 * 8),
            ("th_boottime", bintime, 68 * 8),
            ("th_generation", u32, 80 * 8),
            ("th_next", c.PointerTo(timehands), 84 * 8));
    }

    private void WriteSystemState()
    {
        var s = State;

        // struct msgbuf, its ring written as msgbuf_addchar writes it.
        var ring = s.Ring(out uint wseq);
        Memory.Write(RingAddress - KernBase, ring);
        U32(MsgbufpAddress, (uint)MsgbufAddress);
        U32(MsgbufAddress, (uint)RingAddress);
        U32(MsgbufAddress + 4, s.Magic);
        U32(MsgbufAddress + 8, s.SizeField ?? (uint)s.RingSize);
        U32(MsgbufAddress + 12, wseq);
        U32(MsgbufAddress + 24, s.SeqmodField ?? (uint)s.RingSize * 16);
        U32(MsgbufAddress + 28, 0xffffffff);

        // struct loadavg averunnable: three 32-bit fixpt_t, then a 32-bit long fscale; and int fscale.
        for (int i = 0; i < 3; i++)
        {
            U32(AverunnableAddress + ((ulong)i * 4), s.Load[i]);
        }

        U32(AverunnableAddress + 12, checked((uint)s.StructFscale));
        U32(FscaleAddress, (uint)(s.GlobalFscale ?? 0));

        // CPUs: mp_ncpus, mp_maxid (the highest id present), mp_maxcpus (MAXCPU), all_cpus, cpuid_to_pcpu[MAXCPU].
        U32(MpNcpusAddress, (uint)s.PresentCpus.Length);
        U32(MpMaxidAddress, (uint)s.PresentCpus.Max());
        U32(MpMaxcpusAddress, (uint)s.MaxCpus);
        uint allCpus = 0;
        for (int i = 0; i < s.PresentCpus.Length; i++)
        {
            int cpu = s.PresentCpus[i];
            ulong pcpu = PcpuArea + ((ulong)cpu * PcpuSize);
            Pcpus[cpu] = pcpu;
            allCpus |= 1u << cpu;
            U32(CpuidToPcpuAddress + ((ulong)cpu * 4), (uint)pcpu);
            ulong current = i < s.CurrentThreads.Length && s.CurrentThreads[i] >= 0 ? Processes.Threads[s.CurrentThreads[i]].Address : 0;
            U32(pcpu, (uint)current);
            U32(pcpu + 36, (uint)cpu);
            U32(pcpu + 92, (uint)FreeBsdSystemState.Dynamic(cpu));

            // pc_cp_time: CPUSTATES 32-bit longs, packed.
            var ticks = FreeBsdPerCpu.CpTime(cpu);
            for (int state = 0; state < ticks.Length; state++)
            {
                U32(pcpu + 48 + ((ulong)state * 4), checked((uint)ticks[state]));
            }
        }

        U32(StathzAddress, StatHz);

        U32(AllCpusAddress, allCpus);

        // Clocks: 32-bit time_uptime and time_second side by side; timehands -> struct timehands.
        U32(TimeUptimeAddress, checked((uint)s.Uptime));
        U32(TimeSecondAddress, checked((uint)s.TimeSecond));
        U32(TimehandsAddress, (uint)TimehandsStructAddress);
        U32(TimehandsStructAddress + 28, checked((uint)s.Uptime));
        U32(TimehandsStructAddress + 68, checked((uint)s.BootTime.Seconds));
        Memory.WriteUInt64(TimehandsStructAddress + 72 - KernBase, s.BootTime.Fraction);
        U32(TimehandsStructAddress + 80, 7);
    }

    private void U32(ulong va, uint value) => Memory.WriteUInt32(va - KernBase, value);
}
