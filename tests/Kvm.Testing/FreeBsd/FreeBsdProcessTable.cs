namespace Kvm.Testing.FreeBsd;

/// <summary>
/// FreeBSD's process structures for a test kernel: <c>allproc</c> and, for each process, <c>struct proc</c>, its
/// threads, <c>struct ucred</c>, <c>struct pgrp</c> and <c>struct session</c>, written into kernel memory, with the
/// CTF that describes them (sys/sys/proc.h, sys/sys/ucred.h member names; the layout is this builder's own, as any
/// kernel's is its compiler's: readers must take it from the CTF). Pointers are 8 bytes (amd64, LP64) or 4 (i386,
/// ILP32: sys/i386/include/_types.h); the 4-byte layout packs each member right after the pointer before it, so that
/// a reader taking 8 bytes for a pointer reads its neighbour too and gets it wrong.
/// </summary>
public sealed class FreeBsdProcessTable
{
    private readonly PhysicalMemoryBuilder _memory;
    private readonly ulong _virtualBase;
    private readonly ulong _physicalBase;
    private readonly Layout _l;
    private ulong _next;

    /// <param name="memory">The kernel's physical memory.</param>
    /// <param name="virtualBase">Where the structures go in the kernel's address space.</param>
    /// <param name="physicalBase">The physical address <paramref name="virtualBase"/> maps to (a linear mapping).</param>
    /// <param name="pointerSize">The kernel's pointer size: 8 (amd64) or 4 (i386).</param>
    public FreeBsdProcessTable(PhysicalMemoryBuilder memory, ulong virtualBase, ulong physicalBase, int pointerSize = 8)
    {
        _memory = memory;
        _virtualBase = virtualBase;
        _physicalBase = physicalBase;
        _l = Layout.For(pointerSize);
    }

    /// <summary>The kernel's pointer size.</summary>
    public int PointerSize => _l.Pointer;

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
        ulong proc = Allocate(_l.ProcSize);
        ulong cred = Allocate(_l.UcredSize);
        ulong groups = Allocate(16);
        ulong pgrp = Allocate(_l.PgrpSize);
        ulong session = Allocate(_l.SessionSize);

        WriteU32(cred + 4, euid);
        WriteU32(cred + 8, ruid);
        WriteU32(cred + 0xc, euid + 1000);
        WriteU32(cred + 0x10, 1);
        WriteU32(cred + 0x14, rgid);
        WriteU32(cred + 0x18, rgid + 1000);
        WritePointer(cred + _l.CrGroups, groups);
        WriteU32(groups, egid);
        WritePointer(pgrp + 0x10, session);
        WriteU32(pgrp + _l.PgId, (uint)pgid);
        WriteU32(session + 0x20, (uint)sid);

        WritePointer(proc + _l.PUcred, cred);
        WriteU32(proc + _l.PPid, (uint)pid);
        WritePointer(proc + _l.PPptr, ppidAddressIndex >= 0 ? Processes[ppidAddressIndex].Address : 0);
        WritePointer(proc + _l.PPgrp, pgrp);
        WriteU32(proc + _l.PState, (uint)state);
        WriteU32(proc + _l.PFlag, (uint)flags);
        WriteU32(proc + _l.PNumthreads, (uint)threads.Length);
        _memory.Write(Physical(proc + _l.PNice), [unchecked((byte)nice)]);
        _memory.Write(Physical(proc + _l.PComm), System.Text.Encoding.ASCII.GetBytes(comm[..Math.Min(comm.Length, 19)]));
        WritePointer(proc + _l.PVmspace, pid == 0 ? 0 : Allocate(0x40));
        if (args is not null)
        {
            var text = System.Text.Encoding.UTF8.GetBytes(string.Concat(args.Select(a => a + "\0")));
            ulong pargs = Allocate(8 + text.Length);
            WriteU32(pargs, 1);
            WriteU32(pargs + 4, (uint)text.Length);
            _memory.Write(Physical(pargs + 8), text);
            WritePointer(proc + _l.PArgs, pargs);
        }

        // p_threads: TAILQ_HEAD; td_plist: TAILQ_ENTRY.
        ulong previous = 0;
        foreach (var (tid, name, tdState) in threads)
        {
            ulong td = Allocate(_l.ThreadSize);
            WriteU32(td + _l.TdTid, (uint)tid);
            _memory.Write(Physical(td + _l.TdName), System.Text.Encoding.ASCII.GetBytes(name[..Math.Min(name.Length, 19)]));
            WriteU32(td + _l.TdState, (uint)tdState);
            WritePointer(td + _l.TdProc, proc);
            _memory.Write(Physical(td + _l.TdOncpu), [3, 1, 120]);
            if (previous == 0)
            {
                WritePointer(proc + _l.PThreads, td);
            }
            else
            {
                WritePointer(previous, td);
            }

            previous = td;
            Threads.Add((td, tid, proc));
        }

        // allproc is a LIST: new processes are inserted at the head, as fork1 does; here appended in order.
        if (Processes.Count > 0)
        {
            WritePointer(Processes[^1].Address, proc);
        }

        Processes.Add((proc, pid));
        return proc;
    }

    /// <summary>Points <c>allproc</c> (at <paramref name="allprocPhysical"/>) at the first process.</summary>
    public void WriteAllproc(ulong allprocPhysical)
    {
        ulong first = Processes.Count == 0 ? 0 : Processes[0].Address;
        if (_l.Pointer == 4)
        {
            _memory.WriteUInt32(allprocPhysical, (uint)first);
        }
        else
        {
            _memory.WriteUInt64(allprocPhysical, first);
        }
    }

    /// <summary>The CTF describing the structures, as a FreeBSD kernel's .SUNW_ctf would.</summary>
    public static byte[] Ctf(int version = 3, bool compress = true, bool withCrGid = false, int pointerSize = 8)
    {
        var c = new CtfBuilder(version);
        AddTypes(c, withCrGid, pointerSize);
        return c.Build(compress);
    }

    /// <summary>
    /// Adds the process structures' types to <paramref name="c"/> for a kernel of <paramref name="pointerSize"/>-byte
    /// pointers (and longs: FreeBSD is LP64 on amd64, ILP32 on i386); returns the ids of <c>struct proc</c> and
    /// <c>struct thread</c>.
    /// </summary>
    public static (int Proc, int Thread) AddTypes(CtfBuilder c, bool withCrGid = false, int pointerSize = 8)
    {
        var l = Layout.For(pointerSize);
        ulong pointerBits = (ulong)pointerSize * 8;
        int i32 = c.Int("int", 4);
        int u32 = c.Int("unsigned int", 4, signed: false);
        int ch = c.Int("char", 1, isChar: true);
        int sch = c.Int("signed char", 1);
        int uch = c.Int("unsigned char", 1, signed: false);
        int lng = c.Int("long", pointerSize);
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
        ulong pair = 2 * (ulong)pointerSize;
        c.SetMembers(listEntry, pair, ("le_next", procPtr, 0), ("le_prev", c.PointerTo(procPtr), pointerBits));
        int tailqHead = c.StructOf(string.Empty);
        c.SetMembers(tailqHead, pair, ("tqh_first", threadPtr, 0), ("tqh_last", c.PointerTo(threadPtr), pointerBits));
        int tailqEntry = c.StructOf(string.Empty);
        c.SetMembers(tailqEntry, pair, ("tqe_next", threadPtr, 0), ("tqe_prev", c.PointerTo(threadPtr), pointerBits));
        int procState = c.EnumOf("p_state", ("PRS_NEW", 0), ("PRS_NORMAL", 1), ("PRS_ZOMBIE", 2));
        int tdStates = c.EnumOf("td_states", ("TDS_INACTIVE", 0), ("TDS_INHIBITED", 1), ("TDS_CAN_RUN", 2), ("TDS_RUNQ", 3), ("TDS_RUNNING", 4));

        c.SetMembers(proc, (ulong)l.ProcSize,
            ("p_list", listEntry, 0),
            ("p_threads", tailqHead, l.PThreads * 8),
            ("p_ucred", c.PointerTo(ucred), l.PUcred * 8),
            ("p_pid", pid, l.PPid * 8),
            ("p_pptr", procPtr, l.PPptr * 8),
            ("p_pgrp", c.PointerTo(pgrp), l.PPgrp * 8),
            ("p_state", procState, l.PState * 8),
            ("p_flag", i32, l.PFlag * 8),
            ("p_numthreads", i32, l.PNumthreads * 8),
            ("p_nice", sch, l.PNice * 8),
            ("p_comm", comm, l.PComm * 8),
            ("p_vmspace", c.PointerTo(vmspace), l.PVmspace * 8),
            ("p_args", c.PointerTo(pargsStruct), l.PArgs * 8));
        c.SetMembers(thread, (ulong)l.ThreadSize,
            ("td_plist", tailqEntry, 0),
            ("td_tid", lwp, l.TdTid * 8),
            ("td_name", comm, l.TdName * 8),
            ("td_state", tdStates, l.TdState * 8),
            ("td_oncpu", uch, l.TdOncpu * 8),
            ("td_lastcpu", uch, (l.TdOncpu + 1) * 8),
            ("td_priority", uch, (l.TdOncpu + 2) * 8),
            ("td_proc", procPtr, l.TdProc * 8));
        var credMembers = new List<(string, int, ulong)>
        {
            ("cr_uid", uid, 4 * 8),
            ("cr_ruid", uid, 8 * 8),
            ("cr_svuid", uid, 0xc * 8),
            ("cr_ngroups", i32, 0x10 * 8),
            ("cr_rgid", gid, 0x14 * 8),
            ("cr_svgid", gid, 0x18 * 8),
            ("cr_groups", c.PointerTo(gid), l.CrGroups * 8),

            // The jail (sys/sys/ucred.h); FreeBsdPerCpu writes it and defines struct prison.
            ("cr_prison", c.PointerTo(c.ForwardOf("prison")), (l.CrGroups + (ulong)pointerSize) * 8),
        };
        if (withCrGid)
        {
            // FreeBSD 15 keeps the effective gid apart; this builder puts the real gid there, to tell them apart.
            credMembers.Add(("cr_gid", gid, 0x14 * 8));
        }

        c.SetMembers(ucred, (ulong)l.UcredSize, [.. credMembers]);
        c.SetMembers(pgrp, (ulong)l.PgrpSize, ("pg_session", c.PointerTo(session), 0x10 * 8), ("pg_id", pid, l.PgId * 8));
        c.SetMembers(session, (ulong)l.SessionSize, ("s_sid", pid, 0x20 * 8));
        int proclist = c.StructOf("proclist");
        c.SetMembers(proclist, (ulong)pointerSize, ("lh_first", procPtr, 0));
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

    private void WritePointer(ulong va, ulong value)
    {
        if (_l.Pointer == 4)
        {
            _memory.WriteUInt32(Physical(va), checked((uint)value));
        }
        else
        {
            _memory.WriteUInt64(Physical(va), value);
        }
    }

    /// <summary>
    /// This builder's offsets: for 8-byte pointers as the amd64 tests have always had them; for 4-byte pointers packed,
    /// each member right after the one before it.
    /// </summary>
    private sealed record Layout(
        int Pointer, int ProcSize, int ThreadSize, int UcredSize, int PgrpSize, int SessionSize,
        ulong PThreads, ulong PUcred, ulong PPid, ulong PPptr, ulong PPgrp, ulong PState, ulong PFlag, ulong PNumthreads,
        ulong PNice, ulong PComm, ulong PVmspace, ulong PArgs,
        ulong TdTid, ulong TdName, ulong TdState, ulong TdOncpu, ulong TdProc,
        ulong CrGroups, ulong PgId)
    {
        private static readonly Layout Lp64 = new(8, 0x100, 0x80, 0x40, 0x40, 0x40,
            0x10, 0x20, 0x28, 0x30, 0x38, 0x40, 0x44, 0x48, 0x4c, 0x50, 0x68, 0x70,
            0x10, 0x14, 0x28, 0x2c, 0x30,
            0x20, 0x18);

        private static readonly Layout Ilp32 = new(4, 0x50, 0x30, 0x28, 0x20, 0x28,
            0x08, 0x10, 0x14, 0x18, 0x1c, 0x20, 0x24, 0x28, 0x2c, 0x30, 0x44, 0x48,
            0x08, 0x0c, 0x20, 0x24, 0x28,
            0x1c, 0x14);

        public static Layout For(int pointerSize) => pointerSize switch
        {
            8 => Lp64,
            4 => Ilp32,
            _ => throw new ArgumentOutOfRangeException(nameof(pointerSize), pointerSize, "FreeBSD kernels have 4- or 8-byte pointers"),
        };
    }
}
