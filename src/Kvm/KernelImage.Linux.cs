using System.Runtime.CompilerServices;
using Kvm.FreeBsd;
using Kvm.Images;
using Kvm.Linux;
using Kvm.Types;

namespace Kvm;

/// <summary>The kernel walkers: processes, their strings and files, swap, load, clocks and CPUs.</summary>
public sealed partial class KernelImage
{
    private const string LiveBtf = "/sys/kernel/btf/vmlinux";
    private readonly object _linuxLock = new();
    private bool _typesLoaded;
    private TypeCatalog? _btf;
    private string? _btfError;
    private LinuxKernel? _linux;
    private ProcessWalker? _processes;
    private PathResolver? _paths;
    private SwapWalker? _swapWalker;
    private SystemWalker? _systemWalker;
    private FileWalker? _fileWalker;
    private List<SwapImage>? _swapImages;
    private SwapDevices? _swapDevices;

    /// <summary>
    /// The kernel's type information (BTF): from <see cref="KernelImageOptions.Btf"/>, else the image's own
    /// <c>.BTF</c> section in memory, else a vmlinux namelist's, else (live) <c>/sys/kernel/btf/vmlinux</c>. For a
    /// FreeBSD image, the kernel's CTF (<c>.SUNW_ctf</c> of the kernel given as namelist, or
    /// <see cref="KernelImageOptions.Btf"/>), converted. Null when none was found; <see cref="TypeInformationError"/>
    /// then says why.
    /// </summary>
    public TypeCatalog? Types
    {
        get
        {
            ThrowIfDisposed();
            EnsureTypes();
            return _btf;
        }
    }

    /// <summary>Why no BTF could be loaded, or null.</summary>
    public string? TypeInformationError
    {
        get
        {
            EnsureTypes();
            return _btfError;
        }
    }

    /// <summary>
    /// Lists processes (or threads) as <c>kvm_getprocs</c> does. The walk is bounded and cycle-safe; a corrupt list
    /// yields what was read, with the problem in <see cref="ProcessList.Errors"/>.
    /// </summary>
    /// <exception cref="KvmException">The kernel's structures cannot be described (no BTF) or <c>init_task</c> is unknown.</exception>
    public ProcessList GetProcesses(ProcessQuery? query = null)
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdProcesses().List(query ?? ProcessQuery.Processes);
        }

        return Processes().List(query ?? ProcessQuery.Processes);
    }

    /// <summary>Finds the process with id <paramref name="pid"/>, or null.</summary>
    public KernelProcess? FindProcess(int pid) => GetProcesses(ProcessQuery.ForPid(pid)).Processes is { Count: > 0 } p ? p[0] : null;

    /// <summary>
    /// Reads a process's arguments (<c>kvm_getargv</c>) through its own page tables; swapped-out pages come from
    /// <see cref="KernelImageOptions.SwapFiles"/>. <paramref name="maxBytes"/> is libkvm's <c>nchr</c> (0: no limit).
    /// </summary>
    public ProcessStrings GetArguments(KernelProcess process, int maxBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(process);
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdProcesses().ReadArguments(process, maxBytes);
        }

        return new UserMemoryReader(Linux()).ReadStrings(process, process.ArgStart, process.ArgEnd, maxBytes);
    }

    /// <summary>Reads a process's environment (<c>kvm_getenvv</c>), as <see cref="GetArguments"/> does.</summary>
    public ProcessStrings GetEnvironment(KernelProcess process, int maxBytes = 0)
    {
        ArgumentNullException.ThrowIfNull(process);
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            // The kernel keeps a copy of the arguments only; the environment lives in user memory, which no FreeBSD
            // dump holds (a minidump has the kernel's pages alone).
            return new ProcessStrings([], false, "FreeBSD keeps no kernel copy of a process's environment, and a FreeBSD dump holds no user memory", null, false);
        }

        return new UserMemoryReader(Linux()).ReadStrings(process, process.EnvStart, process.EnvEnd, maxBytes);
    }

    /// <summary>Reads user memory of <paramref name="process"/> (through its page tables, swap images included).</summary>
    /// <returns>The bytes read before the first unreadable page.</returns>
    public byte[] ReadUser(KernelProcess process, ulong address, int length, out string? error)
    {
        ArgumentNullException.ThrowIfNull(process);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        ThrowIfDisposed();
        return new UserMemoryReader(Linux()).Read(process, address, address + (ulong)length, length, out error, out _);
    }

    /// <summary>
    /// Writes user memory of <paramref name="process"/> in place, through its page tables (<c>kvm_uwrite</c>). Only
    /// images opened writable with an in-place format accept writes; pages in swap cannot be written.
    /// </summary>
    /// <exception cref="KvmException">The image is read-only, or its format cannot be written in place.</exception>
    /// <exception cref="MemoryFaultException">A page is not mapped, swapped out or not in the image.</exception>
    public void WriteUser(KernelProcess process, ulong address, ReadOnlySpan<byte> data)
    {
        ArgumentNullException.ThrowIfNull(process);
        ThrowIfNotWritable();
        if (process.MmAddress == 0 || process.PageTableAddress == 0)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"pid {process.Pid} is a kernel thread: it has no user address space");
        }

        // mm->pgd is a kernel virtual address of the top-level table; the walk needs its physical address.
        if (!_memory.TryTranslate(process.PageTableAddress, out ulong root, out var tf))
        {
            throw new MemoryFaultException(process.PageTableAddress, AddressSpace.KernelVirtual, MemoryFaultReason.NotMapped, $"cannot find the page tables of pid {process.Pid}: {tf?.Message}", tf);
        }

        _memory.WriteVirtual(address, data, out var fault, root);
        if (fault is not null)
        {
            throw fault;
        }
    }

    /// <summary>Reads the load average (<c>avenrun</c>; FreeBSD: <c>averunnable</c> and <c>fscale</c>, as kvm_getloadavg.c).</summary>
    public LoadAverage GetLoadAverage()
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdSystem("the FreeBSD load average (averunnable)").LoadAverage();
        }

        return SystemState().LoadAverage();
    }

    /// <summary>Reads the kernel's clocks: uptime, wall time and boot time (FreeBSD: <c>time_uptime</c>, <c>time_second</c>, the boot time of <c>timehands</c>).</summary>
    public KernelClock GetClock()
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdSystem("the FreeBSD clocks (time_uptime)").Clock();
        }

        return SystemState().Clock();
    }

    /// <summary>
    /// Reads the CPUs: count, online mask, per-CPU offsets and the task current on each (FreeBSD: <c>mp_maxcpus</c>,
    /// <c>mp_ncpus</c>, <c>all_cpus</c> and each <c>struct pcpu</c> of <c>cpuid_to_pcpu</c>, as kvm_pcpu.c).
    /// </summary>
    public CpuSummary GetCpus()
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdSystem("the FreeBSD CPUs (cpuid_to_pcpu)").Cpus();
        }

        return SystemState().Cpus();
    }

    /// <summary>
    /// The address of per-CPU variable <paramref name="symbol"/> for <paramref name="cpu"/>. FreeBSD: a DPCPU variable
    /// (<paramref name="symbol"/> or <c>pcpu_entry_</c> + it, in <c>set_pcpu</c>), at its value plus
    /// <c>dpcpu_off[cpu]</c> (sys/sys/pcpu.h <c>DPCPU_ID_PTR</c>).
    /// </summary>
    /// <exception cref="SymbolNotFoundException">The symbol is unknown (FreeBSD: or <c>dpcpu_off</c>, <c>mp_maxcpus</c>, the set's bounds).</exception>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpu"/> is not below <c>nr_cpu_ids</c> (FreeBSD: <c>mp_maxcpus</c>).</exception>
    /// <exception cref="ArgumentException">FreeBSD: the symbol is not in <c>set_pcpu</c>, or the CPU does not exist (<c>dpcpu_off[cpu]</c> is 0).</exception>
    public ulong GetPerCpuAddress(string symbol, int cpu)
    {
        ArgumentNullException.ThrowIfNull(symbol);
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdDynamicPerCpuAddress(symbol, cpu);
        }

        return SystemState().PerCpuAddress(GetSymbol(symbol).Address, cpu);
    }

    /// <summary>
    /// The address of the per-CPU copy for <paramref name="cpu"/> of per-CPU data at <paramref name="address"/>: a
    /// per-CPU symbol's value, or a <c>__percpu</c> pointer from <c>alloc_percpu</c> (<c>per_cpu_ptr</c>). FreeBSD:
    /// DPCPU data, <paramref name="address"/> + <c>dpcpu_off[cpu]</c>; a per-CPU allocation of UMA (a
    /// <c>counter_u64_t</c>) is placed otherwise, by <see cref="GetPerCpuAllocationAddress"/>.
    /// </summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="cpu"/> is not below <c>nr_cpu_ids</c> (FreeBSD: <c>mp_maxcpus</c>).</exception>
    /// <exception cref="ArgumentException">FreeBSD: the CPU does not exist (<c>dpcpu_off[cpu]</c> is 0).</exception>
    public ulong GetPerCpuAddress(ulong address, int cpu)
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdDpcpu().Relocate(address, cpu, PointerSize);
        }

        return SystemState().PerCpuAddress(address, cpu);
    }

    /// <summary>
    /// True when <paramref name="symbol"/> is a per-CPU variable (its value lies in
    /// <c>[__per_cpu_start, __per_cpu_end)</c>, the offsets of the <c>.data..percpu</c> section; FreeBSD:
    /// <c>[__start_set_pcpu, __stop_set_pcpu)</c>, the DPCPU set), so that its value is an offset to add to a CPU's
    /// <c>__per_cpu_offset</c> (FreeBSD: <c>dpcpu_off</c>) rather than an address to read.
    /// </summary>
    public bool IsPerCpuSymbol(KernelSymbol symbol)
    {
        ThrowIfDisposed();
        var (startName, endName) = OperatingSystem == KernelOperatingSystem.FreeBsd ? ("__start_set_pcpu", "__stop_set_pcpu") : ("__per_cpu_start", "__per_cpu_end");
        return TryGetSymbolExact(startName, out var start) && TryGetSymbolExact(endName, out var end)
            && start.Address < end.Address && symbol.Address >= start.Address && symbol.Address < end.Address
            && symbol.Source != "resolver";
    }

    /// <summary>
    /// Reads the swap areas (<c>kvm_getswapinfo</c>, <c>/proc/swaps</c>). FreeBSD: the devices of <c>swtailq</c>, as
    /// lib/libkvm/kvm_getswapinfo.c reads them from a core (sizes in pages less <c>dmmax</c>, names from the device's
    /// <c>struct cdev</c>; see <see cref="SwapArea"/>); needs the kernel's CTF.
    /// </summary>
    /// <exception cref="CorruptImageException">FreeBSD: <c>swtailq</c> loops or is implausibly long.</exception>
    public SwapSummary GetSwapInfo()
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return FreeBsdSwapWalker.Read(FreeBsdKernel("FreeBSD swap (swtailq)"), PageSize);
        }

        return SwapAreas().Read();
    }

    /// <summary>Lists open files of one process, or of every process when <paramref name="pid"/> is null.</summary>
    public OpenFileList GetOpenFiles(int? pid = null)
    {
        ThrowIfDisposed();
        var walker = FileWalkerInstance();
        var errors = new List<string>();
        var files = new List<OpenFile>();
        var list = GetProcesses(pid is { } p ? ProcessQuery.ForPid(p) : ProcessQuery.Processes);
        errors.AddRange(list.Errors);
        foreach (var process in list.Processes)
        {
            if (process.IsKernelThread || process.Pid == 0)
            {
                continue;
            }

            try
            {
                files.AddRange(walker.List(process, errors));
            }
            catch (KvmException e)
            {
                errors.Add($"pid {process.Pid}: {e.Message}");
            }
        }

        return new OpenFileList(files, errors);
    }

    /// <summary>
    /// Reads the kernel log (what <c>dmesg</c> prints): the lockless printk ring (5.10+) or the older
    /// <c>log_buf</c> layouts. Works from VMCOREINFO's printk keys alone, so no BTF is needed. On FreeBSD, the
    /// message buffer behind <c>msgbufp</c> (layout from the kernel's CTF), a record per line, oldest first, with no
    /// timestamps (<see cref="KernelLogRecord.HasTimestamp"/>); the records dmesg(8) prints only with <c>-a</c> are
    /// marked (<see cref="KernelLogRecord.IsShownByDefault"/>).
    /// </summary>
    /// <exception cref="CorruptImageException">FreeBSD: the <c>struct msgbuf</c> is corrupt; the message names the field.</exception>
    public KernelLogContents ReadKernelLog()
    {
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return ReadFreeBsdKernelLog();
        }

        var types = Linux().Types;
        var log = PrintkLog.Read(
            (a, b) => _memory.ReadVirtual(a, b, out _),
            name => TryGetSymbol(name, out var s) ? s.Address : null,
            path => VmcoreInfo?.GetOffset(path) ?? (types.TryGetField(path, out var f) ? f.Offset : null),
            name => VmcoreInfo?.GetSize(name) ?? (types.TryGetSize(name, out long size) ? size : null),
            name => VmcoreInfo?.GetLength(name),
            _options.Limits);
        return new KernelLogContents(log.Records, log.Layout, log.Warnings);
    }

    private ProcessWalker Processes([CallerMemberName] string? caller = null)
    {
        lock (_linuxLock)
        {
            return _processes ??= new ProcessWalker(Linux(caller));
        }
    }

    private SystemWalker SystemState([CallerMemberName] string? caller = null)
    {
        lock (_linuxLock)
        {
            return _systemWalker ??= new SystemWalker(Linux(caller));
        }
    }

    private SwapWalker SwapAreas([CallerMemberName] string? caller = null)
    {
        lock (_linuxLock)
        {
            return _swapWalker ??= new SwapWalker(Linux(caller), Paths(caller));
        }
    }

    private FileWalker FileWalkerInstance([CallerMemberName] string? caller = null)
    {
        lock (_linuxLock)
        {
            return _fileWalker ??= new FileWalker(Linux(caller), Paths(caller));
        }
    }

    private PathResolver Paths([CallerMemberName] string? caller = null)
    {
        lock (_linuxLock)
        {
            return _paths ??= new PathResolver(Linux(caller));
        }
    }

    private LinuxKernel Linux([CallerMemberName] string? caller = null)
    {
        ThrowIfFreeBsd(caller ?? "this walker");
        lock (_linuxLock)
        {
            if (_linux is null)
            {
                EnsureTypes();
                var types = new KernelTypes(_btf, VmcoreInfo, _btfError);
                _linux = new LinuxKernel(_memory, name => TryGetSymbol(name, out var s) ? s.Address : null, types, _options.Limits, SwapSource())
                {
                    PageSize = PageSize,
                    PointerSize = PointerSize,
                    SwapEntries = SwapEntryFormat.For(Layout.PagingMode, Release),
                    MissingSymbolHint = MissingSymbolHint(),
                };
            }

            return _linux;
        }
    }

    private void EnsureTypes()
    {
        lock (_linuxLock)
        {
            if (_typesLoaded)
            {
                return;
            }

            _typesLoaded = true;
            try
            {
                // BTF does not record the pointer size (formats.md §6.4): take the kernel's.
                _btf = LoadTypes(out _btfError)?.WithPointerSize(PointerSize);
            }
            catch (KvmException e)
            {
                _btfError = e.Message;
            }
            catch (IOException e)
            {
                _btfError = e.Message;
            }
        }
    }

    private ISwapPageSource? SwapSource()
    {
        if (_options.SwapFiles.Count == 0)
        {
            return null;
        }

        lock (_linuxLock)
        {
            if (_swapImages is null)
            {
                var images = new List<SwapImage>();
                try
                {
                    foreach (var path in _options.SwapFiles)
                    {
                        images.Add(SwapImage.Open(path));
                    }
                }
                catch
                {
                    images.ForEach(i => i.Dispose());
                    throw;
                }

                _swapImages = images;
                _swapDevices = new SwapDevices(images, () => _linux!);
            }

            return _swapDevices;
        }
    }

    /// <summary>How each swap image given in <see cref="KernelImageOptions.SwapFiles"/> was matched to a swap area (or why not).</summary>
    public IReadOnlyList<string> SwapImageNotes
    {
        get
        {
            ThrowIfDisposed();
            Linux();
            return _swapDevices?.Notes ?? [];
        }
    }

    private TypeCatalog? LoadTypes(out string? error)
    {
        error = null;
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return LoadFreeBsdTypes(out error);
        }

        // The scan at open keeps the BTF it found in memory, or the --btf file it loaded to recognize init_task.
        if (ScannedTypes is { } scanned)
        {
            return scanned;
        }

        if (_options.Btf is { } path)
        {
            return TypeCatalog.Load(path, _options.Limits);
        }

        if (TryGetSymbol("__start_BTF", out var start) && TryGetSymbol("__stop_BTF", out var stop))
        {
            if (stop.Address <= start.Address || stop.Address - start.Address > (ulong)_options.Limits.MaxBtfBytes)
            {
                error = $"__start_BTF 0x{start.Address:x} .. __stop_BTF 0x{stop.Address:x} is not a plausible BTF section";
                return null;
            }

            var blob = new byte[stop.Address - start.Address];
            if (!TryRead(start.Address, blob, out _, out var fault))
            {
                error = $"the kernel's BTF at 0x{start.Address:x} cannot be read: {fault!.Message}";
                return null;
            }

            return TypeCatalog.Parse(blob, $"kernel memory 0x{start.Address:x}-0x{stop.Address:x} (.BTF)", _options.Limits);
        }

        foreach (var table in _namelists)
        {
            if (table.Kind == NamelistKind.Vmlinux)
            {
                return TypeCatalog.Load(table.Source, _options.Limits);
            }
        }

        if (IsLive && File.Exists(LiveBtf))
        {
            return TypeCatalog.Load(LiveBtf, _options.Limits);
        }

        error = _namelists.Any(t => t.Kind == NamelistKind.KernelScan) || (_namelists.Any(t => t.Kind == NamelistKind.KernelMemory) && !TryGetSymbol("init_task", out _))
            ? "no BTF: none in the image (not after _etext, where .BTF lies; the kernel was built without CONFIG_DEBUG_INFO_BTF), and no BTF file was given: give one with --btf (e.g. pahole --btf_encode_detached=FILE of the kernel's debug vmlinux)"
            : "no BTF: the symbols __start_BTF/__stop_BTF are unknown (the namelist lacks them, or the kernel was built without CONFIG_DEBUG_INFO_BTF), and no BTF file was given: give one with --btf";
        return null;
    }
}

/// <summary>The kernel log as read from the image.</summary>
/// <param name="Records">The records, oldest first.</param>
/// <param name="Layout">
/// The printk buffer layout found (lockless ring, structured or plain <c>log_buf</c>); on FreeBSD
/// <c>FreeBSD msgbuf (N bytes, wrapped)</c> or <c>… not wrapped</c>.
/// </param>
/// <param name="Warnings">Records skipped or a ring found inconsistent, and why; empty when the read was clean.</param>
public sealed record KernelLogContents(IReadOnlyList<KernelLogRecord> Records, string Layout, IReadOnlyList<string> Warnings);

/// <summary>Open files of one or more processes, with the problems met.</summary>
/// <param name="Files">The descriptors read, by process and then by number.</param>
/// <param name="Errors">Descriptors or processes that could not be read, and why.</param>
public sealed record OpenFileList(IReadOnlyList<OpenFile> Files, IReadOnlyList<string> Errors);
