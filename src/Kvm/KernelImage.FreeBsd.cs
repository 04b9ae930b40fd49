using Kvm.FreeBsd;
using Kvm.Images;
using Kvm.Images.FreeBsd;
using Kvm.Memory;
using Kvm.Symbols;
using Kvm.Types;

namespace Kvm;

/// <summary>FreeBSD dumps: how they open, and what of the façade they support.</summary>
public sealed partial class KernelImage
{
    /// <summary>
    /// The operating system whose kernel the image holds: <see cref="KernelOperatingSystem.FreeBsd"/> for FreeBSD
    /// minidumps and full dumps (framed by a dump device or compressed, too) and for images opened with a FreeBSD
    /// kernel as namelist; <see cref="KernelOperatingSystem.Linux"/> otherwise.
    /// </summary>
    /// <remarks>
    /// A FreeBSD image supports memory (reads, translation, <see cref="EnumeratePages"/>), symbols from the kernel's
    /// ELF symbol table with <c>kvm_nlist</c>'s DPCPU and VNET look-ups (<see cref="LookupNamelist"/>), DPCPU
    /// variables of any CPU (<see cref="GetPerCpuAddress(string, int)"/>, from <c>dpcpu_off</c>), <see cref="Release"/>
    /// and <see cref="ReadBanner"/>. With the kernel's CTF at hand (the kernel given as namelist carries it), the
    /// FreeBSD walkers read, as FreeBSD's own tools do from a core: processes from <c>allproc</c>
    /// (<see cref="GetProcesses"/>), the message buffer (<see cref="ReadKernelLog"/>), the load average
    /// (<see cref="GetLoadAverage"/>), the CPUs (<see cref="GetCpus"/>), the clocks (<see cref="GetClock"/>), the swap
    /// devices (<see cref="GetSwapInfo"/>), the CPU times (<see cref="GetCpuTimes"/>), per-CPU allocations and
    /// <c>counter(9)</c> values (<see cref="GetPerCpuAllocationAddress"/>, <see cref="ReadPerCpuCounter"/>) and VNET
    /// variables. Open files, which read Linux structures only, are refused with a <see cref="KvmException"/>
    /// (<see cref="KvmErrorCode.NotSupported"/>) that says so.
    /// </remarks>
    public KernelOperatingSystem OperatingSystem { get; private init; }

    private FreeBsdDumpInfo? FreeBsdInfo { get; init; }

    private readonly Dictionary<int, FreeBsdVirtualNetwork> _freeBsdVnets = [];
    private FreeBsdProcessWalker? _freeBsdProcesses;
    private FreeBsdSystemWalker? _freeBsdSystem;
    private FreeBsdKernelReader? _freeBsdKernel;
    private FreeBsdDynamicPerCpu? _freeBsdDynamicPerCpu;

    /// <summary>
    /// Decides whether the image is FreeBSD's: the image says so (minidump, dump-device header, ELF full dump), or
    /// the namelist is a FreeBSD kernel and the image is one that carries no OS of its own (an ELF core without
    /// notes, a raw image). A FreeBSD kernel with a Linux dump, or the reverse, is refused.
    /// </summary>
    private static FreeBsdDumpInfo? DetectFreeBsd(DumpImage image, List<SymbolTable> namelists)
    {
        var kernel = namelists.FirstOrDefault(t => t.Kind == NamelistKind.FreeBsdKernel);
        var info = image.FreeBsd;
        if (info is null && kernel is not null)
        {
            bool bare = (image.Format == DumpFormat.Elf && image.Notes.Count == 0 && image.VmcoreInfo is null) || image.Format == DumpFormat.Raw;
            var architecture = FreeBsdDumpInfo.FromElfMachine(image.ElfMachine != 0 ? image.ElfMachine : kernel.Machine);
            if (!bare || architecture is null)
            {
                throw new KvmException(KvmErrorCode.NotSupported, $"{kernel.Source}: a FreeBSD kernel, but {image.Files[0]} is a Linux dump ({image.Description})");
            }

            info = new FreeBsdDumpInfo(architecture.Value, null, null);
        }

        if (info is not null)
        {
            if (namelists.FirstOrDefault(t => t.Kind is NamelistKind.SystemMap or NamelistKind.Vmlinux) is { } linux)
            {
                throw new KvmException(KvmErrorCode.NotSupported, $"{linux.Source}: a Linux namelist, but {image.Files[0]} is a FreeBSD dump ({image.Description}); give the FreeBSD kernel (/boot/kernel/kernel)");
            }

            if (kernel is not null && kernel.Machine != 0 && kernel.Machine != FreeBsdDumpInfo.ElfMachineOf(info.Architecture))
            {
                throw new KvmException(KvmErrorCode.NotSupported, $"{kernel.Source}: the kernel is for ELF machine {kernel.Machine}, but {image.Files[0]} is a FreeBSD {MinidumpHeader.NameOf(info.Architecture)} dump");
            }
        }

        return info;
    }

    private static KernelImage CreateFreeBsd(DumpImage image, FreeBsdDumpInfo info, List<SymbolTable> namelists, KernelImageOptions options)
    {
        // FreeBSD kernels run at their link address on amd64, arm64 and i386: kvm_kerndisp is 0 (libkvm implements a
        // displacement for powerpc64 minidumps only).
        foreach (var table in namelists)
        {
            table.Displacement = 0;
        }

        ulong? Symbol(string name)
        {
            if (options.Resolver?.Invoke(name) is { } resolved)
            {
                return resolved;
            }

            foreach (var table in namelists)
            {
                if (table.TryLookup(name, out var symbol))
                {
                    return symbol.Address;
                }
            }

            return null;
        }

        var memory = FreeBsdMemory.Create(image, info, Symbol, options.Cache);
        return new KernelImage(image, memory, namelists, null, false, options)
        {
            OperatingSystem = KernelOperatingSystem.FreeBsd,
            FreeBsdInfo = info,
        };
    }

    /// <summary>The FreeBSD release: the kernel's <c>osrelease</c>, else the dump header's version string.</summary>
    private string? FreeBsdRelease()
    {
        if (TryGetSymbol("osrelease", out var osrelease))
        {
            try
            {
                string text = ReadCString(osrelease.Address, 64);
                if (text.Length > 0)
                {
                    return text;
                }
            }
            catch (MemoryFaultException)
            {
                // Fall back to the header, which savecore keeps in info.N but the device framing carries too.
            }
        }

        // "FreeBSD 14.0-RELEASE releng/14.0-n265380-f9716eee8ab4 GENERIC amd64"
        var words = FreeBsdInfo?.DeviceHeader?.VersionString.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return words is { Length: >= 2 } && words[0] == "FreeBSD" ? words[1] : null;
    }

    /// <summary>
    /// A FreeBSD kernel's types: its CTF (<c>.SUNW_ctf</c>, which FreeBSD keeps in the kernel file for DTrace, not in
    /// memory), from <see cref="KernelImageOptions.Btf"/> or from the kernel given as namelist.
    /// </summary>
    private TypeCatalog? LoadFreeBsdTypes(out string? error)
    {
        error = null;
        string? path = _options.Btf ?? _namelists.FirstOrDefault(t => t.Kind == NamelistKind.FreeBsdKernel)?.Source;
        if (path is null)
        {
            error = "FreeBSD kernels describe their types in CTF (.SUNW_ctf) in the kernel file, not in the dump: give the kernel (-N /boot/kernel/kernel)";
            return null;
        }

        var types = TypeCatalog.Load(path, _options.Limits);
        return FreeBsdInfo?.Architecture == FreeBsdArchitecture.I386 ? types.WithPointerSize(4) : types;
    }

    private FreeBsdProcessWalker FreeBsdProcesses()
    {
        var kernel = FreeBsdKernel("FreeBSD process listing");
        lock (_linuxLock)
        {
            return _freeBsdProcesses ??= new FreeBsdProcessWalker(kernel);
        }
    }

    private FreeBsdSystemWalker FreeBsdSystem(string what)
    {
        var kernel = FreeBsdKernel(what);
        lock (_linuxLock)
        {
            return _freeBsdSystem ??= new FreeBsdSystemWalker(kernel);
        }
    }

    /// <summary>The kernel's memory, symbols and CTF for the FreeBSD walkers; <paramref name="what"/> names the caller in the error when the CTF is missing.</summary>
    private FreeBsdKernelReader FreeBsdKernel(string what)
    {
        var types = Types ?? throw new KvmException(KvmErrorCode.KernelType, $"{_image.Files[0]}: {what} needs the kernel's CTF: {TypeInformationError}");
        lock (_linuxLock)
        {
            return _freeBsdKernel ??= new FreeBsdKernelReader((a, b) => _memory.ReadVirtual(a, b, out _), name => TryGetSymbol(name, out var s) ? s.Address : null, types, _options.Limits);
        }
    }

    /// <summary>
    /// The DPCPU set and <c>dpcpu_off</c>, read once (they are fixed once the kernel has booted); symbols and words only,
    /// no CTF, as lib/libkvm/kvm_pcpu.c needs none. A failed read is not remembered, so that its error is given again.
    /// </summary>
    private FreeBsdDynamicPerCpu FreeBsdDpcpu()
    {
        lock (_linuxLock)
        {
            return _freeBsdDynamicPerCpu ??= FreeBsdDynamicPerCpu.Load((a, b) => _memory.ReadVirtual(a, b, out _), name => TryGetSymbol(name, out var s) ? s.Address : null, PointerSize);
        }
    }

    /// <summary>
    /// The virtual network stack of process <paramref name="pid"/>, or of <c>proc0</c> (vnet0) when null or 0 — the one
    /// libkvm selects on a crash dump (lib/libkvm/kvm_vnet.c <c>_kvm_vnet_selectpid</c>).
    /// </summary>
    /// <exception cref="ArgumentException">No process has that pid.</exception>
    private FreeBsdVirtualNetwork FreeBsdVnet(int? pid)
    {
        int key = pid ?? 0;
        lock (_linuxLock)
        {
            if (_freeBsdVnets.TryGetValue(key, out var known))
            {
                return known;
            }
        }

        var kernel = FreeBsdKernel("FreeBSD VNET variables");
        ulong proc = key == 0
            ? kernel.RequireSymbol("proc0")
            : FreeBsdProcesses().List(ProcessQuery.ForPid(key)).Processes is { Count: > 0 } found
                ? found[0].TaskAddress
                : throw new ArgumentException($"the vnet of pid {key}: no such process in allproc", nameof(pid));
        var vnet = FreeBsdVirtualNetwork.Select(kernel, proc, key);
        lock (_linuxLock)
        {
            _freeBsdVnets[key] = vnet;
        }

        return vnet;
    }

    /// <summary>Per-CPU allocations (<c>UMA_ZONE_PCPU</c>) and <c>counter(9)</c>; <paramref name="what"/> names the caller in errors.</summary>
    private FreeBsdPerCpuZones FreeBsdZones(string what) => new(FreeBsdKernel(what), FreeBsdSystem(what), PageSize);

    /// <summary>
    /// <c>kvm_nlist</c> on a FreeBSD kernel (lib/libkvm/kvm_private.c <c>_kvm_nlist</c> on a core): the name itself
    /// (one leading underscore optional); if missing, <c>vnet_entry_</c> + the name without its leading underscore,
    /// relocated by the selected vnet's <c>vnet_data_base</c> when in <c>set_vnet</c>; if still missing,
    /// <c>pcpu_entry_</c> + that name, relocated by <c>dpcpu_off[cpu]</c> when in <c>set_pcpu</c>. A prefix whose
    /// data cannot be set up is skipped, as libkvm skips it; the entry's note then says why.
    /// </summary>
    private NamelistEntry LookupFreeBsdNamelist(string name, int cpu, int? vnetPid)
    {
        if (TryGetSymbol(name, out var direct))
        {
            return new NamelistEntry(name, direct, direct.Address, NamelistRelocation.None, null);
        }

        string stem = name.Length > 0 && name[0] == '_' ? name[1..] : name;
        string? note = null;
        if (TryGetSymbolExact(FreeBsdVirtualNetwork.SymbolPrefix + stem, out var inVnet))
        {
            try
            {
                ulong value = FreeBsdVnet(vnetPid).ValidateAddress(inVnet.Address, PointerSize);
                return new NamelistEntry(name, inVnet, value, value == inVnet.Address ? NamelistRelocation.None : NamelistRelocation.VirtualNetwork, null);
            }
            catch (KvmException e)
            {
                note = $"{name}: {inVnet.Name} exists but no vnet can be selected ({e.Message})";
            }
        }

        if (TryGetSymbolExact(FreeBsdDynamicPerCpu.SymbolPrefix + stem, out var inSet))
        {
            try
            {
                ulong value = FreeBsdDpcpu().ValidateAddress(inSet.Address, cpu, PointerSize);
                return new NamelistEntry(name, inSet, value, value == inSet.Address ? NamelistRelocation.None : NamelistRelocation.DynamicPerCpu, null);
            }
            catch (KvmException e)
            {
                note ??= $"{name}: {inSet.Name} exists but the DPCPU data is unavailable ({e.Message})";
            }
        }

        return new NamelistEntry(name, null, 0, NamelistRelocation.None, note);
    }

    /// <summary>A DPCPU variable by name — <paramref name="name"/> or <c>pcpu_entry_</c> + it — and CPU <paramref name="cpu"/>'s copy.</summary>
    private ulong FreeBsdDynamicPerCpuAddress(string name, int cpu)
    {
        string stem = name.Length > 0 && name[0] == '_' ? name[1..] : name;
        if (!TryGetSymbol(name, out var symbol) && !TryGetSymbolExact(FreeBsdDynamicPerCpu.SymbolPrefix + stem, out symbol))
        {
            throw new SymbolNotFoundException(name, $"nor {FreeBsdDynamicPerCpu.SymbolPrefix}{stem}");
        }

        var set = FreeBsdDpcpu();
        if (!set.Contains(symbol.Address))
        {
            throw new ArgumentException($"{symbol.Name} (0x{symbol.Address:x}) is not a DPCPU variable: it lies outside [__start_set_pcpu 0x{set.Start:x}, __stop_set_pcpu 0x{set.Stop:x})", nameof(name));
        }

        return set.Relocate(symbol.Address, cpu, PointerSize);
    }

    /// <summary><c>dmesg -M core -N kernel</c>: the message buffer behind <c>msgbufp</c>, a record per line.</summary>
    private KernelLogContents ReadFreeBsdKernelLog() => FreeBsdMessageBuffer.Read(FreeBsdKernel("the FreeBSD message buffer (msgbufp)"));

    private void ThrowIfFreeBsd(string what)
    {
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{_image.Files[0]}: a FreeBSD kernel image: {what} reads Linux kernel structures and is not available for FreeBSD");
        }
    }

    private IEnumerable<KernelPage> EnumerateFreeBsdPages()
    {
        var info = FreeBsdInfo!;
        if (info.Minidump is { } minidump)
        {
            return FreeBsdPageWalker.Enumerate(_image, minidump, _options.Limits);
        }

        var table = _memory.PageTable ?? throw new KvmException(KvmErrorCode.NotSupported, $"{_image.Files[0]}: no page walk for this FreeBSD dump");
        return FreeBsdPageWalker.EnumerateFullDump(_image, table, Layout.PageTableRoot, _options.Limits);
    }
}
