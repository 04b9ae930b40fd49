using System.Buffers.Binary;
using System.Text;
using Kvm.Types;

namespace Kvm.FreeBsd;

/// <summary>
/// Lists a FreeBSD kernel's processes as libkvm's <c>kvm_getprocs</c> walks them on a dump (lib/libkvm kvm_proc.c
/// <c>kvm_proclist</c>, <c>kvm_deadprocs</c>): the <c>allproc</c> list (<c>LIST_HEAD(proclist, proc)</c>, linked by
/// <c>p_list.le_next</c>), each <c>struct proc</c> with its credentials (<c>p_ucred</c>), process group and session
/// (<c>p_pgrp</c>, <c>pg_session</c>), parent (<c>p_pptr</c>) and threads (<c>p_threads</c>, a TAILQ linked by
/// <c>td_plist</c>), every layout taken from the kernel's CTF (sys/sys/proc.h, sys/sys/ucred.h names). The walk is
/// bounded (<see cref="KvmLimits.MaxListEntries"/>) and cycle-safe: a corrupt list gives what was read, and the
/// problem in <see cref="ProcessList.Errors"/>.
/// </summary>
/// <remarks>
/// The process is mapped onto <see cref="KernelProcess"/>: <c>Pid</c> and <c>Tgid</c> are <c>p_pid</c> (for a thread
/// entry, <c>Pid</c> is <c>td_tid</c>), the ids are <c>cr_ruid</c>/<c>cr_uid</c>/<c>cr_svuid</c> and
/// <c>cr_rgid</c>/the effective gid (<c>cr_gid</c> where the kernel has it, else <c>cr_groups[0]</c>)/<c>cr_svgid</c>,
/// the state is <c>Z</c> for <c>PRS_ZOMBIE</c>, <c>R</c> when a thread is running or runnable, <c>S</c> when every thread is
/// inhibited (sleeping, suspended, waiting), <c>N</c> for a process still being created; kernel processes are those
/// with <c>P_KPROC</c> or <c>P_SYSTEM</c>. <c>ArgStart</c>/<c>ArgEnd</c> delimit the kernel's copy of the arguments
/// (<c>p_args->ar_args</c>, <c>ar_length</c> bytes: sys/sys/proc.h <c>struct pargs</c>) — kernel addresses, not user ones.
/// Times, sizes and the tty are not read (0).
/// </remarks>
internal sealed class FreeBsdProcessWalker
{
    /// <summary>sys/sys/proc.h <c>P_CONTROLT</c>, <c>P_KPROC</c>, <c>P_SYSTEM</c>.</summary>
    private const long PKproc = 0x4, PSystem = 0x200;

    private const int PrsNew = 0, PrsZombie = 2;
    private const int TdsCanRun = 2, TdsRunq = 3, TdsRunning = 4;

    private readonly FreeBsdKernelReader _k;
    private readonly TypeCatalog _types;
    private readonly KvmLimits _limits;

    public FreeBsdProcessWalker(FreeBsdKernelReader kernel)
    {
        _k = kernel;
        _types = kernel.Types;
        _limits = kernel.Limits;
    }

    public ProcessList List(ProcessQuery query)
    {
        ulong allproc = _k.RequireSymbol("allproc");
        var next = _types.GetMember("proc.p_list.le_next");
        var result = new List<KernelProcess>();
        var errors = new List<string>();
        var seen = new HashSet<ulong>();
        ulong p = _k.ReadPointer(allproc + (ulong)_types.GetMember("proclist.lh_first").Offset);
        while (p != 0)
        {
            if (!seen.Add(p) || seen.Count > _limits.MaxListEntries)
            {
                errors.Add($"allproc: the list loops or exceeds KvmLimits.MaxListEntries ({_limits.MaxListEntries}) at struct proc 0x{p:x}");
                break;
            }

            byte[] proc;
            try
            {
                proc = _k.ReadStruct("proc", p);
            }
            catch (MemoryFaultException e)
            {
                errors.Add($"allproc: struct proc at 0x{p:x}: {e.Message}");
                break;
            }

            try
            {
                AddProcess(p, proc, query, result, errors);
            }
            catch (MemoryFaultException e)
            {
                errors.Add($"struct proc at 0x{p:x} (pid {_k.Int(proc, "proc.p_pid")}): {e.Message}");
            }

            p = _k.PointerAt(proc, next);
        }

        return new ProcessList(result, errors);
    }

    private void AddProcess(ulong address, byte[] proc, ProcessQuery query, List<KernelProcess> result, List<string> errors)
    {
        int pid = (int)_k.Int(proc, "proc.p_pid");
        long flags = _k.Int(proc, "proc.p_flag");
        var threads = Threads(proc, pid, errors);

        int ppid = 0;
        if (_k.Pointer(proc, "proc.p_pptr") is var parent && parent != 0)
        {
            ppid = (int)_k.Int(_k.ReadStruct("proc", parent), "proc.p_pid");
        }

        int pgid = 0, sid = 0;
        if (_k.Pointer(proc, "proc.p_pgrp") is var pgrp && pgrp != 0)
        {
            var group = _k.ReadStruct("pgrp", pgrp);
            pgid = (int)_k.Int(group, "pgrp.pg_id");
            if (_k.Pointer(group, "pgrp.pg_session") is var session && session != 0)
            {
                sid = (int)_k.Int(_k.ReadStruct("session", session), "session.s_sid");
            }
        }

        uint[] uids = [0, 0, 0, 0];
        uint[] gids = [0, 0, 0, 0];
        if (_k.Pointer(proc, "proc.p_ucred") is var cred && cred != 0)
        {
            var ucred = _k.ReadStruct("ucred", cred);
            uint uid = (uint)_k.Int(ucred, "ucred.cr_uid");
            uint gid = EffectiveGid(ucred);
            uids = [(uint)_k.Int(ucred, "ucred.cr_ruid"), uid, (uint)_k.Int(ucred, "ucred.cr_svuid"), uid];
            gids = [(uint)_k.Int(ucred, "ucred.cr_rgid"), gid, (uint)_k.Int(ucred, "ucred.cr_svgid"), gid];
        }

        ulong argStart = 0, argEnd = 0;
        if (_types.TryGetMember("proc.p_args", out var argsMember) && _k.PointerAt(proc, argsMember) is var pargs && pargs != 0)
        {
            var args = _k.ReadStruct("pargs", pargs);
            argStart = pargs + (ulong)_types.GetMember("pargs.ar_args").Offset;
            argEnd = argStart + (ulong)Math.Min(_k.Int(args, "pargs.ar_length") & 0xffffffff, _limits.MaxKernelObjectBytes);
        }

        int state = (int)_k.Int(proc, "proc.p_state");
        char letter = state == PrsZombie ? 'Z' : state == PrsNew ? 'N'
            : threads.Any(t => t.State is TdsRunning or TdsRunq or TdsCanRun) ? 'R' : 'S';
        var comm = _k.Text(proc, "proc.p_comm");
        var first = threads.Count > 0 ? threads[0] : default;
        var process = new KernelProcess
        {
            Pid = pid,
            Tgid = pid,
            ParentPid = ppid,
            ProcessGroupId = pgid,
            SessionId = sid,
            Uids = uids,
            Gids = gids,
            CommandBytes = comm,
            Command = Encoding.UTF8.GetString(comm),
            State = letter,
            IsKernelThread = (flags & (PKproc | PSystem)) != 0,
            Flags = unchecked((ulong)flags),
            TtyNumber = 0,
            TtyName = null,
            StartTime = TimeSpan.Zero,
            UserTime = TimeSpan.Zero,
            SystemTime = TimeSpan.Zero,
            Nice = (int)_k.Int(proc, "proc.p_nice"),
            Priority = first.Priority,
            LastCpu = first.LastCpu,
            ResidentPages = 0,
            VirtualSize = 0,
            ThreadCount = (int)_k.Int(proc, "proc.p_numthreads"),
            TaskAddress = address,
            MmAddress = _k.Pointer(proc, "proc.p_vmspace"),
            ArgStart = argStart,
            ArgEnd = argEnd,
            EnvStart = 0,
            EnvEnd = 0,
            PageTableAddress = 0,
        };

        if (query.IncludeThreads && threads.Count > 0)
        {
            foreach (var t in threads)
            {
                var entry = process with
                {
                    Pid = t.Tid,
                    CommandBytes = t.Name,
                    Command = Encoding.UTF8.GetString(t.Name),
                    State = state == PrsZombie ? 'Z' : t.State is TdsRunning or TdsRunq or TdsCanRun ? 'R' : 'S',
                    Priority = t.Priority,
                    LastCpu = t.LastCpu,
                    TaskAddress = t.Address,
                };
                if (Matches(query, entry))
                {
                    result.Add(entry);
                }
            }
        }
        else if (Matches(query, process))
        {
            result.Add(process);
        }
    }

    private List<ThreadInfo> Threads(byte[] proc, int pid, List<string> errors)
    {
        var threads = new List<ThreadInfo>();
        var next = _types.GetMember("thread.td_plist.tqe_next");
        var seen = new HashSet<ulong>();
        ulong td = _k.Pointer(proc, "proc.p_threads.tqh_first");
        while (td != 0)
        {
            if (!seen.Add(td) || seen.Count > _limits.MaxListEntries)
            {
                errors.Add($"pid {pid}: the thread list loops or exceeds KvmLimits.MaxListEntries at struct thread 0x{td:x}");
                break;
            }

            var thread = _k.ReadStruct("thread", td);
            threads.Add(new ThreadInfo(
                td,
                (int)_k.Int(thread, "thread.td_tid"),
                _k.Text(thread, "thread.td_name"),
                (int)_k.Int(thread, "thread.td_state"),
                _types.TryGetMember("thread.td_priority", out var pri) ? (int)_k.Int(thread, pri) : 0,
                _types.TryGetMember("thread.td_lastcpu", out var cpu) ? (int)_k.Int(thread, cpu) : 0));
            td = _k.PointerAt(thread, next);
        }

        return threads;
    }

    /// <summary>FreeBSD 15 keeps the effective gid in <c>cr_gid</c>; before, it is <c>cr_groups[0]</c>.</summary>
    private uint EffectiveGid(byte[] ucred)
    {
        if (_types.TryGetMember("ucred.cr_gid", out var gid))
        {
            return (uint)_k.Int(ucred, gid);
        }

        ulong groups = _k.Pointer(ucred, "ucred.cr_groups");
        if (groups == 0)
        {
            return 0;
        }

        var value = new byte[4];
        _k.ReadExactly(groups, value);
        return BinaryPrimitives.ReadUInt32LittleEndian(value);
    }

    /// <summary>
    /// The arguments as the kernel keeps them for ps (<c>p_args</c>): NUL-separated, at most <paramref name="maxBytes"/>
    /// bytes including the NULs (libkvm's <c>nchr</c>; 0 = all). FreeBSD's libkvm refuses argv on a dump ("cannot read
    /// user space from dead kernel"); this kernel copy needs no user space.
    /// </summary>
    public ProcessStrings ReadArguments(KernelProcess process, int maxBytes)
    {
        if (process.ArgStart == 0 || process.ArgEnd <= process.ArgStart)
        {
            return new ProcessStrings([], process.IsKernelThread, process.IsKernelThread ? null : $"pid {process.Pid} has no p_args (its arguments were not saved)", null, false);
        }

        ulong length = process.ArgEnd - process.ArgStart;
        bool truncated = maxBytes > 0 && (ulong)maxBytes < length;
        var bytes = new byte[truncated ? maxBytes : (int)length];
        int n = _k.Read(process.ArgStart, bytes);
        string? reason = n < bytes.Length ? $"p_args of pid {process.Pid} at 0x{process.ArgStart + (ulong)n:x} cannot be read" : null;
        var data = bytes.AsSpan(0, n);
        if (truncated && reason is null && data.Length > 0 && data[^1] != 0)
        {
            data = data[..^1];
        }

        var values = new List<byte[]>();
        while (!data.IsEmpty)
        {
            int nul = data.IndexOf((byte)0);
            values.Add((nul < 0 ? data : data[..nul]).ToArray());
            data = nul < 0 ? [] : data[(nul + 1)..];
        }

        return new ProcessStrings(values, reason is null, reason, reason is null ? null : MemoryFaultReason.NotInImage, truncated && reason is null);
    }

    private static bool Matches(ProcessQuery q, KernelProcess p) => q.Selector switch
    {
        ProcessSelector.All => q.IncludeIdle || p.Pid != 0,
        ProcessSelector.Pid => p.Tgid == q.Argument,
        ProcessSelector.ProcessGroup => p.ProcessGroupId == q.Argument,
        ProcessSelector.Session => p.SessionId == q.Argument,
        ProcessSelector.Tty => false,
        ProcessSelector.Uid => p.EffectiveUid == q.Argument,
        ProcessSelector.RealUid => p.Uid == q.Argument,
        ProcessSelector.Gid => p.EffectiveGid == q.Argument,
        ProcessSelector.RealGid => p.Gid == q.Argument,
        _ => false,
    };

    private readonly record struct ThreadInfo(ulong Address, int Tid, byte[] Name, int State, int Priority, int LastCpu);
}
