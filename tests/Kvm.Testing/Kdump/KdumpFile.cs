using System.Buffers.Binary;
using System.Text;

namespace Kvm.Testing.Kdump;

/// <summary>How <see cref="KdumpFile.ToFlattened"/> cuts the file into records.</summary>
public sealed record FlattenOptions
{
    /// <summary>Bytes per record (the last one may be shorter).</summary>
    public int RecordSize { get; init; } = 4096;

    /// <summary>When set, the records are written in an order shuffled with this seed.</summary>
    public int? ShuffleSeed { get; init; }

    /// <summary>
    /// Write garbage records first that later records overwrite: the bitmap region, a range straddling the header
    /// and sub-header, and a range straddling two records in the page data; then rewrite the bitmaps once more at the
    /// end, as makedumpfile does once per cycle.
    /// </summary>
    public bool RewriteOverlaps { get; init; }

    /// <summary>Leave out all-zero records (except the last), so the reader must treat the gaps as zeros.</summary>
    public bool OmitZeroRecords { get; init; }

    /// <summary>Write the -1/-1 end marker.</summary>
    public bool EndMarker { get; init; } = true;
}

/// <summary>A kdump file made by <see cref="KdumpBuilder"/>, with the offsets tests need to corrupt it.</summary>
public sealed class KdumpFile
{
    /// <summary>Creates the description.</summary>
    public KdumpFile(byte[] bytes, int blockSize, bool bigEndian, long bitmapOffset, long bitmap2Offset, long descriptorOffset, long dataOffset, int descriptorCount, long noteOffset, long vmcoreInfoOffset)
    {
        Bytes = bytes;
        BlockSize = blockSize;
        BigEndian = bigEndian;
        BitmapOffset = bitmapOffset;
        Bitmap2Offset = bitmap2Offset;
        DescriptorOffset = descriptorOffset;
        DataOffset = dataOffset;
        DescriptorCount = descriptorCount;
        NoteOffset = noteOffset;
        VmcoreInfoOffset = vmcoreInfoOffset;
    }

    /// <summary>The file's bytes (tests may patch them).</summary>
    public byte[] Bytes { get; }

    /// <summary>block_size.</summary>
    public int BlockSize { get; }

    /// <summary>Byte order of the header and descriptors.</summary>
    public bool BigEndian { get; }

    /// <summary>Offset of the memory bitmap.</summary>
    public long BitmapOffset { get; }

    /// <summary>Offset of the dumpable bitmap.</summary>
    public long Bitmap2Offset { get; }

    /// <summary>Offset of page descriptor 0.</summary>
    public long DescriptorOffset { get; }

    /// <summary>Offset of the page data.</summary>
    public long DataOffset { get; }

    /// <summary>Number of page descriptors.</summary>
    public int DescriptorCount { get; }

    /// <summary>offset_note, or 0.</summary>
    public long NoteOffset { get; }

    /// <summary>offset_vmcoreinfo, or 0.</summary>
    public long VmcoreInfoOffset { get; }

    /// <summary>Offset of page descriptor <paramref name="index"/>.</summary>
    public long DescriptorAt(int index) => DescriptorOffset + (24L * index);

    /// <summary>Reads descriptor <paramref name="index"/>: data offset, size, flags.</summary>
    public (long Offset, uint Size, uint Flags) ReadDescriptor(int index)
    {
        var d = Bytes.AsSpan((int)DescriptorAt(index), 24);
        return BigEndian
            ? (BinaryPrimitives.ReadInt64BigEndian(d), BinaryPrimitives.ReadUInt32BigEndian(d[8..]), BinaryPrimitives.ReadUInt32BigEndian(d[12..]))
            : (BinaryPrimitives.ReadInt64LittleEndian(d), BinaryPrimitives.ReadUInt32LittleEndian(d[8..]), BinaryPrimitives.ReadUInt32LittleEndian(d[12..]));
    }

    /// <summary>Overwrites fields of descriptor <paramref name="index"/>.</summary>
    public void PatchDescriptor(int index, long? offset = null, uint? size = null, uint? flags = null)
    {
        var d = Bytes.AsSpan((int)DescriptorAt(index), 24);
        if (offset is { } o)
        {
            WriteInt64(d, o);
        }

        if (size is { } s)
        {
            WriteUInt32(d[8..], s);
        }

        if (flags is { } f)
        {
            WriteUInt32(d[12..], f);
        }
    }

    /// <summary>Writes a 32-bit value at <paramref name="offset"/> in the file's byte order.</summary>
    public void PatchUInt32(long offset, uint value) => WriteUInt32(Bytes.AsSpan((int)offset), value);

    /// <summary>Writes a 64-bit value at <paramref name="offset"/> in the file's byte order.</summary>
    public void PatchUInt64(long offset, ulong value) => WriteInt64(Bytes.AsSpan((int)offset), unchecked((long)value));

    /// <summary>The file cut after <paramref name="length"/> bytes.</summary>
    public byte[] Truncated(long length) => Bytes[..(int)length];

    /// <summary>
    /// The file as a flattened stream (makedumpfile -F): a 4096-byte header with "makedumpfile", type 1, version 1
    /// (big-endian), then big-endian (offset, size) records, then the -1/-1 end marker.
    /// </summary>
    public byte[] ToFlattened(FlattenOptions? options = null)
    {
        options ??= new FlattenOptions();
        var records = new List<(long Offset, byte[] Data)>();
        var garbage = new List<(long Offset, byte[] Data)>();
        long length = Bytes.LongLength;
        if (options.RewriteOverlaps)
        {
            garbage.Add((BitmapOffset, Filled(DescriptorOffset - BitmapOffset, 0xFF)));
            garbage.Add((BlockSize - 10, Filled(60, 0xEE)));
            long mid = DataOffset + (options.RecordSize / 2);
            if (mid + options.RecordSize <= length)
            {
                garbage.Add((mid, Filled(options.RecordSize, 0xCC)));
            }
        }

        var chunks = new List<(long Offset, byte[] Data)>();
        for (long at = 0; at < length; at += options.RecordSize)
        {
            int n = (int)Math.Min(options.RecordSize, length - at);
            var data = Bytes.AsSpan((int)at, n).ToArray();
            bool last = at + n >= length;
            bool overlapsGarbage = garbage.Any(g => g.Offset < at + n && at < g.Offset + g.Data.Length);
            if (options.OmitZeroRecords && !last && !overlapsGarbage && !data.AsSpan().ContainsAnyExcept((byte)0))
            {
                continue;
            }

            chunks.Add((at, data));
        }

        if (options.ShuffleSeed is { } seed)
        {
            var rng = new Random(seed);
            for (int i = chunks.Count - 1; i > 0; i--)
            {
                int j = rng.Next(i + 1);
                (chunks[i], chunks[j]) = (chunks[j], chunks[i]);
            }
        }

        records.AddRange(garbage);
        records.AddRange(chunks);
        if (options.RewriteOverlaps)
        {
            records.Add((BitmapOffset, Bytes.AsSpan((int)BitmapOffset, (int)(DescriptorOffset - BitmapOffset)).ToArray()));
        }

        using var ms = new MemoryStream();
        var header = new byte[4096];
        Encoding.ASCII.GetBytes("makedumpfile").CopyTo(header, 0);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(16), 1);
        BinaryPrimitives.WriteInt64BigEndian(header.AsSpan(24), 1);
        ms.Write(header);
        Span<byte> rh = stackalloc byte[16];
        foreach (var (offset, data) in records)
        {
            BinaryPrimitives.WriteInt64BigEndian(rh, offset);
            BinaryPrimitives.WriteInt64BigEndian(rh[8..], data.Length);
            ms.Write(rh);
            ms.Write(data);
        }

        if (options.EndMarker)
        {
            BinaryPrimitives.WriteInt64BigEndian(rh, -1);
            BinaryPrimitives.WriteInt64BigEndian(rh[8..], -1);
            ms.Write(rh);
        }

        return ms.ToArray();
    }

    /// <summary>
    /// Reassembles a flattened stream the way <c>makedumpfile -R</c> does (every record <c>pwrite</c>n at its offset
    /// in order, holes left as zeros): the reference the in-place reader is compared with.
    /// </summary>
    public static byte[] Reassemble(byte[] flattened)
    {
        long pos = 4096;
        var output = new MemoryStream();
        while (pos + 16 <= flattened.Length)
        {
            long offset = BinaryPrimitives.ReadInt64BigEndian(flattened.AsSpan((int)pos));
            long size = BinaryPrimitives.ReadInt64BigEndian(flattened.AsSpan((int)pos + 8));
            if (offset == -1 && size == -1)
            {
                break;
            }

            output.Position = offset;
            output.Write(flattened, (int)pos + 16, (int)size);
            pos += 16 + size;
        }

        return output.ToArray();
    }

    private static byte[] Filled(long count, byte value)
    {
        var b = new byte[count];
        Array.Fill(b, value);
        return b;
    }

    private void WriteUInt32(Span<byte> s, uint v)
    {
        if (BigEndian)
        {
            BinaryPrimitives.WriteUInt32BigEndian(s, v);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s, v);
        }
    }

    private void WriteInt64(Span<byte> s, long v)
    {
        if (BigEndian)
        {
            BinaryPrimitives.WriteInt64BigEndian(s, v);
        }
        else
        {
            BinaryPrimitives.WriteInt64LittleEndian(s, v);
        }
    }
}
