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

    private readonly Func<ulong, byte[], int> _read;
    private readonly Func<string, ulong?> _symbol;
    private readonly TypeCatalog _types;
    private readonly KvmLimits _limits;
    private readonly int _pointerSize;

    public FreeBsdProcessWalker(Func<ulong, byte[], int> read, Func<string, ulong?> symbol, TypeCatalog types, KvmLimits limits)
    {
        _read = read;
        _symbol = symbol;
        _types = types;
        _limits = limits;
        _pointerSize = types.PointerSize;
    }

    public ProcessList List(ProcessQuery query)
    {
        ulong allproc = _symbol("allproc") ?? throw new SymbolNotFoundException("allproc");
        var next = _types.GetMember("proc.p_list.le_next");
        var result = new List<KernelProcess>();
        var errors = new List<string>();
        var seen = new HashSet<ulong>();
        ulong p = Pointer(allproc + (ulong)_types.GetMember("proclist.lh_first").Offset);
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
                proc = ReadStruct("proc", p);
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
                errors.Add($"struct proc at 0x{p:x} (pid {Int(proc, "proc.p_pid")}): {e.Message}");
            }

            p = PointerAt(proc, next);
        }

        return new ProcessList(result, errors);
    }

    private void AddProcess(ulong address, byte[] proc, ProcessQuery query, List<KernelProcess> result, List<string> errors)
    {
        int pid = (int)Int(proc, "proc.p_pid");
        long flags = Int(proc, "proc.p_flag");
        var threads = Threads(proc, pid, errors);

        int ppid = 0;
        if (Pointer(proc, "proc.p_pptr") is var parent && parent != 0)
        {
            ppid = (int)Int(ReadStruct("proc", parent), "proc.p_pid");
        }

        int pgid = 0, sid = 0;
        if (Pointer(proc, "proc.p_pgrp") is var pgrp && pgrp != 0)
        {
            var group = ReadStruct("pgrp", pgrp);
            pgid = (int)Int(group, "pgrp.pg_id");
            if (Pointer(group, "pgrp.pg_session") is var session && session != 0)
            {
                sid = (int)Int(ReadStruct("session", session), "session.s_sid");
            }
        }

        uint[] uids = [0, 0, 0, 0];
        uint[] gids = [0, 0, 0, 0];
        if (Pointer(proc, "proc.p_ucred") is var cred && cred != 0)
        {
            var ucred = ReadStruct("ucred", cred);
            uint uid = (uint)Int(ucred, "ucred.cr_uid");
            uint gid = EffectiveGid(ucred);
            uids = [(uint)Int(ucred, "ucred.cr_ruid"), uid, (uint)Int(ucred, "ucred.cr_svuid"), uid];
            gids = [(uint)Int(ucred, "ucred.cr_rgid"), gid, (uint)Int(ucred, "ucred.cr_svgid"), gid];
        }

        ulong argStart = 0, argEnd = 0;
        if (_types.TryGetMember("proc.p_args", out var argsMember) && PointerAt(proc, argsMember) is var pargs && pargs != 0)
        {
            var args = ReadStruct("pargs", pargs);
            argStart = pargs + (ulong)_types.GetMember("pargs.ar_args").Offset;
            argEnd = argStart + (ulong)Math.Min(Int(args, "pargs.ar_length") & 0xffffffff, _limits.MaxKernelObjectBytes);
        }

        int state = (int)Int(proc, "proc.p_state");
        char letter = state == PrsZombie ? 'Z' : state == PrsNew ? 'N'
            : threads.Any(t => t.State is TdsRunning or TdsRunq or TdsCanRun) ? 'R' : 'S';
        var comm = Text(proc, "proc.p_comm");
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
            Nice = (int)Int(proc, "proc.p_nice"),
            Priority = first.Priority,
            LastCpu = first.LastCpu,
            ResidentPages = 0,
            VirtualSize = 0,
            ThreadCount = (int)Int(proc, "proc.p_numthreads"),
            TaskAddress = address,
            MmAddress = Pointer(proc, "proc.p_vmspace"),
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
        ulong td = Pointer(proc, "proc.p_threads.tqh_first");
        while (td != 0)
        {
            if (!seen.Add(td) || seen.Count > _limits.MaxListEntries)
            {
                errors.Add($"pid {pid}: the thread list loops or exceeds KvmLimits.MaxListEntries at struct thread 0x{td:x}");
                break;
            }

            var thread = ReadStruct("thread", td);
            threads.Add(new ThreadInfo(
                td,
                (int)Int(thread, "thread.td_tid"),
                Text(thread, "thread.td_name"),
                (int)Int(thread, "thread.td_state"),
                _types.TryGetMember("thread.td_priority", out var pri) ? (int)Int(thread, pri) : 0,
                _types.TryGetMember("thread.td_lastcpu", out var cpu) ? (int)Int(thread, cpu) : 0));
            td = PointerAt(thread, next);
        }

        return threads;
    }

    /// <summary>FreeBSD 15 keeps the effective gid in <c>cr_gid</c>; before, it is <c>cr_groups[0]</c>.</summary>
    private uint EffectiveGid(byte[] ucred)
    {
        if (_types.TryGetMember("ucred.cr_gid", out var gid))
        {
            return (uint)Int(ucred, gid);
        }

        ulong groups = Pointer(ucred, "ucred.cr_groups");
        if (groups == 0)
        {
            return 0;
        }

        var value = new byte[4];
        ReadExactly(groups, value);
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
        int n = _read(process.ArgStart, bytes);
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

    private byte[] ReadStruct(string name, ulong address)
    {
        long size = _types.FindStruct(name) is { } t ? _types.SizeOf(t.Id) : throw new KvmException(KvmErrorCode.KernelType, $"{_types.Source}: no struct {name} in the kernel's CTF");
        if (size <= 0 || size > _limits.MaxKernelObjectBytes)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"{_types.Source}: struct {name} of {size} bytes is not a plausible size");
        }

        var bytes = new byte[size];
        ReadExactly(address, bytes);
        return bytes;
    }

    private void ReadExactly(ulong address, byte[] buffer)
    {
        int n = _read(address, buffer);
        if (n != buffer.Length)
        {
            throw new MemoryFaultException(address + (ulong)n, AddressSpace.KernelVirtual, MemoryFaultReason.NotMapped, $"cannot read {buffer.Length} bytes at 0x{address:x} (read {n})");
        }
    }

    private long Int(byte[] data, string path) => Int(data, _types.GetMember(path));

    /// <summary>An integer or enum member, signed as its type (through typedefs such as <c>pid_t</c>) says.</summary>
    private long Int(byte[] data, MemberLayout m)
    {
        if (m.Offset < 0 || m.Offset + Math.Max(m.Size, 1) > data.Length)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"member {m.Path} at offset {m.Offset} ({m.Size} bytes) lies outside its struct");
        }

        var s = data.AsSpan((int)m.Offset);
        var type = _types.Resolve(m.TypeId);
        bool signed = type.Kind == BtfKind.Enum || type.IntEncoding.IsSigned;
        return m.Size switch
        {
            1 => signed ? unchecked((sbyte)s[0]) : s[0],
            2 => signed ? BinaryPrimitives.ReadInt16LittleEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s),
            4 => signed ? BinaryPrimitives.ReadInt32LittleEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s),
            8 => BinaryPrimitives.ReadInt64LittleEndian(s),
            _ => throw new KvmException(KvmErrorCode.KernelType, $"member {m.Path} is {m.Size} bytes, not an integer"),
        };
    }

    private ulong Pointer(byte[] data, string path) => PointerAt(data, _types.GetMember(path));

    private ulong PointerAt(byte[] data, MemberLayout m)
    {
        if (m.Offset < 0 || m.Offset + _pointerSize > data.Length)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"member {m.Path} at offset {m.Offset} lies outside its struct");
        }

        var s = data.AsSpan((int)m.Offset);
        return _pointerSize == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
    }

    private ulong Pointer(ulong address)
    {
        var buffer = new byte[_pointerSize];
        ReadExactly(address, buffer);
        return _pointerSize == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(buffer) : BinaryPrimitives.ReadUInt32LittleEndian(buffer);
    }

    private byte[] Text(byte[] data, string path)
    {
        var m = _types.GetMember(path);
        if (m.Offset < 0 || m.Offset + m.Size > data.Length)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"member {path} lies outside its struct");
        }

        var s = data.AsSpan((int)m.Offset, (int)m.Size);
        int nul = s.IndexOf((byte)0);
        return (nul < 0 ? s : s[..nul]).ToArray();
    }

    private readonly record struct ThreadInfo(ulong Address, int Tid, byte[] Name, int State, int Priority, int LastCpu);
}
