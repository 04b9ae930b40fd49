using Kvm.Images;
using Kvm.IO;
using Kvm.Translation;

namespace Kvm.Memory;

/// <summary>
/// Layer 2½: kernel virtual and physical reads and writes over an image. Virtual addresses are translated through
/// the kernel's page tables (with a bounded TLB); where no page-table root is known, an image's own virtual
/// segments (/proc/kcore, kexec vmcores) serve instead. Reads return what was read before the first fault and
/// describe the fault, so callers can choose libkvm's partial-read semantics or an exception. A translator of its
/// own (<see cref="IKernelTranslator"/>: a FreeBSD minidump's page map) replaces the x86-64 walk;
/// it knows only the kernel's address space.
/// </summary>
internal sealed class KernelMemory
{
    private const ulong PageMask = ~0xfffUL;
    private readonly DumpImage _image;
    private readonly IPageTable? _pageTable;
    private readonly IKernelTranslator? _translator;
    private readonly LruCache<(ulong Root, ulong Page), ulong> _tlb;

    public KernelMemory(DumpImage image, KernelLayout? layout, CacheOptions cache, bool live)
    {
        _image = image;
        Layout = layout;
        int tables = live ? 0 : cache.PageTablePages;
        _tlb = new LruCache<(ulong Root, ulong Page), ulong>("tlb", live ? 0 : cache.Translations);
        if (layout is not null && layout.PagingMode != PagingMode.Unknown)
        {
            _pageTable = PageTables.Create(new ImagePhysicalSource(image), layout, tables);
        }
    }

    /// <summary>Kernel memory translated by <paramref name="translator"/> (a dump, never the live kernel).</summary>
    public KernelMemory(DumpImage image, KernelLayout layout, IKernelTranslator translator, CacheOptions cache)
    {
        _image = image;
        Layout = layout;
        _translator = translator;
        _tlb = new LruCache<(ulong Root, ulong Page), ulong>("tlb", cache.Translations);
    }

    public DumpImage Image => _image;

    public KernelLayout? Layout { get; }

    public IPageTable? PageTable => _pageTable;

    /// <summary>The translator of its own, or null when the x86-64 walk (or an image's segments) translates.</summary>
    public IKernelTranslator? Translator => _translator;

    public IReadOnlyList<CacheStatistics> CacheStatistics
    {
        get
        {
            var list = new List<CacheStatistics>(_image.CacheStatistics) { _tlb.Statistics };
            if (_pageTable is not null)
            {
                list.Add(_pageTable.Statistics);
            }

            if (_translator is not null)
            {
                list.AddRange(_translator.CacheStatistics);
            }

            return list;
        }
    }

    public void FlushCaches()
    {
        _tlb.Clear();
        _pageTable?.FlushCache();
        _translator?.FlushCache();
        _image.FlushCaches();
    }

    /// <summary>Describes how <paramref name="virtualAddress"/> translates, level by level.</summary>
    public TranslationWalk Describe(ulong virtualAddress, ulong? root = null)
    {
        if (_translator is not null)
        {
            return root is null
                ? _translator.Describe(virtualAddress)
                : new TranslationWalk(virtualAddress, "none", [], null, 0, new TranslationFault(virtualAddress, TranslationFaultKind.NotDumped, null, 0, 0, 0));
        }

        if (_pageTable is not null && Layout is not null)
        {
            return _pageTable.Describe(root ?? Layout.PageTableRoot, virtualAddress);
        }

        if (TryFindSegment(virtualAddress, out var seg) && seg.PhysicalAddress is { } pa)
        {
            return new TranslationWalk(virtualAddress, "segment", [], pa + (virtualAddress - seg.VirtualAddress), 4096, null);
        }

        return new TranslationWalk(virtualAddress, "none", [], null, 0, new TranslationFault(virtualAddress, TranslationFaultKind.NoMethod, null, 0, 0, 0));
    }

    /// <summary>Translates a kernel (or, with <paramref name="root"/>, a user) virtual address.</summary>
    public bool TryTranslate(ulong virtualAddress, out ulong physicalAddress, out TranslationFault? fault, ulong? root = null)
    {
        if (_translator is not null)
        {
            return TryTranslateOwn(_translator, virtualAddress, out physicalAddress, out fault, root);
        }

        if (_pageTable is null || Layout is null)
        {
            if (root is null && TryFindSegment(virtualAddress, out var seg) && seg.PhysicalAddress is { } segPa)
            {
                physicalAddress = segPa + (virtualAddress - seg.VirtualAddress);
                fault = null;
                return true;
            }

            physicalAddress = 0;
            fault = new TranslationFault(virtualAddress, TranslationFaultKind.NoMethod, null, 0, 0, 0);
            return false;
        }

        ulong rootPa = root ?? Layout.PageTableRoot;
        ulong page = virtualAddress & PageMask;

        // The TLB is keyed by (root, page), so the kernel's and every process's address spaces never collide.
        var key = (rootPa, page);
        if (_tlb.TryGet(key, out ulong paPage))
        {
            physicalAddress = paPage | (virtualAddress & 0xfff);
            fault = null;
            return true;
        }

        if (_pageTable.TryTranslate(rootPa, virtualAddress, out physicalAddress, out _, out fault))
        {
            _tlb.Add(key, physicalAddress & PageMask);
            return true;
        }

        return false;
    }

    /// <summary>
    /// Reads kernel virtual memory. Returns the bytes read before the first fault; <paramref name="fault"/> is null
    /// when everything was read.
    /// </summary>
    public int ReadVirtual(ulong virtualAddress, Span<byte> buffer, out MemoryFaultException? fault, ulong? root = null)
    {
        int done = 0;
        fault = null;
        while (done < buffer.Length)
        {
            ulong va = virtualAddress + (ulong)done;
            int chunk = (int)Math.Min((ulong)(buffer.Length - done), 4096 - (va & 0xfff));
            if (!TryTranslate(va, out ulong pa, out var tf, root))
            {
                if (root is null && tf?.Kind == TranslationFaultKind.NoMethod && TryReadSegment(va, buffer.Slice(done, chunk), out int segRead, out fault))
                {
                    done += segRead;
                    if (fault is not null)
                    {
                        break;
                    }

                    continue;
                }

                var reason = tf?.Kind == TranslationFaultKind.SwapEntry ? MemoryFaultReason.SwappedOut : MemoryFaultReason.NotMapped;
                fault = new MemoryFaultException(va, root is null ? AddressSpace.KernelVirtual : AddressSpace.UserVirtual, reason, tf!.Message, tf);
                break;
            }

            int n = _image.ReadPhysical(pa, buffer.Slice(done, chunk), out var status);
            done += n;
            if (n < chunk)
            {
                fault = PhysicalFault(pa + (ulong)n, status, va + (ulong)n, root is null ? AddressSpace.KernelVirtual : AddressSpace.UserVirtual);
                break;
            }
        }

        return done;
    }

    /// <summary>Reads physical memory; returns the bytes read before the first fault.</summary>
    public int ReadPhysical(ulong physicalAddress, Span<byte> buffer, out MemoryFaultException? fault)
    {
        int n = _image.ReadPhysical(physicalAddress, buffer, out var status);
        fault = n < buffer.Length ? PhysicalFault(physicalAddress + (ulong)n, status, null, AddressSpace.Physical) : null;
        return n;
    }

    /// <summary>
    /// Writes virtual memory in place: the kernel's address space, or the one whose top-level table is at physical
    /// address <paramref name="root"/>. Returns bytes written before the first fault.
    /// </summary>
    public int WriteVirtual(ulong virtualAddress, ReadOnlySpan<byte> data, out MemoryFaultException? fault, ulong? root = null)
    {
        int done = 0;
        fault = null;
        while (done < data.Length)
        {
            ulong va = virtualAddress + (ulong)done;
            int chunk = (int)Math.Min((ulong)(data.Length - done), 4096 - (va & 0xfff));
            if (!TryTranslate(va, out ulong pa, out var tf, root))
            {
                var reason = tf?.Kind == TranslationFaultKind.SwapEntry ? MemoryFaultReason.SwappedOut : MemoryFaultReason.NotMapped;
                fault = new MemoryFaultException(va, root is null ? AddressSpace.KernelVirtual : AddressSpace.UserVirtual, reason, tf!.Message, tf);
                break;
            }

            int n = WritePhysicalCore(pa, data.Slice(done, chunk), out fault);
            done += n;
            if (fault is not null)
            {
                break;
            }
        }

        return done;
    }

    /// <summary>Writes physical memory in place.</summary>
    public int WritePhysical(ulong physicalAddress, ReadOnlySpan<byte> data, out MemoryFaultException? fault) =>
        WritePhysicalCore(physicalAddress, data, out fault);

    private int WritePhysicalCore(ulong pa, ReadOnlySpan<byte> data, out MemoryFaultException? fault)
    {
        int n = _image.WritePhysical(pa, data);

        // Page tables may have been written: drop cached tables and translations.
        _tlb.Clear();
        _pageTable?.FlushCache();
        _translator?.FlushCache();
        fault = n < data.Length
            ? new MemoryFaultException(pa + (ulong)n, AddressSpace.Physical, MemoryFaultReason.NotInImage, $"cannot write physical address 0x{pa + (ulong)n:x}: not stored in the image file")
            : null;
        return n;
    }

    private bool TryTranslateOwn(IKernelTranslator translator, ulong virtualAddress, out ulong physicalAddress, out TranslationFault? fault, ulong? root)
    {
        if (root is not null)
        {
            // User address spaces are not part of what such a translator knows.
            physicalAddress = 0;
            fault = new TranslationFault(virtualAddress, TranslationFaultKind.NotDumped, null, 0, 0, 0);
            return false;
        }

        ulong page = virtualAddress & PageMask;
        var key = (0UL, page);
        if (_tlb.TryGet(key, out ulong paPage))
        {
            physicalAddress = paPage | (virtualAddress & 0xfff);
            fault = null;
            return true;
        }

        if (translator.TryTranslate(virtualAddress, out physicalAddress, out _, out fault))
        {
            _tlb.Add(key, physicalAddress & PageMask);
            return true;
        }

        return false;
    }

    private static MemoryFaultException PhysicalFault(ulong pa, PhysicalReadStatus status, ulong? va, AddressSpace space)
    {
        string where = va is { } v ? $"0x{v:x} (physical 0x{pa:x})" : $"physical address 0x{pa:x}";
        return status switch
        {
            PhysicalReadStatus.Excluded => new MemoryFaultException(va ?? pa, space, MemoryFaultReason.Excluded, $"{where}: page excluded from the dump"),
            PhysicalReadStatus.Truncated => new MemoryFaultException(va ?? pa, space, MemoryFaultReason.Truncated, $"{where}: the image file ends before this page (truncated dump)"),
            _ => new MemoryFaultException(va ?? pa, space, MemoryFaultReason.NotInImage, $"{where}: not in the image"),
        };
    }

    private bool TryFindSegment(ulong va, out VirtualSegment segment)
    {
        foreach (var s in _image.VirtualSegments)
        {
            if (va >= s.VirtualAddress && va - s.VirtualAddress < s.Length)
            {
                segment = s;
                return true;
            }
        }

        segment = default;
        return false;
    }

    private bool TryReadSegment(ulong va, Span<byte> buffer, out int read, out MemoryFaultException? fault)
    {
        read = 0;
        fault = null;
        if (!TryFindSegment(va, out var s) || s.PhysicalAddress is not { } segPa)
        {
            return false;
        }

        ulong pa = segPa + (va - s.VirtualAddress);
        read = _image.ReadPhysical(pa, buffer, out var status);
        if (read < buffer.Length)
        {
            fault = PhysicalFault(pa + (ulong)read, status, va + (ulong)read, AddressSpace.KernelVirtual);
        }

        return true;
    }
}
