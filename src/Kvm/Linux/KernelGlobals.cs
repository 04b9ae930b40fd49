namespace Kvm.Linux;

/// <summary>A kernel global variable the walkers read, with the C type its symbol has.</summary>
/// <param name="Name">The symbol name, verbatim.</param>
/// <param name="CType">The declaration's type as the kernel source writes it.</param>
/// <param name="Since">Where the declaration lives and since when it has this type.</param>
internal sealed record KernelGlobal(string Name, string CType, string Since);

/// <summary>
/// The global variables the kernel walkers read, in one place. Kernel BTF describes types and per-CPU variables but
/// carries no global variables (formats.md §6.5), so their types are fixed here; <c>long</c> and pointers are the
/// kernel's word (8 bytes on x86-64, 4 on i386: <see cref="LinuxKernel.PointerSize"/>). Walkers name symbols only through this table; the kernel log reader
/// (Printk/) is the exception by design: it takes <c>prb</c>, <c>log_buf</c> and their layouts from VMCOREINFO's own
/// SYMBOL()/OFFSET()/SIZE() keys, so that it works without BTF.
/// </summary>
internal static class KernelGlobals
{
    /// <summary>The idle task of CPU 0, head of the task list.</summary>
    public static readonly KernelGlobal InitTask = new("init_task", "struct task_struct", "init/init_task.c, all versions");

    /// <summary>The load average, fixed point with FSHIFT 11.</summary>
    public static readonly KernelGlobal Avenrun = new("avenrun", "unsigned long[3]", "kernel/sched/loadavg.c, all versions");

    /// <summary>The number of threads.</summary>
    public static readonly KernelGlobal NrThreads = new("nr_threads", "int", "kernel/fork.c, all versions");

    /// <summary>The swap areas.</summary>
    public static readonly KernelGlobal SwapInfo = new("swap_info", "struct swap_info_struct *[MAX_SWAPFILES]", "mm/swapfile.c, pointer array since 4.14");

    /// <summary>How many <c>swap_info</c> slots have been used.</summary>
    public static readonly KernelGlobal NrSwapfiles = new("nr_swapfiles", "unsigned int", "mm/swapfile.c, all versions");

    /// <summary>The timekeeper and its sequence counter, an anonymous structure.</summary>
    public static readonly KernelGlobal TkCore = new("tk_core", "struct { seqcount_raw_spinlock_t seq; struct timekeeper timekeeper; }", "kernel/time/timekeeping.c, 5.10+ (seqcount_t before)");

    /// <summary>The number of possible CPU ids.</summary>
    public static readonly KernelGlobal NrCpuIds = new("nr_cpu_ids", "unsigned int", "kernel/smp.c, all versions");

    /// <summary>The online CPU mask.</summary>
    public static readonly KernelGlobal CpuOnlineMask = new("__cpu_online_mask", "struct cpumask (unsigned long bits[])", "kernel/cpu.c, 4.5+");

    /// <summary>Each CPU's offset to add to a per-CPU symbol.</summary>
    public static readonly KernelGlobal PerCpuOffset = new("__per_cpu_offset", "unsigned long[NR_CPUS]", "mm/percpu.c (arch/x86/kernel/setup_percpu.c on x86), SMP kernels");

    /// <summary>The per-CPU block of hot variables, with <c>current_task</c>.</summary>
    public static readonly KernelGlobal PcpuHot = new("pcpu_hot", "struct pcpu_hot (per-CPU)", "arch/x86, 6.2+");

    /// <summary>The per-CPU current task pointer before <c>pcpu_hot</c>.</summary>
    public static readonly KernelGlobal CurrentTask = new("current_task", "struct task_struct * (per-CPU)", "arch/x86, up to 6.1");

    /// <summary>
    /// arm64's per-CPU copy of the current task: <c>current</c> itself lives in SP_EL0, a register no dump keeps, and
    /// the context switch stores the next task here (<c>entry_task_switch</c>).
    /// </summary>
    public static readonly KernelGlobal EntryTask = new("__entry_task", "struct task_struct * (per-CPU)", "arch/arm64/kernel/process.c, 4.10+");

    /// <summary>The base of the <c>struct page</c> array.</summary>
    public static readonly KernelGlobal VmemmapBase = new("vmemmap_base", "unsigned long", "arch/x86/mm/kaslr.c, 4.9+ (fixed 0xffffea0000000000 without memory KASLR)");

    /// <summary>The <c>struct page</c> array of a FLATMEM kernel (i386 has no vmemmap).</summary>
    public static readonly KernelGlobal MemMap = new("mem_map", "struct page *", "mm/memory.c, CONFIG_FLATMEM");

    /// <summary>The highest pfn of low memory, the end of the i386 direct map (high_memory = __va(max_low_pfn &lt;&lt; PAGE_SHIFT)).</summary>
    public static readonly KernelGlobal MaxLowPfn = new("max_low_pfn", "unsigned long", "mm/memblock.c, all versions");

    /// <summary>The possible CPU mask: the CPUs <c>/proc/stat</c>'s total line sums.</summary>
    public static readonly KernelGlobal CpuPossibleMask = new("__cpu_possible_mask", "struct cpumask (unsigned long bits[])", "kernel/cpu.c, 4.5+");

    /// <summary>Each CPU's time counters.</summary>
    public static readonly KernelGlobal KernelCpustat = new("kernel_cpustat", "struct kernel_cpustat (per-CPU)", "kernel/sched/core.c, 3.2+");

    /// <summary>Each CPU's NO_HZ state, with its idle and iowait sleep times.</summary>
    public static readonly KernelGlobal TickCpuSched = new("tick_cpu_sched", "struct tick_sched (per-CPU)", "kernel/time/tick-sched.c, static: in kallsyms with CONFIG_KALLSYMS_ALL");

    /// <summary>Whether any CPU has switched to NO_HZ mode; bit 0 is the flag.</summary>
    public static readonly KernelGlobal TickNohzActive = new("tick_nohz_active", "unsigned long", "kernel/time/tick-sched.c, CONFIG_NO_HZ_COMMON (an int in its first versions: only its low 32 bits are read)");

    /// <summary>Each CPU's run queue.</summary>
    public static readonly KernelGlobal Runqueues = new("runqueues", "struct rq (per-CPU)", "kernel/sched/core.c, all versions");

    /// <summary>Every global above, for documentation and tests.</summary>
    public static IReadOnlyList<KernelGlobal> All { get; } =
        [InitTask, Avenrun, NrThreads, SwapInfo, NrSwapfiles, TkCore, NrCpuIds, CpuOnlineMask, PerCpuOffset, PcpuHot, CurrentTask, EntryTask, VmemmapBase, MemMap, MaxLowPfn,
         CpuPossibleMask, KernelCpustat, TickCpuSched, TickNohzActive, Runqueues];
}
