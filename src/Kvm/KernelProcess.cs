namespace Kvm;

/// <summary>
/// One process or thread of the kernel, as <c>kvm_getprocs</c> reports it: identity, credentials, state, times and
/// memory. Read from the kernel's <c>task_struct</c> and the structures it points to.
/// </summary>
public sealed record KernelProcess
{
    /// <summary>The thread id (the kernel's <c>task_struct.pid</c>); equals <see cref="Tgid"/> for a process's main thread.</summary>
    public required int Pid { get; init; }

    /// <summary>The thread-group id: the process id that <c>ps</c> shows.</summary>
    public required int Tgid { get; init; }

    /// <summary>The parent's process id (<c>real_parent->tgid</c>); 0 for tasks whose parent is the idle task.</summary>
    public required int ParentPid { get; init; }

    /// <summary>The process-group id.</summary>
    public required int ProcessGroupId { get; init; }

    /// <summary>The session id.</summary>
    public required int SessionId { get; init; }

    /// <summary>Real, effective, saved and filesystem user ids (<c>cred.uid, euid, suid, fsuid</c>).</summary>
    public required IReadOnlyList<uint> Uids { get; init; }

    /// <summary>Real, effective, saved and filesystem group ids (<c>cred.gid, egid, sgid, fsgid</c>).</summary>
    public required IReadOnlyList<uint> Gids { get; init; }

    /// <summary>The real user id.</summary>
    public uint Uid => Uids[0];

    /// <summary>The effective user id.</summary>
    public uint EffectiveUid => Uids[1];

    /// <summary>The real group id.</summary>
    public uint Gid => Gids[0];

    /// <summary>The effective group id.</summary>
    public uint EffectiveGid => Gids[1];

    /// <summary>
    /// The name as raw bytes, exactly as <c>/proc/PID/stat</c> prints it: the task's <c>comm</c> (at most 15 bytes), or a
    /// kernel thread's full name, plus a workqueue worker's suffix (see <see cref="Command"/>).
    /// </summary>
    public required byte[] CommandBytes { get; init; }

    /// <summary>
    /// The name as <c>/proc/PID/stat</c> and <c>ps</c> show it, decoded as UTF-8 (<see cref="CommandBytes"/> holds the exact
    /// bytes): the task's <c>comm</c>, plus, for a
    /// workqueue worker, its workqueue (<c>kworker/0:1-events</c>), as the kernel's <c>wq_worker_comm()</c> adds it, and
    /// for another kernel thread its full name when longer than <c>comm</c> (6.1+ <c>kthread.full_name</c>).
    /// </summary>
    public required string Command { get; init; }

    /// <summary>The state letter as <c>/proc/PID/stat</c> prints it: R, S, D, T, t, X, Z, P or I.</summary>
    public required char State { get; init; }

    /// <summary>True for kernel threads (<c>PF_KTHREAD</c>): they have no user address space.</summary>
    public required bool IsKernelThread { get; init; }

    /// <summary>True when this entry is a thread other than its process's main thread.</summary>
    public bool IsThread => Pid != Tgid;

    /// <summary>The task's flags (<c>PF_*</c>).</summary>
    public required ulong Flags { get; init; }

    /// <summary>The controlling terminal encoded as <c>/proc/PID/stat</c>'s <c>tty_nr</c>, or 0 when there is none.</summary>
    public required uint TtyNumber { get; init; }

    /// <summary>The controlling terminal's name (<c>tty_struct.name</c>, e.g. <c>ttyS0</c>), or null.</summary>
    public required string? TtyName { get; init; }

    /// <summary>When the task started, as time since boot (<c>start_boottime</c>).</summary>
    public required TimeSpan StartTime { get; init; }

    /// <summary>User CPU time (the whole process's for a process entry; the thread's own for a thread entry).</summary>
    public required TimeSpan UserTime { get; init; }

    /// <summary>System CPU time, summed like <see cref="UserTime"/>.</summary>
    public required TimeSpan SystemTime { get; init; }

    /// <summary>The nice value (−20…19), from <c>static_prio</c>.</summary>
    public required int Nice { get; init; }

    /// <summary>The priority as <c>/proc/PID/stat</c> prints it (<c>prio − 100</c>).</summary>
    public required int Priority { get; init; }

    /// <summary>The CPU the task last ran on.</summary>
    public required int LastCpu { get; init; }

    /// <summary>Resident set size in pages (file + anonymous + shared memory counters of the mm).</summary>
    public required long ResidentPages { get; init; }

    /// <summary>Virtual size in bytes (<c>mm.total_vm</c> pages).</summary>
    public required ulong VirtualSize { get; init; }

    /// <summary>Number of threads in the process (<c>signal.nr_threads</c>).</summary>
    public required int ThreadCount { get; init; }

    /// <summary>The kernel address of the <c>task_struct</c>.</summary>
    public required ulong TaskAddress { get; init; }

    /// <summary>The kernel address of the <c>mm_struct</c>, or 0 for kernel threads.</summary>
    public required ulong MmAddress { get; init; }

    /// <summary>User address of the argument strings (<c>mm.arg_start</c>), or 0.</summary>
    public required ulong ArgStart { get; init; }

    /// <summary>End of the argument strings (<c>mm.arg_end</c>).</summary>
    public required ulong ArgEnd { get; init; }

    /// <summary>User address of the environment strings (<c>mm.env_start</c>), or 0.</summary>
    public required ulong EnvStart { get; init; }

    /// <summary>End of the environment strings (<c>mm.env_end</c>).</summary>
    public required ulong EnvEnd { get; init; }

    /// <summary>The kernel virtual address of the process's top-level page table (<c>mm.pgd</c>), or 0.</summary>
    public required ulong PageTableAddress { get; init; }

    /// <summary>
    /// The foreground process group of the controlling terminal (<c>tty->ctrl.pgrp</c>), as <c>/proc/PID/stat</c>'s
    /// <c>tpgid</c>: −1 without a controlling terminal, 0 for a terminal with no foreground group.
    /// </summary>
    public int TtyProcessGroupId { get; init; } = -1;

    /// <summary>The session of the controlling terminal (<c>tty->ctrl.session</c>); 0 without one.</summary>
    public int TtySessionId { get; init; }

    /// <summary>
    /// Signals pending for this thread (<c>task->pending.signal</c>, <c>/proc/PID/status</c> SigPnd): bit n − 1 is Linux
    /// signal n (1–64).
    /// </summary>
    public ulong PendingSignals { get; init; }

    /// <summary>Signals pending for the whole process (<c>signal->shared_pending.signal</c>, ShdPnd), bits as <see cref="PendingSignals"/>.</summary>
    public ulong SharedPendingSignals { get; init; }

    /// <summary>The thread's blocked signals (<c>task->blocked</c>, SigBlk), bits as <see cref="PendingSignals"/>.</summary>
    public ulong BlockedSignals { get; init; }

    /// <summary>Signals whose action is <c>SIG_IGN</c> (<c>sighand->action[n − 1]</c>, SigIgn), bits as <see cref="PendingSignals"/>.</summary>
    public ulong IgnoredSignals { get; init; }

    /// <summary>Signals with a handler of their own (neither <c>SIG_DFL</c> nor <c>SIG_IGN</c>; SigCgt), bits as <see cref="PendingSignals"/>.</summary>
    public ulong CaughtSignals { get; init; }

    /// <summary>
    /// Minor page faults, as <c>/proc/PID/stat</c>'s <c>minflt</c>: the whole process's (its live threads' and its dead
    /// threads' <c>signal->min_flt</c>) for a process entry, the thread's own for a thread entry.
    /// </summary>
    public ulong MinorFaults { get; init; }

    /// <summary>Major page faults (<c>majflt</c>), summed like <see cref="MinorFaults"/>.</summary>
    public ulong MajorFaults { get; init; }

    /// <summary>Minor faults of the process's waited-for children (<c>signal->cmin_flt</c>, <c>cminflt</c>).</summary>
    public ulong ChildMinorFaults { get; init; }

    /// <summary>Major faults of the process's waited-for children (<c>signal->cmaj_flt</c>, <c>cmajflt</c>).</summary>
    public ulong ChildMajorFaults { get; init; }

    /// <summary>The kernel address of the task's open-file table (<c>task->files</c>, a <c>files_struct</c>), or 0.</summary>
    public ulong FilesAddress { get; init; }

    /// <summary>The kernel address of the task's kernel stack (<c>task->stack</c>), or 0.</summary>
    public ulong KernelStackAddress { get; init; }
}
