namespace Kvm.Testing.FreeBsd;

/// <summary>
/// The kernel's set of pages to dump, as sys/vm/vm_dumpset.h keeps it (FreeBSD 13+: one bit per page of the
/// <c>dump_avail</c> ranges, in range order) or as older kernels kept it (<c>vm_page_dump</c>: one bit per page
/// frame number from 0, sys/amd64/amd64/minidump_machdep.c <c>dump_add_page</c> before 13).
/// </summary>
public sealed class DumpSet
{
    private readonly IReadOnlyList<(ulong Start, ulong End)> _avail;
    private readonly int _shift;
    private readonly SortedSet<ulong> _bits = [];

    /// <param name="dumpAvail">The <c>dump_avail</c> ranges, [start, end).</param>
    /// <param name="pageSize">The kernel's page size.</param>
    /// <param name="indexedByAvail">True for FreeBSD 13+ bit ids (minidump amd64 v3, arm64 v2+, i386 v2); false for pfn bits.</param>
    public DumpSet(IReadOnlyList<(ulong Start, ulong End)> dumpAvail, int pageSize, bool indexedByAvail)
    {
        _avail = dumpAvail;
        PageSize = pageSize;
        _shift = System.Numerics.BitOperations.TrailingZeroCount(pageSize);
        IndexedByAvail = indexedByAvail;
    }

    public int PageSize { get; }

    public bool IndexedByAvail { get; }

    public IReadOnlyList<(ulong Start, ulong End)> DumpAvail => _avail;

    /// <summary><c>vm_page_dump_pages</c>: the bits the set has room for.</summary>
    public ulong BitCount => IndexedByAvail
        ? _avail.Aggregate(0UL, (n, r) => n + (((r.End + (ulong)PageSize - 1) >> _shift) - (r.Start >> _shift)))
        : (_avail.Max(r => r.End) + (ulong)PageSize - 1) >> _shift;

    /// <summary><c>vm_phys_is_dumpable</c> for pages without a vm_page: inside a <c>dump_avail</c> range.</summary>
    public bool IsDumpable(ulong pa) => _avail.Any(r => pa >= r.Start && pa < r.End);

    /// <summary><c>dump_add_page</c> / <c>vm_page_dump_add</c>: pages outside every range are ignored.</summary>
    public void Add(ulong pa)
    {
        if (BitOf(pa) is { } bit)
        {
            _bits.Add(bit);
        }
    }

    public void Drop(ulong pa)
    {
        if (BitOf(pa) is { } bit)
        {
            _bits.Remove(bit);
        }
    }

    /// <summary><c>VM_PAGE_DUMP_FOREACH</c>: the pages, in bit order.</summary>
    public IEnumerable<ulong> Pages => _bits.Select(PhysicalOf);

    public int Count => _bits.Count;

    /// <summary>The bitmap, <paramref name="bytes"/> long (little-endian 64-bit words, as the kernel's bitset).</summary>
    public byte[] Bitmap(int bytes)
    {
        var map = new byte[bytes];
        foreach (var bit in _bits)
        {
            map[bit / 8] |= (byte)(1 << (int)(bit % 8));
        }

        return map;
    }

    private ulong? BitOf(ulong pa)
    {
        if (!IndexedByAvail)
        {
            return IsDumpable(pa) ? pa >> _shift : null;
        }

        ulong adj = 0;
        foreach (var (start, end) in _avail)
        {
            if (pa >= start && pa < end)
            {
                return (pa >> _shift) - (start >> _shift) + adj;
            }

            adj += ((end + (ulong)PageSize - 1) >> _shift) - (start >> _shift);
        }

        return null;
    }

    private ulong PhysicalOf(ulong bit)
    {
        if (!IndexedByAvail)
        {
            return bit << _shift;
        }

        foreach (var (start, end) in _avail)
        {
            ulong total = ((end + (ulong)PageSize - 1) >> _shift) - (start >> _shift);
            if (bit < total)
            {
                return (bit << _shift) + (start & ~(ulong)(PageSize - 1));
            }

            bit -= total;
        }

        throw new InvalidOperationException("bit beyond dump_avail");
    }
}

/// <summary>Lays out a minidump file: every part starts on a page boundary and is padded to one.</summary>
public sealed class MinidumpFile
{
    private readonly MemoryStream _stream = new();

    public MinidumpFile(int pageSize)
    {
        PageSize = pageSize;
    }

    public int PageSize { get; }

    public long Length => _stream.Length;

    /// <summary>Writes <paramref name="data"/> and pads it to a page (blk_write of round_page bytes).</summary>
    public MinidumpFile Write(ReadOnlySpan<byte> data)
    {
        _stream.Write(data);
        long pad = (PageSize - (_stream.Length % PageSize)) % PageSize;
        _stream.Write(new byte[pad]);
        return this;
    }

    public byte[] ToArray() => _stream.ToArray();

    public static ulong RoundPage(ulong value, int pageSize) => (value + (ulong)pageSize - 1) / (ulong)pageSize * (ulong)pageSize;

    /// <summary>The header page: the magic, NUL-padded to 24 bytes, then the fields the caller writes.</summary>
    public static byte[] HeaderPage(string magic, int pageSize, Action<BinaryWriter> fields)
    {
        var page = new byte[pageSize];
        using var ms = new MemoryStream(page);
        using var w = new BinaryWriter(ms);
        var m = new byte[24];
        System.Text.Encoding.ASCII.GetBytes(magic).CopyTo(m, 0);
        w.Write(m);
        fields(w);
        return page;
    }

    /// <summary>The <c>dump_avail</c> page: the array the kernel holds, pairs of 64-bit addresses, zero-terminated.</summary>
    public static byte[] DumpAvailPage(IReadOnlyList<(ulong Start, ulong End)> ranges, int pageSize)
    {
        var page = new byte[pageSize];
        for (int i = 0; i < ranges.Count; i++)
        {
            BitConverter.GetBytes(ranges[i].Start).CopyTo(page, i * 16);
            BitConverter.GetBytes(ranges[i].End).CopyTo(page, (i * 16) + 8);
        }

        return page;
    }
}
