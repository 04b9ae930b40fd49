using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using Snappier;
using ZstdSharp;

namespace Kvm.Testing.Kdump;

/// <summary>How the builder stores one page.</summary>
public enum KdumpPageCompression
{
    /// <summary>Raw page, flags 0.</summary>
    None,

    /// <summary>zlib stream, flag 0x1.</summary>
    Zlib,

    /// <summary>LZO1X block, flag 0x2.</summary>
    Lzo,

    /// <summary>Raw snappy block, flag 0x4.</summary>
    Snappy,

    /// <summary>One zstd frame, flag 0x20.</summary>
    Zstd,
}

/// <summary>The header layout the builder writes.</summary>
public enum KdumpBuilderLayout
{
    /// <summary>64-bit kernel.</summary>
    Bits64,

    /// <summary>32-bit kernel, 64-bit fields aligned to 4 (i386).</summary>
    Bits32Packed,

    /// <summary>32-bit kernel, 64-bit fields aligned to 8 (arm).</summary>
    Bits32Padded,
}

/// <summary>An ELF note to put in the notes blob.</summary>
public sealed record KdumpNote(string Name, uint Type, byte[] Descriptor);

/// <summary>
/// Writes kdump-compressed files the way makedumpfile's <c>write_kdump_header</c> and
/// <c>write_kdump_pages_and_bitmap_cyclic</c> lay them out: header block, sub-header plus notes, two bitmaps
/// (memory, then dumpable), page descriptors, then page data with one shared zero page at its start.
/// </summary>
public sealed class KdumpBuilder
{
    /// <summary>page_desc flag values (makedumpfile diskdump_mod.h).</summary>
    public const uint FlagZlib = 0x1;

    /// <summary>LZO page flag.</summary>
    public const uint FlagLzo = 0x2;

    /// <summary>Snappy page flag.</summary>
    public const uint FlagSnappy = 0x4;

    /// <summary>Zstd page flag.</summary>
    public const uint FlagZstd = 0x20;

    /// <summary>Header status: incomplete dump.</summary>
    public const uint StatusIncomplete = 0x8;

    private readonly SortedDictionary<ulong, PageEntry> _pages = [];
    private readonly SortedSet<ulong> _excluded = [];

    /// <summary>Block (page) size.</summary>
    public int BlockSize { get; set; } = 4096;

    /// <summary>header_version, 0 to 6.</summary>
    public int HeaderVersion { get; set; } = 6;

    /// <summary>Word size and alignment of the header.</summary>
    public KdumpBuilderLayout Layout { get; set; } = KdumpBuilderLayout.Bits64;

    /// <summary>Byte order of the header and descriptors.</summary>
    public bool BigEndian { get; set; }

    /// <summary>The 8-byte signature.</summary>
    public string Signature { get; set; } = "KDUMP   ";

    /// <summary>utsname.machine.</summary>
    public string Machine { get; set; } = "x86_64";

    /// <summary>utsname.release.</summary>
    public string Release { get; set; } = "6.8.0-kvm-test";

    /// <summary>max_mapnr; by default one past the highest pfn added.</summary>
    public ulong? MaxPfn { get; set; }

    /// <summary>dump_level (v1+).</summary>
    public int DumpLevel { get; set; } = 31;

    /// <summary>phys_base (v1+).</summary>
    public ulong PhysBase { get; set; }

    /// <summary>Point every all-zero page at one raw zero page, as makedumpfile (-d bit 1) and QEMU do.</summary>
    public bool ShareZeroPages { get; set; } = true;

    /// <summary>VMCOREINFO text: a note (v4+) and offset_vmcoreinfo (v3+).</summary>
    public string? VmcoreInfo { get; set; }

    /// <summary>Notes before VMCOREINFO (PRSTATUS, QEMU CPU state, …), v4+.</summary>
    public List<KdumpNote> Notes { get; } = [];

    /// <summary>When set, only this many dumpable pages get a descriptor and data; the rest are zeroed and status has 0x8.</summary>
    public int? IncompleteAfter { get; set; }

    /// <summary>Extra header status bits.</summary>
    public uint ExtraStatus { get; set; }

    /// <summary>timestamp.tv_usec (a power of two here tests that a 64-bit header is not read as 32-bit).</summary>
    public ulong TimestampMicroseconds { get; set; } = 123456;

    /// <summary>Adds a dumpable page (BlockSize bytes) stored with <paramref name="compression"/> (raw if it does not shrink).</summary>
    public KdumpBuilder AddPage(ulong pfn, byte[] data, KdumpPageCompression compression = KdumpPageCompression.None)
    {
        _excluded.Remove(pfn);
        _pages[pfn] = new PageEntry(data, compression, null, 0);
        return this;
    }

    /// <summary>Adds a dumpable page whose stored bytes and flags are given as they are (precompressed or corrupt data).</summary>
    public KdumpBuilder AddStoredPage(ulong pfn, byte[] stored, uint flags)
    {
        _excluded.Remove(pfn);
        _pages[pfn] = new PageEntry(null, KdumpPageCompression.None, stored, flags);
        return this;
    }

    /// <summary>Marks pages as present in memory but excluded (bitmap1 set, bitmap2 clear).</summary>
    public KdumpBuilder AddExcludedPages(ulong startPfn, ulong count = 1)
    {
        for (ulong p = startPfn; p < startPfn + count; p++)
        {
            if (!_pages.ContainsKey(p))
            {
                _excluded.Add(p);
            }
        }

        return this;
    }

    /// <summary>Builds one (non-split) file.</summary>
    public KdumpFile Build()
    {
        ulong max = EffectiveMaxPfn();
        return BuildPart(0, max, split: false);
    }

    /// <summary>
    /// Builds a split set like <c>makedumpfile --split</c>: <paramref name="boundaries"/> are the first pfns of the
    /// second and later parts. Every part has the full bitmaps; descriptors and data only for its range.
    /// </summary>
    public IReadOnlyList<KdumpFile> BuildSplit(params ulong[] boundaries)
    {
        ulong max = EffectiveMaxPfn();
        var edges = new List<ulong> { 0 };
        edges.AddRange(boundaries);
        edges.Add(max);
        var parts = new List<KdumpFile>();
        for (int i = 0; i + 1 < edges.Count; i++)
        {
            parts.Add(BuildPart(edges[i], edges[i + 1], split: true));
        }

        return parts;
    }

    /// <summary>A page of <paramref name="size"/> bytes filled from a seeded generator with some repetition (compressible).</summary>
    public static byte[] PatternPage(int seed, int size = 4096)
    {
        var page = new byte[size];
        var rng = new Random(seed);
        for (int i = 0; i < size; i += 64)
        {
            int n = Math.Min(64, size - i);
            if (rng.Next(3) == 0 || i == 0)
            {
                for (int j = 0; j < n; j++)
                {
                    page[i + j] = (byte)rng.Next(256);
                }
            }
            else
            {
                int from = rng.Next(i / 64) * 64;
                Array.Copy(page, from, page, i, n);
                page[i] ^= (byte)seed;
            }
        }

        return page;
    }

    /// <summary>Compresses <paramref name="page"/> as makedumpfile would, returning the stored bytes and flags (raw when it does not shrink).</summary>
    public static (byte[] Stored, uint Flags) Compress(byte[] page, KdumpPageCompression compression)
    {
        (byte[] packed, uint flag) = compression switch
        {
            KdumpPageCompression.Zlib => (ZlibCompress(page), FlagZlib),
            KdumpPageCompression.Lzo => (Lzo1xTestEncoder.Compress(page), FlagLzo),
            KdumpPageCompression.Snappy => (Snappy.CompressToArray(page), FlagSnappy),
            KdumpPageCompression.Zstd => (ZstdCompress(page), FlagZstd),
            _ => (page, 0u),
        };
        return packed.Length < page.Length ? (packed, flag) : (page, 0u);
    }

    private static byte[] ZlibCompress(byte[] data)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true))
        {
            z.Write(data);
        }

        return ms.ToArray();
    }

    private static byte[] ZstdCompress(byte[] data)
    {
        using var c = new Compressor(3);
        return c.Wrap(data).ToArray();
    }

    private ulong EffectiveMaxPfn()
    {
        ulong highest = 0;
        if (_pages.Count > 0)
        {
            highest = Math.Max(highest, _pages.Keys.Max() + 1);
        }

        if (_excluded.Count > 0)
        {
            highest = Math.Max(highest, _excluded.Max + 1);
        }

        return MaxPfn ?? highest;
    }

    private KdumpFile BuildPart(ulong startPfn, ulong endPfn, bool split)
    {
        ulong maxPfn = EffectiveMaxPfn();
        int bs = BlockSize;
        var w = new Writer(BigEndian);
        bool is64 = Layout == KdumpBuilderLayout.Bits64;
        int subHeaderSize = Layout switch
        {
            KdumpBuilderLayout.Bits64 => 104,
            KdumpBuilderLayout.Bits32Packed => 80,
            _ => 96,
        };

        // Notes blob and VMCOREINFO placement (makedumpfile write_kdump_header: offset_note = block_size + sizeof(kh)).
        long extraOffset = bs + subHeaderSize;
        byte[] extra = [];
        long vmciOffset = 0;
        long vmciSize = 0;
        long noteOffset = 0;
        long noteSize = 0;
        byte[]? vmci = VmcoreInfo is null ? null : Encoding.ASCII.GetBytes(VmcoreInfo);
        if (HeaderVersion >= 4 && (Notes.Count > 0 || vmci is not null))
        {
            var blob = new List<byte>();
            foreach (var n in Notes)
            {
                AppendNote(blob, n.Name, n.Type, n.Descriptor, BigEndian, out _);
            }

            if (vmci is not null)
            {
                AppendNote(blob, "VMCOREINFO", 0, vmci, BigEndian, out int descAt);
                vmciOffset = extraOffset + descAt;
                vmciSize = vmci.Length;
            }

            extra = [.. blob];
            noteOffset = extraOffset;
            noteSize = extra.Length;
        }
        else if (HeaderVersion == 3 && vmci is not null)
        {
            extra = vmci;
            vmciOffset = extraOffset;
            vmciSize = vmci.Length;
        }

        int subHdrBlocks = (int)((subHeaderSize + extra.Length + bs - 1) / bs);
        long bitmapBlocksEach = Math.Max(1, (long)(((maxPfn + 7) / 8 + (ulong)bs - 1) / (ulong)bs));
        long bitmapBlocks = 2 * bitmapBlocksEach;
        long bitmapOffset = (1L + subHdrBlocks) * bs;
        long bitmap2Offset = bitmapOffset + (bitmapBlocksEach * bs);
        long descOffset = bitmapOffset + (bitmapBlocks * bs);

        var inRange = _pages.Where(p => p.Key >= startPfn && p.Key < endPfn).ToList();
        long dataOffset = descOffset + (24L * inRange.Count);

        // Encode pages.
        var encoded = new List<(ulong Pfn, byte[] Stored, uint Flags, bool Zero)>();
        uint status = ExtraStatus;
        bool anyZero = false;
        foreach (var (pfn, e) in inRange)
        {
            if (e.Stored is not null)
            {
                encoded.Add((pfn, e.Stored, e.Flags, false));
                status |= e.Flags & 0x27;
                continue;
            }

            if (e.Plain!.Length != bs)
            {
                throw new InvalidOperationException($"page {pfn} is {e.Plain.Length} bytes, not {bs}");
            }

            if (ShareZeroPages && !e.Plain.AsSpan().ContainsAnyExcept((byte)0))
            {
                encoded.Add((pfn, e.Plain, 0, true));
                anyZero = true;
                continue;
            }

            var (stored, flags) = Compress(e.Plain, e.Compression);
            status |= flags;
            encoded.Add((pfn, stored, flags, false));
        }

        if (IncompleteAfter is not null)
        {
            status |= StatusIncomplete;
        }

        // Page data: the shared zero page first, then every page in pfn order.
        var data = new List<byte>();
        long zeroOffset = dataOffset;
        if (anyZero)
        {
            data.AddRange(new byte[bs]);
        }

        var descs = new byte[24 * encoded.Count];
        for (int i = 0; i < encoded.Count; i++)
        {
            var (_, stored, flags, zero) = encoded[i];
            if (IncompleteAfter is { } limit && i >= limit)
            {
                continue;
            }

            long offset;
            int size;
            if (zero)
            {
                offset = zeroOffset;
                size = bs;
                flags = 0;
            }
            else
            {
                offset = dataOffset + data.Count;
                size = stored.Length;
                data.AddRange(stored);
            }

            w.Put64(descs, 24 * i, (ulong)offset);
            w.Put32(descs, (24 * i) + 8, (uint)size);
            w.Put32(descs, (24 * i) + 12, flags);
        }

        long total = dataOffset + data.Count;
        var file = new byte[total];

        // disk_dump_header.
        Encoding.ASCII.GetBytes(Signature.PadRight(8)[..8]).CopyTo(file, 0);
        w.Put32(file, 8, (uint)HeaderVersion);
        string[] uts = ["Linux", "kvm-test", Release, "#1 SMP PREEMPT_DYNAMIC", Machine, "(none)"];
        for (int i = 0; i < uts.Length; i++)
        {
            Encoding.ASCII.GetBytes(uts[i]).CopyTo(file, 12 + (65 * i));
        }

        int ts = is64 ? 408 : 404;
        int word = is64 ? 8 : 4;
        w.PutWord(file, ts, 1700000000, word);
        w.PutWord(file, ts + word, TimestampMicroseconds, word);
        int st = ts + (2 * word);
        w.Put32(file, st, status);
        w.Put32(file, st + 4, (uint)bs);
        w.Put32(file, st + 8, (uint)subHdrBlocks);
        w.Put32(file, st + 12, (uint)bitmapBlocks);
        w.Put32(file, st + 16, (uint)Math.Min(maxPfn, uint.MaxValue));
        w.Put32(file, st + 36, 1);

        // kdump_sub_header, fields by version.
        if (HeaderVersion >= 1)
        {
            var f = SubOffsets.For(Layout);
            int sb = bs;
            w.PutWord(file, sb + f.PhysBase, PhysBase, f.Word);
            w.Put32(file, sb + f.DumpLevel, (uint)DumpLevel);
            if (HeaderVersion >= 2)
            {
                w.Put32(file, sb + f.Split, split ? 1u : 0u);
                if (split)
                {
                    w.PutWord(file, sb + f.StartPfn, startPfn, f.Word);
                    w.PutWord(file, sb + f.EndPfn, endPfn, f.Word);
                }
            }

            if (HeaderVersion >= 3)
            {
                w.Put64(file, sb + f.OffsetVmcoreInfo, (ulong)vmciOffset);
                w.PutWord(file, sb + f.SizeVmcoreInfo, (ulong)vmciSize, f.Word);
            }

            if (HeaderVersion >= 4)
            {
                w.Put64(file, sb + f.OffsetNote, (ulong)noteOffset);
                w.PutWord(file, sb + f.SizeNote, (ulong)noteSize, f.Word);
            }

            if (HeaderVersion >= 6)
            {
                if (split)
                {
                    w.Put64(file, sb + f.StartPfn64, startPfn);
                    w.Put64(file, sb + f.EndPfn64, endPfn);
                }

                w.Put64(file, sb + f.MaxMapnr64, maxPfn);
            }

            extra.CopyTo(file, extraOffset);
        }

        // Bitmaps: memory (present or excluded), then dumpable; full size in every split part, as makedumpfile writes them.
        foreach (var pfn in _pages.Keys.Concat(_excluded))
        {
            if (pfn < maxPfn)
            {
                file[bitmapOffset + (long)(pfn / 8)] |= (byte)(1 << (int)(pfn % 8));
            }
        }

        foreach (var pfn in _pages.Keys)
        {
            if (pfn < maxPfn)
            {
                file[bitmap2Offset + (long)(pfn / 8)] |= (byte)(1 << (int)(pfn % 8));
            }
        }

        descs.CopyTo(file, descOffset);
        data.CopyTo(file, (int)dataOffset);
        return new KdumpFile(file, bs, BigEndian, bitmapOffset, bitmap2Offset, descOffset, dataOffset, encoded.Count, noteOffset, vmciOffset);
    }

    private static void AppendNote(List<byte> blob, string name, uint type, byte[] desc, bool bigEndian, out int descOffset)
    {
        var nameBytes = Encoding.ASCII.GetBytes(name + "\0");
        var header = new byte[12];
        var w = new Writer(bigEndian);
        w.Put32(header, 0, (uint)nameBytes.Length);
        w.Put32(header, 4, (uint)desc.Length);
        w.Put32(header, 8, type);
        blob.AddRange(header);
        blob.AddRange(nameBytes);
        Pad4(blob);
        descOffset = blob.Count;
        blob.AddRange(desc);
        Pad4(blob);
    }

    private static void Pad4(List<byte> blob)
    {
        while (blob.Count % 4 != 0)
        {
            blob.Add(0);
        }
    }

    private sealed record PageEntry(byte[]? Plain, KdumpPageCompression Compression, byte[]? Stored, uint Flags);

    /// <summary>kdump_sub_header field offsets per layout (diskdump_mod.h compiled for x86_64, i386, arm).</summary>
    private sealed record SubOffsets(int Word, int PhysBase, int DumpLevel, int Split, int StartPfn, int EndPfn,
        int OffsetVmcoreInfo, int SizeVmcoreInfo, int OffsetNote, int SizeNote, int StartPfn64, int EndPfn64, int MaxMapnr64)
    {
        public static SubOffsets For(KdumpBuilderLayout layout) => layout switch
        {
            KdumpBuilderLayout.Bits64 => new(8, 0, 8, 12, 16, 24, 32, 40, 48, 56, 80, 88, 96),
            KdumpBuilderLayout.Bits32Packed => new(4, 0, 4, 8, 12, 16, 20, 28, 32, 40, 56, 64, 72),
            _ => new(4, 0, 4, 8, 12, 16, 24, 32, 40, 48, 72, 80, 88),
        };
    }

    /// <summary>Writes integers in the dump's byte order.</summary>
    private sealed class Writer(bool bigEndian)
    {
        public void Put32(byte[] b, long at, uint v)
        {
            if (bigEndian)
            {
                BinaryPrimitives.WriteUInt32BigEndian(b.AsSpan((int)at), v);
            }
            else
            {
                BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan((int)at), v);
            }
        }

        public void Put64(byte[] b, long at, ulong v)
        {
            if (bigEndian)
            {
                BinaryPrimitives.WriteUInt64BigEndian(b.AsSpan((int)at), v);
            }
            else
            {
                BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan((int)at), v);
            }
        }

        public void PutWord(byte[] b, long at, ulong v, int size)
        {
            if (size == 8)
            {
                Put64(b, at, v);
            }
            else
            {
                Put32(b, at, unchecked((uint)v));
            }
        }
    }
}
