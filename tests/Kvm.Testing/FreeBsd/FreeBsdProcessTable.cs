namespace Kvm.Testing.FreeBsd;

/// <summary>
/// FreeBSD's process structures for a test kernel: <c>allproc</c> and, for each process, <c>struct proc</c>, its
/// threads, <c>struct ucred</c>, <c>struct pgrp</c> and <c>struct session</c>, written into kernel memory, with the
/// CTF that describes them (sys/sys/proc.h, sys/sys/ucred.h member names; the layout is this builder's own, as any
/// kernel's is its compiler's: readers must take it from the CTF).
/// </summary>
public sealed class FreeBsdProcessTable
{
    // Offsets of this builder's layout.
    private const int ProcSize = 0x100, ThreadSize = 0x80, UcredSize = 0x40, PgrpSize = 0x40, SessionSize = 0x40;

    private readonly PhysicalMemoryBuilder _memory;
    private readonly ulong _virtualBase;
    private readonly ulong _physicalBase;
    private ulong _next;

    /// <param name="memory">The kernel's physical memory.</param>
    /// <param name="virtualBase">Where the structures go in the kernel's address space.</param>
    /// <param name="physicalBase">The physical address <paramref name="virtualBase"/> maps to (a linear mapping).</param>
    public FreeBsdProcessTable(PhysicalMemoryBuilder memory, ulong virtualBase, ulong physicalBase)
    {
        _memory = memory;
        _virtualBase = virtualBase;
        _physicalBase = physicalBase;
    }

    /// <summary>The processes in <c>allproc</c> order.</summary>
    public List<(ulong Address, int Pid)> Processes { get; } = [];

    /// <summary>Every thread written, with its process, in order.</summary>
    public List<(ulong Address, int Tid, ulong Proc)> Threads { get; } = [];

    /// <summary>Writes a process with its threads; returns the address of its <c>struct proc</c>.</summary>
    public ulong AddProcess(int pid, string comm, int ppidAddressIndex, uint ruid, uint euid, uint rgid, uint egid, int pgid, int sid, int state, int flags, sbyte nice, params (int Tid, string Name, int State)[] threads) =>
        AddProcess(pid, comm, null, ppidAddressIndex, ruid, euid, rgid, egid, pgid, sid, state, flags, nice, threads);

    /// <summary>As above, with <c>p_args</c> holding <paramref name="args"/> (NUL-separated, as execve saves them).</summary>
    public ulong AddProcess(int pid, string comm, string[]? args, int ppidAddressIndex, uint ruid, uint euid, uint rgid, uint egid, int pgid, int sid, int state, int flags, sbyte nice, params (int Tid, string Name, int State)[] threads)
    {
        ulong proc = Allocate(ProcSize);
        ulong cred = Allocate(UcredSize);
        ulong groups = Allocate(16);
        ulong pgrp = Allocate(PgrpSize);
        ulong session = Allocate(SessionSize);

        WriteU32(cred + 4, euid);
        WriteU32(cred + 8, ruid);
        WriteU32(cred + 0xc, euid + 1000);
        WriteU32(cred + 0x10, 1);
        WriteU32(cred + 0x14, rgid);
        WriteU32(cred + 0x18, rgid + 1000);
        WriteU64(cred + 0x20, groups);
        WriteU32(groups, egid);
        WriteU64(pgrp + 0x10, session);
        WriteU32(pgrp + 0x18, (uint)pgid);
        WriteU32(session + 0x20, (uint)sid);

        WriteU64(proc + 0x20, cred);
        WriteU32(proc + 0x28, (uint)pid);
        WriteU64(proc + 0x30, ppidAddressIndex >= 0 ? Processes[ppidAddressIndex].Address : 0);
        WriteU64(proc + 0x38, pgrp);
        WriteU32(proc + 0x40, (uint)state);
        WriteU32(proc + 0x44, (uint)flags);
        WriteU32(proc + 0x48, (uint)threads.Length);
        _memory.Write(Physical(proc + 0x4c), [unchecked((byte)nice)]);
        _memory.Write(Physical(proc + 0x50), System.Text.Encoding.ASCII.GetBytes(comm[..Math.Min(comm.Length, 19)]));
        WriteU64(proc + 0x68, pid == 0 ? 0 : Allocate(0x40));
        if (args is not null)
        {
            var text = System.Text.Encoding.UTF8.GetBytes(string.Concat(args.Select(a => a + "\0")));
            ulong pargs = Allocate(8 + text.Length);
            WriteU32(pargs, 1);
            WriteU32(pargs + 4, (uint)text.Length);
            _memory.Write(Physical(pargs + 8), text);
            WriteU64(proc + 0x70, pargs);
        }

        // p_threads: TAILQ_HEAD; td_plist: TAILQ_ENTRY.
        ulong previous = 0;
        foreach (var (tid, name, tdState) in threads)
        {
            ulong td = Allocate(ThreadSize);
            WriteU32(td + 0x10, (uint)tid);
            _memory.Write(Physical(td + 0x14), System.Text.Encoding.ASCII.GetBytes(name[..Math.Min(name.Length, 19)]));
            WriteU32(td + 0x28, (uint)tdState);
            WriteU64(td + 0x30, proc);
            _memory.Write(Physical(td + 0x2c), [3, 1, 120]);
            if (previous == 0)
            {
                WriteU64(proc + 0x10, td);
            }
            else
            {
                WriteU64(previous, td);
            }

            previous = td;
            Threads.Add((td, tid, proc));
        }

        // allproc is a LIST: new processes are inserted at the head, as fork1 does; here appended in order.
        if (Processes.Count > 0)
        {
            WriteU64(Processes[^1].Address, proc);
        }

        Processes.Add((proc, pid));
        return proc;
    }

    /// <summary>Points <c>allproc</c> (at <paramref name="allprocPhysical"/>) at the first process.</summary>
    public void WriteAllproc(ulong allprocPhysical) => _memory.WriteUInt64(allprocPhysical, Processes.Count == 0 ? 0 : Processes[0].Address);

    /// <summary>The CTF describing the structures, as a FreeBSD kernel's .SUNW_ctf would.</summary>
    public static byte[] Ctf(int version = 3, bool compress = true, bool withCrGid = false)
    {
        var c = new CtfBuilder(version);
        AddTypes(c, withCrGid);
        return c.Build(compress);
    }

    /// <summary>Adds the process structures' types to <paramref name="c"/>; returns the ids of <c>struct proc</c> and <c>struct thread</c>.</summary>
    public static (int Proc, int Thread) AddTypes(CtfBuilder c, bool withCrGid = false)
    {
        int i32 = c.Int("int", 4);
        int u32 = c.Int("unsigned int", 4, signed: false);
        int ch = c.Int("char", 1, isChar: true);
        int sch = c.Int("signed char", 1);
        int uch = c.Int("unsigned char", 1, signed: false);
        int lng = c.Int("long", 8);
        int pid = c.TypedefOf("pid_t", c.TypedefOf("__pid_t", i32));
        int uid = c.TypedefOf("uid_t", c.TypedefOf("__uid_t", u32));
        int gid = c.TypedefOf("gid_t", c.TypedefOf("__gid_t", u32));
        int lwp = c.TypedefOf("lwpid_t", c.TypedefOf("__lwpid_t", i32));
        int comm = c.ArrayOf(ch, lng, 20);

        int proc = c.StructOf("proc");
        int thread = c.StructOf("thread");
        int ucred = c.StructOf("ucred");
        int pgrp = c.StructOf("pgrp");
        int session = c.StructOf("session");
        int vmspace = c.ForwardOf("vmspace");
        int procPtr = c.PointerTo(proc);
        int pargsStruct = c.StructOf("pargs");
        c.SetMembers(pargsStruct, 12, ("ar_ref", u32, 0), ("ar_length", u32, 4 * 8), ("ar_args", c.ArrayOf(uch, lng, 1), 8 * 8));
        int threadPtr = c.PointerTo(thread);

        int listEntry = c.StructOf(string.Empty);
        c.SetMembers(listEntry, 16, ("le_next", procPtr, 0), ("le_prev", c.PointerTo(procPtr), 64));
        int tailqHead = c.StructOf(string.Empty);
        c.SetMembers(tailqHead, 16, ("tqh_first", threadPtr, 0), ("tqh_last", c.PointerTo(threadPtr), 64));
        int tailqEntry = c.StructOf(string.Empty);
        c.SetMembers(tailqEntry, 16, ("tqe_next", threadPtr, 0), ("tqe_prev", c.PointerTo(threadPtr), 64));
        int procState = c.EnumOf("p_state", ("PRS_NEW", 0), ("PRS_NORMAL", 1), ("PRS_ZOMBIE", 2));
        int tdStates = c.EnumOf("td_states", ("TDS_INACTIVE", 0), ("TDS_INHIBITED", 1), ("TDS_CAN_RUN", 2), ("TDS_RUNQ", 3), ("TDS_RUNNING", 4));

        c.SetMembers(proc, ProcSize,
            ("p_list", listEntry, 0),
            ("p_threads", tailqHead, 0x10 * 8),
            ("p_ucred", c.PointerTo(ucred), 0x20 * 8),
            ("p_pid", pid, 0x28 * 8),
            ("p_pptr", procPtr, 0x30 * 8),
            ("p_pgrp", c.PointerTo(pgrp), 0x38 * 8),
            ("p_state", procState, 0x40 * 8),
            ("p_flag", i32, 0x44 * 8),
            ("p_numthreads", i32, 0x48 * 8),
            ("p_nice", sch, 0x4c * 8),
            ("p_comm", comm, 0x50 * 8),
            ("p_vmspace", c.PointerTo(vmspace), 0x68 * 8),
            ("p_args", c.PointerTo(pargsStruct), 0x70 * 8));
        c.SetMembers(thread, ThreadSize,
            ("td_plist", tailqEntry, 0),
            ("td_tid", lwp, 0x10 * 8),
            ("td_name", comm, 0x14 * 8),
            ("td_state", tdStates, 0x28 * 8),
            ("td_oncpu", uch, 0x2c * 8),
            ("td_lastcpu", uch, 0x2d * 8),
            ("td_priority", uch, 0x2e * 8),
            ("td_proc", procPtr, 0x30 * 8));
        var credMembers = new List<(string, int, ulong)>
        {
            ("cr_uid", uid, 4 * 8),
            ("cr_ruid", uid, 8 * 8),
            ("cr_svuid", uid, 0xc * 8),
            ("cr_ngroups", i32, 0x10 * 8),
            ("cr_rgid", gid, 0x14 * 8),
            ("cr_svgid", gid, 0x18 * 8),
            ("cr_groups", c.PointerTo(gid), 0x20 * 8),

            // The jail (sys/sys/ucred.h); FreeBsdPerCpu writes it and defines struct prison.
            ("cr_prison", c.PointerTo(c.ForwardOf("prison")), 0x28 * 8),
        };
        if (withCrGid)
        {
            // FreeBSD 15 keeps the effective gid apart; this builder puts the real gid there, to tell them apart.
            credMembers.Add(("cr_gid", gid, 0x14 * 8));
        }

        c.SetMembers(ucred, UcredSize, [.. credMembers]);
        c.SetMembers(pgrp, PgrpSize, ("pg_session", c.PointerTo(session), 0x10 * 8), ("pg_id", pid, 0x18 * 8));
        c.SetMembers(session, SessionSize, ("s_sid", pid, 0x20 * 8));
        int proclist = c.StructOf("proclist");
        c.SetMembers(proclist, 8, ("lh_first", procPtr, 0));
        return (proc, thread);
    }

    private ulong Allocate(int size)
    {
        ulong va = _virtualBase + _next;
        _next += (ulong)((size + 15) & ~15);
        return va;
    }

    private ulong Physical(ulong va) => va - _virtualBase + _physicalBase;

    private void WriteU32(ulong va, uint value) => _memory.WriteUInt32(Physical(va), value);

    private void WriteU64(ulong va, ulong value) => _memory.WriteUInt64(Physical(va), value);
}
