using System.Buffers.Binary;
using System.Text;
using L = Kvm.Testing.FakeKernel.FakeKernelLayout;

namespace Kvm.Testing.FakeKernel;

/// <summary>
/// Kernel objects on top of a <see cref="FakeLinuxKernel"/>: globals in the kernel image (listed in the System.map),
/// task_structs, creds, signal_structs, pids, ttys, mm_structs with their own user page tables, files, dentries and
/// mounts, swap areas, per-CPU areas, the timekeeper and a printk ring, all laid out by <see cref="FakeKernelLayout"/>
/// and described by BTF placed between <c>__start_BTF</c> and <c>__stop_BTF</c>, as a real kernel carries it.
/// Objects live in the direct map; writes go straight to physical memory, so a test can corrupt anything afterwards.
/// </summary>
public sealed class FakeKernelObjects
{
    public const uint PfKthread = 0x00200000;
    public const uint PfExiting = 0x4;

    // Per-CPU variables are offsets into the per-CPU area (the existing map has __per_cpu_start 0, current_task 0x1f000).
    public const ulong CurrentTaskPerCpu = 0x1f000;
    public const ulong RunqueuesPerCpu = 0x2c000;
    public const ulong KernelCpustatPerCpu = 0x20000;
    public const ulong TickCpuSchedPerCpu = 0x23000;

    private const ulong GlobalsOffset = 0x400000;
    private const ulong BtfOffset = 0x600000;
    private const ulong ObjectsPhysical = 0x10000000;

    private readonly Dictionary<string, ulong> _globals = [];
    private readonly Dictionary<string, ulong> _perCpu = new()
    {
        ["runqueues"] = RunqueuesPerCpu,
        ["kernel_cpustat"] = KernelCpustatPerCpu,
        ["tick_cpu_sched"] = TickCpuSchedPerCpu,
    };
    private ulong _nextGlobal = GlobalsOffset;
    private ulong _nextPhysical = ObjectsPhysical;

    public FakeKernelObjects(IFakeKernel? kernel = null)
    {
        Kernel = kernel ?? new FakeLinuxKernel();

        // init_task (the idle task, pid 0) with init_cred, init_signals and init_struct_pid, as the kernel starts.
        InitTask = Global("init_task", L.SizeOf("task_struct"));
        ulong initPid = Global("init_struct_pid", L.SizeOf("pid"));
        Set(initPid, "pid.numbers", 0, 4);
        ulong initSignal = Global("init_signals", L.SizeOf("signal_struct"));
        ulong initCred = Global("init_cred", L.SizeOf("cred"));
        InitSignal(initSignal, 1, initPid, initPid, initPid);
        WriteTask(InitTask, 0, 0, "swapper/0", InitTask, 0, 0, PfKthread, 120, 120, 0, initCred, initSignal, 0, 0);
        ListInit(InitTask + Off("task_struct.tasks"));
        ListAddTail(initSignal + Off("signal_struct.thread_head"), InitTask + Off("task_struct.thread_node"));

        Avenrun = Global("avenrun", 24);
        NrThreads = Global("nr_threads", 4);
        NrSwapfiles = Global("nr_swapfiles", 4);
        SwapInfo = Global("swap_info", 32 * 8);
        NrCpuIds = Global("nr_cpu_ids", 4);
        CpuOnlineMask = Global("__cpu_online_mask", 8 * 128);
        PerCpuOffset = Global("__per_cpu_offset", 8 * 64);
        TkCore = Global("tk_core", 8 + L.SizeOf("timekeeper"));
        Prb = Global("prb", 8);
        PrintkRing = Global("printk_rb_dynamic", L.SizeOf("printk_ringbuffer"));
        CpuPossibleMask = Global("__cpu_possible_mask", 8 * 128);
        TickNohzActive = Global("tick_nohz_active", 8);

        // A function of kernel/time/tick-sched.c built only with CONFIG_NO_HZ_COMMON, as Debian's amd64/arm64 kernels are.
        Global("tick_nohz_idle_enter", 8);
        SetCpus(1, 1, [InitTask]);
    }

    public IFakeKernel Kernel { get; }

    public ulong InitTask { get; }

    public ulong Avenrun { get; }

    public ulong NrThreads { get; }

    public ulong NrSwapfiles { get; }

    public ulong SwapInfo { get; }

    public ulong NrCpuIds { get; }

    public ulong CpuOnlineMask { get; }

    public ulong PerCpuOffset { get; }

    public ulong TkCore { get; }

    public ulong Prb { get; }

    public ulong PrintkRing { get; }

    public ulong CpuPossibleMask { get; }

    public ulong TickNohzActive { get; }

    /// <summary>Member types the BTF states instead of the layout's (<c>struct.member</c> → type).</summary>
    public Dictionary<string, string> BtfMemberTypeOverrides { get; } = [];

    /// <summary>Members (<c>struct.member</c>) or whole definitions left out of the BTF, to test a kernel that lacks them.</summary>
    public HashSet<string> OmitFromBtf { get; } = [];

    /// <summary>Structure sizes the BTF states instead of the layout's (the objects keep their real size).</summary>
    public Dictionary<string, int> BtfSizeOverrides { get; } = [];

    /// <summary>Whether the image carries BTF between __start_BTF and __stop_BTF (a kernel built without CONFIG_DEBUG_INFO_BTF does not).</summary>
    public bool BtfInImage { get; set; } = true;

    /// <summary>The runtime address of a global placed by this builder.</summary>
    public ulong Symbol(string name) => _globals[name];

    /// <summary>The absolute offset of a member in the fake layout.</summary>
    public static ulong Off(string path) => (ulong)L.Offset(path);

    // ---- memory ----

    /// <summary>Allocates a zeroed object in the direct map and returns its kernel virtual address.</summary>
    public ulong Alloc(int size, int align = 64)
    {
        _nextPhysical = (_nextPhysical + (ulong)align - 1) & ~((ulong)align - 1);
        ulong pa = _nextPhysical;
        _nextPhysical += (ulong)Math.Max(size, 1);
        Kernel.Memory.Write(pa, new byte[size]);
        return Kernel.PageOffsetBase + pa;
    }

    /// <summary>Places a global in the kernel image and lists it in the System.map.</summary>
    public ulong Global(string name, int size)
    {
        _nextGlobal = (_nextGlobal + 63) & ~63UL;
        ulong va = Kernel.TextVa + _nextGlobal;
        _nextGlobal += (ulong)size;
        Write(va, new byte[size]);
        _globals[name] = va;
        return va;
    }

    /// <summary>The physical address behind a direct-map or kernel-text address of the fake.</summary>
    public ulong Physical(ulong va)
    {
        if (va >= Kernel.PageOffsetBase && va - Kernel.PageOffsetBase < 0x40000000)
        {
            return va - Kernel.PageOffsetBase;
        }

        if (va >= Kernel.TextVa && va - Kernel.TextVa < Kernel.ImageSize)
        {
            return Kernel.PhysicalLoad + (va - Kernel.TextVa);
        }

        throw new ArgumentOutOfRangeException(nameof(va), $"0x{va:x} is neither in the direct map nor in the kernel image");
    }

    public void Write(ulong va, ReadOnlySpan<byte> data) => Kernel.Memory.Write(Physical(va), data);

    public void WriteU64(ulong va, ulong value) => Write(va, BitConverter.GetBytes(value));

    public void WriteU32(ulong va, uint value) => Write(va, BitConverter.GetBytes(value));

    public ulong ReadU64(ulong va) => BitConverter.ToUInt64(Kernel.Memory.Read(Physical(va), 8));

    /// <summary>Writes <paramref name="size"/> bytes of <paramref name="value"/> at member <paramref name="path"/> of <paramref name="obj"/>.</summary>
    public void Set(ulong obj, string path, ulong value, int size = 8)
    {
        var (offset, member) = L.Find(path);
        if (member.Bits > 0)
        {
            ulong at = obj + (ulong)offset;
            byte b = Kernel.Memory.Read(Physical(at), 1)[0];
            ulong mask = ((1UL << member.Bits) - 1) << member.Bit;
            b = (byte)((b & ~(byte)mask) | (byte)((value << member.Bit) & mask));
            Write(at, [b]);
            return;
        }

        var bytes = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, value);
        Write(obj + (ulong)offset, bytes.AsSpan(0, size));
    }

    /// <summary>A NUL-terminated string in the direct map.</summary>
    public ulong String(string s)
    {
        var bytes = Encoding.UTF8.GetBytes(s + "\0");
        ulong va = Alloc(bytes.Length, 8);
        Write(va, bytes);
        return va;
    }

    // ---- lists ----

    public void ListInit(ulong head)
    {
        WriteU64(head, head);
        WriteU64(head + 8, head);
    }

    /// <summary>list_add_tail(entry, head).</summary>
    public void ListAddTail(ulong head, ulong entry)
    {
        if (ReadU64(head) == 0)
        {
            ListInit(head);
        }

        ulong prev = ReadU64(head + 8);
        WriteU64(entry, head);
        WriteU64(entry + 8, prev);
        WriteU64(prev, entry);
        WriteU64(head + 8, entry);
    }

    // ---- processes ----

    public ulong NewCred(uint uid, uint euid, uint suid, uint fsuid, uint gid, uint egid, uint sgid, uint fsgid)
    {
        ulong c = Alloc(L.SizeOf("cred"));
        Set(c, "cred.usage", 1, 4);
        Set(c, "cred.uid", uid, 4);
        Set(c, "cred.euid", euid, 4);
        Set(c, "cred.suid", suid, 4);
        Set(c, "cred.fsuid", fsuid, 4);
        Set(c, "cred.gid", gid, 4);
        Set(c, "cred.egid", egid, 4);
        Set(c, "cred.sgid", sgid, 4);
        Set(c, "cred.fsgid", fsgid, 4);
        return c;
    }

    public ulong NewPid(int nr)
    {
        ulong p = Alloc(L.SizeOf("pid"));
        Set(p, "pid.count", 1, 4);
        Set(p, "pid.numbers", 0, 8);
        WriteU32(p + Off("pid.numbers") + Off("upid.nr"), (uint)nr);
        return p;
    }

    public ulong NewTtyDriver(int major, int minorStart, string name)
    {
        ulong d = Alloc(L.SizeOf("tty_driver"));
        Set(d, "tty_driver.magic", 0x5402, 4);
        Set(d, "tty_driver.major", (uint)major, 4);
        Set(d, "tty_driver.minor_start", (uint)minorStart, 4);
        Set(d, "tty_driver.name", String(name));
        return d;
    }

    public ulong NewTty(ulong driver, int index, string name)
    {
        ulong t = Alloc(L.SizeOf("tty_struct"));
        Set(t, "tty_struct.magic", 0x5401, 4);
        Set(t, "tty_struct.driver", driver);
        Set(t, "tty_struct.index", (uint)index, 4);
        Write(t + Off("tty_struct.name"), Encoding.ASCII.GetBytes(name + "\0"));
        return t;
    }

    /// <summary>A signal_struct with pids[PIDTYPE_*] pointing at the given struct pids.</summary>
    public ulong NewSignal(int nrThreads, ulong tgidPid, ulong pgidPid, ulong sidPid, ulong tty = 0, ulong utime = 0, ulong stime = 0)
    {
        ulong s = Alloc(L.SizeOf("signal_struct"));
        InitSignal(s, nrThreads, tgidPid, pgidPid, sidPid);
        Set(s, "signal_struct.tty", tty);
        Set(s, "signal_struct.utime", utime);
        Set(s, "signal_struct.stime", stime);
        return s;
    }

    /// <summary>Points the tty's foreground process group and session (<c>tty_struct.ctrl</c>) at struct pids (0: none).</summary>
    public void SetTtyGroups(ulong tty, ulong pgrpPid, ulong sessionPid)
    {
        Set(tty, "tty_struct.ctrl.pgrp", pgrpPid);
        Set(tty, "tty_struct.ctrl.session", sessionPid);
    }

    /// <summary>
    /// A sighand_struct whose actions are SIG_DFL (0) but those given: a handler of 1 is SIG_IGN, anything else a
    /// function. Every action's sa_flags and ka_restorer are non-zero, so a walker reading the wrong member or stride
    /// sees handlers that are not there.
    /// </summary>
    public ulong NewSighand(params (int Signal, ulong Handler)[] actions)
    {
        ulong sh = Alloc(L.SizeOf("sighand_struct"));
        Set(sh, "sighand_struct.count", 1, 4);
        ulong first = sh + Off("sighand_struct.action");
        ulong stride = (ulong)L.SizeOf("k_sigaction");
        for (ulong i = 0; i < 64; i++)
        {
            Set(first + (i * stride), "k_sigaction.sa.sa_flags", 0x04000000);
            Set(first + (i * stride), "k_sigaction.ka_restorer", 0x7f00_0000_1000);
        }

        foreach (var (signal, handler) in actions)
        {
            Set(first + ((ulong)(signal - 1) * stride), "k_sigaction.sa.sa_handler", handler);
        }

        return sh;
    }

    /// <summary>Sets a task's sighand, its own pending signals and its blocked mask (real_blocked gets a different value).</summary>
    public void SetSignals(ulong task, ulong sighand, ulong pending = 0, ulong blocked = 0)
    {
        Set(task, "task_struct.sighand", sighand);
        Set(task, "task_struct.pending.signal", pending);
        ListInit(task + Off("task_struct.pending.list"));
        Set(task, "task_struct.blocked", blocked);
        Set(task, "task_struct.real_blocked", ~blocked);
    }

    /// <summary>Sets the signals pending for the whole process (<c>signal_struct.shared_pending.signal</c>).</summary>
    public void SetSharedPending(ulong signal, ulong pending)
    {
        Set(signal, "signal_struct.shared_pending.signal", pending);
        ListInit(signal + Off("signal_struct.shared_pending.list"));
    }

    /// <summary>Sets a task's own fault counters.</summary>
    public void SetFaults(ulong task, ulong minFlt, ulong majFlt)
    {
        Set(task, "task_struct.min_flt", minFlt);
        Set(task, "task_struct.maj_flt", majFlt);
    }

    /// <summary>Sets a process's fault counters: its dead threads' and its waited-for children's.</summary>
    public void SetProcessFaults(ulong signal, ulong minFlt, ulong majFlt, ulong cminFlt, ulong cmajFlt)
    {
        Set(signal, "signal_struct.min_flt", minFlt);
        Set(signal, "signal_struct.maj_flt", majFlt);
        Set(signal, "signal_struct.cmin_flt", cminFlt);
        Set(signal, "signal_struct.cmaj_flt", cmajFlt);
    }

    /// <summary>The struct pid a signal_struct's <c>pids[type]</c> points at (type: a <see cref="FakeKernelLayout"/> PidType value).</summary>
    public ulong SignalPid(ulong signal, int type) => ReadU64(signal + Off("signal_struct.pids") + (ulong)(type * 8));

    /// <summary>Creates a task_struct (not yet on any list).</summary>
    public ulong NewTask(int pid, int tgid, string comm, ulong realParent, uint state = 0, int exitState = 0, uint flags = 0, int prio = 120, int staticPrio = 120,
        int cpu = 0, ulong cred = 0, ulong signal = 0, ulong mm = 0, ulong files = 0, ulong utime = 0, ulong stime = 0, ulong startBoottime = 0)
    {
        ulong t = Alloc(L.SizeOf("task_struct"));
        WriteTask(t, pid, tgid, comm, realParent, state, exitState, flags, prio, staticPrio, cpu, cred, signal, mm, files, utime, stime, startBoottime);
        return t;
    }

    /// <summary>Links a thread-group leader into init_task.tasks and its signal's thread list.</summary>
    public void AddProcess(ulong task)
    {
        ListAddTail(InitTask + Off("task_struct.tasks"), task + Off("task_struct.tasks"));
        AddThread(task);
    }

    /// <summary>Links a task into its signal_struct's thread_head list (thread_node).</summary>
    public void AddThread(ulong task)
    {
        ulong signal = ReadU64(task + Off("task_struct.signal"));
        ListAddTail(signal + Off("signal_struct.thread_head"), task + Off("task_struct.thread_node"));
    }

    /// <summary>An mm_struct with its own, empty, user page tables.</summary>
    public FakeMm NewMm(ulong totalVm = 0, long filePages = 0, long anonPages = 0, long swapEntries = 0, long shmemPages = 0)
    {
        ulong mm = Alloc(L.SizeOf("mm_struct"));
        var tables = Kernel.NewUserTables();
        Set(mm, "mm_struct.pgd", Kernel.PageOffsetBase + tables.Root);
        Set(mm, "mm_struct.total_vm", totalVm);
        ulong rss = mm + Off("mm_struct.rss_stat");
        long[] counters = [filePages, anonPages, swapEntries, shmemPages];
        for (int i = 0; i < counters.Length; i++)
        {
            WriteU64(rss + (ulong)(i * 8), unchecked((ulong)counters[i]));
        }

        return new FakeMm(this, mm, tables);
    }

    // ---- files ----

    public ulong NewFileSystemType(string name)
    {
        ulong t = Alloc(L.SizeOf("file_system_type"));
        Set(t, "file_system_type.name", String(name));
        return t;
    }

    public ulong NewSuperBlock(ulong fsType)
    {
        ulong sb = Alloc(L.SizeOf("super_block"));
        Set(sb, "super_block.s_type", fsType);
        return sb;
    }

    public ulong NewInode(ulong ino, ushort mode)
    {
        ulong i = Alloc(L.SizeOf("inode"));
        Set(i, "inode.i_ino", ino);
        Set(i, "inode.i_mode", mode, 2);
        return i;
    }

    /// <summary>A dentry named <paramref name="name"/>; a null parent makes it a root (d_parent = itself).</summary>
    public ulong NewDentry(string name, ulong? parent, ulong inode)
    {
        ulong d = Alloc(L.SizeOf("dentry"));
        var bytes = Encoding.UTF8.GetBytes(name);
        Set(d, "dentry.d_parent", parent ?? d);
        Set(d, "dentry.d_inode", inode);
        Set(d, "dentry.d_name.len", (uint)bytes.Length, 4);
        Set(d, "dentry.d_name.hash", 0xdeadbeef, 4);
        Set(d, "dentry.d_name.name", String(name));
        return d;
    }

    /// <summary>A struct mount; returns the address of its embedded vfsmount. No parent: a root mount (mnt_parent = itself).</summary>
    public ulong NewMount(ulong superBlock, ulong root, ulong? parentVfsmount = null, ulong mountpoint = 0)
    {
        ulong m = Alloc(L.SizeOf("mount"));
        ulong vfs = m + Off("mount.mnt");
        Set(m, "mount.mnt_parent", parentVfsmount is { } p ? p - Off("mount.mnt") : m);
        Set(m, "mount.mnt_mountpoint", parentVfsmount is null ? root : mountpoint);
        Set(vfs, "vfsmount.mnt_root", root);
        Set(vfs, "vfsmount.mnt_sb", superBlock);
        return vfs;
    }

    public ulong NewFile(ulong vfsmount, ulong dentry, uint flags, long pos)
    {
        ulong f = Alloc(L.SizeOf("file"));
        WriteU64(f + Off("file.f_path") + Off("path.dentry"), dentry);
        WriteU64(f + Off("file.f_path") + Off("path.mnt"), vfsmount);
        Set(f, "file.f_inode", ReadU64(dentry + Off("dentry.d_inode")));
        Set(f, "file.f_flags", flags, 4);
        Set(f, "file.f_pos", unchecked((ulong)pos));
        return f;
    }

    /// <summary>A files_struct whose fdtable has <paramref name="maxFds"/> slots and the given descriptors.</summary>
    public ulong NewFiles(int maxFds, params (int Fd, ulong File, bool CloseOnExec)[] fds)
    {
        ulong files = Alloc(L.SizeOf("files_struct"));
        ulong fdt = files + Off("files_struct.fdtab");
        int words = (maxFds + 63) / 64;
        ulong array = Alloc(maxFds * 8);
        ulong open = Alloc(words * 8, 8);
        ulong cloexec = Alloc(words * 8, 8);
        Set(files, "files_struct.count", 1, 4);
        Set(files, "files_struct.fdt", fdt);
        Set(fdt, "fdtable.max_fds", (uint)maxFds, 4);
        Set(fdt, "fdtable.fd", array);
        Set(fdt, "fdtable.open_fds", open);
        Set(fdt, "fdtable.close_on_exec", cloexec);
        var openBits = new ulong[words];
        var execBits = new ulong[words];
        foreach (var (fd, file, cloexecFlag) in fds)
        {
            WriteU64(array + (ulong)(fd * 8), file);
            openBits[fd / 64] |= 1UL << (fd % 64);
            if (cloexecFlag)
            {
                execBits[fd / 64] |= 1UL << (fd % 64);
            }
        }

        for (int w = 0; w < words; w++)
        {
            WriteU64(open + (ulong)(w * 8), openBits[w]);
            WriteU64(cloexec + (ulong)(w * 8), execBits[w]);
        }

        return files;
    }

    // ---- system ----

    public void SetLoadAverage(ulong one, ulong five, ulong fifteen, int nrThreads)
    {
        WriteU64(Avenrun, one);
        WriteU64(Avenrun + 8, five);
        WriteU64(Avenrun + 16, fifteen);
        WriteU32(NrThreads, (uint)nrThreads);
    }

    public ulong NewSwapInfo(ulong flags, short prio, uint max, uint pages, uint inuse, ulong swapFile)
    {
        ulong si = Alloc(L.SizeOf("swap_info_struct"));
        Set(si, "swap_info_struct.flags", flags);
        Set(si, "swap_info_struct.prio", unchecked((ushort)prio), 2);
        Set(si, "swap_info_struct.type", 0xff, 1);
        Set(si, "swap_info_struct.max", max, 4);
        Set(si, "swap_info_struct.pages", pages, 4);
        Set(si, "swap_info_struct.inuse_pages", inuse, 4);
        Set(si, "swap_info_struct.swap_file", swapFile);
        return si;
    }

    /// <summary>Fills swap_info[] (NULL entries allowed) and nr_swapfiles.</summary>
    public void SetSwap(params ulong[] areas)
    {
        for (int i = 0; i < areas.Length; i++)
        {
            WriteU64(SwapInfo + (ulong)(i * 8), areas[i]);
            if (areas[i] != 0)
            {
                Set(areas[i], "swap_info_struct.type", (ulong)i, 1);
            }
        }

        WriteU32(NrSwapfiles, (uint)areas.Length);
    }

    /// <summary>
    /// nr_cpu_ids, __cpu_online_mask, __cpu_possible_mask (every id below nr_cpu_ids unless
    /// <paramref name="possibleMask"/> says otherwise), a per-CPU area for each CPU (__per_cpu_offset[cpu] = area -
    /// __per_cpu_start) and current_task in each. Returns the per-CPU offsets.
    /// </summary>
    public ulong[] SetCpus(int nrCpuIds, ulong onlineMask, ulong[] currentTasks, ulong? possibleMask = null)
    {
        WriteU32(NrCpuIds, (uint)nrCpuIds);
        WriteU64(CpuOnlineMask, onlineMask);
        WriteU64(CpuPossibleMask, possibleMask ?? (nrCpuIds >= 64 ? ulong.MaxValue : (1UL << nrCpuIds) - 1));
        var offsets = new ulong[nrCpuIds];
        for (int cpu = 0; cpu < nrCpuIds; cpu++)
        {
            offsets[cpu] = Alloc(0x40000, 4096);
            WriteU64(PerCpuOffset + (ulong)(cpu * 8), offsets[cpu]);
            if (cpu < currentTasks.Length)
            {
                WriteU64(offsets[cpu] + CurrentTaskPerCpu, currentTasks[cpu]);
            }
        }

        return offsets;
    }

    /// <summary>Lists a per-CPU symbol (an offset into each CPU's area) in the System.map.</summary>
    public void AddPerCpuSymbol(string name, ulong offset) => _perCpu[name] = offset;

    /// <summary>Writes <paramref name="value"/> at a per-CPU offset in CPU <paramref name="cpu"/>'s area.</summary>
    public void WritePerCpu(int cpu, ulong offset, ulong value) => WriteU64(ReadU64(PerCpuOffset + (ulong)(cpu * 8)) + offset, value);

    /// <summary>The address of a per-CPU variable (an offset into the per-CPU area) on CPU <paramref name="cpu"/>.</summary>
    public ulong PerCpu(int cpu, ulong offset) => ReadU64(PerCpuOffset + (ulong)(cpu * 8)) + offset;

    /// <summary>Writes CPU <paramref name="cpu"/>'s kernel_cpustat, in nanoseconds, at the BTF's enum cpu_usage_stat indices.</summary>
    public void SetCpuStat(int cpu, ulong user = 0, ulong nice = 0, ulong system = 0, ulong idle = 0, ulong ioWait = 0, ulong irq = 0, ulong softIrq = 0,
        ulong steal = 0, ulong guest = 0, ulong guestNice = 0)
    {
        ulong stat = PerCpu(cpu, KernelCpustatPerCpu) + Off("kernel_cpustat.cpustat");
        foreach (var (index, value) in new[]
        {
            (L.CputimeUser, user), (L.CputimeNice, nice), (L.CputimeSystem, system), (L.CputimeIdle, idle), (L.CputimeIoWait, ioWait),
            (L.CputimeIrq, irq), (L.CputimeSoftIrq, softIrq), (L.CputimeSteal, steal), (L.CputimeGuest, guest), (L.CputimeGuestNice, guestNice),
        })
        {
            WriteU64(stat + (ulong)(index * 8), value);
        }
    }

    /// <summary>
    /// Writes CPU <paramref name="cpu"/>'s tick_cpu_sched sleep times (ktime_t nanoseconds) and whether it is idle now,
    /// both as the idle_active bitfield and as TS_FLAG_IDLE_ACTIVE in flags.
    /// </summary>
    public void SetTickSched(int cpu, long idleSleeptime, long iowaitSleeptime, long idleEntrytime, bool idleActive)
    {
        ulong ts = PerCpu(cpu, TickCpuSchedPerCpu);
        // ktime_t is s64: a negative value (corruption tests) is stored in two's complement.
        Set(ts, "tick_sched.idle_sleeptime", unchecked((ulong)idleSleeptime));
        Set(ts, "tick_sched.iowait_sleeptime", unchecked((ulong)iowaitSleeptime));
        Set(ts, "tick_sched.idle_entrytime", unchecked((ulong)idleEntrytime));
        Set(ts, "tick_sched.idle_active", idleActive ? 1UL : 0);
        Set(ts, "tick_sched.flags", idleActive ? L.TsFlagIdleActive : 0);
    }

    /// <summary>Writes runqueues.nr_iowait of CPU <paramref name="cpu"/>.</summary>
    public void SetNrIowait(int cpu, int tasks) => Set(PerCpu(cpu, RunqueuesPerCpu), "rq.nr_iowait", (uint)tasks, 4);

    /// <summary>Writes tick_nohz_active (bit 0: some CPU switched to NO_HZ mode).</summary>
    public void SetNohzActive(bool active) => WriteU64(TickNohzActive, active ? 1UL : 0);

    /// <summary>Leaves a global out of the System.map, as a kernel without it (or a namelist without data symbols) would.</summary>
    public void RemoveSymbol(string name) => _globals.Remove(name);

    /// <summary>tk_core: { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; }.</summary>
    public void SetClock(long monoBaseNs, long offsBootNs, long xtimeSec)
    {
        ulong tk = TkCore + 8;
        Set(tk, "timekeeper.xtime_sec", (ulong)xtimeSec);
        WriteU64(tk + Off("timekeeper.tkr_mono") + Off("tk_read_base.base"), (ulong)monoBaseNs);
        Set(tk, "timekeeper.offs_boot", (ulong)offsBootNs);

        // A different value in tkr_raw.base: only the mono base is uptime.
        WriteU64(tk + Off("timekeeper.tkr_raw") + Off("tk_read_base.base"), 999_000_000_000);
    }

    /// <summary>Copies a lockless ring's arrays into the direct map and points prb at printk_rb_dynamic.</summary>
    public void SetPrintk(PrintkRingBuilder ring)
    {
        ulong descs = Alloc(ring.Descs.Length, 4096);
        ulong infos = Alloc(ring.Infos.Length, 4096);
        ulong data = Alloc(ring.Data.Length, 4096);
        Write(descs, ring.Descs);
        Write(infos, ring.Infos);
        Write(data, ring.Data);
        ulong r = PrintkRing;
        WriteU32(r + Off("printk_ringbuffer.desc_ring") + Off("prb_desc_ring.count_bits"), (uint)ring.CountBits);
        WriteU64(r + Off("printk_ringbuffer.desc_ring") + Off("prb_desc_ring.descs"), descs);
        WriteU64(r + Off("printk_ringbuffer.desc_ring") + Off("prb_desc_ring.infos"), infos);
        WriteU64(r + Off("printk_ringbuffer.desc_ring") + Off("prb_desc_ring.head_id"), ring.HeadId);
        WriteU64(r + Off("printk_ringbuffer.desc_ring") + Off("prb_desc_ring.tail_id"), ring.TailId);
        WriteU32(r + Off("printk_ringbuffer.text_data_ring") + Off("prb_data_ring.size_bits"), (uint)ring.SizeBits);
        WriteU64(r + Off("printk_ringbuffer.text_data_ring") + Off("prb_data_ring.data"), data);
        WriteU64(Prb, r);
    }

    // ---- output ----

    /// <summary>Writes the BTF into the image; call before <see cref="ToElf"/> (which does it too).</summary>
    public byte[] PlaceBtf()
    {
        var blob = FakeKernelBtf.Build(OmitFromBtf, BtfSizeOverrides, BtfMemberTypeOverrides);
        Write(Kernel.TextVa + BtfOffset, blob);
        _globals["__start_BTF"] = Kernel.TextVa + BtfOffset;
        _globals["__stop_BTF"] = Kernel.TextVa + BtfOffset + (ulong)blob.Length;
        return blob;
    }

    /// <summary>The System.map: the base kernel's symbols, every global placed here and the per-CPU symbols.</summary>
    public string SystemMap
    {
        get
        {
            var sb = new StringBuilder(Kernel.SystemMap);
            foreach (var (name, offset) in _perCpu)
            {
                sb.Append($"{offset:x16} D {name}\n");
            }

            // As in a real System.map: the per-CPU section's end, an absolute symbol past the last variable.
            sb.Append($"{(_perCpu.Values.Max() + 0x1000) & ~0xfffUL:x16} A __per_cpu_end\n");

            foreach (var (name, va) in _globals.OrderBy(g => g.Value))
            {
                sb.Append($"{va - Kernel.KaslrOffset:x16} {(name.EndsWith("_BTF", StringComparison.Ordinal) ? 'R' : 'D')} {name}\n");
            }

            return sb.ToString();
        }
    }

    public byte[] ToElf()
    {
        if (BtfInImage)
        {
            PlaceBtf();
        }

        return Kernel.ToElf();
    }

    /// <summary>Writes the ELF core and System.map to temporary files and opens them through the façade.</summary>
    public OpenedFakeKernel Open(KernelImageOptions? options = null)
    {
        var elf = new TempFile(ToElf());
        var map = new TempFile(SystemMap);
        try
        {
            var image = KernelImage.Open(elf.Path, new KernelImageOptions
            {
                Namelists = [map.Path],
                Limits = options?.Limits ?? KvmLimits.Default,
                Btf = options?.Btf,
            });
            return new OpenedFakeKernel(image, elf, map);
        }
        catch
        {
            elf.Dispose();
            map.Dispose();
            throw;
        }
    }

    private void InitSignal(ulong s, int nrThreads, ulong tgidPid, ulong pgidPid, ulong sidPid)
    {
        Set(s, "signal_struct.sigcnt", 1, 4);
        Set(s, "signal_struct.live", (uint)nrThreads, 4);
        Set(s, "signal_struct.nr_threads", (uint)nrThreads, 4);
        ListInit(s + Off("signal_struct.thread_head"));
        ulong pids = s + Off("signal_struct.pids");
        WriteU64(pids + (ulong)(L.PidTypeTgid * 8), tgidPid);
        WriteU64(pids + (ulong)(L.PidTypePgid * 8), pgidPid);
        WriteU64(pids + (ulong)(L.PidTypeSid * 8), sidPid);
        WriteU64(pids + (ulong)(L.PidTypePid * 8), 0);
    }

    private void WriteTask(ulong t, int pid, int tgid, string comm, ulong realParent, uint state, int exitState, uint flags, int prio, int staticPrio,
        int cpu, ulong cred, ulong signal, ulong mm, ulong files, ulong utime = 0, ulong stime = 0, ulong startBoottime = 0)
    {
        Set(t, "task_struct.pid", (uint)pid, 4);
        Set(t, "task_struct.tgid", (uint)tgid, 4);
        var name = new byte[16];
        Encoding.UTF8.GetBytes(comm).AsSpan(0, Math.Min(15, Encoding.UTF8.GetByteCount(comm))).CopyTo(name);
        Write(t + Off("task_struct.comm"), name);
        Set(t, "task_struct.real_parent", realParent);
        Set(t, "task_struct.parent", realParent);
        Set(t, "task_struct.__state", state, 4);
        Set(t, "task_struct.state", state);
        Set(t, "task_struct.exit_state", (uint)exitState, 4);
        Set(t, "task_struct.flags", flags, 4);
        Set(t, "task_struct.prio", (uint)prio, 4);
        Set(t, "task_struct.static_prio", (uint)staticPrio, 4);
        Set(t, "task_struct.normal_prio", (uint)prio, 4);
        Set(t, "task_struct.thread_info.cpu", (uint)cpu, 4);
        Set(t, "task_struct.real_cred", cred);
        Set(t, "task_struct.cred", cred);
        Set(t, "task_struct.signal", signal);
        Set(t, "task_struct.mm", mm);
        Set(t, "task_struct.active_mm", mm);
        Set(t, "task_struct.files", files);
        Set(t, "task_struct.utime", utime);
        Set(t, "task_struct.stime", stime);
        Set(t, "task_struct.start_boottime", startBoottime);
        Set(t, "task_struct.start_time", startBoottime / 2);

        // Bitfields sharing a word right after exit_state: set so a walker reading the wrong width would see them.
        Set(t, "task_struct.sched_reset_on_fork", 1);
        Set(t, "task_struct.in_execve", 1);
    }
}

/// <summary>An mm_struct of the fake kernel and its user address space.</summary>
public sealed class FakeMm
{
    private readonly FakeKernelObjects _k;
    private readonly Dictionary<ulong, ulong> _pages = [];

    internal FakeMm(FakeKernelObjects kernel, ulong address, IFakePageTables tables)
    {
        _k = kernel;
        Address = address;
        Tables = tables;
    }

    public ulong Address { get; }

    public IFakePageTables Tables { get; }

    /// <summary>Writes user memory, mapping fresh 4 KiB pages as needed.</summary>
    public void WriteUser(ulong va, ReadOnlySpan<byte> data)
    {
        int done = 0;
        while (done < data.Length)
        {
            ulong a = va + (ulong)done;
            ulong page = a & ~0xfffUL;
            if (!_pages.TryGetValue(page, out ulong pa))
            {
                pa = _k.Physical(_k.Alloc(4096, 4096));
                Tables.Map(page, pa);
                _pages[page] = pa;
            }

            int n = Math.Min(4096 - (int)(a & 0xfff), data.Length - done);
            _k.Kernel.Memory.Write(pa + (a & 0xfff), data.Slice(done, n));
            done += n;
        }
    }

    /// <summary>Makes the page holding <paramref name="va"/> a swap PTE (the architecture's Linux encoding).</summary>
    public void SwapOut(ulong va, int type, ulong offset) => Tables.SetPte(va & ~0xfffUL, Tables.SwapEntryFor(type, offset));

    /// <summary>Makes the page holding <paramref name="va"/> a non-present, all-zero PTE.</summary>
    public void NotPresent(ulong va) => Tables.SetPte(va & ~0xfffUL, 0);

    public void SetArgs(ulong start, ulong end)
    {
        _k.Set(Address, "mm_struct.arg_start", start);
        _k.Set(Address, "mm_struct.arg_end", end);
    }

    public void SetEnv(ulong start, ulong end)
    {
        _k.Set(Address, "mm_struct.env_start", start);
        _k.Set(Address, "mm_struct.env_end", end);
    }
}

/// <summary>A fake kernel opened through the façade, with its temporary files.</summary>
public sealed class OpenedFakeKernel(KernelImage image, TempFile elf, TempFile map) : IDisposable
{
    public KernelImage Image { get; } = image;

    public void Dispose()
    {
        Image.Dispose();
        elf.Dispose();
        map.Dispose();
    }
}
