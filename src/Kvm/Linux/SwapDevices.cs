using System.Buffers.Binary;
using Kvm.Images;
using Kvm.Memory;

namespace Kvm.Linux;

/// <summary>
/// The swap images the caller gave (the seeds' <c>swapfile</c>), each matched to the kernel's swap area it stands
/// for. The kernel keeps no UUID in <c>swap_info_struct</c>, but <c>swapon</c> read the header through the device's
/// page cache (mm/swapfile.c <c>read_mapping_page(mapping, 0)</c>), so where that page is still cached its UUID and
/// label identify the area exactly. Otherwise an image matches the only area of its size (<c>last_page + 1 ==
/// si->max</c>); anything still ambiguous is refused with the reason, never guessed.
/// </summary>
internal sealed class SwapDevices : ISwapPageSource
{
    private readonly IReadOnlyList<SwapImage> _images;
    private readonly Func<LinuxKernel> _kernel;
    private readonly object _lock = new();
    private Dictionary<int, SwapImage>? _byType;
    private List<string> _notes = [];

    /// <summary>Creates the set; matching happens on the first page read.</summary>
    public SwapDevices(IReadOnlyList<SwapImage> images, Func<LinuxKernel> kernel)
    {
        _images = images;
        _kernel = kernel;
    }

    /// <summary>How each image was matched (or why it was not), after the first read.</summary>
    public IReadOnlyList<string> Notes
    {
        get
        {
            Match();
            return _notes;
        }
    }

    /// <inheritdoc/>
    public bool TryReadPage(int type, ulong offset, Span<byte> page, out string? error)
    {
        var map = Match();
        if (!map.TryGetValue(type, out var image))
        {
            error = $"no swap image given matches swap area {type}" + (_notes.Count > 0 ? $" ({string.Join("; ", _notes)})" : "");
            return false;
        }

        if (image.PageSize != page.Length)
        {
            error = $"{image.Path}: {image.PageSize}-byte swap pages, but the kernel's pages are {page.Length} bytes";
            return false;
        }

        try
        {
            image.ReadPage(offset, page);
            error = null;
            return true;
        }
        catch (KvmException e)
        {
            error = e.Message;
            return false;
        }
    }

    private Dictionary<int, SwapImage> Match()
    {
        lock (_lock)
        {
            if (_byType is not null)
            {
                return _byType;
            }

            var notes = new List<string>();
            var map = new Dictionary<int, SwapImage>();
            try
            {
                var k = _kernel();
                var areas = new SwapWalker(k, new PathResolver(k)).ReadAreas();
                var left = _images.ToList();

                foreach (var (area, header) in areas)
                {
                    if (header is null)
                    {
                        continue;
                    }

                    var image = left.FirstOrDefault(i => i.Uuid == header.Value.Uuid && i.Label == header.Value.Label);
                    if (image is not null)
                    {
                        map[area.Type] = image;
                        left.Remove(image);
                        notes.Add($"{image.Path} is swap area {area.Type} ({area.Name}): UUID {image.Uuid} matches the header the kernel cached");
                    }
                }

                foreach (var image in left)
                {
                    var bySize = areas.Where(a => !map.ContainsKey(a.Area.Type) && a.Area.MaxPages == image.LastPage + 1L && (a.Header is null || a.Header.Value.Uuid == image.Uuid)).ToList();
                    if (bySize.Count == 1)
                    {
                        map[bySize[0].Area.Type] = image;
                        notes.Add($"{image.Path} is swap area {bySize[0].Area.Type} ({bySize[0].Area.Name}): the only area of {image.LastPage + 1} pages (the kernel's cached header was not in the dump)");
                    }
                    else
                    {
                        notes.Add(bySize.Count == 0
                            ? $"{image.Path} (UUID {image.Uuid}, {image.LastPage + 1} pages) matches no swap area of the kernel"
                            : $"{image.Path} could be any of swap areas {string.Join(", ", bySize.Select(a => a.Area.Type))} (same size, headers not cached)");
                    }
                }
            }
            catch (KvmException e)
            {
                notes.Add($"cannot read the kernel's swap areas: {e.Message}");
            }

            _notes = notes;
            _byType = map;
            return map;
        }
    }
}

/// <summary>The identity of a swap area from its header page: <c>union swap_header</c>'s <c>info</c> (include/linux/swap.h).</summary>
/// <param name="Uuid">The 16 UUID bytes in blkid's order.</param>
/// <param name="Label">The label, or null.</param>
internal readonly record struct SwapHeaderIdentity(Guid Uuid, string? Label)
{
    // info starts at 1024 (after bootbits): version, last_page, nr_badpages (3 x u32), then sws_uuid[16], sws_volume[16].
    private const int UuidOffset = 1024 + 12;

    /// <summary>Parses the identity from a header page, or null when the page carries no SWAPSPACE2 signature.</summary>
    public static SwapHeaderIdentity? Parse(ReadOnlySpan<byte> page)
    {
        if (page.Length < 4096 || !page[^10..].SequenceEqual("SWAPSPACE2"u8))
        {
            return null;
        }

        var uuid = new Guid(page.Slice(UuidOffset, 16), bigEndian: true);
        var volume = page.Slice(UuidOffset + 16, 16);
        int nul = volume.IndexOf((byte)0);
        string label = System.Text.Encoding.UTF8.GetString(volume[..(nul < 0 ? 16 : nul)]);
        return new SwapHeaderIdentity(uuid, label.Length == 0 ? null : label);
    }

    /// <summary>
    /// Finds page 0 of <paramref name="mapping"/> (an <c>address_space</c>) in the page cache: the <c>i_pages</c>
    /// xarray's slot 0, descending nodes (lib/xarray.c: an internal entry with low bits 10 is a node), then the
    /// <c>struct page</c> to its frame through <c>vmemmap</c>.
    /// </summary>
    public static SwapHeaderIdentity? FromPageCache(LinuxKernel k, ulong mapping)
    {
        var t = k.Types;
        if (mapping == 0 || !t.TryGetField("address_space.i_pages", out var iPages) || !t.TryGetField("xarray.xa_head", out var xaHead) ||
            !t.TryGetField("xa_node.slots", out var slots) || !t.TryGetSize("page", out long pageStructSize) || pageStructSize <= 0)
        {
            return null;
        }

        if (!k.TryReadPointer(mapping + (ulong)iPages.Offset + (ulong)xaHead.Offset, out ulong entry))
        {
            return null;
        }

        for (int depth = 0; depth < 12 && (entry & 3) == 2 && entry > 4096; depth++)
        {
            if (!k.TryReadPointer(entry - 2 + (ulong)slots.Offset, out entry))
            {
                return null;
            }
        }

        // NULL, a value entry (bit 0: a shadow of an evicted page) or another internal entry: not cached.
        if (entry == 0 || (entry & 3) != 0)
        {
            return null;
        }

        if (MemMap(k, pageStructSize) is not { } vmemmap || entry < vmemmap)
        {
            return null;
        }

        ulong pfn = (entry - vmemmap) / (ulong)pageStructSize;
        var page = new byte[k.PageSize];
        if (k.Memory.ReadPhysical(pfn * (ulong)k.PageSize, page, out _) != page.Length)
        {
            return null;
        }

        return Parse(page);
    }

    /// <summary>
    /// The address of pfn 0's <c>struct page</c>. x86-64: <c>vmemmap_base</c> (fixed 0xffffea0000000000 without memory
    /// KASLR). arm64 (arch/arm64/include/asm/memory.h, 5.4+): <c>vmemmap = (struct page *)VMEMMAP_START -
    /// (memstart_addr &gt;&gt; PAGE_SHIFT)</c>, with <c>memstart_addr</c> = PHYS_OFFSET (negative with a randomized
    /// linear map). A 32-bit kernel has no vmemmap, and with FLATMEM (i386's usual model) keeps its array in
    /// <c>mem_map</c> (mm/memory.c; ARCH_PFN_OFFSET 0 on x86). Null when none applies (i386 SPARSEMEM).
    /// </summary>
    private static ulong? MemMap(LinuxKernel k, long pageStructSize)
    {
        if (k.Memory.Layout is { PagingMode: PagingMode.Arm64, VmemmapStart: not 0 } layout)
        {
            long firstPfn = layout.PhysBase >> System.Numerics.BitOperations.Log2((uint)k.PageSize);
            return unchecked(layout.VmemmapStart - (ulong)(firstPfn * pageStructSize));
        }

        if (k.Symbol(KernelGlobals.VmemmapBase.Name) is { } vb)
        {
            return k.TryReadPointer(vb, out ulong v) ? v : null;
        }

        if (k.PointerSize == 4)
        {
            return k.Symbol(KernelGlobals.MemMap.Name) is { } mm && k.TryReadPointer(mm, out ulong m) && m != 0 ? m : null;
        }

        return 0xffffea0000000000UL;
    }
}
