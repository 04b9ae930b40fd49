using System.Runtime.InteropServices;
using Kvm.Native.Interop;
using Kvm.Native.Mirrors;

namespace Kvm.Native.Exports;

/// <summary>
/// The SunOS/illumos process interface: <c>kvm_setproc</c>, <c>kvm_nextproc</c>, <c>kvm_getproc</c>,
/// <c>kvm_getu</c>, <c>kvm_getcmd</c>, <c>kvm_uread</c>, <c>kvm_uwrite</c>.
/// </summary>
internal static unsafe class KvmSun
{
    /// <summary><c>kvm_setproc(kd)</c>: takes a new snapshot of the process list and rewinds <c>kvm_nextproc</c> to its start. 0 or −1.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_setproc")]
    public static int SetProc(nint kd) => ExportGuard.Run(kd, -1, k =>
    {
        lock (k.Sync)
        {
            Rewind(k);
            return 0;
        }
    });

    /// <summary>
    /// <c>kvm_nextproc(kd)</c>: the next process of the snapshot in a <c>proc_t</c> the descriptor owns and the next
    /// call overwrites; NULL at the end. It also becomes the address space of <c>kvm_uread</c>.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_nextproc")]
    public static SunProc* NextProc(nint kd) => (SunProc*)ExportGuard.Run(kd, 0, k =>
    {
        lock (k.Sync)
        {
            if (k.SunList is null)
            {
                Rewind(k);
            }

            if (k.SunIndex >= k.SunList!.Count)
            {
                return 0;
            }

            return Load(k, k.SunList[k.SunIndex++]);
        }
    });

    /// <summary>
    /// <c>kvm_getproc(kd, pid)</c>: the process with id <paramref name="pid"/>, or NULL. As illumos, it rewinds and
    /// scans, so <c>kvm_nextproc</c> continues after it.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getproc")]
    public static SunProc* GetProc(nint kd, int pid) => (SunProc*)ExportGuard.Run(kd, 0, k =>
    {
        lock (k.Sync)
        {
            Rewind(k);
            while (k.SunIndex < k.SunList!.Count)
            {
                var process = k.SunList[k.SunIndex++];
                if (process.Pid == pid)
                {
                    return Load(k, process);
                }
            }

            Errno.Set(Errno.ESRCH);
            return 0;
        }
    });

    /// <summary>
    /// <c>kvm_getu(kd, p)</c>: fills and returns <c>&amp;p-&gt;p_user</c>, as illumos returns the u-area embedded in
    /// <c>proc_t</c>: the name, the arguments joined as <c>u_psargs</c> and the argument and environment areas.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getu")]
    public static SunUser* GetU(nint kd, SunProc* proc) => (SunUser*)ExportGuard.Run(kd, 0, k =>
    {
        if (proc is null)
        {
            throw new ArgumentException("kvm_getu: NULL proc");
        }

        lock (k.Sync)
        {
            var process = Find(k, proc->Pid);
            var user = &proc->User;
            *user = default;
            NativeText.Copy(process.CommandBytes.AsSpan(0, Math.Min(process.CommandBytes.Length, 16)), user->Command, SunUser.CommandLength);
            user->ArgStart = process.ArgStart;
            user->ArgEnd = process.ArgEnd;
            user->EnvStart = process.EnvStart;
            user->EnvEnd = process.EnvEnd;
            if (process.IsKernelThread)
            {
                user->ArgumentCount = 0;
                return (nint)user;
            }

            var arguments = k.Image.GetArguments(process);
            user->ArgumentCount = arguments.Values.Count == 0 && arguments.Reason is not null ? -1 : arguments.Values.Count;
            NativeText.Copy(JoinArguments(arguments.Values), user->PsArgs, SunUser.PsArgsLength);
            return (nint)user;
        }
    });

    /// <summary>
    /// <c>kvm_getcmd(kd, p, u, &amp;argv, &amp;envp)</c>: malloc'ed, NULL-terminated vectors, each one block the caller
    /// frees with one <c>free()</c>; either pointer may be NULL. 0, or −1 for a kernel thread or unreadable strings.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getcmd")]
    public static int GetCmd(nint kd, SunProc* proc, SunUser* user, byte*** argv, byte*** envp) => ExportGuard.Run(kd, -1, k =>
    {
        _ = user;
        if (proc is null)
        {
            throw new ArgumentException("kvm_getcmd: NULL proc");
        }

        var process = Find(k, proc->Pid);
        if (process.IsKernelThread)
        {
            k.SetError($"kvm_getcmd: pid {process.Pid} is a system process: it has no arguments", hard: false);
            return -1;
        }

        var args = argv is null ? null : Vector(k, process, k.Image.GetArguments(process));
        var env = envp is null ? null : Vector(k, process, k.Image.GetEnvironment(process));
        if ((argv is not null && args is null) || (envp is not null && env is null))
        {
            NativeMemory.Free(args);
            NativeMemory.Free(env);
            return -1;
        }

        if (argv is not null)
        {
            *argv = (byte**)args;
        }

        if (envp is not null)
        {
            *envp = (byte**)env;
        }

        return 0;
    });

    /// <summary>
    /// <c>kvm_uread(kd, addr, buf, nbytes)</c>: reads the address space of the process last returned by
    /// <c>kvm_nextproc</c>/<c>kvm_getproc</c>; bytes read before the first unreadable page, or −1 if none.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_uread")]
    public static nint UserRead(nint kd, nuint address, byte* buffer, nuint length) => ExportGuard.Run(kd, (nint)(-1), k =>
    {
        if (length == 0)
        {
            return 0;
        }

        KvmMemory.CheckBuffer(buffer, length);
        var process = Current(k);
        byte[] data = k.Image.ReadUser(process, address, (int)length, out string? error);
        data.CopyTo(new Span<byte>(buffer, data.Length));
        if (data.Length == 0)
        {
            k.SetError($"kvm_uread: pid {process.Pid}: {error ?? $"cannot read 0x{address:x}"}", hard: false);
            Errno.Set(Errno.EFAULT);
            return -1;
        }

        return data.Length;
    });

    /// <summary><c>kvm_uwrite(kd, addr, buf, nbytes)</c>: writes that address space in place (images opened <c>O_RDWR</c>); nbytes or −1.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_uwrite")]
    public static nint UserWrite(nint kd, nuint address, byte* buffer, nuint length) => ExportGuard.Run(kd, (nint)(-1), k =>
    {
        if (length == 0)
        {
            return 0;
        }

        KvmMemory.CheckBuffer(buffer, length);
        k.Image.WriteUser(Current(k), address, new ReadOnlySpan<byte>(buffer, (int)length));
        return (nint)length;
    });

    /// <summary>The arguments separated by spaces, as illumos' u_psargs (raw bytes: they need not be UTF-8).</summary>
    private static byte[] JoinArguments(IReadOnlyList<byte[]> values)
    {
        var joined = new List<byte>();
        foreach (var value in values)
        {
            if (joined.Count > 0)
            {
                joined.Add((byte)' ');
            }

            joined.AddRange(value);
            if (joined.Count >= SunUser.PsArgsLength)
            {
                break;
            }
        }

        return [.. joined];
    }

    private static void Rewind(NativeKvm k)
    {
        k.SunList = k.Image.GetProcesses(ProcessQuery.Processes).Processes;
        k.SunIndex = 0;
    }

    private static nint Load(NativeKvm k, KernelProcess process)
    {
        var proc = (SunProc*)(k.SunProc.Pointer is not null ? k.SunProc.Pointer : k.SunProc.Replace((nuint)sizeof(SunProc)));
        var context = KvmProcs.Context(k);
        *proc = default;
        proc->Pid = process.Pid;
        proc->ParentPid = process.ParentPid;
        proc->ProcessGroupId = process.ProcessGroupId;
        proc->SessionId = process.SessionId;
        proc->RealUid = process.Uids[0];
        proc->EffectiveUid = process.Uids[1];
        proc->SavedUid = process.Uids[2];
        proc->RealGid = process.Gids[0];
        proc->EffectiveGid = process.Gids[1];
        proc->SavedGid = process.Gids[2];
        proc->Stat = SunState(process, context);
        proc->LinuxState = (byte)process.State;
        proc->Nice = (sbyte)Math.Clamp(process.Nice, sbyte.MinValue, sbyte.MaxValue);
        proc->Priority = (byte)Math.Clamp(process.Priority + 100, 0, 255);
        proc->ThreadCount = process.ThreadCount;
        proc->Flags = process.Flags;
        proc->TtyDevice = process.TtyNumber != 0 ? process.TtyNumber : ulong.MaxValue;
        proc->VirtualSize = process.VirtualSize;
        proc->ResidentPages = process.ResidentPages;
        proc->Start = context.StartTime(process);
        proc->UserTime = Timeval.From(process.UserTime);
        proc->SystemTime = Timeval.From(process.SystemTime);
        proc->TaskAddress = process.TaskAddress;
        proc->MmAddress = process.MmAddress;
        k.SunCurrent = process;
        return (nint)proc;
    }

    // illumos states (sys/proc.h): SSLEEP 1, SRUN 2, SZOMB 3, SSTOP 4, SIDL 5, SONPROC 6.
    private static byte SunState(KernelProcess process, KinfoProcBuilder.Context context) => process.State switch
    {
        'R' => context.RunningOn.ContainsKey(process.TaskAddress) ? (byte)6 : (byte)2,
        'Z' or 'X' => 3,
        'T' or 't' => 4,
        _ => 1,
    };

    private static KernelProcess Find(NativeKvm k, int pid) =>
        k.SunList?.FirstOrDefault(p => p.Pid == pid) ?? k.Image.FindProcess(pid)
        ?? throw new ArgumentException($"no process with pid {pid}");

    private static KernelProcess Current(NativeKvm k) => k.SunCurrent
        ?? throw new ArgumentException("no current process: call kvm_nextproc or kvm_getproc first");

    private static void* Vector(NativeKvm k, KernelProcess process, ProcessStrings strings)
    {
        if (strings.Values.Count == 0 && strings.Reason is { } reason)
        {
            k.SetError($"kvm_getcmd: pid {process.Pid}: {reason}", hard: false);
            return null;
        }

        void* block = NativeMemory.Alloc(StringVector.Size(strings.Values));
        StringVector.Write(block, strings.Values);
        return block;
    }
}
