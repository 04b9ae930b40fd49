using System.Globalization;
using System.Text;

namespace Kvm.Testing;

/// <summary>
/// A small, self-consistent 32-bit x86 "kernel" in physical memory, PAE or 2-level: the direct map of 64 MiB of low
/// memory at <c>PAGE_OFFSET</c> with large pages, the kernel image in it at 16 MiB (plus a relocation), its
/// <c>swapper_pg_dir</c>, VMCOREINFO (with <c>CONFIG_X86_PAE=y</c> when PAE, as arch/x86/kernel/crash_core_32.c writes
/// it), BTF with 4-byte pointers and longs, two processes whose user pages sit in high memory (and, with PAE, above
/// 4 GiB), one page of which is swapped out, and a lockless printk ring with 32-bit <c>long</c>s whose data positions
/// wrap at 2^32. Layouts are this class's own (not a real kernel's), stated in its BTF and VMCOREINFO.
/// </summary>
public sealed class FakeI386Kernel
{
    public const ulong PageOffset = 0xC0000000;
    public const ulong LinkText = 0xC1000000;
    public const ulong LowMemory = 64UL << 20;
    public const string Release = "6.1.0-fake-686-pae";
    public const string Banner = "Linux version 6.1.0-fake-686-pae (fake@example.org) (gcc 12) #1 SMP PREEMPT_DYNAMIC\n";

    // User pages: argv of init and sh in high memory (above the 64 MiB direct map); with PAE one above 4 GiB.
    public const ulong InitArgStart = 0xbfffd000;
    public const ulong ShArgStart = 0xbfffeff8;
    public const ulong ShEnvStart = 0xbffff800;
    public const ulong SwappedEnvStart = 0x0804c000;
    public const int SwapType = 1;
    public const ulong SwapOffset = 0x321;

    public static readonly string[] LogLines = ["Linux version 6.1.0-fake-686-pae", "x86/PAT: Configuration", "Memory: 57344K/65536K available", "Freeing unused kernel image memory", "Run /sbin/init as init process"];

    // Offsets of objects from _text.
    private const ulong BannerOffset = 0x100000;
    private const ulong UtsOffset = 0x101000;
    private const ulong InitTaskOffset = 0x110000;
    private const ulong PrbOffset = 0x120000;
    private const ulong RingOffset = 0x120100;
    private const ulong GlobalsOffset = 0x130000;
    private const ulong SwapperOffset = 0x200000;
    private const ulong BtfOffset = 0x300000;

    // struct offsets of this fake (32-bit): task_struct, cred, signal_struct, pid, mm_struct.
    private const int TaskSize = 0x600, TaskState = 0x0c, TaskFlags = 0x14, TaskPrio = 0x30, TaskStaticPrio = 0x34, TaskTasks = 0x200, TaskMm = 0x220;
    private const int TaskExitState = 0x240, TaskPid = 0x260, TaskTgid = 0x264, TaskRealParent = 0x270, TaskThreadNode = 0x2a0, TaskUtime = 0x2c0;
    private const int TaskStime = 0x2c8, TaskStartBoottime = 0x2d8, TaskRealCred = 0x3a0, TaskCred = 0x3a4, TaskSignal = 0x3c0, TaskComm = 0x3e0;
    private const int CredSize = 0x60, SignalSize = 0x200, SignalNrThreads = 0x10, SignalThreadHead = 0x18, SignalUtime = 0x80, SignalStime = 0x88;
    private const int SignalPids = 0xa0, SignalTty = 0xc0, PidSize = 0x40, PidNumbers = 0x20, MmSize = 0x300, MmPgd = 0x24, MmTotalVm = 0x58;
    private const int MmArgStart = 0x90, MmArgEnd = 0x94, MmEnvStart = 0x98, MmEnvEnd = 0x9c, MmRssStat = 0x1c0;

    // Signals and faults with 32-bit longs: sigset_t is two words (_NSIG 64), struct sigaction 20 bytes, min_flt right
    // before maj_flt (an 8-byte read of one would take in the other).
    private const int TaskStack = 0x04, TaskFiles = 0x3b0, TaskSighand = 0x3c8, TaskBlocked = 0x400, TaskPending = 0x410, TaskMinFlt = 0x300, TaskMajFlt = 0x304;
    private const int SignalSharedPending = 0x30, SignalMinFlt = 0x100, SignalMajFlt = 0x104, SignalCminFlt = 0x108, SignalCmajFlt = 0x10c;
    private const int SighandSize = 0x520, SighandAction = 0x20, KSigactionSize = 20, SigpendingSignal = 8;

    private ulong _nextObject = 0x2800000;
    private ulong _nextGlobal = GlobalsOffset;
    private readonly Dictionary<string, ulong> _symbols = [];

    public FakeI386Kernel(bool pae = true, ulong relocation = 0x200000)
    {
        Pae = pae;
        Relocation = relocation;
        PhysicalLoad = 0x1000000 + relocation;
        Memory = new PhysicalMemoryBuilder(0x800000);
        Tables = new X86PageTableBuilder(Memory, pae, PhysicalLoad + SwapperOffset);
        ulong large = pae ? 0x200000UL : 0x400000UL;
        for (ulong pa = 0; pa < LowMemory; pa += large)
        {
            Tables.Map(PageOffset + pa, pa, large);
        }

        Memory.Write(PhysicalLoad + BannerOffset, Encoding.ASCII.GetBytes(Banner + "\0"));
        Memory.Write(PhysicalLoad + UtsOffset, FakeUtsname.Bytes(Release, "#1 SMP PREEMPT_DYNAMIC", "i686", "fake686"));
        Symbol("_text", TextVa);
        Symbol("_stext", TextVa);
        Symbol("linux_banner", TextVa + BannerOffset);
        Symbol("init_uts_ns", TextVa + UtsOffset);
        Symbol("swapper_pg_dir", TextVa + SwapperOffset);
        Symbol("init_task", TextVa + InitTaskOffset);
        Symbol("prb", TextVa + PrbOffset);
        WriteProcesses();
        WriteRing();
        byte[] btf = BuildBtf();
        Memory.Write(PhysicalLoad + BtfOffset, btf);
        Symbol("__start_BTF", TextVa + BtfOffset);
        Symbol("__stop_BTF", TextVa + BtfOffset + (ulong)btf.Length);
        Memory.Write(VmcoreInfoPage, Encoding.ASCII.GetBytes(VmcoreInfoText));
    }

    public bool Pae { get; }

    /// <summary>How far the kernel was relocated (CONFIG_RELOCATABLE): virtual and physical addresses move together.</summary>
    public ulong Relocation { get; }

    public ulong PhysicalLoad { get; }

    public PhysicalMemoryBuilder Memory { get; }

    public X86PageTableBuilder Tables { get; }

    public ulong TextVa => LinkText + Relocation;

    public ulong SwapperPgDirVa => TextVa + SwapperOffset;

    public ulong InitTask => TextVa + InitTaskOffset;

    /// <summary>sh's kernel stack (<c>task_struct.stack</c>).</summary>
    public const uint ShStack = 0xc5a0_4000;

    /// <summary>sh's files_struct (<c>task_struct.files</c>).</summary>
    public const uint ShFiles = 0xc5b0_0040;

    /// <summary>The task addresses of init (pid 1) and sh (pid 42).</summary>
    public ulong[] Tasks { get; private set; } = [];

    /// <summary>Where the kernel's vmcoreinfo_data page sits (found by the memory scan).</summary>
    public ulong VmcoreInfoPage => 0x7000;

    /// <summary>The physical address of sh's argv page: in high memory, above 4 GiB with PAE.</summary>
    public ulong ShArgPhysical => Pae ? 0x1_2000_0000UL : 0x5000000UL;

    public string VmcoreInfoText
    {
        get
        {
            var sb = new StringBuilder();
            sb.Append(CultureInfo.InvariantCulture, $"OSRELEASE={Release}\nPAGESIZE=4096\n");
            foreach (var name in new[] { "init_uts_ns", "_stext", "swapper_pg_dir", "prb" })
            {
                sb.Append(CultureInfo.InvariantCulture, $"SYMBOL({name})={_symbols[name]:x}\n");
            }

            sb.Append("OFFSET(uts_namespace.name)=0\n");
            foreach (var (key, value) in PrintkOffsets)
            {
                sb.Append(CultureInfo.InvariantCulture, $"{key}={value}\n");
            }

            if (Pae)
            {
                sb.Append("CONFIG_X86_PAE=y\n");
            }

            return sb.ToString();
        }
    }

    /// <summary>A link-time System.map (addresses before the relocation).</summary>
    public string SystemMap =>
        string.Concat(_symbols.OrderBy(s => s.Value).Select(s => $"{s.Value - Relocation:x8} D {s.Key}\n"));

    /// <summary>The fake as a QEMU-style ELF core: ELF32 when every page is below 4 GiB, ELF64 otherwise, EM_386 either way.</summary>
    public byte[] ToElf(bool vmcoreInfoNote = true, bool cpuNote = true)
    {
        var elf = new ElfCoreBuilder { Machine = 3, Is64 = Memory.Size > 1UL << 32 };
        if (cpuNote)
        {
            // CR0.PG|PE, CR3 = swapper_pg_dir, CR4.PSE (bit 4) and, with PAE, CR4.PAE (bit 5).
            elf.AddQemuCpuState(0x80050033, Tables.Root, Pae ? 0x30UL : 0x10UL);
        }

        if (vmcoreInfoNote)
        {
            elf.AddVmcoreInfo(VmcoreInfoText);
        }

        return elf.AddPhysicalMemory(Memory).Build();
    }

    private static IEnumerable<(string Key, long Value)> PrintkOffsets =>
    [
        ("OFFSET(printk_ringbuffer.desc_ring)", 0), ("OFFSET(printk_ringbuffer.text_data_ring)", 24), ("OFFSET(printk_ringbuffer.fail)", 40),
        ("OFFSET(prb_desc_ring.count_bits)", 0), ("OFFSET(prb_desc_ring.descs)", 4), ("OFFSET(prb_desc_ring.infos)", 8),
        ("OFFSET(prb_desc_ring.head_id)", 12), ("OFFSET(prb_desc_ring.tail_id)", 16), ("OFFSET(prb_desc.state_var)", 0),
        ("OFFSET(prb_desc.text_blk_lpos)", 4), ("OFFSET(prb_data_blk_lpos.begin)", 0), ("OFFSET(prb_data_blk_lpos.next)", 4),
        ("OFFSET(printk_info.seq)", 0), ("OFFSET(printk_info.ts_nsec)", 8), ("OFFSET(printk_info.text_len)", 16),
        ("OFFSET(printk_info.caller_id)", 20), ("OFFSET(printk_info.dev_info)", 24), ("OFFSET(dev_printk_info.subsystem)", 0),
        ("OFFSET(dev_printk_info.device)", 16), ("OFFSET(prb_data_ring.size_bits)", 0), ("OFFSET(prb_data_ring.data)", 4),
        ("OFFSET(prb_data_ring.head_lpos)", 8), ("OFFSET(prb_data_ring.tail_lpos)", 12), ("OFFSET(atomic_long_t.counter)", 0),
        ("SIZE(printk_ringbuffer)", 44), ("SIZE(prb_desc_ring)", 24), ("SIZE(prb_desc)", 12), ("SIZE(prb_data_blk_lpos)", 8),
        ("SIZE(printk_info)", 88), ("SIZE(dev_printk_info)", 64), ("SIZE(prb_data_ring)", 16), ("SIZE(atomic_long_t)", 4),
        ("LENGTH(printk_info_subsystem)", 16), ("LENGTH(printk_info_device)", 48),
    ];

    private void Symbol(string name, ulong va) => _symbols[name] = va;

    private ulong Pa(ulong va) => va - PageOffset;

    private void W32(ulong va, uint value) => Memory.Write(Pa(va), BitConverter.GetBytes(value));

    private void W64(ulong va, ulong value) => Memory.Write(Pa(va), BitConverter.GetBytes(value));

    private ulong Alloc(int size, ulong align = 64)
    {
        _nextObject = (_nextObject + align - 1) & ~(align - 1);
        ulong va = PageOffset + _nextObject;
        _nextObject += (ulong)size;
        Memory.Write(Pa(va), new byte[size]);
        return va;
    }

    private ulong Global(string name, int size)
    {
        _nextGlobal = (_nextGlobal + 63) & ~63UL;
        ulong va = TextVa + _nextGlobal;
        _nextGlobal += (ulong)size;
        Memory.Write(Pa(va), new byte[size]);
        Symbol(name, va);
        return va;
    }

    private void WriteProcesses()
    {
        // avenrun (unsigned long[3], FSHIFT 11): 0.50, 1.00, 2.00; two CPUs with 32-bit per-CPU offsets, one "negative".
        ulong avenrun = Global("avenrun", 12);
        W32(avenrun, 1024);
        W32(avenrun + 4, 2048);
        W32(avenrun + 8, 4096);
        W32(Global("nr_cpu_ids", 4), 2);
        W32(Global("max_low_pfn", 4), (uint)(LowMemory >> 12));
        W32(Global("__cpu_online_mask", 4), 3);
        ulong offsets = Global("__per_cpu_offset", 8);
        W32(offsets, 0x01000000);
        W32(offsets + 4, unchecked((uint)-0x00100000));

        ulong initTask = InitTask;
        Memory.Write(Pa(initTask), new byte[TaskSize]);
        ulong rootCred = Alloc(CredSize);
        ulong initSignal = Alloc(SignalSize);
        ulong initPid = NewPid(0);
        SetSignal(initSignal, initPid, initPid);
        WriteTask(initTask, 0, "swapper/0", initTask, rootCred, initSignal, 0, kthread: true);
        W32(initTask + TaskTasks, (uint)(initTask + TaskTasks));
        W32(initTask + TaskTasks + 4, (uint)(initTask + TaskTasks));

        // init (pid 1): argv on one page in high memory.
        var initMm = NewMm(InitArgStart, "/sbin/init\0splash\0"u8.ToArray(), null, 0x5010000, out _);
        ulong initSig = Alloc(SignalSize);
        ulong pid1 = NewPid(1);
        SetSignal(initSig, pid1, pid1);
        ulong init = Alloc(TaskSize);
        WriteTask(init, 1, "init", initTask, rootCred, initSig, initMm, kthread: false);

        // sh (pid 42, uid 1000): argv crosses into the next page (above 4 GiB with PAE); its second env page is swapped out.
        ulong userCred = Alloc(CredSize);
        for (int i = 0; i < 8; i++)
        {
            W32(userCred + 4 + (ulong)(4 * i), 1000);
        }

        var shArgs = "/bin/sh\0-c\0sleep 1000\0"u8.ToArray();
        ulong shMm = NewMm(ShArgStart, shArgs, null, ShArgPhysical, out var shTables);
        shTables.Map(SwappedEnvStart, 0x5003000).SetPte(SwappedEnvStart + 0x1000, X86PageTableBuilder.SwapEntry(SwapType, SwapOffset, Pae));
        Memory.Write(0x5003000 + 0xff8, "TERM=xte"u8);
        W32(shMm + MmEnvStart, (uint)(SwappedEnvStart + 0xff8));
        W32(shMm + MmEnvEnd, (uint)(SwappedEnvStart + 0x1010));
        ulong shSig = Alloc(SignalSize);
        ulong pid42 = NewPid(42);
        SetSignal(shSig, pid42, pid1);
        ulong sh = Alloc(TaskSize);
        WriteTask(sh, 42, "sh", init, userCred, shSig, shMm, kthread: false);
        Tasks = [init, sh];

        // sh: SIGHUP ignored, signal 33 caught (bit 0 of sigset_t's second word); signals 1 and 64 blocked, 33 pending
        // for the thread and SIGTERM for the process; 40 + 7 minor and 2 + 1 major faults, its children 300 and 4.
        ulong sighand = Alloc(SighandSize);
        W32(sighand + SighandAction, 1);
        W32(sighand + SighandAction + (32 * KSigactionSize), 0x0804_9000);
        W32(sh + TaskSighand, (uint)sighand);
        W32(sh + TaskBlocked, 1);
        W32(sh + TaskBlocked + 4, 0x8000_0000);
        W32(sh + TaskPending + SigpendingSignal + 4, 1);
        W32(shSig + SignalSharedPending + SigpendingSignal, 1 << 14);
        W32(sh + TaskMinFlt, 40);
        W32(sh + TaskMajFlt, 2);
        W32(shSig + SignalMinFlt, 7);
        W32(shSig + SignalMajFlt, 1);
        W32(shSig + SignalCminFlt, 300);
        W32(shSig + SignalCmajFlt, 4);
        W32(sh + TaskStack, ShStack);
        W32(sh + TaskFiles, ShFiles);

        // init_task.tasks -> init -> sh -> back.
        ulong[] ring = [initTask, init, sh];
        for (int i = 0; i < ring.Length; i++)
        {
            W32(ring[i] + TaskTasks, (uint)(ring[(i + 1) % ring.Length] + TaskTasks));
            W32(ring[i] + TaskTasks + 4, (uint)(ring[(i + ring.Length - 1) % ring.Length] + TaskTasks));
        }
    }

    private ulong NewPid(int nr)
    {
        ulong pid = Alloc(PidSize);
        W32(pid + PidNumbers, (uint)nr);
        return pid;
    }

    private void SetSignal(ulong signal, ulong pgid, ulong sid)
    {
        W32(signal + SignalNrThreads, 1);
        W32(signal + SignalPids + 8, (uint)pgid); // PIDTYPE_PGID 2
        W32(signal + SignalPids + 12, (uint)sid); // PIDTYPE_SID 3
    }

    private void WriteTask(ulong task, int pid, string comm, ulong parent, ulong cred, ulong signal, ulong mm, bool kthread)
    {
        W32(task + TaskState, pid == 0 ? 0u : 1u);
        W32(task + TaskFlags, kthread ? 0x00200000u : 0u);
        W32(task + TaskPrio, 120);
        W32(task + TaskStaticPrio, 120);
        W32(task + TaskMm, (uint)mm);
        W32(task + TaskPid, (uint)pid);
        W32(task + TaskTgid, (uint)pid);
        W32(task + TaskRealParent, (uint)parent);
        W64(task + TaskUtime, 2_000_000_000UL * (ulong)(pid + 1));
        W64(task + TaskStime, 1_000_000_000UL);
        W64(task + TaskStartBoottime, 5_000_000_000UL);
        W32(task + TaskRealCred, (uint)cred);
        W32(task + TaskCred, (uint)cred);
        W32(task + TaskSignal, (uint)signal);
        Memory.Write(Pa(task + TaskComm), Encoding.ASCII.GetBytes(comm + "\0"));

        // signal->thread_head <-> task->thread_node: a one-thread group.
        W32(signal + SignalThreadHead, (uint)(task + TaskThreadNode));
        W32(signal + SignalThreadHead + 4, (uint)(task + TaskThreadNode));
        W32(task + TaskThreadNode, (uint)(signal + SignalThreadHead));
        W32(task + TaskThreadNode + 4, (uint)(signal + SignalThreadHead));
    }

    /// <summary>An mm_struct with its own page tables (sharing the kernel's direct map) and argv at <paramref name="argStart"/>.</summary>
    private ulong NewMm(ulong argStart, byte[] args, byte[]? env, ulong firstPage, out X86PageTableBuilder tables)
    {
        // A PAE PDPT comes from a 32-byte slab (arch/x86/mm/pgtable.c), so place it mid-page, as the kernel would.
        ulong pgdVa = Alloc(4096, 4096) + (Pae ? 0x40UL : 0UL);
        tables = new X86PageTableBuilder(Memory, Pae, Pa(pgdVa));
        ulong large = Pae ? 0x200000UL : 0x400000UL;
        for (ulong pa = 0; pa < LowMemory; pa += large)
        {
            tables.Map(PageOffset + pa, pa, large);
        }

        ulong page = argStart & ~0xfffUL;
        tables.Map(page, firstPage);
        tables.Map(page + 0x1000, firstPage + 0x1000);
        int inPage = (int)(argStart & 0xfff);
        Memory.Write(firstPage + (ulong)inPage, args);
        ulong envStart = argStart + (ulong)args.Length;
        if (env is not null)
        {
            Memory.Write(firstPage + (ulong)inPage + (ulong)args.Length, env);
        }

        ulong mm = Alloc(MmSize);
        W32(mm + MmPgd, (uint)pgdVa);
        W32(mm + MmTotalVm, 0x345);
        W32(mm + MmArgStart, (uint)argStart);
        W32(mm + MmArgEnd, (uint)(argStart + (ulong)args.Length));
        W32(mm + MmEnvStart, (uint)envStart);
        W32(mm + MmEnvEnd, (uint)(envStart + (ulong)(env?.Length ?? 0)));
        W32(mm + MmRssStat, 10);     // MM_FILEPAGES
        W32(mm + MmRssStat + 4, 20); // MM_ANONPAGES
        return mm;
    }

    /// <summary>
    /// The lockless ring with 32-bit longs: 8 descriptors, 1 KiB of text. Data positions start 0x60 bytes before
    /// 2^32 (as if older records had been dropped), so the third record does not fit before the ring's end and is
    /// stored at its start with next = 2^32 wrap + size, as data_alloc() does; ids start just below the 30-bit id wrap.
    /// </summary>
    private void WriteRing()
    {
        const int countBits = 3;
        const int sizeBits = 10;
        const ulong ringSize = 1 << sizeBits;
        ulong descs = Alloc(12 << countBits);
        ulong infos = Alloc(88 << countBits);
        ulong data = Alloc((int)ringSize);
        ulong ring = TextVa + RingOffset;
        W32(TextVa + PrbOffset, (uint)ring);
        W32(ring + 0, countBits);
        W32(ring + 4, (uint)descs);
        W32(ring + 8, (uint)infos);
        W32(ring + 24, sizeBits);
        W32(ring + 28, (uint)data);

        const uint idMask = 0x3fffffff;
        uint firstId = idMask - 1;
        uint id = firstId;
        uint head = unchecked((uint)-0x60);
        for (int i = 0; i < LogLines.Length; i++, id = (id + 1) & idMask)
        {
            byte[] text = Encoding.ASCII.GetBytes(LogLines[i]);
            uint size = (uint)((4 + text.Length + 3) & ~3);
            uint begin = head;
            uint offset = begin & (uint)(ringSize - 1);
            uint next;
            if (offset + size > ringSize)
            {
                next = unchecked((begin + (uint)ringSize) & ~(uint)(ringSize - 1)) + size;
                W32(data + offset, id);
                offset = 0;
            }
            else
            {
                next = unchecked(begin + size);
            }

            W32(data + offset, id);
            Memory.Write(Pa(data + offset + 4), text);
            ulong slot = id & ((1u << countBits) - 1);
            W32(descs + (slot * 12), (2u << 30) | id);
            W32(descs + (slot * 12) + 4, begin);
            W32(descs + (slot * 12) + 8, next);
            ulong info = infos + (slot * 88);
            W64(info, (ulong)i);
            W64(info + 8, 1_000_000UL * (ulong)(i + 1));
            Memory.Write(Pa(info + 16), BitConverter.GetBytes((ushort)text.Length));
            Memory.Write(Pa(info + 19), [(byte)(6 << 5)]);
            W32(info + 20, 1);
            head = next;
        }

        W32(ring + 12, (id - 1) & idMask); // head_id: the last record written
        W32(ring + 16, firstId);           // tail_id
    }

    private byte[] BuildBtf()
    {
        var b = new BtfBuilder();
        int chr = b.Int("char", 1, 8, signed: true, isChar: true);
        int i32 = b.Int("int", 4, 32, signed: true);
        int u32 = b.Int("unsigned int", 4, 32);
        int lng = b.Int("long int", 4, 32, signed: true);
        int ulng = b.Int("long unsigned int", 4, 32);
        int u64 = b.Int("long long unsigned int", 8, 64);
        int ptr = b.Pointer(0);
        int listHead = b.Struct("list_head", 8, ("next", ptr, 0, 0), ("prev", ptr, 32, 0));
        int comm = b.Array(chr, i32, 16);
        int atomicLong = b.Struct("atomic_long_t", 4, ("counter", lng, 0, 0));
        int rss = b.Struct("mm_rss_stat", 16, ("count", b.Array(atomicLong, i32, 4), 0, 0));
        int sigset = b.Typedef("sigset_t", b.Struct("", 8, ("sig", b.Array(ulng, i32, 2), 0, 0)));
        int sigpending = b.Struct("sigpending", 16, ("list", listHead, 0, 0), ("signal", sigset, SigpendingSignal * 8, 0));
        int sigaction = b.Struct("sigaction", KSigactionSize, ("sa_handler", ptr, 0, 0), ("sa_flags", ulng, 32, 0), ("sa_restorer", ptr, 64, 0), ("sa_mask", sigset, 96, 0));
        int kSigaction = b.Struct("k_sigaction", KSigactionSize, ("sa", sigaction, 0, 0));
        b.Struct("sighand_struct", SighandSize, ("count", i32, 0, 0), ("action", b.Array(kSigaction, i32, 64), SighandAction * 8, 0));
        b.Struct("task_struct", TaskSize,
            ("__state", u32, TaskState * 8, 0), ("flags", u32, TaskFlags * 8, 0), ("prio", i32, TaskPrio * 8, 0), ("static_prio", i32, TaskStaticPrio * 8, 0),
            ("tasks", listHead, TaskTasks * 8, 0), ("mm", ptr, TaskMm * 8, 0), ("exit_state", i32, TaskExitState * 8, 0), ("pid", i32, TaskPid * 8, 0),
            ("tgid", i32, TaskTgid * 8, 0), ("real_parent", ptr, TaskRealParent * 8, 0), ("thread_node", listHead, TaskThreadNode * 8, 0),
            ("utime", u64, TaskUtime * 8, 0), ("stime", u64, TaskStime * 8, 0), ("start_boottime", u64, TaskStartBoottime * 8, 0),
            ("real_cred", ptr, TaskRealCred * 8, 0), ("cred", ptr, TaskCred * 8, 0), ("signal", ptr, TaskSignal * 8, 0), ("comm", comm, TaskComm * 8, 0),
            ("stack", ptr, TaskStack * 8, 0), ("files", ptr, TaskFiles * 8, 0), ("sighand", ptr, TaskSighand * 8, 0), ("blocked", sigset, TaskBlocked * 8, 0),
            ("pending", sigpending, TaskPending * 8, 0), ("min_flt", ulng, TaskMinFlt * 8, 0), ("maj_flt", ulng, TaskMajFlt * 8, 0));
        b.Struct("cred", CredSize,
            ("uid", u32, 4 * 8, 0), ("gid", u32, 8 * 8, 0), ("suid", u32, 12 * 8, 0), ("sgid", u32, 16 * 8, 0),
            ("euid", u32, 20 * 8, 0), ("egid", u32, 24 * 8, 0), ("fsuid", u32, 28 * 8, 0), ("fsgid", u32, 32 * 8, 0));
        b.Struct("signal_struct", SignalSize,
            ("nr_threads", i32, SignalNrThreads * 8, 0), ("thread_head", listHead, SignalThreadHead * 8, 0), ("utime", u64, SignalUtime * 8, 0),
            ("stime", u64, SignalStime * 8, 0), ("pids", b.Array(ptr, i32, 4), SignalPids * 8, 0), ("tty", ptr, SignalTty * 8, 0),
            ("shared_pending", sigpending, SignalSharedPending * 8, 0), ("min_flt", ulng, SignalMinFlt * 8, 0), ("maj_flt", ulng, SignalMajFlt * 8, 0),
            ("cmin_flt", ulng, SignalCminFlt * 8, 0), ("cmaj_flt", ulng, SignalCmajFlt * 8, 0));
        int upid = b.Struct("upid", 8, ("nr", i32, 0, 0), ("ns", ptr, 32, 0));
        b.Struct("pid", PidSize, ("numbers", b.Array(upid, i32, 1), PidNumbers * 8, 0));
        b.Struct("mm_struct", MmSize,
            ("pgd", ptr, MmPgd * 8, 0), ("total_vm", ulng, MmTotalVm * 8, 0), ("arg_start", ulng, MmArgStart * 8, 0), ("arg_end", ulng, MmArgEnd * 8, 0),
            ("env_start", ulng, MmEnvStart * 8, 0), ("env_end", ulng, MmEnvEnd * 8, 0), ("rss_stat", rss, MmRssStat * 8, 0));
        b.Enum("pid_type", 4, false, ("PIDTYPE_PID", 0), ("PIDTYPE_TGID", 1), ("PIDTYPE_PGID", 2), ("PIDTYPE_SID", 3), ("PIDTYPE_MAX", 4));
        b.Enum("mm_counter_type", 4, false, ("MM_FILEPAGES", 0), ("MM_ANONPAGES", 1), ("MM_SWAPENTS", 2), ("MM_SHMEMPAGES", 3));
        return b.Build();
    }
}
