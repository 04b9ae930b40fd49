using System.Buffers.Binary;
using Kvm.IO;

namespace Kvm.Images.Kdump;

/// <summary>
/// A flattened kdump file (makedumpfile <c>-F</c>, QEMU <c>kdump-zlib|lzo|snappy</c>) read in place as the file
/// <c>makedumpfile -R</c> would reassemble from it, without writing anything.
/// </summary>
/// <remarks>
/// The stream (makedumpfile.h <c>struct makedumpfile_header</c>, <c>struct makedumpfile_data_header</c>) is a
/// 4096-byte header, then records of a big-endian i64 target offset, a big-endian i64 size and that many data
/// bytes, ended by a record whose offset and size are both -1. Reassembly is a <c>pwrite</c> of every record in
/// order, so where records overlap (makedumpfile rewrites the bitmaps once per cycle) the later record wins, and a
/// gap below the highest written offset is a hole that reads as zeros. The records are scanned once at open and
/// turned into a sorted table of non-overlapping segments (target offset, length, file offset) that reads
/// binary-search, as libkdumpfile's flatmap.c and crash's <c>store_flat_data_array</c> do.
/// </remarks>
internal sealed class FlattenedKdumpFileView : IKdumpFileView
{
    /// <summary>Size of the flattened header before the first record (makedumpfile MAX_SIZE_MDF_HEADER).</summary>
    public const int HeaderSize = 4096;

    /// <summary>Length of the NUL-padded signature field.</summary>
    public const int SignatureLength = 16;

    private const int RecordHeaderSize = 16;
    private const int ScanBufferSize = 64 << 10;

    private readonly RandomAccessFile _file;
    private readonly long[] _segStart;
    private readonly long[] _segLength;
    private readonly long[] _segFileOffset;

    private FlattenedKdumpFileView(RandomAccessFile file, long[] segStart, long[] segLength, long[] segFileOffset, long length, int recordCount)
    {
        _file = file;
        _segStart = segStart;
        _segLength = segLength;
        _segFileOffset = segFileOffset;
        Length = length;
        RecordCount = recordCount;
    }

    /// <inheritdoc/>
    public string Path => _file.Path;

    /// <summary>The length of the reassembled file: the highest end offset any record writes.</summary>
    public long Length { get; }

    /// <inheritdoc/>
    public bool IsFlattened => true;

    /// <summary>How many data records the stream holds.</summary>
    public int RecordCount { get; }

    /// <summary>How many non-overlapping segments the records resolved into.</summary>
    public int SegmentCount => _segStart.Length;

    /// <summary>
    /// True when <paramref name="header"/> starts with the flattened signature: "makedumpfile" NUL-padded to 16 bytes.
    /// The type and version fields are checked by <see cref="Open"/>, so that an unknown version is reported rather
    /// than mistaken for another format.
    /// </summary>
    public static bool HasSignature(ReadOnlySpan<byte> header) =>
        header.Length >= SignatureLength
        && header.StartsWith("makedumpfile"u8)
        && !header[12..SignatureLength].ContainsAnyExcept((byte)0);

    /// <summary>Scans the records of <paramref name="file"/> and builds the segment table.</summary>
    public static FlattenedKdumpFileView Open(RandomAccessFile file, KvmLimits limits)
    {
        Span<byte> header = stackalloc byte[SignatureLength + 16];
        if (file.Read(0, header) != header.Length || file.Length < HeaderSize)
        {
            throw new CorruptImageException($"{file.Path}: truncated flattened kdump header (file is {file.Length} bytes, the header alone is {HeaderSize})");
        }

        long type = BinaryPrimitives.ReadInt64BigEndian(header[SignatureLength..]);
        long version = BinaryPrimitives.ReadInt64BigEndian(header[(SignatureLength + 8)..]);
        if (type != 1 || version != 1)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{file.Path}: unsupported flattened kdump type {type} version {version} (only type 1 version 1 is known)");
        }

        var records = ScanRecords(file, limits);
        return Resolve(file, records);
    }

    /// <inheritdoc/>
    public int Read(long offset, Span<byte> buffer)
    {
        if (offset < 0 || offset >= Length)
        {
            return 0;
        }

        int total = 0;
        while (total < buffer.Length && offset < Length)
        {
            int remaining = buffer.Length - total;
            int i = FindSegment(offset);
            int n;
            if (i >= 0 && offset - _segStart[i] < _segLength[i])
            {
                n = (int)Math.Min(remaining, _segStart[i] + _segLength[i] - offset);
                int got = _file.Read(_segFileOffset[i] + (offset - _segStart[i]), buffer.Slice(total, n));
                if (got != n)
                {
                    // The scan saw this data; the file shrank since. Report what was read.
                    return total + got;
                }
            }
            else
            {
                // A hole between records: makedumpfile -R leaves it as zeros.
                long next = i + 1 < _segStart.Length ? _segStart[i + 1] : Length;
                n = (int)Math.Min(remaining, next - offset);
                buffer.Slice(total, n).Clear();
            }

            total += n;
            offset += n;
        }

        return total;
    }

    /// <inheritdoc/>
    /// <remarks>The record index gives it: the range must lie inside one resolved segment (a hole has no bytes on disk).</remarks>
    public long FileOffsetOf(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset >= Length)
        {
            return -1;
        }

        int i = FindSegment(offset);
        if (i < 0 || offset - _segStart[i] >= _segLength[i] || length > _segLength[i] - (offset - _segStart[i]))
        {
            return -1;
        }

        return _segFileOffset[i] + (offset - _segStart[i]);
    }

    /// <summary>The index of the last segment starting at or before <paramref name="offset"/>, or -1.</summary>
    private int FindSegment(long offset)
    {
        int i = Array.BinarySearch(_segStart, offset);
        return i >= 0 ? i : ~i - 1;
    }

    private static List<Record> ScanRecords(RandomAccessFile file, KvmLimits limits)
    {
        var records = new List<Record>();
        var buffer = new byte[ScanBufferSize];
        long bufferStart = 0;
        int bufferLength = 0;
        long pos = HeaderSize;
        long fileLength = file.Length;
        while (true)
        {
            if (pos == fileLength)
            {
                // No end marker, but every record is whole: keep what is there; reads past it report truncation.
                break;
            }

            if (fileLength - pos < RecordHeaderSize)
            {
                throw new CorruptImageException($"{file.Path}: flattened record {records.Count} at offset 0x{pos:x}: truncated record header ({fileLength - pos} of {RecordHeaderSize} bytes)");
            }

            if (pos < bufferStart || pos + RecordHeaderSize > bufferStart + bufferLength)
            {
                bufferStart = pos;
                bufferLength = file.Read(pos, buffer);
                if (bufferLength < RecordHeaderSize)
                {
                    throw new CorruptImageException($"{file.Path}: flattened record {records.Count} at offset 0x{pos:x}: cannot read the record header");
                }
            }

            var h = buffer.AsSpan((int)(pos - bufferStart), RecordHeaderSize);
            long target = BinaryPrimitives.ReadInt64BigEndian(h);
            long size = BinaryPrimitives.ReadInt64BigEndian(h[8..]);
            if (target == -1 && size == -1)
            {
                break;
            }

            if (target < 0 || size < 0 || size > long.MaxValue - target)
            {
                throw new CorruptImageException($"{file.Path}: flattened record {records.Count} at offset 0x{pos:x}: invalid target offset {target} or size {size}");
            }

            long dataStart = pos + RecordHeaderSize;
            if (size > fileLength - dataStart)
            {
                throw new CorruptImageException($"{file.Path}: flattened record {records.Count} at offset 0x{pos:x}: truncated record ({size} data bytes, only {fileLength - dataStart} left in the file)");
            }

            if (size > 0)
            {
                if (records.Count >= limits.MaxFlattenedRecords)
                {
                    throw new CorruptImageException($"{file.Path}: flattened record {records.Count} at offset 0x{pos:x}: more than {limits.MaxFlattenedRecords} records (KvmLimits.MaxFlattenedRecords)");
                }

                records.Add(new Record(target, target + size, dataStart));
            }

            pos = dataStart + size;
        }

        return records;
    }

    /// <summary>
    /// Resolves overlapping records into disjoint segments, later records winning, by a sweep over the record
    /// boundaries with a max-heap of the records covering the current point (O(n log n) however they overlap).
    /// </summary>
    private static FlattenedKdumpFileView Resolve(RandomAccessFile file, List<Record> records)
    {
        int n = records.Count;
        var byStart = new int[n];
        var startKeys = new long[n];
        var byEnd = new int[n];
        var endKeys = new long[n];
        long length = 0;
        for (int r = 0; r < n; r++)
        {
            byStart[r] = r;
            byEnd[r] = r;
            startKeys[r] = records[r].Start;
            endKeys[r] = records[r].End;
            length = Math.Max(length, records[r].End);
        }

        Array.Sort(startKeys, byStart);
        Array.Sort(endKeys, byEnd);

        var segStart = new List<long>();
        var segLength = new List<long>();
        var segFile = new List<long>();
        var active = new PriorityQueue<int, int>();
        var ended = new bool[n];
        int si = 0;
        int ei = 0;
        while (si < n || ei < n)
        {
            long p = si < n ? Math.Min(startKeys[si], endKeys[ei]) : endKeys[ei];
            while (ei < n && endKeys[ei] == p)
            {
                ended[byEnd[ei++]] = true;
            }

            while (si < n && startKeys[si] == p)
            {
                int r = byStart[si++];
                active.Enqueue(r, -r);
            }

            while (active.Count > 0 && ended[active.Peek()])
            {
                active.Dequeue();
            }

            if (active.Count == 0 || ei >= n)
            {
                continue;
            }

            long q = si < n ? Math.Min(startKeys[si], endKeys[ei]) : endKeys[ei];
            var top = records[active.Peek()];
            long fileOffset = top.DataOffset + (p - top.Start);
            int last = segStart.Count - 1;
            if (last >= 0 && segStart[last] + segLength[last] == p && segFile[last] + segLength[last] == fileOffset)
            {
                segLength[last] += q - p;
            }
            else
            {
                segStart.Add(p);
                segLength.Add(q - p);
                segFile.Add(fileOffset);
            }
        }

        return new FlattenedKdumpFileView(file, [.. segStart], [.. segLength], [.. segFile], length, n);
    }

    /// <summary>One data record: where it goes in the reassembled file and where its bytes are in the stream.</summary>
    private readonly record struct Record(long Start, long End, long DataOffset);
}
