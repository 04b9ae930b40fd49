namespace Kvm;

/// <summary>What <see cref="ProcessQuery"/> selects on: libkvm's <c>KERN_PROC_*</c> operations.</summary>
public enum ProcessSelector
{
    /// <summary>Every process (<c>KERN_PROC_ALL</c> with threads, <c>KERN_PROC_PROC</c> without).</summary>
    All,

    /// <summary>The process with this process id (<c>KERN_PROC_PID</c>).</summary>
    Pid,

    /// <summary>Processes in this process group (<c>KERN_PROC_PGRP</c>).</summary>
    ProcessGroup,

    /// <summary>Processes in this session (<c>KERN_PROC_SESSION</c>).</summary>
    Session,

    /// <summary>Processes whose controlling terminal has this <c>tty_nr</c> (<c>KERN_PROC_TTY</c>).</summary>
    Tty,

    /// <summary>Processes with this effective user id (<c>KERN_PROC_UID</c>).</summary>
    Uid,

    /// <summary>Processes with this real user id (<c>KERN_PROC_RUID</c>).</summary>
    RealUid,

    /// <summary>Processes with this effective group id (<c>KERN_PROC_GID</c>).</summary>
    Gid,

    /// <summary>Processes with this real group id (<c>KERN_PROC_RGID</c>).</summary>
    RealGid,
}

/// <summary>Which processes to list, and whether each thread gets its own entry.</summary>
/// <param name="Selector">What to select on.</param>
/// <param name="Argument">The value selected (pid, uid, …); ignored for <see cref="ProcessSelector.All"/>.</param>
/// <param name="IncludeThreads">One entry per thread (<c>KERN_PROC_INC_THREAD</c>) instead of one per process.</param>
/// <param name="IncludeIdle">Include the idle task, pid 0 (<c>swapper/0</c>), which <c>/proc</c> does not list.</param>
public sealed record ProcessQuery(ProcessSelector Selector = ProcessSelector.All, long Argument = 0, bool IncludeThreads = false, bool IncludeIdle = true)
{
    /// <summary>Every process, one entry each.</summary>
    public static ProcessQuery Processes { get; } = new();

    /// <summary>Every thread of every process.</summary>
    public static ProcessQuery Threads { get; } = new(IncludeThreads: true);

    /// <summary>The process with id <paramref name="pid"/>.</summary>
    public static ProcessQuery ForPid(int pid) => new(ProcessSelector.Pid, pid);
}

/// <summary>The result of a process walk: what was read, and why the walk stopped early if it did.</summary>
/// <param name="Processes">The processes (or threads) read, in the kernel's list order.</param>
/// <param name="Errors">Problems met (a corrupt or looping list, an unreadable task); empty when the walk was clean.</param>
public sealed record ProcessList(IReadOnlyList<KernelProcess> Processes, IReadOnlyList<string> Errors);

/// <summary>
/// A process's argument or environment strings (<c>kvm_getargv</c>, <c>kvm_getenvv</c>): the strings read, and
/// when the area could not be read completely, why and where.
/// </summary>
/// <param name="Values">The strings as raw bytes (not NUL-terminated), in order.</param>
/// <param name="IsComplete">True when the whole area was read (or the limit was reached deliberately).</param>
/// <param name="Reason">Why the area is incomplete: the page and what happened to it; null when complete.</param>
/// <param name="FaultReason">The kind of fault that stopped the read, when one did.</param>
/// <param name="Truncated">True when the caller's byte limit cut the area short.</param>
public sealed record ProcessStrings(IReadOnlyList<byte[]> Values, bool IsComplete, string? Reason, MemoryFaultReason? FaultReason, bool Truncated)
{
    /// <summary>The strings decoded as UTF-8 (invalid bytes become U+FFFD; use <see cref="Values"/> for exact bytes).</summary>
    public IReadOnlyList<string> Strings => Values.Select(v => System.Text.Encoding.UTF8.GetString(v)).ToList();
}
