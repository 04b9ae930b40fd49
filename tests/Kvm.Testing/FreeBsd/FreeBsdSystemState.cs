using System.Text;

namespace Kvm.Testing.FreeBsd;

/// <summary>
/// What a test FreeBSD/amd64 kernel holds of its system state, and how <see cref="FreeBsdAmd64Kernel.AddSystemState"/>
/// writes it: the message buffer (<c>msgbufp</c>, sys/sys/msgbuf.h), the load average (<c>averunnable</c>,
/// <c>fscale</c>, sys/sys/resource.h), the CPUs (<c>mp_maxcpus</c>, <c>mp_maxid</c>, <c>mp_ncpus</c>,
/// <c>all_cpus</c>, <c>cpuid_to_pcpu</c>, sys/sys/pcpu.h) and the clocks (<c>time_uptime</c>, <c>time_second</c>,
/// <c>timehands</c>, sys/kern/kern_tc.c). The layouts are FreeBSD 14's on amd64; the CTF describing them comes from
/// <see cref="AddTypes"/>. These values are the tests' specification.
/// </summary>
public sealed class FreeBsdSystemState
{
    /// <summary>sys/sys/msgbuf.h <c>MSG_MAGIC</c>.</summary>
    public const uint MsgMagic = 0x063062;

    /// <summary>Sizes of this builder's structures (FreeBSD 14 amd64: struct msgbuf with its mutex is 72 bytes).</summary>
    public const int MsgbufSize = 72, PcpuSize = 0x100, TimehandsSize = 128, CpusetBytes = 128;

    // Where the globals go (the kernel's .data) and where the structures they point to go (inside the kernel image's
    // 2 MiB pages, clear of the process table).
    public const ulong MsgbufpAddress = FreeBsdAmd64Kernel.KernBase + 0x300200;
    public const ulong AverunnableAddress = FreeBsdAmd64Kernel.KernBase + 0x300210;
    public const ulong FscaleAddress = FreeBsdAmd64Kernel.KernBase + 0x300230;
    public const ulong MpNcpusAddress = FreeBsdAmd64Kernel.KernBase + 0x300234;
    public const ulong MpMaxidAddress = FreeBsdAmd64Kernel.KernBase + 0x300238;
    public const ulong MpMaxcpusAddress = FreeBsdAmd64Kernel.KernBase + 0x30023c;
    public const ulong TimeUptimeAddress = FreeBsdAmd64Kernel.KernBase + 0x300240;
    public const ulong TimeSecondAddress = FreeBsdAmd64Kernel.KernBase + 0x300248;
    public const ulong TimehandsAddress = FreeBsdAmd64Kernel.KernBase + 0x300250;
    public const ulong BoottimeAddress = FreeBsdAmd64Kernel.KernBase + 0x300260;
    public const ulong AllCpusAddress = FreeBsdAmd64Kernel.KernBase + 0x300280;
    public const ulong CpuidToPcpuAddress = FreeBsdAmd64Kernel.KernBase + 0x300300;
    public const ulong SystemArea = FreeBsdAmd64Kernel.KernBase + 0x580000;
    public const ulong MsgbufAddress = SystemArea;
    public const ulong RingAddress = SystemArea + 0x100;
    public const ulong TimehandsStructAddress = SystemArea + 0x40000;
    public const ulong PcpuArea = SystemArea + 0x41000;

    /// <summary>The ring's size in bytes (the allocation; <see cref="SizeField"/> may say otherwise).</summary>
    public int RingSize { get; init; } = 256;

    /// <summary>What the kernel printed since boot, written byte by byte into the ring as msgbuf_addchar does.</summary>
    public string Text { get; init; } = "<6>link up\nplain line\n<14>user message\n<4>warning: hot\n";

    /// <summary><c>msg_magic</c>; <see cref="MsgMagic"/> unless a test corrupts it.</summary>
    public uint Magic { get; init; } = MsgMagic;

    /// <summary>A <c>msg_size</c> to write instead of <see cref="RingSize"/>.</summary>
    public uint? SizeField { get; init; }

    /// <summary>A <c>msg_seqmod</c> to write instead of <c>SEQMOD(size)</c>, 16 × <see cref="RingSize"/>.</summary>
    public uint? SeqmodField { get; init; }

    /// <summary>Writes <c>msg_ptr</c> as NULL.</summary>
    public bool NullRingPointer { get; init; }

    /// <summary>Writes <c>msgbufp</c> as NULL.</summary>
    public bool NullMsgbufp { get; init; }

    /// <summary><c>averunnable.ldavg</c>, fixed point.</summary>
    public uint[] Load { get; init; } = [2048 + 512, 1024, 3 * 2048 + 1843];

    /// <summary><c>averunnable.fscale</c>.</summary>
    public long StructFscale { get; init; } = 2048;

    /// <summary>The global <c>fscale</c>, or null for a kernel without it.</summary>
    public int? GlobalFscale { get; init; } = 2048;

    /// <summary><c>mp_maxcpus</c> (and <c>mp_maxid</c> + 1): the slots of <c>cpuid_to_pcpu</c>.</summary>
    public int MaxCpus { get; init; } = 4;

    /// <summary>The CPUs that exist: set in <c>all_cpus</c>, with a <c>struct pcpu</c>.</summary>
    public int[] PresentCpus { get; init; } = [0, 1, 3];

    /// <summary>Writes <c>mp_maxcpus</c>; without it only <c>mp_maxid</c> is there (as before FreeBSD 8).</summary>
    public bool WithMpMaxcpus { get; init; } = true;

    /// <summary>The thread current on each present CPU, by index into the process table's threads (−1: none).</summary>
    public int[] CurrentThreads { get; init; } = [3, 1, -1];

    /// <summary><c>time_uptime</c>, seconds.</summary>
    public long Uptime { get; init; } = 93784;

    /// <summary><c>time_second</c>.</summary>
    public long TimeSecond { get; init; } = 1_700_093_784;

    /// <summary><c>timehands->th_boottime</c>: seconds and a 2^-64 fraction.</summary>
    public (long Seconds, ulong Fraction) BootTime { get; init; } = (1_700_000_000, 1UL << 63);

    /// <summary>Gives the boot time as FreeBSD 10 did, in <c>struct timeval boottime</c>, instead of in <c>timehands</c>.</summary>
    public bool OldBoottime { get; init; }

    /// <summary>Symbols to leave out of the kernel's symbol table.</summary>
    public string[] OmitSymbols { get; init; } = [];

    /// <summary>The <c>struct pcpu</c> address of each present CPU, after <see cref="Write"/>.</summary>
    public Dictionary<int, ulong> Pcpus { get; } = [];

    /// <summary><c>pc_dynamic</c> of CPU <paramref name="cpu"/>: this builder's DPCPU offsets.</summary>
    public static ulong Dynamic(int cpu) => 0x10000UL * (ulong)(cpu + 1);

    /// <summary>
    /// The ring after <see cref="Text"/> was written into it from sequence 0: each byte at <c>seq % size</c>, as
    /// sys/kern/subr_msgbuf.c msgbuf_addchar does; returns the write sequence (modulo <c>SEQMOD</c>, 16 × size).
    /// </summary>
    public byte[] Ring(out uint writeSequence)
    {
        var ring = new byte[RingSize];
        uint seq = 0;
        foreach (byte b in Encoding.UTF8.GetBytes(Text))
        {
            ring[seq % RingSize] = b;
            seq = (seq + 1) % (uint)(RingSize * 16);
        }

        writeSequence = seq;
        return ring;
    }

    /// <summary>The lines dmesg(8) would show of <see cref="Text"/> if the ring held it all: as written, prefixes stripped.</summary>
    public static string StripPriority(string line) =>
        line.StartsWith('<') && line.IndexOf('>') is var close and > 1 && line[1..close].All(char.IsAsciiDigit) ? line[(close + 1)..] : line;

    /// <summary>Writes the state into the kernel's memory; <paramref name="threads"/> are the process table's.</summary>
    public void Write(PhysicalMemoryBuilder memory, IReadOnlyList<(ulong Address, int Tid, ulong Proc)> threads)
    {
        void U32(ulong va, uint value) => memory.WriteUInt32(va - FreeBsdAmd64Kernel.KernBase, value);
        void U64(ulong va, ulong value) => memory.WriteUInt64(va - FreeBsdAmd64Kernel.KernBase, value);

        // struct msgbuf (sys/sys/msgbuf.h, FreeBSD 14).
        var ring = Ring(out uint wseq);
        memory.Write(RingAddress - FreeBsdAmd64Kernel.KernBase, ring);
        U64(MsgbufpAddress, NullMsgbufp ? 0 : MsgbufAddress);
        U64(MsgbufAddress, NullRingPointer ? 0 : RingAddress);
        U32(MsgbufAddress + 8, Magic);
        U32(MsgbufAddress + 12, SizeField ?? (uint)RingSize);
        U32(MsgbufAddress + 16, wseq);
        U32(MsgbufAddress + 20, 0);
        U32(MsgbufAddress + 28, SeqmodField ?? (uint)RingSize * 16);
        U32(MsgbufAddress + 32, 0xffffffff);

        // struct loadavg averunnable (sys/sys/resource.h) and int fscale.
        for (int i = 0; i < 3; i++)
        {
            U32(AverunnableAddress + ((ulong)i * 4), Load[i]);
        }

        U64(AverunnableAddress + 16, (ulong)StructFscale);
        U32(FscaleAddress, (uint)(GlobalFscale ?? 0));

        // CPUs: mp_maxid, mp_maxcpus, mp_ncpus, all_cpus, cpuid_to_pcpu[] and each struct pcpu (sys/sys/pcpu.h).
        U32(MpNcpusAddress, (uint)PresentCpus.Length);
        U32(MpMaxidAddress, (uint)(MaxCpus - 1));
        U32(MpMaxcpusAddress, (uint)MaxCpus);
        for (int i = 0; i < PresentCpus.Length; i++)
        {
            int cpu = PresentCpus[i];
            ulong pcpu = PcpuArea + ((ulong)cpu * PcpuSize);
            Pcpus[cpu] = pcpu;
            ulong word = AllCpusAddress + ((ulong)(cpu / 64) * 8);
            U64(word, memory.ReadUInt64(word - FreeBsdAmd64Kernel.KernBase) | (1UL << (cpu % 64)));
            U64(CpuidToPcpuAddress + ((ulong)cpu * 8), pcpu);
            ulong current = i < CurrentThreads.Length && CurrentThreads[i] >= 0 ? threads[CurrentThreads[i]].Address : 0;
            U64(pcpu, current);
            U32(pcpu + 60, (uint)cpu);
            U64(pcpu + 160, Dynamic(cpu));
        }

        // Clocks: time_uptime, time_second, timehands -> struct timehands with th_boottime (sys/kern/kern_tc.c), or
        // FreeBSD 10's struct timeval boottime.
        U64(TimeUptimeAddress, (ulong)Uptime);
        U64(TimeSecondAddress, (ulong)TimeSecond);
        U64(TimehandsAddress, TimehandsStructAddress);
        U64(TimehandsStructAddress + 32, (ulong)Uptime);
        U64(TimehandsStructAddress + 96, (ulong)BootTime.Seconds);
        U64(TimehandsStructAddress + 104, BootTime.Fraction);
        U32(TimehandsStructAddress + 112, 7);
        U64(BoottimeAddress, (ulong)BootTime.Seconds);
        U64(BoottimeAddress + 8, (ulong)((UInt128)BootTime.Fraction * 1_000_000 >> 64));
    }

    /// <summary>The symbols, less <see cref="OmitSymbols"/> (and those a variant leaves out): name, address, local.</summary>
    public IEnumerable<(string Name, ulong Address, bool Local)> Symbols()
    {
        var all = new List<(string, ulong, bool)>
        {
            ("msgbufp", MsgbufpAddress, false),
            ("averunnable", AverunnableAddress, false),
            ("mp_ncpus", MpNcpusAddress, false),
            ("mp_maxid", MpMaxidAddress, false),
            ("all_cpus", AllCpusAddress, false),
            ("cpuid_to_pcpu", CpuidToPcpuAddress, false),
            ("time_uptime", TimeUptimeAddress, false),
            ("time_second", TimeSecondAddress, false),
        };
        if (GlobalFscale is not null)
        {
            all.Add(("fscale", FscaleAddress, false));
        }

        if (WithMpMaxcpus)
        {
            all.Add(("mp_maxcpus", MpMaxcpusAddress, false));
        }

        // kern_tc.c: static struct timehands *volatile timehands — a local symbol.
        all.Add(OldBoottime ? ("boottime", BoottimeAddress, false) : ("timehands", TimehandsAddress, true));
        return all.Where(s => !OmitSymbols.Contains(s.Item1));
    }

    /// <summary>
    /// Adds the types of these structures to <paramref name="c"/>, FreeBSD 14 amd64's layouts: <c>struct msgbuf</c>
    /// and <c>struct mtx</c> (sys/sys/msgbuf.h, sys/sys/_mutex.h), <c>struct loadavg</c> (sys/sys/resource.h),
    /// <c>struct pcpu</c>'s machine-independent members (sys/sys/pcpu.h), <c>cpuset_t</c> (sys/sys/_cpuset.h,
    /// <c>CPU_SETSIZE</c> 1024), <c>struct bintime</c> and <c>struct timeval</c> (sys/sys/time.h, sys/sys/_timeval.h)
    /// and <c>struct timehands</c> (sys/kern/kern_tc.c). Without <paramref name="withZpcpuOffset"/>, <c>struct pcpu</c>
    /// lacks <c>pc_zpcpu_offset</c>, as before FreeBSD 13.
    /// </summary>
    public static void AddTypes(CtfBuilder c, int thread, bool withZpcpuOffset = true)
    {
        int i32 = c.Int("int", 4);
        int u32 = c.Int("unsigned int", 4, signed: false);
        int ch = c.Int("char", 1, isChar: true);
        int i8 = c.Int("signed char", 1);
        int lng = c.Int("long", 8);
        int ulng = c.Int("unsigned long", 8, signed: false);
        int u64 = c.TypedefOf("uint64_t", c.TypedefOf("__uint64_t", ulng));
        int i64 = c.TypedefOf("int64_t", c.TypedefOf("__int64_t", lng));
        int uptr = c.TypedefOf("uintptr_t", c.TypedefOf("__uintptr_t", ulng));
        int time = c.TypedefOf("time_t", c.TypedefOf("__time_t", lng));
        int threadPtr = c.PointerTo(thread);
        int voidPtr = c.PointerTo(0);

        int lockObject = c.StructOf("lock_object");
        c.SetMembers(lockObject, 24, ("lo_name", c.PointerTo(c.ConstOf(ch)), 0), ("lo_flags", u32, 64), ("lo_data", u32, 96), ("lo_witness", voidPtr, 128));
        int mtx = c.StructOf("mtx");
        c.SetMembers(mtx, 32, ("lock_object", lockObject, 0), ("mtx_lock", uptr, 24 * 8));
        int msgbuf = c.StructOf("msgbuf");
        c.SetMembers(msgbuf, MsgbufSize,
            ("msg_ptr", c.PointerTo(ch), 0),
            ("msg_magic", u32, 8 * 8),
            ("msg_size", u32, 12 * 8),
            ("msg_wseq", u32, 16 * 8),
            ("msg_rseq", u32, 20 * 8),
            ("msg_cksum", u32, 24 * 8),
            ("msg_seqmod", u32, 28 * 8),
            ("msg_lastpri", i32, 32 * 8),
            ("msg_flags", u32, 36 * 8),
            ("msg_lock", mtx, 40 * 8));

        int fixpt = c.TypedefOf("fixpt_t", c.TypedefOf("__uint32_t", u32));
        int loadavg = c.StructOf("loadavg");
        c.SetMembers(loadavg, 24, ("ldavg", c.ArrayOf(fixpt, lng, 3), 0), ("fscale", lng, 16 * 8));

        int cpuset = c.StructOf("_cpuset");
        c.SetMembers(cpuset, CpusetBytes, ("__bits", c.ArrayOf(lng, lng, CpusetBytes / 8), 0));
        c.TypedefOf("cpuset_t", cpuset);

        int pcpu = c.StructOf("pcpu");
        int stailq = c.StructOf(string.Empty);
        c.SetMembers(stailq, 8, ("stqe_next", c.PointerTo(pcpu), 0));
        var pcpuMembers = new List<(string, int, ulong)>
        {
            ("pc_curthread", threadPtr, 0),
            ("pc_idlethread", threadPtr, 8 * 8),
            ("pc_fpcurthread", threadPtr, 16 * 8),
            ("pc_deadthread", threadPtr, 24 * 8),
            ("pc_curpcb", voidPtr, 32 * 8),
            ("pc_sched", voidPtr, 40 * 8),
            ("pc_switchtime", u64, 48 * 8),
            ("pc_switchticks", i32, 56 * 8),
            ("pc_cpuid", u32, 60 * 8),
            ("pc_allcpu", stailq, 64 * 8),
            ("pc_spinlocks", voidPtr, 72 * 8),
            ("pc_cp_time", c.ArrayOf(lng, lng, 5), 80 * 8),
            ("pc_device", voidPtr, 120 * 8),
            ("pc_netisr", voidPtr, 128 * 8),
            ("pc_vfs_freevnodes", i8, 136 * 8),
            ("pc_domain", i32, 140 * 8),
            ("pc_dynamic", uptr, 160 * 8),
            ("pc_early_dummy_counter", u64, 168 * 8),
        };
        if (withZpcpuOffset)
        {
            pcpuMembers.Add(("pc_zpcpu_offset", uptr, 176 * 8));
        }

        c.SetMembers(pcpu, PcpuSize, [.. pcpuMembers]);

        int bintime = c.StructOf("bintime");
        c.SetMembers(bintime, 16, ("sec", time, 0), ("frac", u64, 64));
        int timeval = c.StructOf("timeval");
        c.SetMembers(timeval, 16, ("tv_sec", time, 0), ("tv_usec", c.TypedefOf("suseconds_t", c.TypedefOf("__suseconds_t", lng)), 64));
        int timespec = c.StructOf("timespec");
        c.SetMembers(timespec, 16, ("tv_sec", time, 0), ("tv_nsec", lng, 64));
        int timehands = c.StructOf("timehands");
        c.SetMembers(timehands, TimehandsSize,
            ("th_counter", voidPtr, 0),
            ("th_adjustment", i64, 8 * 8),
            ("th_scale", u64, 16 * 8),
            ("th_large_delta", u32, 24 * 8),
            ("th_offset_count", u32, 28 * 8),
            ("th_offset", bintime, 32 * 8),
            ("th_bintime", bintime, 48 * 8),
            ("th_microtime", timeval, 64 * 8),
            ("th_nanotime", timespec, 80 * 8),
            ("th_boottime", bintime, 96 * 8),
            ("th_generation", u32, 112 * 8),
            ("th_next", c.PointerTo(timehands), 120 * 8));
    }
}
