using System.Text;

namespace Kvm.Linux;

/// <summary>
/// Lists processes and threads from <c>init_task.tasks</c> (thread-group leaders) and each leader's
/// <c>signal->thread_head</c> list of <c>task_struct.thread_node</c> (the only thread list since Linux 6.7, present
/// since 3.14). Field offsets are resolved once, when the walker is created.
/// </summary>
internal sealed class ProcessWalker
{
    // include/linux/sched.h: PF_KTHREAD has been 0x00200000 since 2.6.
    private const ulong PfKthread = 0x00200000;

    // include/linux/sched.h: PF_WQ_WORKER (0x20) marks a workqueue worker, whose /proc name carries its workqueue.
    private const ulong PfWqWorker = 0x00000020;

    // include/linux/sched.h (4.14–6.x): the TASK_REPORT bits and their /proc letters "RSDTtXZPI"; TASK_NOLOAD
    // (0x400) with TASK_UNINTERRUPTIBLE is reported as 'I' (TASK_REPORT_IDLE), as fs/proc/array.c does.
    private const uint TaskReport = 0x7f;
    private const uint TaskUninterruptible = 0x2;
    private const uint TaskNoLoad = 0x400;

    // 5.15+: a task blocked on an rtlock (PREEMPT_RT) sleeps in TASK_RTLOCK_WAIT and is reported as D.
    private const uint TaskRtlockWait = 0x1000;
    private const string StateLetters = "RSDTtXZPI";

    private readonly LinuxKernel _k;
    private readonly FieldLayout _tasks, _pid, _tgid, _comm, _realParent, _flags, _state, _exitState, _cred, _mm, _signal;
    private readonly FieldLayout _startTime, _utime, _stime, _prio, _staticPrio, _threadNode;
    private readonly FieldLayout? _cpu;
    private readonly long _taskSize;
    private readonly FieldLayout[] _uids, _gids;
    private readonly FieldLayout _threadHead, _nrThreads, _tty, _signalUtime, _signalStime;
    private readonly FieldLayout? _signalPids;
    private readonly FieldLayout? _pidNumbers, _upidNr;
    private readonly FieldLayout? _ttyName, _ttyIndex, _ttyDriver, _driverMajor, _driverMinorStart;
    private readonly FieldLayout _argStart, _argEnd, _envStart, _envEnd, _pgd, _totalVm;
    private readonly FieldLayout? _rssStat;
    private readonly long _rssCounterSize;
    private readonly bool _rssIsPerCpuCounter;
    private readonly FieldLayout? _percpuCount, _percpuCounters;
    private readonly long _pidTypePgid, _pidTypeSid;
    private readonly long[] _rssCounters;
    private readonly ulong? _initTask;
    private readonly long _mmSize, _signalSize, _credSize;
    private readonly FieldLayout? _workerPrivate, _kthreadData, _kthreadFullName, _workerDesc, _workerCurrentWork, _workerPool;
    private readonly FieldLayout? _ttyPgrp, _ttySession;
    private readonly FieldLayout? _pending, _blocked, _sighand, _sharedPending, _sighandAction, _saHandler;
    private readonly long _kSigactionSize;
    private readonly int _actionCount;
    private readonly FieldLayout? _minFlt, _majFlt, _signalMinFlt, _signalMajFlt, _signalCminFlt, _signalCmajFlt;
    private readonly FieldLayout? _files, _stack;

    /// <summary>Resolves every field the walk needs; throws a <see cref="KvmException"/> naming the first one missing.</summary>
    public ProcessWalker(LinuxKernel kernel)
    {
        _k = kernel;
        var t = kernel.Types;
        _taskSize = t.Size("task_struct");
        _tasks = t.Field("task_struct.tasks");
        _pid = t.Field("task_struct.pid");
        _tgid = t.Field("task_struct.tgid");
        _comm = t.Field("task_struct.comm");
        _realParent = t.Field("task_struct.real_parent");
        _flags = t.Field("task_struct.flags");

        // Linux 5.14 renamed state to __state (and made it unsigned int).
        _state = t.FirstField("task_struct.__state", "task_struct.state");
        _exitState = t.Field("task_struct.exit_state");
        _cred = t.FirstField("task_struct.real_cred", "task_struct.cred");
        _mm = t.Field("task_struct.mm");
        _signal = t.Field("task_struct.signal");
        _startTime = t.FirstField("task_struct.start_boottime", "task_struct.real_start_time", "task_struct.start_time");
        _utime = t.Field("task_struct.utime");
        _stime = t.Field("task_struct.stime");
        _prio = t.Field("task_struct.prio");
        _staticPrio = t.Field("task_struct.static_prio");
        _threadNode = t.Field("task_struct.thread_node");

        // 5.16 moved cpu back into thread_info when THREAD_INFO_IN_TASK (bcf9033e5449).
        _cpu = t.OptionalField("task_struct.thread_info.cpu", "task_struct.cpu");

        // kthread_data(): task->worker_private (5.17+; set_child_tid before) points at struct kthread, whose data is
        // the struct worker of a workqueue thread (kernel/kthread.c, kernel/workqueue.c wq_worker_comm()).
        _workerPrivate = t.OptionalField("task_struct.worker_private", "task_struct.set_child_tid");
        _kthreadData = t.OptionalField("kthread.data");

        // 6.1 keeps a kernel thread's name beyond TASK_COMM_LEN in kthread->full_name (d6986ce24fc0), which /proc prints.
        _kthreadFullName = t.OptionalField("kthread.full_name");
        _workerDesc = t.OptionalField("worker.desc");
        _workerCurrentWork = t.OptionalField("worker.current_work");
        _workerPool = t.OptionalField("worker.pool");

        _credSize = t.Size("cred");
        _uids = [t.Field("cred.uid"), t.Field("cred.euid"), t.Field("cred.suid"), t.Field("cred.fsuid")];
        _gids = [t.Field("cred.gid"), t.Field("cred.egid"), t.Field("cred.sgid"), t.Field("cred.fsgid")];

        _signalSize = t.Size("signal_struct");
        _threadHead = t.Field("signal_struct.thread_head");
        _nrThreads = t.Field("signal_struct.nr_threads");
        _tty = t.Field("signal_struct.tty");
        _signalUtime = t.Field("signal_struct.utime");
        _signalStime = t.Field("signal_struct.stime");

        // 4.19+: signal_struct.pids[PIDTYPE_MAX]; struct pid.numbers[0].nr is the id in the initial namespace.
        _signalPids = t.OptionalField("signal_struct.pids");
        _pidNumbers = t.OptionalField("pid.numbers");
        _upidNr = t.OptionalField("upid.nr");
        _pidTypePgid = t.EnumValue("PIDTYPE_PGID", 2);
        _pidTypeSid = t.EnumValue("PIDTYPE_SID", 3);
        _initTask = kernel.Symbol(KernelGlobals.InitTask.Name);

        // enum mm_counter_type: MM_FILEPAGES 0, MM_ANONPAGES 1, MM_SWAPENTS 2, MM_SHMEMPAGES 3 (4.5+); RSS = file +
        // anon + shmem as get_mm_rss() sums them.
        _rssCounters = [t.EnumValue("MM_FILEPAGES", 0), t.EnumValue("MM_ANONPAGES", 1), t.EnumValue("MM_SHMEMPAGES", 3)];

        _ttyName = t.OptionalField("tty_struct.name");
        _ttyIndex = t.OptionalField("tty_struct.index");
        _ttyDriver = t.OptionalField("tty_struct.driver");
        _driverMajor = t.OptionalField("tty_driver.major");
        _driverMinorStart = t.OptionalField("tty_driver.minor_start");

        // The tty's foreground process group and session (struct pid *): 5.14 gathered them into tty_struct.ctrl
        // ("tty: cumulate and document tty_struct::ctrl* members"); before, they were tty_struct members of their own.
        _ttyPgrp = t.OptionalField("tty_struct.ctrl.pgrp", "tty_struct.pgrp");
        _ttySession = t.OptionalField("tty_struct.ctrl.session", "tty_struct.session");

        // Signals, as fs/proc/array.c task_sig() reads them: the thread's pending set (task->pending.signal), the
        // process's (signal->shared_pending.signal), the blocked mask and, per signal, sighand->action[i].sa.sa_handler.
        // sigset_t is unsigned long sig[_NSIG_WORDS] with _NSIG 64 on every architecture read here (two words on i386).
        _pending = t.OptionalField("task_struct.pending.signal");
        _blocked = t.OptionalField("task_struct.blocked");
        _sharedPending = t.OptionalField("signal_struct.shared_pending.signal");
        _sighand = t.OptionalField("task_struct.sighand");
        _sighandAction = t.OptionalField("sighand_struct.action");
        _saHandler = t.OptionalField("k_sigaction.sa.sa_handler");
        _kSigactionSize = t.TryGetSize("k_sigaction", out long kSize) ? kSize : 0;
        _actionCount = _sighandAction is { Size: > 0 } action && _kSigactionSize > 0 ? (int)Math.Min(action.Size / _kSigactionSize, 64) : 0;

        // Fault counters (unsigned long): the thread's own, those of the process's dead threads (signal->min_flt,
        // maj_flt) and those of its waited-for children (cmin_flt, cmaj_flt), as do_task_stat() sums them.
        _minFlt = t.OptionalField("task_struct.min_flt");
        _majFlt = t.OptionalField("task_struct.maj_flt");
        _signalMinFlt = t.OptionalField("signal_struct.min_flt");
        _signalMajFlt = t.OptionalField("signal_struct.maj_flt");
        _signalCminFlt = t.OptionalField("signal_struct.cmin_flt");
        _signalCmajFlt = t.OptionalField("signal_struct.cmaj_flt");

        _files = t.OptionalField("task_struct.files");
        _stack = t.OptionalField("task_struct.stack");

        _mmSize = t.Size("mm_struct");
        _argStart = t.Field("mm_struct.arg_start");
        _argEnd = t.Field("mm_struct.arg_end");
        _envStart = t.Field("mm_struct.env_start");
        _envEnd = t.Field("mm_struct.env_end");
        _pgd = t.Field("mm_struct.pgd");
        _totalVm = t.Field("mm_struct.total_vm");
        _rssStat = t.OptionalField("mm_struct.rss_stat");

        // Up to 6.1, rss_stat is struct mm_rss_stat { atomic_long_t count[NR_MM_COUNTERS]; }; 6.2 made it an array
        // of struct percpu_counter (f1a7941243c1), whose value is count plus every CPU's share.
        if (t.TryGetSize("percpu_counter", out long pcSize) && t.TryGetField("percpu_counter.count", out var pcCount) &&
            t.TryGetField("percpu_counter.counters", out var pcCounters) && !t.TryGetSize("mm_rss_stat", out _))
        {
            _rssIsPerCpuCounter = true;
            _rssCounterSize = pcSize;
            _percpuCount = pcCount;
            _percpuCounters = pcCounters;
        }
        else
        {
            // atomic_long_t: the kernel's long.
            _rssCounterSize = kernel.PointerSize;
        }
    }

    /// <summary>Walks the task list and returns the entries the query selects.</summary>
    public ProcessList List(ProcessQuery query)
    {
        var errors = new List<string>();
        var result = new List<KernelProcess>();
        ulong initTask = _k.RequireSymbol(KernelGlobals.InitTask.Name);
        int max = _k.Limits.MaxListEntries;

        var leaders = new List<ulong> { initTask };
        leaders.AddRange(_k.WalkList(initTask + (ulong)_tasks.Offset, _tasks.Offset, max, "init_task.tasks", errors.Add));
        foreach (ulong leader in leaders)
        {
            if (leader == initTask && !query.IncludeIdle)
            {
                continue;
            }

            TaskData lt;
            try
            {
                lt = ReadTask(leader);
            }
            catch (KvmException e)
            {
                errors.Add($"task_struct at 0x{leader:x}: {e.Message}");
                continue;
            }

            errors.AddRange(lt.Problems.Select(p => $"pid {lt.Pid} (task 0x{leader:x}): {p}"));
            var threads = new List<TaskData> { lt };
            if (lt.Signal != 0 && leader != initTask)
            {
                foreach (ulong th in _k.WalkList(lt.Signal + (ulong)_threadHead.Offset, _threadNode.Offset, max, $"thread list of pid {lt.Pid}", errors.Add))
                {
                    if (th == leader)
                    {
                        continue;
                    }

                    try
                    {
                        threads.Add(ReadTask(th));
                    }
                    catch (KvmException e)
                    {
                        errors.Add($"thread task_struct at 0x{th:x} of pid {lt.Pid}: {e.Message}");
                    }
                }
            }

            if (query.IncludeThreads)
            {
                foreach (var th in threads)
                {
                    var p = Build(th, [th], threadEntry: true);
                    if (Matches(query, p))
                    {
                        result.Add(p);
                    }
                }
            }
            else
            {
                var p = Build(lt, threads, threadEntry: false);
                if (Matches(query, p))
                {
                    result.Add(p);
                }
            }
        }

        return new ProcessList(result, errors);
    }

    private static bool Matches(ProcessQuery q, KernelProcess p) => q.Selector switch
    {
        ProcessSelector.All => true,
        ProcessSelector.Pid => p.Tgid == q.Argument,
        ProcessSelector.ProcessGroup => p.ProcessGroupId == q.Argument,
        ProcessSelector.Session => p.SessionId == q.Argument,
        ProcessSelector.Tty => p.TtyNumber != 0 && p.TtyNumber == q.Argument,
        ProcessSelector.Uid => p.EffectiveUid == q.Argument,
        ProcessSelector.RealUid => p.Uid == q.Argument,
        ProcessSelector.Gid => p.EffectiveGid == q.Argument,
        ProcessSelector.RealGid => p.Gid == q.Argument,
        _ => false,
    };

    private KernelProcess Build(TaskData t, List<TaskData> group, bool threadEntry)
    {
        ulong utime = threadEntry ? t.Utime : t.SignalUtime;
        ulong stime = threadEntry ? t.Stime : t.SignalStime;

        // fs/proc/array.c do_task_stat(): a thread's own fault counts; for the process (whole), those of its dead
        // threads plus every live thread's, read under lock_task_sighand() (nothing when the task has no sighand).
        ulong minFlt = threadEntry ? t.MinFlt : t.HasSighand ? t.SignalMinFlt : 0;
        ulong majFlt = threadEntry ? t.MajFlt : t.HasSighand ? t.SignalMajFlt : 0;
        if (!threadEntry)
        {
            foreach (var th in group)
            {
                utime += th.Utime;
                stime += th.Stime;
                if (t.HasSighand)
                {
                    // Counters from a corrupt task may be anything: wrap as the kernel's unsigned long would.
                    minFlt = unchecked(minFlt + th.MinFlt);
                    majFlt = unchecked(majFlt + th.MajFlt);
                }
            }
        }

        return new KernelProcess
        {
            Pid = t.Pid,
            Tgid = t.Tgid,
            ParentPid = t.ParentTgid,
            ProcessGroupId = t.Pgid,
            SessionId = t.Sid,
            Uids = t.Uids,
            Gids = t.Gids,
            CommandBytes = [.. t.FullName ?? t.Comm, .. Encoding.UTF8.GetBytes(t.WorkerSuffix)],
            Command = Encoding.UTF8.GetString(t.FullName ?? t.Comm) + t.WorkerSuffix,
            State = t.State,
            IsKernelThread = (t.Flags & PfKthread) != 0,
            Flags = t.Flags,
            TtyNumber = t.TtyNumber,
            TtyName = t.TtyName,
            StartTime = TimeSpan.FromTicks((long)(t.StartNs / 100)),
            UserTime = TimeSpan.FromTicks((long)(utime / 100)),
            SystemTime = TimeSpan.FromTicks((long)(stime / 100)),
            Nice = t.StaticPrio - 120,
            Priority = t.Prio - 100,
            LastCpu = t.Cpu,
            ResidentPages = t.Rss,
            VirtualSize = t.TotalVm * (ulong)_k.PageSize,
            ThreadCount = t.NrThreads,
            TaskAddress = t.Address,
            MmAddress = t.Mm,
            ArgStart = t.ArgStart,
            ArgEnd = t.ArgEnd,
            EnvStart = t.EnvStart,
            EnvEnd = t.EnvEnd,
            PageTableAddress = t.Pgd,
            TtyProcessGroupId = t.TtyPgrp,
            TtySessionId = t.TtySession,
            PendingSignals = t.Pending,
            SharedPendingSignals = t.SharedPending,
            BlockedSignals = t.Blocked,
            IgnoredSignals = t.Ignored,
            CaughtSignals = t.Caught,
            MinorFaults = minFlt,
            MajorFaults = majFlt,
            ChildMinorFaults = t.HasSighand ? t.SignalCminFlt : 0,
            ChildMajorFaults = t.HasSighand ? t.SignalCmajFlt : 0,
            FilesAddress = t.Files,
            KernelStackAddress = t.Stack,
        };
    }

    private TaskData ReadTask(ulong address)
    {
        var task = _k.ReadBytes(address, _taskSize, "task_struct");
        var d = new TaskData
        {
            Address = address,
            Pid = LinuxKernel.FieldI32(task, _pid),
            Tgid = LinuxKernel.FieldI32(task, _tgid),
            Flags = LinuxKernel.Field(task, _flags, 4),
            Utime = LinuxKernel.Field(task, _utime, 8),
            Stime = LinuxKernel.Field(task, _stime, 8),
            StartNs = LinuxKernel.Field(task, _startTime, 8),
            Prio = LinuxKernel.FieldI32(task, _prio),
            StaticPrio = LinuxKernel.FieldI32(task, _staticPrio),
            Cpu = _cpu is { } c ? LinuxKernel.FieldI32(task, c) : -1,
            Mm = _k.FieldPointer(task, _mm),
            Signal = _k.FieldPointer(task, _signal),
            MinFlt = _minFlt is { } minFlt ? _k.FieldULong(task, minFlt) : 0,
            MajFlt = _majFlt is { } majFlt ? _k.FieldULong(task, majFlt) : 0,
            Files = _files is { } files ? _k.FieldPointer(task, files) : 0,
            Stack = _stack is { } stack ? _k.FieldPointer(task, stack) : 0,
        };

        int commLen = (int)Math.Min(_comm.Size > 0 ? _comm.Size : 16, 64);
        if (_comm.Offset < 0 || _comm.Offset + commLen > task.Length)
        {
            // Type information from another kernel can place comm past the task_struct it sizes.
            throw new CorruptImageException($"{_comm.Path}: offset {_comm.Offset} + {commLen} is outside the {task.Length}-byte structure read");
        }

        var comm = task.AsSpan((int)_comm.Offset, commLen);
        int nul = comm.IndexOf((byte)0);
        d.Comm = comm[..(nul < 0 ? commLen : nul)].ToArray();

        // fs/proc/array.c proc_task_name(): workqueue workers get wq_worker_comm(), other kernel threads their
        // full name, everything else comm.
        if ((d.Flags & PfWqWorker) != 0)
        {
            d.WorkerSuffix = WorkerSuffix(task);
        }
        else if ((d.Flags & PfKthread) != 0 && FullName(task) is { Length: > 0 } full)
        {
            d.FullName = full;
        }

        uint state = (uint)LinuxKernel.Field(task, _state, (int)Math.Min(_state.Size is 4 or 8 ? _state.Size : 4, 8));
        uint exitState = (uint)LinuxKernel.Field(task, _exitState, 4);
        d.State = StateLetter(state, exitState);

        ulong parent = _k.FieldPointer(task, _realParent);
        Tolerate(d, () => d.ParentTgid = parent == 0 || parent == address ? 0 : _k.ReadI32(parent + (ulong)_tgid.Offset, "real_parent->tgid"));

        // The idle task's parent is itself; tasks whose parent is the idle task report ppid 0, as /proc does.
        if (parent == _initTask)
        {
            d.ParentTgid = 0;
        }

        ulong cred = _k.FieldPointer(task, _cred);
        if (cred != 0)
        {
            var cr = _k.ReadBytes(cred, _credSize, "cred");
            d.Uids = _uids.Select(f => (uint)LinuxKernel.Field(cr, f, 4)).ToArray();
            d.Gids = _gids.Select(f => (uint)LinuxKernel.Field(cr, f, 4)).ToArray();
        }

        if (d.Signal != 0)
        {
            var s = _k.ReadBytes(d.Signal, _signalSize, "signal_struct");
            d.NrThreads = LinuxKernel.FieldI32(s, _nrThreads);
            d.SignalUtime = LinuxKernel.Field(s, _signalUtime, 8);
            d.SignalStime = LinuxKernel.Field(s, _signalStime, 8);
            d.SignalMinFlt = _signalMinFlt is { } sMinFlt ? _k.FieldULong(s, sMinFlt) : 0;
            d.SignalMajFlt = _signalMajFlt is { } sMajFlt ? _k.FieldULong(s, sMajFlt) : 0;
            d.SignalCminFlt = _signalCminFlt is { } sCminFlt ? _k.FieldULong(s, sCminFlt) : 0;
            d.SignalCmajFlt = _signalCmajFlt is { } sCmajFlt ? _k.FieldULong(s, sCmajFlt) : 0;
            Tolerate(d, () => ReadIds(s, d));
            Tolerate(d, () => ReadTty(_k.FieldPointer(s, _tty), d));
            Tolerate(d, () => ReadSignals(task, s, d));
        }

        if (d.Mm != 0)
        {
            var mm = _k.ReadBytes(d.Mm, _mmSize, "mm_struct");
            d.ArgStart = _k.FieldULong(mm, _argStart);
            d.ArgEnd = _k.FieldULong(mm, _argEnd);
            d.EnvStart = _k.FieldULong(mm, _envStart);
            d.EnvEnd = _k.FieldULong(mm, _envEnd);
            d.Pgd = _k.FieldPointer(mm, _pgd);
            d.TotalVm = _k.FieldULong(mm, _totalVm);
            d.Rss = ReadRss(mm);
        }

        return d;
    }

    /// <summary>
    /// The suffix /proc adds to a workqueue worker's name (wq_worker_comm(), Linux 4.18+): "-" and the workqueue's
    /// description after its last work item, "+" while one is running. Empty when anything is unreadable.
    /// </summary>
    private string WorkerSuffix(byte[] task)
    {
        if (_workerPrivate is not { } wp || _kthreadData is not { } data || _workerDesc is not { } desc || _workerCurrentWork is not { } current || _workerPool is not { } pool)
        {
            return "";
        }

        ulong kthread = _k.FieldPointer(task, wp);
        if (kthread == 0 || !_k.TryReadPointer(kthread + (ulong)data.Offset, out ulong worker) || worker == 0 ||
            !_k.TryReadPointer(worker + (ulong)pool.Offset, out ulong workerPool) || workerPool == 0 ||
            !_k.TryReadPointer(worker + (ulong)current.Offset, out ulong currentWork))
        {
            return "";
        }

        var name = _k.ReadCStringBytes(worker + (ulong)desc.Offset, (int)Math.Clamp(desc.Size, 1, 64));
        return name.Length == 0 ? "" : (currentWork != 0 ? "+" : "-") + Encoding.UTF8.GetString(name);
    }

    private byte[]? FullName(byte[] task)
    {
        if (_workerPrivate is not { } wp || _kthreadFullName is not { } fullName)
        {
            return null;
        }

        ulong kthread = _k.FieldPointer(task, wp);
        return kthread != 0 && _k.TryReadPointer(kthread + (ulong)fullName.Offset, out ulong name) && name != 0 ? _k.ReadCStringBytes(name, 64) : null;
    }

    /// <summary>
    /// Reads a part of a task that hangs off a pointer of its own (parent, pids, tty): if that pointer is bad, the
    /// task is still listed, with the field left empty and the problem reported.
    /// </summary>
    private static void Tolerate(TaskData d, Action read)
    {
        try
        {
            read();
        }
        catch (KvmException e)
        {
            d.Problems.Add(e.Message);
        }
    }

    private void ReadIds(byte[] signal, TaskData d)
    {
        if (_signalPids is not { } pids || _pidNumbers is not { } numbers || _upidNr is not { } nr)
        {
            return;
        }

        int pointer = _k.PointerSize;
        d.Pgid = PidNumber(_k.FieldPointer(signal, pids with { Offset = pids.Offset + (_pidTypePgid * pointer), Size = pointer }));
        d.Sid = PidNumber(_k.FieldPointer(signal, pids with { Offset = pids.Offset + (_pidTypeSid * pointer), Size = pointer }));

        int PidNumber(ulong pid) => pid == 0 ? 0 : _k.ReadI32(pid + (ulong)numbers.Offset + (ulong)nr.Offset, "pid->numbers[0].nr");
    }

    /// <summary>
    /// The signal sets as fs/proc/array.c task_sig() and collect_sigign_sigcatch() compute them, all under
    /// lock_task_sighand(): a task without sighand (released by __exit_signal()) shows none.
    /// </summary>
    private void ReadSignals(byte[] task, byte[] signal, TaskData d)
    {
        if (_sighand is not { } sh)
        {
            return;
        }

        ulong sighand = _k.FieldPointer(task, sh);
        d.HasSighand = sighand != 0;
        if (sighand == 0)
        {
            return;
        }

        d.Pending = _pending is { } pending ? Sigset(task, pending) : 0;
        d.Blocked = _blocked is { } blocked ? Sigset(task, blocked) : 0;
        d.SharedPending = _sharedPending is { } shared ? Sigset(signal, shared) : 0;
        if (_sighandAction is not { } action || _saHandler is not { } handler || _actionCount == 0)
        {
            return;
        }

        var actions = _k.ReadBytes(_k.AddressAdd(sighand, (ulong)action.Offset), _actionCount * _kSigactionSize, "sighand_struct.action");
        for (int i = 0; i < _actionCount; i++)
        {
            // include/uapi/asm-generic/signal-defs.h: SIG_DFL is 0, SIG_IGN 1; anything else is a handler.
            ulong h = _k.FieldPointer(actions, handler with { Offset = (i * _kSigactionSize) + handler.Offset });
            if (h == 1)
            {
                d.Ignored |= 1UL << i;
            }
            else if (h != 0)
            {
                d.Caught |= 1UL << i;
            }
        }
    }

    /// <summary>A sigset_t: unsigned long sig[_NSIG_WORDS], signal n at bit n − 1 of the whole, word 0 lowest.</summary>
    private ulong Sigset(byte[] data, FieldLayout set)
    {
        int word = _k.PointerSize;
        int words = (int)Math.Clamp(set.Size > 0 ? set.Size / word : 8 / word, 1, 8 / word);
        ulong value = 0;
        for (int i = 0; i < words; i++)
        {
            value |= _k.FieldULong(data, set with { Offset = set.Offset + (i * word), Size = word, BitSize = 0 }) << (i * word * 8);
        }

        return value;
    }

    private void ReadTty(ulong tty, TaskData d)
    {
        if (tty == 0)
        {
            return;
        }

        if (_ttyName is { } name)
        {
            d.TtyName = _k.ReadCString(tty + (ulong)name.Offset, (int)Math.Clamp(name.Size, 1, 64));
        }

        if (_ttyIndex is { } index && _ttyDriver is { } driver && _driverMajor is { } major && _driverMinorStart is { } minorStart)
        {
            int idx = _k.ReadI32(tty + (ulong)index.Offset, "tty_struct.index");
            ulong drv = _k.ReadPointer(tty + (ulong)driver.Offset, "tty_struct.driver");
            if (drv != 0)
            {
                uint maj = (uint)_k.ReadI32(drv + (ulong)major.Offset, "tty_driver.major");
                uint min = (uint)(_k.ReadI32(drv + (ulong)minorStart.Offset, "tty_driver.minor_start") + idx);

                // fs/proc/array.c prints new_encode_dev(): minor low byte, major, then the rest of minor.
                d.TtyNumber = (min & 0xff) | (maj << 8) | ((min & ~0xffu) << 12);
            }
        }

        // fs/proc/array.c do_task_stat(): tpgid is pid_nr_ns(tty_get_pgrp(tty)), 0 for a tty without a foreground
        // group (−1, set when the task was read, without a tty).
        if (_ttyPgrp is { } pgrp && _pidNumbers is { } numbers && _upidNr is { } nr)
        {
            ulong nrOffset = (ulong)(numbers.Offset + nr.Offset);
            ulong p = _k.ReadPointer(_k.AddressAdd(tty, (ulong)pgrp.Offset), pgrp.Path);
            d.TtyPgrp = p == 0 ? 0 : _k.ReadI32(_k.AddressAdd(p, nrOffset), "tty->pgrp->numbers[0].nr");
            if (_ttySession is { } session)
            {
                ulong s = _k.ReadPointer(_k.AddressAdd(tty, (ulong)session.Offset), session.Path);
                d.TtySession = s == 0 ? 0 : _k.ReadI32(_k.AddressAdd(s, nrOffset), "tty->session->numbers[0].nr");
            }
        }
    }

    private long ReadRss(byte[] mm)
    {
        if (_rssStat is not { } rss)
        {
            return 0;
        }

        long total = 0;
        foreach (long type in _rssCounters)
        {
            long off = rss.Offset + (type * _rssCounterSize);
            if (off + _rssCounterSize > mm.Length)
            {
                continue;
            }

            if (_rssIsPerCpuCounter && _percpuCount is { } count)
            {
                // percpu_counter.count is an s64 on every architecture.
                total += unchecked((long)LinuxKernel.Field(mm, count with { Offset = off + count.Offset, Size = 8 }, 8));
            }
            else
            {
                total += _k.FieldLong(mm, rss with { Offset = off, Size = _k.PointerSize, BitSize = 0 });
            }
        }

        return Math.Max(total, 0);
    }

    private static char StateLetter(uint state, uint exitState)
    {
        if (state == TaskRtlockWait && exitState == 0)
        {
            return 'D';
        }

        if ((state & (TaskUninterruptible | TaskNoLoad)) == (TaskUninterruptible | TaskNoLoad) && ((state | exitState) & TaskReport) == TaskUninterruptible)
        {
            return 'I';
        }

        uint bits = (state | exitState) & TaskReport;
        int index = bits == 0 ? 0 : 32 - System.Numerics.BitOperations.LeadingZeroCount(bits);
        return StateLetters[index];
    }

    private sealed class TaskData
    {
        public ulong Address;
        public int Pid;
        public int Tgid;
        public int ParentTgid;
        public int Pgid;
        public int Sid;
        public uint[] Uids = new uint[4];
        public uint[] Gids = new uint[4];
        public byte[] Comm = [];
        public string WorkerSuffix = "";
        public List<string> Problems = [];
        public byte[]? FullName;
        public char State;
        public ulong Flags;
        public uint TtyNumber;
        public string? TtyName;
        public ulong StartNs;
        public ulong Utime;
        public ulong Stime;
        public ulong SignalUtime;
        public ulong SignalStime;
        public int Prio;
        public int StaticPrio;
        public int Cpu;
        public long Rss;
        public ulong TotalVm;
        public int NrThreads;
        public ulong Mm;
        public ulong Signal;
        public ulong ArgStart;
        public ulong ArgEnd;
        public ulong EnvStart;
        public ulong EnvEnd;
        public ulong Pgd;
        public int TtyPgrp = -1;
        public int TtySession;
        public bool HasSighand = true;
        public ulong Pending;
        public ulong SharedPending;
        public ulong Blocked;
        public ulong Ignored;
        public ulong Caught;
        public ulong MinFlt;
        public ulong MajFlt;
        public ulong SignalMinFlt;
        public ulong SignalMajFlt;
        public ulong SignalCminFlt;
        public ulong SignalCmajFlt;
        public ulong Files;
        public ulong Stack;
    }
}
