namespace Kvm.Testing;

/// <summary>Sparse physical memory for tests: pages created on first write, plus a bump allocator for table pages.</summary>
public sealed class PhysicalMemoryBuilder
{
    private readonly SortedDictionary<ulong, byte[]> _pages = new();
    private ulong _next;

    /// <param name="allocationBase">Where <see cref="AllocatePage"/> starts handing out pages.</param>
    public PhysicalMemoryBuilder(ulong allocationBase = 0x100000)
    {
        _next = allocationBase;
    }

    public IReadOnlyDictionary<ulong, byte[]> Pages => _pages;

    /// <summary>Returns a fresh zeroed page's physical address.</summary>
    public ulong AllocatePage()
    {
        ulong pa = _next;
        _next += 4096;
        Page(pa);
        return pa;
    }

    /// <summary>Returns a fresh zeroed, <paramref name="size"/>-aligned block of <paramref name="size"/> bytes (a multiple of 4 KiB).</summary>
    public ulong AllocateBlock(ulong size)
    {
        _next = (_next + size - 1) & ~(size - 1);
        ulong pa = _next;
        for (ulong off = 0; off < size; off += 4096)
        {
            Page(pa + off);
        }

        _next += size;
        return pa;
    }

    /// <summary>Returns the address of <paramref name="count"/> fresh zeroed contiguous pages aligned to <paramref name="alignment"/>.</summary>
    public ulong AllocatePages(int count, ulong alignment = 4096)
    {
        _next = (_next + alignment - 1) & ~(alignment - 1);
        ulong pa = _next;
        for (int i = 0; i < count; i++)
        {
            AllocatePage();
        }

        return pa;
    }

    public byte[] Page(ulong pa)
    {
        ulong key = pa & ~0xfffUL;
        if (!_pages.TryGetValue(key, out var page))
        {
            page = new byte[4096];
            _pages[key] = page;
        }

        return page;
    }

    public void Write(ulong pa, ReadOnlySpan<byte> data)
    {
        int done = 0;
        while (done < data.Length)
        {
            ulong a = pa + (ulong)done;
            int off = (int)(a & 0xfff);
            int n = Math.Min(4096 - off, data.Length - done);
            data.Slice(done, n).CopyTo(Page(a).AsSpan(off));
            done += n;
        }
    }

    public void WriteUInt64(ulong pa, ulong value) => Write(pa, BitConverter.GetBytes(value));

    public void WriteUInt32(ulong pa, uint value) => Write(pa, BitConverter.GetBytes(value));

    public ulong ReadUInt64(ulong pa) => BitConverter.ToUInt64(Read(pa, 8));

    public uint ReadUInt32(ulong pa) => BitConverter.ToUInt32(Read(pa, 4));

    public byte[] Read(ulong pa, int length)
    {
        var result = new byte[length];
        for (int i = 0; i < length; i++)
        {
            ulong a = pa + (ulong)i;
            if (_pages.TryGetValue(a & ~0xfffUL, out var p))
            {
                result[i] = p[a & 0xfff];
            }
        }

        return result;
    }

    /// <summary>Highest page end, i.e. the size of a flat image holding every page.</summary>
    public ulong Size => _pages.Count == 0 ? 0 : _pages.Keys.Max() + 4096;

    /// <summary>A flat image (offset = physical address) of <paramref name="size"/> bytes, at least <see cref="Size"/>.</summary>
    public byte[] ToFlat(ulong size = 0)
    {
        var flat = new byte[Math.Max(size, Size)];
        foreach (var (pa, page) in _pages)
        {
            page.CopyTo(flat, (long)pa);
        }

        return flat;
    }

    /// <summary>Runs of contiguous present pages, for building ELF PT_LOADs or LiME ranges.</summary>
    public IEnumerable<(ulong Start, byte[] Data)> Runs()
    {
        ulong? start = null;
        var buffer = new List<byte>();
        ulong expected = 0;
        foreach (var (pa, page) in _pages)
        {
            if (start is null || pa != expected)
            {
                if (start is not null)
                {
                    yield return (start.Value, buffer.ToArray());
                }

                start = pa;
                buffer.Clear();
            }

            buffer.AddRange(page);
            expected = pa + 4096;
        }

        if (start is not null)
        {
            yield return (start.Value, buffer.ToArray());
        }
    }
}
