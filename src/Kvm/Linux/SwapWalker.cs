namespace Kvm.Linux;

/// <summary>
/// Reads the kernel's swap areas: <c>swap_info[0 .. nr_swapfiles)</c> (an array of pointers since Linux 4.14),
/// keeping the entries with <c>SWP_USED</c>, as <c>/proc/swaps</c> does.
/// </summary>
internal sealed class SwapWalker
{
    // include/linux/swap.h: MAX_SWAPFILES is at most 32 (1 << MAX_SWAPFILES_SHIFT, minus reserved types).
    private const int MaxSwapFiles = 32;

    private readonly LinuxKernel _k;
    private readonly PathResolver _paths;
    private readonly FieldLayout _flags, _pages, _inuse, _prio, _max, _swapFile;
    private readonly FieldLayout _fPath;
    private readonly FieldLayout _pathMnt, _pathDentry;
    private readonly long _swpUsed, _swpWriteOk, _swpBlkdev;

    /// <summary>Resolves the fields once.</summary>
    public SwapWalker(LinuxKernel kernel, PathResolver paths)
    {
        _k = kernel;
        _paths = paths;
        var t = kernel.Types;
        _flags = t.Field("swap_info_struct.flags");
        _pages = t.Field("swap_info_struct.pages");
        _inuse = t.Field("swap_info_struct.inuse_pages");
        _prio = t.Field("swap_info_struct.prio");
        _max = t.Field("swap_info_struct.max");
        _swapFile = t.Field("swap_info_struct.swap_file");
        _fPath = t.Field("file.f_path");
        _pathMnt = t.Field("path.mnt");
        _pathDentry = t.Field("path.dentry");

        // enum in include/linux/swap.h; the values have been stable since 2.6 for these three.
        _swpUsed = t.EnumValue("SWP_USED", 1);
        _swpWriteOk = t.EnumValue("SWP_WRITEOK", 2);
        _swpBlkdev = t.EnumValue("SWP_BLKDEV", 0x40);
    }

    /// <summary>Lists the areas in use.</summary>
    public SwapSummary Read() => new(ReadAreas().Select(a => a.Area).ToList(), _k.PageSize);

    /// <summary>Lists the areas in use, each with the identity of its header when the page cache still holds it.</summary>
    public List<(SwapArea Area, SwapHeaderIdentity? Header)> ReadAreas()
    {
        ulong infoArray = _k.RequireSymbol(KernelGlobals.SwapInfo.Name);
        ulong nrSymbol = _k.RequireSymbol(KernelGlobals.NrSwapfiles.Name);
        uint nr = _k.ReadU32(nrSymbol, "nr_swapfiles");
        if (nr > MaxSwapFiles)
        {
            throw new CorruptImageException($"nr_swapfiles at 0x{nrSymbol:x} is {nr}, more than MAX_SWAPFILES ({MaxSwapFiles})");
        }

        var areas = new List<(SwapArea, SwapHeaderIdentity?)>();
        var mappingField = _k.Types.OptionalField("file.f_mapping");
        for (int type = 0; type < nr; type++)
        {
            ulong si = _k.ReadPointer(infoArray + ((ulong)type * (ulong)_k.PointerSize), $"swap_info[{type}]");
            if (si == 0)
            {
                continue;
            }

            ulong flags = _k.ReadULong(si + (ulong)_flags.Offset, "swap_info_struct.flags");
            if ((flags & (ulong)_swpUsed) == 0)
            {
                continue;
            }

            long pages = _k.ReadI32(si + (ulong)_pages.Offset, "swap_info_struct.pages");
            long inuse = ReadInuse(si);
            // prio is a signed short (swapon's default priorities are negative); keep the low 16 bits of the word read.
            int prio = unchecked((short)_k.ReadU32(si + (ulong)_prio.Offset, "swap_info_struct.prio"));
            long max = _k.ReadU32(si + (ulong)_max.Offset, "swap_info_struct.max");
            ulong file = _k.ReadPointer(si + (ulong)_swapFile.Offset, "swap_info_struct.swap_file");
            string name = "";
            SwapHeaderIdentity? header = null;
            if (file != 0)
            {
                if (mappingField is { } fm && _k.TryReadPointer(file + (ulong)fm.Offset, out ulong mapping))
                {
                    header = SwapHeaderIdentity.FromPageCache(_k, mapping);
                }

                ulong path = file + (ulong)_fPath.Offset;
                name = _paths.Resolve(_k.ReadPointer(path + (ulong)_pathMnt.Offset, "path.mnt"), _k.ReadPointer(path + (ulong)_pathDentry.Offset, "path.dentry"));
            }

            areas.Add((new SwapArea(type, name, (flags & (ulong)_swpBlkdev) == 0, pages, inuse, prio, max, flags, (flags & (ulong)_swpWriteOk) != 0), header));
        }

        return areas;
    }

    private long ReadInuse(ulong si)
    {
        ulong addr = si + (ulong)_inuse.Offset;

        // unsigned int up to 6.9; atomic_long_t since, whose top bits carry SWAP_USAGE_OFFLIST_BIT (drgn swap.py).
        if (_inuse.Size == 8)
        {
            return (long)(_k.ReadU64(addr, "swap_info_struct.inuse_pages") & 0xBFFFFFFFFFFFFFFFUL & long.MaxValue);
        }

        return _k.ReadU32(addr, "swap_info_struct.inuse_pages");
    }
}
