namespace Kvm.Images;

/// <summary>
/// A sorted, non-overlapping map from physical addresses to file offsets, built from possibly overlapping segments
/// (a kexec vmcore's kernel-text PT_LOAD overlaps its RAM PT_LOAD; both hold the same bytes). Where segments overlap,
/// the one that starts first keeps the overlap. Look-up is a binary search.
/// </summary>
internal sealed class SegmentMap
{
    private readonly Entry[] _entries;

    public SegmentMap(IEnumerable<Entry> segments)
    {
        var sorted = segments.Where(s => s.Length > 0).OrderBy(s => s.Start).ThenByDescending(s => s.Length).ToList();
        var result = new List<Entry>(sorted.Count);
        ulong coveredEnd = 0;
        bool any = false;
        foreach (var s in sorted)
        {
            ulong end = s.Start + s.Length;
            if (!any || s.Start >= coveredEnd)
            {
                result.Add(s);
                coveredEnd = end;
                any = true;
            }
            else if (end > coveredEnd)
            {
                ulong skip = coveredEnd - s.Start;
                ulong fileLength = s.FileLength > skip ? s.FileLength - skip : 0;
                result.Add(new Entry(coveredEnd, s.Length - skip, s.FileOffset + (long)skip, fileLength));
                coveredEnd = end;
            }
        }

        _entries = [.. result];
    }

    /// <summary>A mapped range: <see cref="Length"/> bytes from <see cref="Start"/>, of which the first <see cref="FileLength"/> are in the file at <see cref="FileOffset"/>.</summary>
    internal readonly record struct Entry(ulong Start, ulong Length, long FileOffset, ulong FileLength);

    public IReadOnlyList<Entry> Entries => _entries;

    /// <summary>Finds the entry containing <paramref name="address"/>.</summary>
    public bool TryFind(ulong address, out Entry entry)
    {
        int lo = 0;
        int hi = _entries.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var e = _entries[mid];
            if (address < e.Start)
            {
                hi = mid - 1;
            }
            else if (address - e.Start >= e.Length)
            {
                lo = mid + 1;
            }
            else
            {
                entry = e;
                return true;
            }
        }

        entry = default;
        return false;
    }

    /// <summary>The coalesced ranges covered.</summary>
    public IReadOnlyList<PhysicalRange> ToRanges()
    {
        var ranges = new List<PhysicalRange>();
        foreach (var e in _entries)
        {
            if (ranges.Count > 0 && ranges[^1].End == e.Start)
            {
                ranges[^1] = new PhysicalRange(ranges[^1].Start, ranges[^1].Length + e.Length);
            }
            else
            {
                ranges.Add(new PhysicalRange(e.Start, e.Length));
            }
        }

        return ranges;
    }
}
