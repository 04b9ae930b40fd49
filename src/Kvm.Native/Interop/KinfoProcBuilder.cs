using Kvm.Native.Mirrors;

namespace Kvm.Native.Interop;

/// <summary>
/// Fills FreeBSD's <c>struct kinfo_proc</c> from a Linux task. Only marshalling: every value comes from the façade's
/// <see cref="KernelProcess"/>; the mapping of each field is documented in docs/libkvm-c.md.
/// </summary>
internal static unsafe class KinfoProcBuilder
{
    // FreeBSD <sys/proc.h> and <sys/user.h> values, as kvm.h defines them.
    private const byte Srun = 2, Ssleep = 3, Sstop = 4, Szomb = 5;
    private const long PControlT = 0x2, PKproc = 0x4, PHadThreads = 0x80, PSystem = 0x200, PWexit = 0x2000, PInMem = 0x10000000;
    private const long KiCtty = 0x1, KiSleader = 0x2;
    private const long TdfSintr = 0x8;
    private const byte PriRealtime = 2, PriTimeshare = 3;
    private const ulong NoDevice = ulong.MaxValue;
    private const ulong PfExiting = 0x4; // include/linux/sched.h

    /// <summary>What the builder needs beyond the task itself.</summary>
    /// <param name="BootTime">The kernel's boot time, to turn start times into wall-clock times; null if unknown.</param>
    /// <param name="RunningOn">The CPU each task address is current on in the image.</param>
    public sealed record Context(DateTimeOffset? BootTime, IReadOnlyDictionary<ulong, int> RunningOn)
    {
        /// <summary>When <paramref name="task"/> started: wall-clock time since the epoch, or time since boot if the boot time is unknown.</summary>
        public Timeval StartTime(KernelProcess task) =>
            Timeval.From(BootTime is { } boot ? boot.AddTicks(task.StartTime.Ticks) - DateTimeOffset.UnixEpoch : task.StartTime);
    }

    /// <summary>Fills <paramref name="entry"/> (zeroed by the caller) for <paramref name="task"/>.</summary>
    /// <param name="entry">The entry to fill.</param>
    /// <param name="task">The task: a thread, or a process's group leader.</param>
    /// <param name="leader">The task's group leader, for the process-wide fields; <paramref name="task"/> itself for a process entry.</param>
    /// <param name="context">Boot time and running CPUs.</param>
    public static void Fill(KinfoProc* entry, KernelProcess task, KernelProcess leader, Context context)
    {
        entry->StructSize = KinfoProc.Size;
        entry->ProcessAddress = leader.TaskAddress;
        entry->ThreadAddress = task.TaskAddress;
        entry->VmSpace = task.MmAddress;

        // Kernel addresses, as FreeBSD stores its own there (p_fd, td_kstack): the files_struct and the kernel stack.
        entry->FileDescriptors = task.FilesAddress;
        entry->KernelStack = task.KernelStackAddress;
        entry->Pid = task.Tgid;
        entry->ThreadId = task.Pid;
        entry->ParentPid = task.ParentPid;
        entry->ProcessGroupId = task.ProcessGroupId;
        entry->SessionId = task.SessionId;

        bool hasTty = task.TtyNumber != 0;
        entry->TtyDevice = hasTty ? task.TtyNumber : NoDevice;
        entry->TtyDevice32 = hasTty ? task.TtyNumber : uint.MaxValue;
        entry->TtyProcessGroupId = task.TtyProcessGroupId;
        entry->TtySessionId = task.TtySessionId;

        // Linux signal numbers at FreeBSD's bit positions (signal n at bit n − 1). Pending is the thread's own set
        // plus the process's, as FreeBSD ORs td_siglist into p_siglist.
        SetSignals(&entry->SignalsPending, task.PendingSignals | task.SharedPendingSignals);
        SetSignals(&entry->SignalMask, task.BlockedSignals);
        SetSignals(&entry->SignalsIgnored, task.IgnoredSignals);
        SetSignals(&entry->SignalsCaught, task.CaughtSignals);

        // Linux keeps real, effective, saved and filesystem ids in that order (Uids[0..3]).
        entry->RealUid = task.Uids[0];
        entry->EffectiveUid = task.Uids[1];
        entry->SavedUid = task.Uids[2];
        entry->RealGid = task.Gids[0];
        entry->SavedGid = task.Gids[2];
        entry->GroupCount = 1;
        entry->Groups[0] = task.Gids[1];

        entry->VirtualSize = task.VirtualSize;
        entry->ResidentPages = task.ResidentPages;
        entry->RunTimeMicroseconds = (ulong)((task.UserTime + task.SystemTime).Ticks / TimeSpan.TicksPerMicrosecond);
        entry->Start = context.StartTime(task);
        entry->Usage.UserTime = Timeval.From(task.UserTime);
        entry->Usage.SystemTime = Timeval.From(task.SystemTime);
        entry->Usage.MinorFaults = unchecked((long)task.MinorFaults);
        entry->Usage.MajorFaults = unchecked((long)task.MajorFaults);
        entry->ChildUsage.MinorFaults = unchecked((long)task.ChildMinorFaults);
        entry->ChildUsage.MajorFaults = unchecked((long)task.ChildMajorFaults);

        long flags = PInMem;
        flags |= hasTty ? PControlT : 0;
        flags |= task.IsKernelThread ? PSystem | PKproc : 0;
        flags |= leader.ThreadCount > 1 ? PHadThreads : 0;
        flags |= (task.Flags & PfExiting) != 0 ? PWexit : 0;
        entry->Flag = flags;
        entry->KiFlag = (hasTty ? KiCtty : 0) | (task.Tgid == task.SessionId ? KiSleader : 0);

        (entry->Stat, bool interruptible) = State(task.State);
        entry->ThreadFlags = interruptible ? TdfSintr : 0;
        entry->Nice = (sbyte)Math.Clamp(task.Nice, sbyte.MinValue, sbyte.MaxValue);

        // /proc reports prio − 100 (MAX_RT_PRIO); the kernel's own prio is 0–139, below 100 for real-time tasks.
        int prio = Math.Clamp(task.Priority + 100, 0, 255);
        entry->Priority.Class = prio < 100 ? PriRealtime : PriTimeshare;
        entry->Priority.Level = (byte)prio;
        entry->Priority.Native = (byte)prio;
        entry->Priority.User = (byte)Math.Clamp(120 + task.Nice, 0, 255);

        entry->LastCpu = task.LastCpu;
        entry->LastCpuOld = (byte)Math.Clamp(task.LastCpu, 0, 255);
        int onCpu = context.RunningOn.TryGetValue(task.TaskAddress, out int cpu) ? cpu : -1;
        entry->OnCpu = onCpu;
        entry->OnCpuOld = onCpu < 0 ? (byte)0xff : (byte)Math.Min(onCpu, 254);
        entry->ThreadCount = leader.ThreadCount;

        // ki_comm is the process's name, ki_tdname (+ ki_moretdname) the thread's: FreeBSD's MAXCOMLEN is 19.
        NativeText.Copy(leader.CommandBytes, entry->Command, 20);
        ReadOnlySpan<byte> thread = task.CommandBytes;
        NativeText.Copy(thread, entry->ThreadName, 17);
        if (thread.Length > 16)
        {
            NativeText.Copy(thread[16..], entry->MoreThreadName, 4);
        }
    }

    /// <summary>Writes a 64-bit signal set into FreeBSD's <c>sigset_t</c> (<c>__bits[4]</c>; signals above 64 stay clear).</summary>
    private static void SetSignals(KvmSigset* set, ulong signals)
    {
        set->Bits[0] = unchecked((uint)signals);
        set->Bits[1] = (uint)(signals >> 32);
    }

    /// <summary>FreeBSD's state for a Linux state letter (fs/proc/array.c task_state_array).</summary>
    internal static (byte Stat, bool Interruptible) State(char letter) => letter switch
    {
        'R' => (Srun, false),
        'S' or 'I' => (Ssleep, true),
        'T' or 't' => (Sstop, false),
        'Z' or 'X' => (Szomb, false),
        _ => (Ssleep, false), // D, P and the rest: an uninterruptible sleep
    };
}
