namespace Kvm.Testing.FakeKernel;

/// <summary>
/// The structure layouts of the fake kernel: the single specification from which both its BTF and the bytes of its
/// objects are produced. Offsets are deliberately NOT those of any real kernel (members reordered, <c>path.dentry</c>
/// before <c>path.mnt</c>, <c>pid_type</c> enumerators renumbered, mm_struct members inside nested anonymous structs
/// and a union, bitfields next to read members), so a walker that hard-codes a real offset fails the tests.
/// Member offsets are in bytes relative to the containing (possibly anonymous) type; <c>Bit</c>/<c>Bits</c> describe
/// a bitfield. Types are spelled <c>int</c>, <c>uint</c>, <c>*</c> (void pointer), <c>T[n]</c>, or another
/// definition's name.
/// </summary>
public static class FakeKernelLayout
{
    public sealed record Member(string Name, string Type, int Offset, int Bit = 0, int Bits = 0);

    public sealed record Def(string Name, int Size, bool Union, IReadOnlyList<Member> Members);

    // enum pid_type, renumbered on purpose (real: PID 0, TGID 1, PGID 2, SID 3): signal_struct.pids is indexed by
    // these values, so only a walker taking them from BTF finds the right pointers.
    public const int PidTypePid = 0;
    public const int PidTypeSid = 1;
    public const int PidTypeTgid = 2;
    public const int PidTypePgid = 3;

    // enum swap flags (include/linux/swap.h).
    public const ulong SwpUsed = 1;
    public const ulong SwpWriteOk = 2;
    public const ulong SwpBlkdev = 0x40;

    // enum cpu_usage_stat, renumbered on purpose (real: USER 0, NICE 1, SYSTEM 2, SOFTIRQ 3, IRQ 4, IDLE 5, IOWAIT 6,
    // STEAL 7, GUEST 8, GUEST_NICE 9): kernel_cpustat.cpustat is indexed by these values.
    public const int CputimeUser = 3;
    public const int CputimeNice = 7;
    public const int CputimeSystem = 0;
    public const int CputimeSoftIrq = 9;
    public const int CputimeIrq = 1;
    public const int CputimeIdle = 5;
    public const int CputimeIoWait = 2;
    public const int CputimeSteal = 8;
    public const int CputimeGuest = 4;
    public const int CputimeGuestNice = 6;

    // kernel/time/tick-sched.h, 6.9+: TS_FLAG_IDLE_ACTIVE in tick_sched.flags.
    public const ulong TsFlagIdleActive = 1UL << 2;

    public static readonly IReadOnlyList<(string Enum, (string Name, int Value)[] Values)> Enums =
    [
        ("pid_type", [("PIDTYPE_PID", PidTypePid), ("PIDTYPE_SID", PidTypeSid), ("PIDTYPE_TGID", PidTypeTgid), ("PIDTYPE_PGID", PidTypePgid), ("PIDTYPE_MAX", 4)]),
        ("", [("SWP_USED", 1), ("SWP_WRITEOK", 2), ("SWP_DISCARDABLE", 4), ("SWP_DISCARDING", 8), ("SWP_SOLIDSTATE", 16), ("SWP_CONTINUED", 32), ("SWP_BLKDEV", 64)]),
        ("mm_counter_type", [("MM_FILEPAGES", 0), ("MM_ANONPAGES", 1), ("MM_SWAPENTS", 2), ("MM_SHMEMPAGES", 3), ("NR_MM_COUNTERS", 4)]),
        ("cpu_usage_stat",
        [
            ("CPUTIME_USER", CputimeUser), ("CPUTIME_NICE", CputimeNice), ("CPUTIME_SYSTEM", CputimeSystem), ("CPUTIME_SOFTIRQ", CputimeSoftIrq),
            ("CPUTIME_IRQ", CputimeIrq), ("CPUTIME_IDLE", CputimeIdle), ("CPUTIME_IOWAIT", CputimeIoWait), ("CPUTIME_STEAL", CputimeSteal),
            ("CPUTIME_GUEST", CputimeGuest), ("CPUTIME_GUEST_NICE", CputimeGuestNice), ("NR_STATS", 10),
        ]),
    ];

    /// <summary>Every definition, dependencies first. Names starting with '@' are anonymous.</summary>
    public static readonly IReadOnlyList<Def> Defs =
    [
        S("list_head", 16, ("next", "*", 0), ("prev", "*", 8)),
        S("atomic_t", 4, ("counter", "int", 0)),
        S("atomic_long_t", 8, ("counter", "long", 0)),
        S("kuid_t", 4, ("val", "uint", 0)),
        S("kgid_t", 4, ("val", "uint", 0)),
        S("thread_info", 24, ("flags", "ulong", 0), ("syscall_work", "ulong", 8), ("status", "uint", 16), ("cpu", "uint", 20)),
        S("@task_threads", 32, ("thread_group", "list_head", 0), ("thread_node", "list_head", 16)),

        // Signals: sigset_t is a typedef of an anonymous struct { unsigned long sig[_NSIG_WORDS]; } (one word on a
        // 64-bit kernel); sa_handler is not first in struct sigaction and k_sigaction is longer than it (sparc's
        // ka_restorer), so only a walker taking offsets and the array stride from BTF reads the right handlers.
        S("@sigset", 8, ("sig", "ulong[1]", 0)),
        S("sigpending", 24, ("list", "list_head", 0), ("signal", "sigset_t", 16)),
        S("sigaction", 32, ("sa_flags", "ulong", 0), ("sa_handler", "*", 8), ("sa_restorer", "*", 16), ("sa_mask", "sigset_t", 24)),
        S("k_sigaction", 40, ("sa", "sigaction", 0), ("ka_restorer", "*", 32)),
        S("sighand_struct", 0xa20, ("siglock", "uint", 0), ("count", "atomic_t", 4), ("action", "k_sigaction[64]", 0x18)),
        new Def("task_struct", 0x900, false,
        [
            new("__state", "uint", 0x10),
            new("state", "long", 0x18),
            new("thread_info", "thread_info", 0x28),
            new("flags", "uint", 0x44),
            new("prio", "int", 0x7c),
            new("static_prio", "int", 0x80),
            new("normal_prio", "int", 0x84),
            new("tasks", "list_head", 0x2d0),
            new("mm", "*", 0x318),
            new("active_mm", "*", 0x320),
            new("exit_code", "int", 0x348),
            new("exit_state", "int", 0x34c),
            new("sched_reset_on_fork", "uint", 0x350, 0, 1),
            new("sched_contributes_to_load", "uint", 0x350, 1, 1),
            new("in_execve", "uint", 0x350, 2, 1),
            new("tgid", "int", 0x3a0),
            new("pid", "int", 0x3a4),
            new("real_parent", "*", 0x3b8),
            new("parent", "*", 0x3c0),
            new("", "@task_threads", 0x400),
            new("utime", "u64", 0x450),
            new("stime", "u64", 0x458),
            new("start_time", "u64", 0x478),
            new("start_boottime", "u64", 0x480),
            new("maj_flt", "ulong", 0x490),
            new("min_flt", "ulong", 0x498),
            new("real_cred", "*", 0x5e8),
            new("cred", "*", 0x5f0),
            new("files", "*", 0x648),
            new("signal", "*", 0x668),
            new("sighand", "*", 0x670),
            new("blocked", "sigset_t", 0x678),
            new("real_blocked", "sigset_t", 0x680),
            new("pending", "sigpending", 0x688),
            new("stack", "*", 0x6a8),

            // comm stays the last member: a test cuts the structure in its middle.
            new("comm", "char[16]", 0x6c0),
        ]),
        S("cred", 0xa8, ("usage", "atomic_t", 0), ("gid", "kgid_t", 8), ("uid", "kuid_t", 12), ("sgid", "kgid_t", 16), ("suid", "kuid_t", 20),
            ("egid", "kgid_t", 24), ("euid", "kuid_t", 28), ("fsgid", "kgid_t", 32), ("fsuid", "kuid_t", 36)),
        S("upid", 16, ("nr", "int", 8), ("ns", "*", 0)),
        S("pid", 0x70, ("count", "atomic_t", 0), ("level", "uint", 4), ("tasks", "list_head[4]", 8), ("numbers", "upid[1]", 0x58)),
        S("signal_struct", 0x400, ("sigcnt", "atomic_t", 0), ("live", "atomic_t", 4), ("nr_threads", "int", 0x14), ("thread_head", "list_head", 0x28),
            ("shared_pending", "sigpending", 0x40), ("utime", "u64", 0x120), ("stime", "u64", 0x128), ("pids", "*[4]", 0x170), ("tty", "*", 0x198),
            ("cmin_flt", "ulong", 0x300), ("min_flt", "ulong", 0x308), ("cmaj_flt", "ulong", 0x310), ("maj_flt", "ulong", 0x318)),
        S("tty_driver", 0x90, ("magic", "int", 0), ("name", "*", 0x18), ("minor_start", "int", 0x2c), ("major", "int", 0x34)),

        // 5.14+: the foreground group and session in an anonymous struct member, ctrl (session before pgrp here).
        S("@tty_ctrl", 0x20, ("lock", "uint", 0), ("session", "*", 8), ("pgrp", "*", 0x10), ("pktstatus", "u8", 0x18)),
        S("tty_struct", 0x2b0, ("magic", "int", 0), ("driver", "*", 0x18), ("index", "int", 0x30), ("name", "char[64]", 0x180), ("ctrl", "@tty_ctrl", 0x200)),
        S("mm_rss_stat", 32, ("count", "atomic_long_t[4]", 0)),

        // Linux 6.2+ replaced mm_rss_stat with percpu_counter rss_stat[NR_MM_COUNTERS] (FakeKernelBtf can switch).
        S("percpu_counter", 0x28, ("lock", "uint", 0), ("count", "long", 8), ("list", "list_head", 0x10), ("counters", "*", 0x20)),
        S("@mm_args", 48, ("start_stack", "ulong", 0), ("env_start", "ulong", 8), ("env_end", "ulong", 16), ("arg_start", "ulong", 24), ("arg_end", "ulong", 32), ("saved", "ulong", 40)),
        new Def("@mm_counters", 8, true, [new("total_vm", "ulong", 0), new("pinned", "u64", 0)]),
        S("@mm_body", 0x3c0, ("mmap_base", "ulong", 0x10), ("pgd", "*", 0x50), ("map_count", "int", 0x60), ("", "@mm_counters", 0xa8),
            ("data_vm", "ulong", 0xb0), ("", "@mm_args", 0x100), ("rss_stat", "mm_rss_stat", 0x2c8)),
        S("mm_struct", 0x3c0, ("", "@mm_body", 0), ("cpu_bitmap", "ulong[0]", 0x3c0)),
        S("path", 16, ("dentry", "*", 0), ("mnt", "*", 8)),
        S("@qstr_hl", 8, ("len", "uint", 0), ("hash", "uint", 4)),
        new Def("@qstr_u", 8, true, [new("", "@qstr_hl", 0), new("hash_len", "u64", 0)]),
        S("qstr", 16, ("", "@qstr_u", 0), ("name", "*", 8)),
        S("dentry", 0xc0, ("d_flags", "uint", 0), ("d_inode", "*", 0x10), ("d_parent", "*", 0x20), ("d_name", "qstr", 0x28), ("d_iname", "char[32]", 0x38)),
        S("inode", 0x268, ("i_flags", "uint", 4), ("i_mode", "u16", 0x10), ("i_ino", "ulong", 0x48)),
        S("file_system_type", 0x48, ("fs_flags", "int", 0), ("name", "*", 0x10)),
        S("super_block", 0x500, ("s_list", "list_head", 0), ("s_dev", "uint", 0x10), ("s_type", "*", 0x30)),
        S("vfsmount", 0x18, ("mnt_sb", "*", 0), ("mnt_root", "*", 8), ("mnt_flags", "int", 0x10)),
        S("mount", 0x140, ("mnt_hash", "list_head", 0), ("mnt_mountpoint", "*", 0x10), ("mnt_parent", "*", 0x18), ("mnt", "vfsmount", 0x28)),
        S("file", 0xe8, ("f_llist", "list_head", 0), ("f_inode", "*", 0x10), ("f_op", "*", 0x18), ("f_pos", "long", 0x30), ("f_path", "path", 0x40), ("f_mode", "uint", 0x58), ("f_flags", "uint", 0x5c)),
        S("fdtable", 0x38, ("max_fds", "uint", 0), ("open_fds", "*", 8), ("close_on_exec", "*", 0x10), ("fd", "*", 0x18), ("full_fds_bits", "*", 0x20)),
        S("files_struct", 0x2c0, ("count", "atomic_t", 0), ("resize_in_progress", "bool", 4), ("fdt", "*", 0x28), ("fdtab", "fdtable", 0x30)),
        S("swap_info_struct", 0x110, ("users", "long", 0), ("flags", "ulong", 8), ("prio", "short", 0x10), ("type", "char", 0x12), ("max", "uint", 0x14),
            ("pages", "uint", 0x58), ("inuse_pages", "uint", 0x5c), ("swap_file", "*", 0xb0)),
        S("seqcount", 4, ("sequence", "uint", 0)),
        S("seqcount_raw_spinlock", 4, ("seqcount", "seqcount", 0)),
        S("tk_read_base", 0x38, ("clock", "*", 0), ("mask", "u64", 8), ("cycle_last", "u64", 0x10), ("mult", "uint", 0x18), ("shift", "uint", 0x1c),
            ("xtime_nsec", "u64", 0x20), ("base", "long", 0x28), ("base_real", "u64", 0x30)),
        S("pcpu_hot", 64, ("preempt_count", "int", 0x8), ("current_task", "*", 0x10), ("cpu_number", "int", 0x18)),
        S("timekeeper", 0x118, ("xtime_sec", "u64", 0x8), ("tkr_mono", "tk_read_base", 0x40), ("tkr_raw", "tk_read_base", 0x78), ("offs_boot", "long", 0xc0)),

        // CPU times: kernel_cpustat, the NO_HZ state (both the bitfield idle_active of up to 6.8 and the flags word of
        // 6.9+, idle_active on a different bit than TS_FLAG_IDLE_ACTIVE) and the run queue's iowait count.
        S("kernel_cpustat", 80, ("cpustat", "u64[10]", 0)),
        new Def("tick_sched", 0x100, false,
        [
            new("flags", "ulong", 0x8), new("inidle", "uint", 0x40, 0, 1), new("tick_stopped", "uint", 0x40, 1, 1), new("idle_active", "uint", 0x40, 3, 1),
            new("idle_entrytime", "long", 0x60), new("iowait_sleeptime", "long", 0x78), new("idle_sleeptime", "long", 0x90),
        ]),
        S("rq", 0x200, ("nr_running", "uint", 0), ("nr_iowait", "atomic_t", 0x98)),

        // printk: the lockless ring as PrintkRingBuilder writes it (the x86-64 6.1 layout; it is not ours to move).
        S("prb_data_blk_lpos", 16, ("begin", "ulong", 0), ("next", "ulong", 8)),
        S("prb_desc", 24, ("state_var", "atomic_long_t", 0), ("text_blk_lpos", "prb_data_blk_lpos", 8)),
        S("dev_printk_info", 64, ("subsystem", "char[16]", 0), ("device", "char[48]", 16)),
        new Def("printk_info", 88, false,
        [
            new("seq", "u64", 0), new("ts_nsec", "u64", 8), new("text_len", "u16", 16), new("facility", "u8", 18),
            new("flags", "u8", 19, 0, 5), new("level", "u8", 19, 5, 3), new("caller_id", "uint", 20), new("dev_info", "dev_printk_info", 24),
        ]),
        S("prb_desc_ring", 48, ("count_bits", "uint", 0), ("descs", "*", 8), ("infos", "*", 16), ("head_id", "atomic_long_t", 24), ("tail_id", "atomic_long_t", 32), ("last_finalized_id", "atomic_long_t", 40)),
        S("prb_data_ring", 32, ("size_bits", "uint", 0), ("data", "*", 8), ("head_lpos", "atomic_long_t", 16), ("tail_lpos", "atomic_long_t", 24)),
        S("printk_ringbuffer", 88, ("desc_ring", "prb_desc_ring", 0), ("text_data_ring", "prb_data_ring", 48), ("fail", "atomic_long_t", 80)),
    ];

    /// <summary>Typedefs: name → target.</summary>
    public static readonly IReadOnlyList<(string Name, string Target)> Typedefs =
    [
        ("pid_t", "int"), ("sigset_t", "@sigset"), ("seqcount_t", "seqcount"), ("seqcount_raw_spinlock_t", "seqcount_raw_spinlock"), ("loff_t", "long"), ("ktime_t", "long"),
    ];

    private static readonly Dictionary<string, Def> ByName = Defs.ToDictionary(d => d.Name);

    /// <summary>A member's absolute byte offset within its outermost structure, following anonymous members as C does.</summary>
    public static int Offset(string path) => Find(path).Offset;

    /// <summary>A member's absolute offset and its definition.</summary>
    public static (int Offset, Member Member) Find(string path)
    {
        var parts = path.Split('.');
        var def = ByName[parts[0]];
        int offset = 0;
        Member? found = null;
        foreach (var part in parts[1..])
        {
            (int o, found) = FindIn(def, part) ?? throw new KeyNotFoundException($"{path}: no member '{part}' in the fake layout");
            offset += o;
            if (ByName.TryGetValue(found.Type, out var inner))
            {
                def = inner;
            }
        }

        return (offset, found!);
    }

    /// <summary>The size of a definition.</summary>
    public static int SizeOf(string name) => ByName[name].Size;

    private static (int, Member)? FindIn(Def def, string name)
    {
        foreach (var m in def.Members)
        {
            if (m.Name == name)
            {
                return (m.Offset, m);
            }

            if (m.Name.Length == 0 && FindIn(ByName[m.Type], name) is { } hit)
            {
                return (m.Offset + hit.Item1, hit.Item2);
            }
        }

        return null;
    }

    private static Def S(string name, int size, params (string Name, string Type, int Offset)[] members) =>
        new(name, size, false, members.Select(m => new Member(m.Name, m.Type, m.Offset)).ToList());
}
