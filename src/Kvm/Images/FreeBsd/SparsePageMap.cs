using System.Buffers.Binary;
using System.Numerics;

namespace Kvm.Images.FreeBsd;

/// <summary>Where a minidump keeps a page, or why it does not.</summary>
internal enum SparsePageStatus
{
    /// <summary>The page's bytes are in the sparse area at the offset given.</summary>
    Present,

    /// <summary>The address lies in no <c>dump_avail</c> range: the machine had no dumpable memory there.</summary>
    NotInImage,

    /// <summary>The page is memory the dump could have held, but its bit is clear (not dumped).</summary>
    Excluded,

    /// <summary>The bit is set but the file ends before the page (a truncated dump).</summary>
    Truncated,
}

/// <summary>
/// A minidump's map from physical pages to file offsets: one bit per page in <c>dump_avail</c> order, each set bit
/// standing for the next page of the sparse area (lib/libkvm kvm_private.c <c>_kvm_pt_init</c>,
/// <c>_kvm_pt_find</c>, <c>_kvm_pa_bit_id</c>, <c>_kvm_bit_id_pa</c>; sys/vm/vm_dumpset.h <c>vm_page_dump_add</c>).
/// </summary>
/// <remarks>
/// <para>
/// Bit ids count only the pages of the <c>dump_avail</c> ranges: a range [start, end) holds ceil(end / page) -
/// start / page bits, and the ranges follow each other. Dumps older than <c>dump_avail</c> in the file (amd64 v1
/// and v2, arm64 v1, i386 v1) imply one range from 0 covering the whole bitmap, so the bit id is the page frame
/// number.
/// </para>
/// <para>
/// A page's offset is the sparse area's start plus the count of set bits before its bit, times the page size.
/// Counting is O(1): the count before every 512th bit is precomputed (libkvm keeps one every 1024 bits), so a
/// look-up adds at most eight 64-bit popcounts to one table entry. Memory is one <c>long</c> per 64 bytes of
/// bitmap.
/// </para>
/// <para>
/// FreeBSD's look-up returns a bit for an address between two ranges (the arithmetic borrows from the previous
/// range's count, aliasing another page); here such an address is simply not in the image. The look-up compares
/// the page-aligned address with each range's end as FreeBSD does, so a page a range boundary splits belongs to the
/// first range.
/// </para>
/// </remarks>
internal sealed class SparsePageMap
{
    private const int WordsPerBin = 8;

    private readonly ulong[] _words;
    private readonly long[] _ranks;
    private readonly AvailRange[] _ranges;
    private readonly int _pageShift;

    /// <param name="bitmap">The bitmap as stored (little-endian words; any length).</param>
    /// <param name="dumpAvail">The <c>dump_avail</c> ranges, ascending and disjoint; null for the implied single range.</param>
    /// <param name="pageSize">The dump's page size.</param>
    /// <param name="sparseOffset">Where the sparse area starts in the file.</param>
    /// <param name="fileLength">The file's length, to tell pages the file lost.</param>
    public SparsePageMap(ReadOnlySpan<byte> bitmap, IReadOnlyList<PhysicalRange>? dumpAvail, int pageSize, long sparseOffset, long fileLength)
    {
        PageSize = pageSize;
        _pageShift = BitOperations.TrailingZeroCount(pageSize);
        SparseOffset = sparseOffset;
        BitCount = (ulong)bitmap.Length * 8;
        _words = new ulong[(bitmap.Length + 7) / 8];
        for (int i = 0; i < _words.Length; i++)
        {
            int at = i * 8;
            _words[i] = bitmap.Length - at >= 8
                ? BinaryPrimitives.ReadUInt64LittleEndian(bitmap[at..])
                : Tail(bitmap[at..]);
        }

        _ranks = new long[(_words.Length / WordsPerBin) + 1];
        long count = 0;
        for (int i = 0; i < _words.Length; i++)
        {
            if (i % WordsPerBin == 0)
            {
                _ranks[i / WordsPerBin] = count;
            }

            count += BitOperations.PopCount(_words[i]);
        }

        SetBits = count;
        long inFile = fileLength > sparseOffset ? (fileLength - sparseOffset) >> _pageShift : 0;
        StoredPages = Math.Min(count, inFile);

        var ranges = dumpAvail ?? [new PhysicalRange(0, BitCount << _pageShift)];
        _ranges = new AvailRange[ranges.Count];
        ulong firstBit = 0;
        for (int i = 0; i < ranges.Count; i++)
        {
            ulong startPfn = ranges[i].Start >> _pageShift;
            ulong endPfn = (ranges[i].End + (ulong)(pageSize - 1)) >> _pageShift;
            _ranges[i] = new AvailRange(ranges[i].Start, ranges[i].End, startPfn, firstBit);
            firstBit += endPfn - startPfn;
        }

        Ranges = ranges;
        BitsDescribed = firstBit;
    }

    /// <summary>The page size the bit ids count in.</summary>
    public int PageSize { get; }

    /// <summary>Where the sparse area starts in the file.</summary>
    public long SparseOffset { get; }

    /// <summary>Bits in the bitmap.</summary>
    public ulong BitCount { get; }

    /// <summary>Pages the <c>dump_avail</c> ranges describe (bit ids 0 to this).</summary>
    public ulong BitsDescribed { get; }

    /// <summary>Set bits: pages the dump meant to hold.</summary>
    public long SetBits { get; }

    /// <summary>Pages the file actually holds (fewer than <see cref="SetBits"/> in a truncated dump).</summary>
    public long StoredPages { get; }

    /// <summary>The <c>dump_avail</c> ranges, or the implied one.</summary>
    public IReadOnlyList<PhysicalRange> Ranges { get; }

    /// <summary>Finds the file offset of the page holding <paramref name="physicalAddress"/> (of its first byte).</summary>
    public SparsePageStatus Find(ulong physicalAddress, out long fileOffset)
    {
        fileOffset = -1;
        if (!TryGetBit(physicalAddress, out ulong bit))
        {
            return SparsePageStatus.NotInImage;
        }

        if (bit >= BitCount || (_words[bit >> 6] & (1UL << (int)(bit & 63))) == 0)
        {
            return SparsePageStatus.Excluded;
        }

        long rank = Rank(bit);
        if (rank >= StoredPages)
        {
            return SparsePageStatus.Truncated;
        }

        fileOffset = SparseOffset + (rank << _pageShift);
        return SparsePageStatus.Present;
    }

    /// <summary>The bit id of the page holding <paramref name="physicalAddress"/>; false outside every range.</summary>
    public bool TryGetBit(ulong physicalAddress, out ulong bit)
    {
        bit = 0;
        ulong page = physicalAddress & ~(ulong)(PageSize - 1);

        // The first range whose end lies above the page, as _kvm_pa_bit_id walks them.
        int lo = 0;
        int hi = _ranges.Length - 1;
        int found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (page < _ranges[mid].End)
            {
                found = mid;
                hi = mid - 1;
            }
            else
            {
                lo = mid + 1;
            }
        }

        if (found < 0)
        {
            return false;
        }

        var r = _ranges[found];
        ulong pfn = page >> _pageShift;
        if (pfn < r.StartPfn)
        {
            return false;
        }

        bit = r.FirstBit + (pfn - r.StartPfn);
        return true;
    }

    /// <summary>The physical address of bit <paramref name="bit"/>'s page; false beyond the ranges.</summary>
    public bool TryGetPhysical(ulong bit, out ulong physicalAddress)
    {
        physicalAddress = 0;
        int lo = 0;
        int hi = _ranges.Length - 1;
        int found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_ranges[mid].FirstBit <= bit)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        if (found < 0 || bit >= BitsDescribed)
        {
            return false;
        }

        var r = _ranges[found];
        physicalAddress = (r.StartPfn + (bit - r.FirstBit)) << _pageShift;
        return true;
    }

    /// <summary>
    /// The physical addresses of the pages the file holds, ascending, each with its file offset. Set bits beyond
    /// the ranges (which no writer sets) are skipped, but still count for the offsets of later pages, as FreeBSD
    /// counts them.
    /// </summary>
    public IEnumerable<(ulong PhysicalAddress, long FileOffset)> EnumeratePresentPages()
    {
        long rank = 0;
        for (int w = 0; w < _words.Length && rank < StoredPages; w++)
        {
            ulong bits = _words[w];
            while (bits != 0 && rank < StoredPages)
            {
                int b = BitOperations.TrailingZeroCount(bits);
                bits &= bits - 1;
                ulong bit = ((ulong)w << 6) + (ulong)b;
                if (TryGetPhysical(bit, out ulong pa))
                {
                    yield return (pa, SparseOffset + (rank << _pageShift));
                }

                rank++;
            }
        }
    }

    /// <summary>Set bits before <paramref name="bit"/>.</summary>
    private long Rank(ulong bit)
    {
        ulong word = bit >> 6;
        long rank = _ranks[word / WordsPerBin];
        for (ulong w = word / WordsPerBin * WordsPerBin; w < word; w++)
        {
            rank += BitOperations.PopCount(_words[w]);
        }

        return rank + BitOperations.PopCount(_words[word] & ((1UL << (int)(bit & 63)) - 1));
    }

    private static ulong Tail(ReadOnlySpan<byte> bytes)
    {
        ulong value = 0;
        for (int i = 0; i < bytes.Length; i++)
        {
            value |= (ulong)bytes[i] << (8 * i);
        }

        return value;
    }

    private readonly record struct AvailRange(ulong Start, ulong End, ulong StartPfn, ulong FirstBit);
}
