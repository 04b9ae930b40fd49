using System.Runtime.InteropServices;
using Kvm.Native.Interop;
using Kvm.Native.Mirrors;

namespace Kvm.Native.Exports;

/// <summary>Processes: <c>kvm_getprocs</c>, <c>kvm_getargv</c>, <c>kvm_getenvv</c>.</summary>
internal static unsafe class KvmProcs
{
    private const int KernProcAll = 0, KernProcPid = 1, KernProcPgrp = 2, KernProcSession = 3, KernProcTty = 4;
    private const int KernProcUid = 5, KernProcRuid = 6, KernProcProc = 8, KernProcRgid = 10, KernProcGid = 11;
    private const int KernProcIncThread = 0x10;

    /// <summary>
    /// <c>kvm_getprocs(kd, op, arg, cnt)</c>: an array of <c>*cnt</c> <c>struct kinfo_proc</c> owned by the
    /// descriptor until the next call or <c>kvm_close</c>. No match gives NULL, <c>*cnt = 0</c> and errno
    /// <c>ESRCH</c> (what ps tests for).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getprocs")]
    public static KinfoProc* GetProcs(nint kd, int op, int arg, int* count)
    {
        if (count is not null)
        {
            *count = 0;
        }

        return (KinfoProc*)ExportGuard.Run(kd, 0, k =>
        {
            var query = Query(op, arg);
            lock (k.Sync)
            {
                var list = k.Image.GetProcesses(query);
                if (list.Errors.Count > 0)
                {
                    k.SetError($"kvm_getprocs: {list.Errors[0]}", hard: false);
                }

                var tasks = list.Processes;
                k.Procs.Free();
                k.SetProcs([]);
                if (tasks.Count == 0)
                {
                    Errno.Set(Errno.ESRCH);
                    return 0;
                }

                var context = Context(k);
                var leaders = tasks.Where(t => t.Pid == t.Tgid).GroupBy(t => t.Tgid).ToDictionary(g => g.Key, g => g.First());
                var entries = (KinfoProc*)k.Procs.Replace((nuint)(tasks.Count * sizeof(KinfoProc)));
                for (int i = 0; i < tasks.Count; i++)
                {
                    var leader = leaders.TryGetValue(tasks[i].Tgid, out var l) ? l : tasks[i];
                    KinfoProcBuilder.Fill(&entries[i], tasks[i], leader, context);
                }

                k.SetProcs(tasks);
                if (count is not null)
                {
                    *count = tasks.Count;
                }

                return (nint)entries;
            }
        });
    }

    /// <summary>
    /// <c>kvm_getargv(kd, kp, nchr)</c>: the process's arguments as a NULL-terminated vector owned by the
    /// descriptor until the next <c>kvm_getargv</c> or <c>kvm_close</c>; at most <paramref name="maxBytes"/> bytes
    /// including NULs (0: all). Unlike FreeBSD's, this works on crash dumps too: the strings are read through the
    /// process's own page tables. NULL for kernel threads, or when nothing could be read (<c>kvm_geterr</c> says why).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getargv")]
    public static nint GetArgv(nint kd, KinfoProc* process, int maxBytes) => Strings(kd, process, maxBytes, environment: false);

    /// <summary><c>kvm_getenvv(kd, kp, nchr)</c>: the environment, as <c>kvm_getargv</c>, in its own buffer.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_getenvv")]
    public static nint GetEnvv(nint kd, KinfoProc* process, int maxBytes) => Strings(kd, process, maxBytes, environment: true);

    /// <summary>Boot time and the task current on each CPU, for the entries; what cannot be read is left out.</summary>
    internal static KinfoProcBuilder.Context Context(NativeKvm k)
    {
        DateTimeOffset? boot = null;
        var running = new Dictionary<ulong, int>();
        try
        {
            boot = k.Image.GetClock().BootTime;
        }
        catch (KvmException)
        {
            // Start times stay relative to boot.
        }

        try
        {
            foreach (var cpu in k.Image.GetCpus().Cpus)
            {
                if (cpu.CurrentTask != 0)
                {
                    running.TryAdd(cpu.CurrentTask, cpu.Cpu);
                }
            }
        }
        catch (KvmException)
        {
            // ki_oncpu stays -1.
        }

        return new KinfoProcBuilder.Context(boot, running);
    }

    private static ProcessQuery Query(int op, int arg)
    {
        int what = op & ~KernProcIncThread;
        bool threads = (op & KernProcIncThread) != 0 || what == KernProcAll;
        var selector = what switch
        {
            KernProcAll or KernProcProc => ProcessSelector.All,
            KernProcPid => ProcessSelector.Pid,
            KernProcPgrp => ProcessSelector.ProcessGroup,
            KernProcSession => ProcessSelector.Session,
            KernProcTty => ProcessSelector.Tty,
            KernProcUid => ProcessSelector.Uid,
            KernProcRuid => ProcessSelector.RealUid,
            KernProcGid => ProcessSelector.Gid,
            KernProcRgid => ProcessSelector.RealGid,
            _ => throw new ArgumentException($"kvm_getprocs: invalid op {op}"),
        };

        // uid_t, gid_t and dev_t arguments arrive in an int: read them back unsigned.
        long argument = selector is ProcessSelector.Pid or ProcessSelector.ProcessGroup or ProcessSelector.Session ? arg : (uint)arg;
        return new ProcessQuery(selector, argument, threads);
    }

    private static nint Strings(nint kd, KinfoProc* entry, int maxBytes, bool environment) => ExportGuard.Run(kd, 0, k =>
    {
        if (entry is null)
        {
            throw new ArgumentException(environment ? "kvm_getenvv: NULL kinfo_proc" : "kvm_getargv: NULL kinfo_proc");
        }

        lock (k.Sync)
        {
            var buffer = environment ? k.Envv : k.Argv;
            buffer.Free();
            var process = k.FindProcess(entry, entry->Pid, sizeof(KinfoProc))
                ?? throw new ArgumentException($"no process with pid {entry->Pid}");
            var strings = environment ? k.Image.GetEnvironment(process, Math.Max(0, maxBytes)) : k.Image.GetArguments(process, Math.Max(0, maxBytes));
            if (strings.Reason is { } reason && (!process.IsKernelThread || strings.Values.Count > 0))
            {
                k.SetError($"{(environment ? "kvm_getenvv" : "kvm_getargv")}: pid {process.Tgid}: {reason}", hard: false);
            }

            return strings.Values.Count == 0 ? 0 : StringVector.Build(buffer, strings.Values);
        }
    });
}
