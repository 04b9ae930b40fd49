using System.Globalization;
using Kvm.Images;
using Kvm.Images.FreeBsd;
using Kvm.Linux;
using Kvm.Memory;
using Kvm.Symbols;
using Kvm.Types;

namespace Kvm;

/// <summary>
/// An open kernel image: a crash dump or the live kernel. The .NET face of libkvm's <c>kvm_t</c>: symbol look-up
/// (<c>kvm_nlist</c>), kernel virtual reads and writes (<c>kvm_read</c>, <c>kvm_write</c>), address translation and
/// the KASLR displacement (<c>kvm_kerndisp</c>). Reads are thread-safe: one image may be read from many threads.
/// </summary>
public sealed partial class KernelImage : IDisposable
{
    private const string LiveCore = "/proc/kcore";
    private const string LiveKallsyms = "/proc/kallsyms";
    private const string LiveVmcoreInfo = "/sys/kernel/vmcoreinfo";

    private readonly DumpImage _image;
    private readonly KernelMemory _memory;
    private readonly List<SymbolTable> _namelists;
    private readonly SymbolResolver? _resolver;
    private readonly KernelImageOptions _options;
    private bool _disposed;

    private KernelImage(DumpImage image, KernelMemory memory, List<SymbolTable> namelists, VmcoreInfo? vmcoreInfo, bool live, KernelImageOptions options)
    {
        _image = image;
        _memory = memory;
        _namelists = namelists;
        _resolver = options.Resolver;
        _options = options;
        VmcoreInfo = vmcoreInfo;
        IsLive = live;
    }

    /// <summary>
    /// Opens a crash dump, or the live kernel when <paramref name="core"/> is null. The format is detected from the
    /// content. Throws <see cref="KvmException"/> (or a subclass) naming what failed and where.
    /// </summary>
    public static KernelImage Open(string? core, KernelImageOptions? options = null) =>
        core is null ? OpenLive(options) : Open([core], options);

    /// <summary>Opens a dump given as one file, or as the files of a split kdump set.</summary>
    public static KernelImage Open(IReadOnlyList<string> coreFiles, KernelImageOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(coreFiles);
        options ??= new KernelImageOptions();
        bool live = coreFiles.Count == 1 && coreFiles[0] == LiveCore;
        var image = ImageFormats.Open(coreFiles, new ImageOpenOptions(options.Writable, options.Limits, options.Cache));
        try
        {
            return Create(image, options, live);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    /// <summary>Opens the running kernel through /proc/kcore (needs root and CONFIG_PROC_KCORE).</summary>
    public static KernelImage OpenLive(KernelImageOptions? options = null)
    {
        options ??= new KernelImageOptions();
        if (!File.Exists(LiveCore))
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{LiveCore}: not present (the kernel lacks CONFIG_PROC_KCORE, or this is a container); give a dump with -M");
        }

        if (options.Writable)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{LiveCore}: the live kernel cannot be opened for writing (/proc/kcore is read-only and /dev/kmem no longer exists)");
        }

        var image = ImageFormats.Open([LiveCore], new ImageOpenOptions(false, options.Limits, options.Cache));
        try
        {
            return Create(image, options, live: true);
        }
        catch
        {
            image.Dispose();
            throw;
        }
    }

    private static KernelImage Create(DumpImage image, KernelImageOptions options, bool live)
    {
        var namelistPaths = options.Namelists.Count > 0 ? options.Namelists : live ? [LiveKallsyms] : [];
        var namelists = namelistPaths.Select(p => NamelistLoader.Load(p, options.Limits)).ToList();
        if (!live && DetectFreeBsd(image, namelists) is { } freeBsd)
        {
            return CreateFreeBsd(image, freeBsd, namelists, options);
        }

        CheckArchitecture(image);

        var vmcoreInfo = image.VmcoreInfo ?? (live ? ReadLiveVmcoreInfo(image, options.Limits) : null);
        var hints = Hints(namelists);
        var layout = LayoutDetector.Detect(image, vmcoreInfo, hints);
        if (vmcoreInfo is null && (layout is null || namelists.Count == 0))
        {
            // The kernel keeps its VMCOREINFO page in RAM even when no dump device exported it.
            vmcoreInfo = LayoutDetector.ScanForVmcoreInfo(image, options.Limits.MaxVmcoreInfoBytes);
            if (vmcoreInfo is not null)
            {
                layout = LayoutDetector.Detect(image, vmcoreInfo, hints) ?? layout;
            }
        }

        if (layout is null)
        {
            throw new KvmException(KvmErrorCode.KernelLayout, Arm64LayoutDetector.Applies(image, vmcoreInfo)
                ? $"{image.Files[0]}: cannot find the arm64 kernel's page tables: VMCOREINFO is missing, or lacks PAGESIZE, NUMBER(VA_BITS), NUMBER(kimage_voffset) or SYMBOL(swapper_pg_dir) (Linux 4.12+), or swapper_pg_dir does not map itself"
                : $"{image.Files[0]}: cannot find the kernel's page tables: the image has no VMCOREINFO, no CPU state with CR3, and none was found in memory");
        }

        foreach (var table in namelists)
        {
            table.Displacement = Displacement(table, vmcoreInfo, layout, live);
            table.RelocationBase = RelocationFloor(layout);
        }

        var memory = new KernelMemory(image, layout, options.Cache, live);
        string? kallsymsError = null;
        KernelDataScanner.Result? scanned = null;
        if (namelists.Count == 0 && vmcoreInfo is not null)
        {
            // No namelist given: the kernel's own kallsyms tables, located by VMCOREINFO (Linux 6.0+), give every
            // symbol, so a bare dump is enough for processes, BTF and the rest.
            if (KallsymsReader.TryRead((a, b) => memory.ReadVirtual(a, b, out _), vmcoreInfo, options.Limits, out var kallsyms, out kallsymsError))
            {
                kallsyms!.RelocationBase = RelocationFloor(layout);
                namelists.Add(kallsyms);
                scanned = ScanForKernelData(kallsyms, memory, layout, options);
                if (scanned?.Symbols.Count > 0)
                {
                    namelists.Add(new SymbolTable("found by scanning the kernel image (kallsyms lists functions only)", NamelistKind.KernelScan, scanned.Symbols) { RelocationBase = RelocationFloor(layout) });
                }
            }
        }

        if (vmcoreInfo is not null)
        {
            var fromInfo = NamelistLoader.FromVmcoreInfo(vmcoreInfo);
            fromInfo.RelocationBase = RelocationFloor(layout);
            namelists.Add(fromInfo);
        }

        return new KernelImage(image, memory, namelists, vmcoreInfo, live, options) { KallsymsError = kallsymsError, ScannedTypes = scanned?.Types };
    }

    /// <summary>
    /// A kernel whose kallsyms lists functions only (no CONFIG_KALLSYMS_ALL: Debian's arm64 and 686 kernels) gives a
    /// bare dump no data symbols: its BTF and init_task are then found by their contents (<see cref="KernelDataScanner"/>),
    /// so processes work without a System.map. Null when kallsyms lists data symbols and nothing needs finding.
    /// </summary>
    private static KernelDataScanner.Result? ScanForKernelData(SymbolTable kallsyms, KernelMemory memory, KernelLayout layout, KernelImageOptions options)
    {
        if (kallsyms.TryLookup("init_task", out _) || !kallsyms.TryLookup("_etext", out var etext))
        {
            return null;
        }

        // BTF given from outside (a kernel built without it) tells init_task's layout; it is loaded here once and kept.
        var given = options.Btf is { } path ? TypeCatalog.Load(path, options.Limits) : null;
        return KernelDataScanner.Scan((a, b) => memory.ReadVirtual(a, b, out _), etext.Address, layout.PointerSize, options.Limits, given);
    }

    private static void CheckArchitecture(DumpImage image)
    {
        if (image.ElfMachine is not (0 or LayoutDetector.EmX8664 or I386LayoutDetector.Em386 or Arm64LayoutDetector.EmAarch64))
        {
            string name = image.MachineName ?? $"ELF machine {image.ElfMachine}";
            throw new KvmException(KvmErrorCode.NotSupported, $"{image.Files[0]}: {name} images are not supported yet (x86-64, i386 and aarch64 only)");
        }
    }

    /// <summary>
    /// The lowest address a namelist's displacement applies to: x86-64's text map (<c>__START_KERNEL_map</c>, so
    /// per-CPU offsets and absolute symbols stay put); on arm64 the whole kernel half, where the image, its per-CPU
    /// section and everything else a System.map lists are linked; on i386 PAGE_OFFSET, since the kernel is relocated
    /// whole, per-CPU variables included.
    /// </summary>
    private static ulong RelocationFloor(KernelLayout layout) => layout switch
    {
        { PagingMode: PagingMode.Arm64 } => ulong.MaxValue << layout.VirtualAddressBits,
        { PointerSize: 4, PageOffsetBase: { } pageOffset } => pageOffset,
        _ => KernelLayout.StartKernelMap,
    };

    private static NamelistHints Hints(List<SymbolTable> namelists)
    {
        foreach (var t in namelists)
        {
            if (t.RawValue("_text") is { } text)
            {
                return new NamelistHints(text, t.RawValue("_stext"), t.RawValue("init_top_pgt") ?? t.RawValue("init_level4_pgt") ?? t.RawValue("swapper_pg_dir"), t.RawValue("linux_banner"));
            }
        }

        return NamelistHints.None;
    }

    /// <summary>
    /// A namelist's displacement, found by comparing it with the image: if its <c>_stext</c> equals VMCOREINFO's
    /// runtime <c>SYMBOL(_stext)</c> it already holds runtime addresses (a saved kallsyms of that boot); otherwise
    /// the difference is the KASLR offset.
    /// </summary>
    private static long Displacement(SymbolTable table, VmcoreInfo? info, KernelLayout layout, bool live)
    {
        if (live && table.Kind == NamelistKind.Kallsyms)
        {
            return 0;
        }

        if (info?.GetSymbol("_stext") is { } runtime && table.RawValue("_stext") is { } raw)
        {
            return unchecked((long)(runtime - raw));
        }

        if (layout.Method == "cpu-cr3")
        {
            // The CR3 method measured the runtime _text against this namelist's _text.
            return layout.KaslrOffset;
        }

        return table.Kind is NamelistKind.Kallsyms ? 0 : layout.KaslrOffset;
    }

    private static VmcoreInfo? ReadLiveVmcoreInfo(DumpImage image, KvmLimits limits)
    {
        // /sys/kernel/vmcoreinfo holds "<hex physical address> <hex size>" of the note (kernel/ksysfs.c).
        try
        {
            var parts = File.ReadAllText(LiveVmcoreInfo).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (parts.Length < 2 || !ulong.TryParse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong pa) ||
                !int.TryParse(parts[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture, out int size) || size <= 0 || size > limits.MaxVmcoreInfoBytes)
            {
                return null;
            }

            var note = new byte[size];
            int n = image.ReadPhysical(pa, note, out _);
            var parsed = ElfNote.Parse(note.AsSpan(0, n), bigEndian: false);
            return parsed.FirstOrDefault(x => x.Name == "VMCOREINFO") is { } v ? VmcoreInfo.Parse(v.Descriptor, LiveVmcoreInfo) : null;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The container format.</summary>
    public DumpFormat Format => _image.Format;

    /// <summary>A one-line description of the container.</summary>
    public string FormatDescription => _image.Description;

    /// <summary>Page compression of the container.</summary>
    public DumpCompression Compression => _image.Compression;

    /// <summary>True for a flattened kdump file read in place.</summary>
    public bool IsFlattened => _image.IsFlattened;

    /// <summary>The files behind the image.</summary>
    public IReadOnlyList<string> Files => _image.Files;

    /// <summary>True for the running kernel.</summary>
    public bool IsLive { get; }

    /// <summary>True when opened for writing and the format allows it.</summary>
    public bool IsWritable => _image.CanWrite;

    /// <summary>
    /// The kernel architecture, as the kernel names it: FreeBSD <c>amd64</c>, <c>arm64</c>, <c>i386</c>; Linux <c>i386</c>
    /// for any 32-bit x86 kernel (a kdump header's <c>i686</c> included), else the kdump header's machine, else what the
    /// layout found (QEMU writes "Unknown" in an arm64 kdump header's utsname).
    /// </summary>
    public string Architecture => FreeBsdInfo is { } info ? MinidumpHeader.NameOf(info.Architecture)
        : Layout.PointerSize == 4 ? "i386" : _image.MachineName is { } m && m != "Unknown" ? m : Layout.Architecture;

    /// <summary>The size of the kernel's pointers and <c>unsigned long</c> in bytes: 8 on x86-64 and aarch64, 4 on i386.</summary>
    public int PointerSize => Layout.PointerSize;

    /// <summary>VMCOREINFO, from the container, the live kernel, or a scan of memory; null when none was found.</summary>
    public VmcoreInfo? VmcoreInfo { get; }

    /// <summary>
    /// Why the kernel's in-memory kallsyms could not be read when no namelist was given (for example, a kernel
    /// older than 6.0 whose VMCOREINFO does not locate them), or null.
    /// </summary>
    public string? KallsymsError { get; private init; }

    /// <summary>The BTF found by scanning the kernel image at open (a bare dump whose kallsyms lists functions only), or null.</summary>
    private TypeCatalog? ScannedTypes { get; init; }

    /// <summary>The kernel layout: paging mode, page-table root, KASLR offset, phys_base, direct map.</summary>
    public KernelLayout Layout => _memory.Layout!;

    /// <summary>The KASLR displacement of the kernel text, libkvm's <c>kvm_kerndisp</c>.</summary>
    public long KaslrOffset => Layout.KaslrOffset;

    /// <summary>The page size.</summary>
    public int PageSize => VmcoreInfo?.PageSize ?? _image.PageSize ?? 4096;

    /// <summary>Physical ranges described by the image.</summary>
    public IReadOnlyList<PhysicalRange> PhysicalRanges => _image.PhysicalRanges;

    /// <summary>Pages the dump left out (makedumpfile filtering, ELF tails).</summary>
    public long ExcludedPages => _image.ExcludedPages;

    /// <summary>The kdump dump level, or null.</summary>
    public int? DumpLevel => _image.DumpLevel;

    /// <summary>The namelists in look-up order, with their displacements.</summary>
    public IReadOnlyList<NamelistInfo> Namelists => _namelists.Select(t => new NamelistInfo(t.Source, t.Kind, t.Count, t.Displacement)).ToList();

    /// <summary>Counters of every cache the image keeps.</summary>
    public IReadOnlyList<CacheStatistics> CacheStatistics => _memory.CacheStatistics;

    /// <summary>
    /// The kernel release: VMCOREINFO's OSRELEASE, else read from <c>init_uts_ns</c>; for FreeBSD the kernel's
    /// <c>osrelease</c> (e.g. <c>14.0-RELEASE</c>), else the dump device header's version string.
    /// </summary>
    public string? Release => OperatingSystem == KernelOperatingSystem.FreeBsd ? FreeBsdRelease() : VmcoreInfo?.OsRelease ?? (TryReadUtsname(out var u) ? u.Release : null);

    /// <summary>Drops cached pages, page tables and translations (for the live kernel, or after a write elsewhere).</summary>
    public void FlushCaches()
    {
        ThrowIfDisposed();
        _memory.FlushCaches();
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            _image.Dispose();
            _swapImages?.ForEach(i => i.Dispose());
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);
}
