using System.Buffers;
using System.Buffers.Binary;
using Kvm.IO;

namespace Kvm.Images.Kdump;

/// <summary>
/// A kdump-compressed dump (makedumpfile <c>-c/-l/-p/-z</c>, QEMU <c>kdump-*</c>): one file, a flattened file read
/// in place, or the parts of a <c>makedumpfile --split</c> set. Physical reads go pfn -> bitmap checks -> rank in
/// the dumpable bitmap -> <c>page_desc</c> -> page data, decompressed and kept in a bounded LRU cache.
/// </summary>
/// <remarks>
/// Page states follow crash's <c>read_diskdump</c>: a pfn at or above max_mapnr, or clear in the memory bitmap
/// (bitmap1), is not in the image; a pfn in memory but clear in the dumpable bitmap (bitmap2) was excluded
/// (makedumpfile <c>-d</c>); a descriptor or page past the end of the file, or the all-zero descriptor that an
/// incomplete dump (status DUMP_DH_COMPRESSED_INCOMPLETE) leaves for pages never written, is truncated. A
/// descriptor that cannot be right (size 0 or above the block size, a raw page that is not one block, data that
/// does not decompress to exactly one block) is corruption and throws.
/// </remarks>
internal sealed class KdumpImage : DumpImage
{
    /// <summary>Size of <c>struct page_desc</c>: i64 offset, u32 size, u32 flags, u64 page_flags.</summary>
    public const int PageDescriptorSize = 24;

    /// <summary>
    /// Most separate memory ranges reported. A real machine has tens to hundreds (e820 / memblock regions); the
    /// cap only stops a crafted bitmap from building a list of billions.
    /// </summary>
    public const int MaxPhysicalRanges = 1 << 20;

    private readonly KdumpPart[] _parts;
    private readonly RandomAccessFile[] _files;
    private readonly KdumpBitmap _memory;
    private readonly KdumpBitmap _dumpable;
    private readonly ulong _maxPfn;
    private readonly int _pageShift;
    private readonly KdumpHeader _header;
    private readonly LruCache<ulong, byte[]> _cache;
    private readonly KdumpPageDecoder _decoder = new();
    private readonly IReadOnlyList<ElfNote> _notes;
    private readonly VmcoreInfo? _vmcoreInfo;
    private readonly IReadOnlyList<PhysicalRange> _ranges;
    private readonly long _excluded;
    private readonly string[] _paths;

    private KdumpImage(
        RandomAccessFile[] files,
        KdumpPart[] parts,
        KdumpBitmap memory,
        KdumpBitmap dumpable,
        ulong maxPfn,
        IReadOnlyList<ElfNote> notes,
        VmcoreInfo? vmcoreInfo,
        IReadOnlyList<PhysicalRange> ranges,
        long excluded,
        CacheOptions cache)
    {
        _files = files;
        _parts = parts;
        _memory = memory;
        _dumpable = dumpable;
        _maxPfn = maxPfn;
        _header = parts[0].Header;
        _pageShift = System.Numerics.BitOperations.Log2((uint)_header.BlockSize);
        _notes = notes;
        _vmcoreInfo = vmcoreInfo;
        _ranges = ranges;
        _excluded = excluded;
        _cache = new LruCache<ulong, byte[]>("pages", cache.DecompressedPages);
        _paths = [.. files.Select(f => f.Path)];
        uint status = 0;
        foreach (var p in parts)
        {
            status |= p.Header.Status;
        }

        Compression = (DumpCompression)(status & KdumpHeader.StatusCompressionMask);
        IsFlattened = parts.Any(p => p.View.IsFlattened);
    }

    /// <inheritdoc/>
    public override DumpFormat Format => DumpFormat.Kdump;

    /// <inheritdoc/>
    public override string Description
    {
        get
        {
            var what = new List<string> { $"header v{_header.HeaderVersion}" };
            if (Compression != DumpCompression.None)
            {
                what.Add(Compression.ToString().ToLowerInvariant());
            }

            if (IsFlattened)
            {
                what.Add("flattened");
            }

            if (_parts.Length > 1)
            {
                what.Add($"split in {_parts.Length} files");
            }

            if (_header.Incomplete)
            {
                what.Add("incomplete");
            }

            string kind = _header.Signature == "DISKDUMP" ? "diskdump" : "kdump-compressed";
            return $"{kind} ({string.Join(", ", what)})";
        }
    }

    /// <inheritdoc/>
    public override DumpCompression Compression { get; }

    /// <inheritdoc/>
    public override bool IsFlattened { get; }

    /// <inheritdoc/>
    public override IReadOnlyList<string> Files => _paths;

    /// <inheritdoc/>
    public override int? PageSize => _header.BlockSize;

    /// <inheritdoc/>
    public override string? MachineName => _header.Machine.Length == 0 ? null : _header.Machine;

    /// <inheritdoc/>
    public override ushort ElfMachine => MachineToElf(_header.Machine);

    /// <inheritdoc/>
    public override IReadOnlyList<ElfNote> Notes => _notes;

    /// <inheritdoc/>
    public override VmcoreInfo? VmcoreInfo => _vmcoreInfo;

    /// <inheritdoc/>
    public override IReadOnlyList<PhysicalRange> PhysicalRanges => _ranges;

    /// <inheritdoc/>
    public override long ExcludedPages => _excluded;

    /// <inheritdoc/>
    public override int? DumpLevel => _header.DumpLevel;

    /// <inheritdoc/>
    public override IReadOnlyList<CacheStatistics> CacheStatistics => [_cache.Statistics];

    /// <summary>The parsed header of the first part.</summary>
    public KdumpHeader Header => _header;

    /// <summary>The highest pfn + 1 the image describes.</summary>
    public ulong MaxPfn => _maxPfn;

    /// <summary>The parts of the image, ordered by pfn range.</summary>
    public IReadOnlyList<KdumpPart> Parts => _parts;

    /// <summary>Maps <c>utsname.machine</c> to an ELF e_machine (EM_X86_64 62, EM_AARCH64 183, EM_386 3, …); 0 when unknown.</summary>
    public static ushort MachineToElf(string machine) => machine switch
    {
        "x86_64" => 62,
        "aarch64" or "arm64" => 183,
        "i386" or "i486" or "i586" or "i686" => 3,
        "ppc64" or "ppc64le" => 21,
        "s390x" => 22,
        "riscv64" => 243,
        _ when machine.StartsWith("arm", StringComparison.Ordinal) => 40,
        _ => 0,
    };

    /// <summary>
    /// Opens <paramref name="files"/> (one file, or every part of a split set in any order). Takes ownership of
    /// the files only on success.
    /// </summary>
    public static KdumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options)
    {
        if (files.Count == 0)
        {
            throw new ArgumentException("no kdump file given", nameof(files));
        }

        var limits = options.Limits;
        var parts = new List<KdumpPart>(files.Count);
        foreach (var file in files)
        {
            IKdumpFileView view = FlattenedKdumpFileView.HasSignature(ReadStart(file))
                ? FlattenedKdumpFileView.Open(file, limits)
                : new PlainKdumpFileView(file);
            var header = KdumpHeader.Read(view, limits);
            parts.Add(new KdumpPart(view, header));
        }

        var first = parts[0].Header;
        foreach (var part in parts.Skip(1))
        {
            CheckSameDump(parts[0], part);
        }

        // Bitmap geometry (libkdumpfile read_bitmap, crash dump_is_partial): two equal halves when max_mapnr fits
        // in half the region (makedumpfile, QEMU), else one bitmap serving as both (old diskdump).
        ulong regionBits = (ulong)first.BitmapBytes * 8;
        bool twoBitmaps = first.MaxMapnr <= regionBits / 2;
        long halfBytes = first.BitmapBlocks / 2 * first.BlockSize;
        ulong bitmapBits = twoBitmaps ? (ulong)halfBytes * 8 : regionBits;
        string path0 = parts[0].View.Path;
        if (first.MaxMapnr > bitmapBits)
        {
            throw new CorruptImageException($"{path0}: max_mapnr {first.MaxMapnr} exceeds the capacity of the page bitmap ({bitmapBits} pages in {first.BitmapBlocks} blocks)");
        }

        ulong maxPfn = first.MaxMapnr;
        var ordered = OrderParts(parts, maxPfn);

        var memory = new KdumpBitmap(maxPfn);
        var dumpable = twoBitmaps ? new KdumpBitmap(maxPfn) : memory;
        foreach (var part in ordered)
        {
            memory.Load(part.View, part.Header.BitmapOffset, part.StartPfn, part.EndPfn, "memory bitmap");
            if (twoBitmaps)
            {
                dumpable.Load(part.View, part.Header.BitmapOffset + halfBytes, part.StartPfn, part.EndPfn, "dumpable bitmap");
            }
        }

        dumpable.BuildRankIndex();
        foreach (var part in ordered)
        {
            part.RankBase = dumpable.Rank(part.StartPfn);
            part.DataOffset = part.Header.DescriptorOffset + ((dumpable.Rank(part.EndPfn) - part.RankBase) * PageDescriptorSize);
        }

        var (notes, vmcoreInfo) = ReadMetadata(ordered[0], limits);
        var runs = memory.Runs(MaxPhysicalRanges, path0);
        var ranges = new PhysicalRange[runs.Count];
        int shift = System.Numerics.BitOperations.Log2((uint)first.BlockSize);
        for (int i = 0; i < runs.Count; i++)
        {
            ranges[i] = new PhysicalRange(runs[i].Start << shift, runs[i].Count << shift);
        }

        long excluded = twoBitmaps ? memory.CountAndNot(dumpable) : 0;
        var fileArray = ordered.Select(p => files[parts.IndexOf(p)]).ToArray();
        return new KdumpImage(fileArray, [.. ordered], memory, dumpable, maxPfn, notes, vmcoreInfo, ranges, excluded, options.Cache);
    }

    /// <inheritdoc/>
    public override int ReadPhysical(ulong physicalAddress, Span<byte> buffer, out PhysicalReadStatus status)
    {
        int total = 0;
        int blockSize = _header.BlockSize;
        while (total < buffer.Length)
        {
            if (ulong.MaxValue - physicalAddress < (ulong)total)
            {
                status = PhysicalReadStatus.NotInImage;
                return total;
            }

            ulong address = physicalAddress + (ulong)total;
            ulong pfn = address >> _pageShift;
            int inPage = (int)(address & (ulong)(blockSize - 1));
            int n = Math.Min(blockSize - inPage, buffer.Length - total);
            if (pfn >= _maxPfn || !_memory.Get(pfn))
            {
                status = PhysicalReadStatus.NotInImage;
                return total;
            }

            if (!_dumpable.Get(pfn))
            {
                status = PhysicalReadStatus.Excluded;
                return total;
            }

            var page = GetPage(pfn, out var pageStatus);
            if (page is null)
            {
                status = pageStatus;
                return total;
            }

            page.AsSpan(inPage, n).CopyTo(buffer[total..]);
            total += n;
        }

        status = PhysicalReadStatus.Complete;
        return total;
    }

    /// <inheritdoc/>
    public override int WritePhysical(ulong physicalAddress, ReadOnlySpan<byte> data) =>
        throw new KvmException(KvmErrorCode.NotSupported, $"{_paths[0]}: writing is not supported for compressed kdump images");

    /// <inheritdoc/>
    public override void FlushCaches() => _cache.Clear();

    /// <inheritdoc/>
    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _decoder.Dispose();
            foreach (var f in _files)
            {
                f.Dispose();
            }
        }

        base.Dispose(disposing);
    }

    /// <summary>
    /// Returns the page of a dumpable pfn from the cache, or reads and decodes it. Null with a status when the
    /// file ends before the page; throws for a corrupt descriptor or page.
    /// </summary>
    private byte[]? GetPage(ulong pfn, out PhysicalReadStatus status)
    {
        status = PhysicalReadStatus.Complete;
        if (_cache.TryGet(pfn, out var cached))
        {
            return cached;
        }

        var part = FindPart(pfn);
        long index = _dumpable.Rank(pfn) - part.RankBase;
        var view = part.View;
        Span<byte> raw = stackalloc byte[PageDescriptorSize];
        if (view.Read(DescriptorOffset(part, index), raw) != PageDescriptorSize)
        {
            status = PhysicalReadStatus.Truncated;
            return null;
        }

        status = ParseDescriptor(part, index, raw, out var descriptor);
        if (status != PhysicalReadStatus.Complete)
        {
            return null;
        }

        (long offset, uint size, uint flags) = descriptor;
        int blockSize = part.Header.BlockSize;
        var page = new byte[blockSize];
        if (flags == 0)
        {
            if (view.Read(offset, page) != blockSize)
            {
                status = PhysicalReadStatus.Truncated;
                return null;
            }
        }
        else
        {
            byte[] compressed = ArrayPool<byte>.Shared.Rent((int)size);
            try
            {
                var src = compressed.AsSpan(0, (int)size);
                if (view.Read(offset, src) != src.Length)
                {
                    status = PhysicalReadStatus.Truncated;
                    return null;
                }

                string? error = _decoder.Decode(flags, compressed, src.Length, page);
                if (error is not null)
                {
                    throw new CorruptImageException($"{Where()}: page data at offset 0x{offset:x}: {error}");
                }
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(compressed);
            }
        }

        _cache.Add(pfn, page);
        return page;

        string Where() => DescriptorWhere(part, index);
    }

    /// <inheritdoc/>
    /// <remarks>
    /// Only the bitmaps and page descriptors are read. A page is plain when its descriptor has no compression flag
    /// (then its size is the block size, checked as for reads); the offset is where its block is in the file on disk,
    /// which for a flattened file is found through the record index and exists only when the block lies inside one
    /// record. makedumpfile with dump level bit 0 (DL_EXCLUDE_ZERO), and QEMU always, write one raw zero block first
    /// in the data area and point every zero page at it (makedumpfile <c>pd_zero</c>, QEMU dump.c
    /// <c>write_dump_pages</c>): those pages are stored, but not as bytes of their own, so they are not plain. A
    /// page whose descriptor names the first data block while that block is all zeros is taken for such a page (at
    /// worst it is the one genuine zero page written first). A range of several pages is plain only when their blocks
    /// follow each other in one file.
    /// </remarks>
    public override PhysicalStorage Locate(ulong physicalAddress, ulong length)
    {
        ArgumentOutOfRangeException.ThrowIfZero(length);
        if (ulong.MaxValue - physicalAddress < length - 1)
        {
            return PhysicalStorage.Of(StorageKind.NotInImage);
        }

        ulong firstPfn = physicalAddress >> _pageShift;
        ulong lastPfn = (physicalAddress + (length - 1)) >> _pageShift;
        for (ulong pfn = firstPfn; pfn <= lastPfn; pfn++)
        {
            if (pfn >= _maxPfn || !_memory.Get(pfn))
            {
                return PhysicalStorage.Of(StorageKind.NotInImage);
            }

            if (!_dumpable.Get(pfn))
            {
                return PhysicalStorage.Of(StorageKind.Excluded);
            }
        }

        int blockSize = _header.BlockSize;
        const int Batch = 256;
        Span<byte> raw = stackalloc byte[Batch * PageDescriptorSize];
        int fileIndex = -1;
        long firstBlock = -1;
        bool plain = true;
        for (ulong pfn = firstPfn; pfn <= lastPfn;)
        {
            int partIndex = FindPartIndex(pfn);
            var part = _parts[partIndex];
            long index = _dumpable.Rank(pfn) - part.RankBase;

            // Every pfn here is dumpable, so the descriptors of a run inside one part are consecutive.
            int count = (int)Math.Min(Math.Min(lastPfn + 1, part.EndPfn) - pfn, Batch);
            var batch = raw[..(count * PageDescriptorSize)];
            if (part.View.Read(DescriptorOffset(part, index), batch) != batch.Length)
            {
                return PhysicalStorage.Of(StorageKind.Truncated);
            }

            for (int i = 0; i < count; i++)
            {
                if (ParseDescriptor(part, index + i, batch.Slice(i * PageDescriptorSize, PageDescriptorSize), out var d) != PhysicalReadStatus.Complete)
                {
                    return PhysicalStorage.Of(StorageKind.Truncated);
                }

                if (!plain)
                {
                    continue;
                }

                bool zero = d.Flags == 0 && d.Offset == part.DataOffset && part.FirstBlockIsZero();
                long onDisk = d.Flags == 0 && !zero ? part.View.FileOffsetOf(d.Offset, blockSize) : -1;
                ulong nth = pfn + (ulong)i - firstPfn;
                if (onDisk < 0)
                {
                    plain = false;
                }
                else if (nth == 0)
                {
                    fileIndex = partIndex;
                    firstBlock = onDisk;
                }
                else if (partIndex != fileIndex || onDisk != firstBlock + (long)(nth * (ulong)blockSize))
                {
                    plain = false;
                }
            }

            pfn += (ulong)count;
        }

        return plain
            ? PhysicalStorage.PlainAt(fileIndex, firstBlock + (long)(physicalAddress & (ulong)(blockSize - 1)))
            : PhysicalStorage.Of(StorageKind.Stored);
    }

    /// <inheritdoc/>
    public override IEnumerable<PhysicalRange> EnumerateStoredRanges()
    {
        foreach (var (start, count) in _memory.EnumerateRuns(_dumpable))
        {
            yield return new PhysicalRange(start << _pageShift, count << _pageShift);
        }
    }

    private static long DescriptorOffset(KdumpPart part, long index) => part.Header.DescriptorOffset + (index * PageDescriptorSize);

    private static string DescriptorWhere(KdumpPart part, long index) =>
        $"{part.View.Path}: page descriptor {index} at offset 0x{DescriptorOffset(part, index):x}";

    /// <summary>
    /// Decodes and checks one <c>page_desc</c>. Returns <see cref="PhysicalReadStatus.Truncated"/> for a page the
    /// file does not hold; throws for a descriptor that cannot be right.
    /// </summary>
    private static PhysicalReadStatus ParseDescriptor(KdumpPart part, long index, ReadOnlySpan<byte> raw, out PageDescriptor descriptor)
    {
        bool be = part.Header.BigEndian;
        long offset = be ? BinaryPrimitives.ReadInt64BigEndian(raw) : BinaryPrimitives.ReadInt64LittleEndian(raw);
        uint size = be ? BinaryPrimitives.ReadUInt32BigEndian(raw[8..]) : BinaryPrimitives.ReadUInt32LittleEndian(raw[8..]);
        uint flags = be ? BinaryPrimitives.ReadUInt32BigEndian(raw[12..]) : BinaryPrimitives.ReadUInt32LittleEndian(raw[12..]);
        descriptor = new PageDescriptor(offset, size, flags);
        int blockSize = part.Header.BlockSize;

        if (offset == 0 && size == 0 && part.Header.Incomplete)
        {
            // makedumpfile leaves the descriptors of pages it never wrote zeroed when the disk fills up
            // (crash: PAGE_INCOMPLETE).
            return PhysicalReadStatus.Truncated;
        }

        if (size == 0)
        {
            throw new CorruptImageException($"{DescriptorWhere(part, index)}: size 0");
        }

        if (size > (uint)blockSize)
        {
            throw new CorruptImageException($"{DescriptorWhere(part, index)}: size {size} exceeds block size {blockSize}");
        }

        if (offset < part.Header.DescriptorOffset)
        {
            throw new CorruptImageException($"{DescriptorWhere(part, index)}: data offset 0x{offset:x} lies before the page descriptors (0x{part.Header.DescriptorOffset:x})");
        }

        if ((flags & KdumpPageDecoder.CompressionMask) == 0)
        {
            if (flags != 0)
            {
                throw new KvmException(KvmErrorCode.NotSupported, $"{DescriptorWhere(part, index)}: unsupported page flags 0x{flags:x}");
            }

            if (size != (uint)blockSize)
            {
                throw new CorruptImageException($"{DescriptorWhere(part, index)}: raw page size {size} is not the block size {blockSize}");
            }
        }

        return offset > part.View.Length - size ? PhysicalReadStatus.Truncated : PhysicalReadStatus.Complete;
    }

    private KdumpPart FindPart(ulong pfn) => _parts[FindPartIndex(pfn)];

    private int FindPartIndex(ulong pfn)
    {
        int lo = 0;
        int hi = _parts.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) / 2;
            if (_parts[mid].StartPfn <= pfn)
            {
                lo = mid;
            }
            else
            {
                hi = mid - 1;
            }
        }

        return lo;
    }

    private static byte[] ReadStart(RandomAccessFile file)
    {
        var start = new byte[FlattenedKdumpFileView.SignatureLength];
        int n = file.Read(0, start);
        return n == start.Length ? start : start[..n];
    }

    /// <summary>
    /// Checks that <paramref name="part"/> comes from the same vmcore as <paramref name="first"/>: crash refuses
    /// split files whose <c>disk_dump_header</c>s differ ("split dumpfiles derived from different vmcores").
    /// </summary>
    private static void CheckSameDump(KdumpPart first, KdumpPart part)
    {
        var a = first.Header;
        var b = part.Header;
        string? diff =
            a.BigEndian != b.BigEndian || a.Layout != b.Layout ? "byte order or word size"
            : a.HeaderVersion != b.HeaderVersion ? $"header_version {b.HeaderVersion} vs {a.HeaderVersion}"
            : a.BlockSize != b.BlockSize ? $"block_size {b.BlockSize} vs {a.BlockSize}"
            : a.MaxMapnr != b.MaxMapnr ? $"max_mapnr {b.MaxMapnr} vs {a.MaxMapnr}"
            : a.BitmapBlocks != b.BitmapBlocks ? $"bitmap_blocks {b.BitmapBlocks} vs {a.BitmapBlocks}"
            : a.Machine != b.Machine || a.Release != b.Release ? "utsname"
            : !a.Split || !b.Split ? "one of them is not a split part"
            : null;
        if (diff is not null)
        {
            throw new CorruptImageException($"{part.View.Path}: not a part of the same split dump as {first.View.Path} ({diff})");
        }
    }

    /// <summary>Sorts the parts by pfn range and checks that the ranges tile [0, max pfn) exactly.</summary>
    private static KdumpPart[] OrderParts(List<KdumpPart> parts, ulong maxPfn)
    {
        foreach (var p in parts)
        {
            if (p.Header.Split)
            {
                if (p.Header.StartPfn >= p.Header.EndPfn || p.Header.EndPfn > maxPfn)
                {
                    throw new CorruptImageException($"{p.View.Path}: split pfn range 0x{p.Header.StartPfn:x}-0x{p.Header.EndPfn:x} is empty or exceeds max_mapnr 0x{maxPfn:x}");
                }
            }

            p.StartPfn = p.Header.StartPfn;
            p.EndPfn = p.Header.Split ? p.Header.EndPfn : maxPfn;
        }

        var ordered = parts.OrderBy(p => p.StartPfn).ToArray();
        ulong expected = 0;
        for (int i = 0; i < ordered.Length; i++)
        {
            var p = ordered[i];
            if (p.StartPfn < expected)
            {
                throw new CorruptImageException($"{p.View.Path}: split pfn range 0x{p.StartPfn:x}-0x{p.EndPfn:x} overlaps {ordered[i - 1].View.Path} (0x{ordered[i - 1].StartPfn:x}-0x{ordered[i - 1].EndPfn:x})");
            }

            if (p.StartPfn > expected)
            {
                throw new CorruptImageException($"{p.View.Path}: split set incomplete: no file holds pfns 0x{expected:x}-0x{p.StartPfn:x} (give every part of the split dump)");
            }

            expected = p.EndPfn;
        }

        if (expected < maxPfn)
        {
            throw new CorruptImageException($"{ordered[^1].View.Path}: split set incomplete: no file holds pfns 0x{expected:x}-0x{maxPfn:x} (give every part of the split dump)");
        }

        return ordered;
    }

    /// <summary>
    /// Reads the ELF notes blob (v4+) and VMCOREINFO (v3+ <c>offset_vmcoreinfo</c>, else the VMCOREINFO note),
    /// checking each offset and size against the file and <see cref="KvmLimits"/> before allocating.
    /// </summary>
    private static (IReadOnlyList<ElfNote> Notes, VmcoreInfo? VmcoreInfo) ReadMetadata(KdumpPart part, KvmLimits limits)
    {
        var h = part.Header;
        var view = part.View;
        IReadOnlyList<ElfNote> notes = [];
        if (h.HeaderVersion >= 4 && h.NoteSize > 0)
        {
            var blob = ReadBlob(view, h.NoteOffset, h.NoteSize, limits.MaxNoteBytes, "note blob (offset_note/size_note)", "KvmLimits.MaxNoteBytes");
            notes = ElfNote.Parse(blob, h.BigEndian);
        }

        VmcoreInfo? info = null;
        if (h.HeaderVersion >= 3 && h.VmcoreInfoOffset != 0 && h.VmcoreInfoSize > 0)
        {
            var text = ReadBlob(view, h.VmcoreInfoOffset, h.VmcoreInfoSize, limits.MaxVmcoreInfoBytes, "vmcoreinfo (offset_vmcoreinfo/size_vmcoreinfo)", "KvmLimits.MaxVmcoreInfoBytes");
            info = VmcoreInfo.Parse(text, "kdump header");
        }
        else if (notes.FirstOrDefault(n => n.Name == "VMCOREINFO") is { } note)
        {
            if (note.Descriptor.Length > limits.MaxVmcoreInfoBytes)
            {
                throw new CorruptImageException($"{view.Path}: VMCOREINFO note of {note.Descriptor.Length} bytes exceeds KvmLimits.MaxVmcoreInfoBytes ({limits.MaxVmcoreInfoBytes})");
            }

            info = VmcoreInfo.Parse(note.Descriptor, "ELF note");
        }

        return (notes, info);
    }

    private static byte[] ReadBlob(IKdumpFileView view, long offset, ulong size, int cap, string what, string capName)
    {
        if (size > (ulong)cap)
        {
            throw new CorruptImageException($"{view.Path}: {what}: size {size} exceeds {capName} ({cap})");
        }

        if (offset < 0 || offset > view.Length - (long)size)
        {
            throw new CorruptImageException($"{view.Path}: {what}: {size} bytes at offset 0x{offset:x} extend past the end of the file (0x{view.Length:x})");
        }

        var blob = new byte[(int)size];
        int got = view.Read(offset, blob);
        if (got != blob.Length)
        {
            throw new CorruptImageException($"{view.Path}: {what}: truncated at offset 0x{offset:x} (got {got} of {size} bytes)");
        }

        return blob;
    }
}

/// <summary>A <c>struct page_desc</c>: where the page's data is, how many bytes, and how it is compressed.</summary>
/// <param name="Offset">File offset of the data (in the reassembled file, for a flattened one).</param>
/// <param name="Size">Bytes of data.</param>
/// <param name="Flags">DUMP_DH_COMPRESSED_* flags; 0 for a raw page.</param>
internal readonly record struct PageDescriptor(long Offset, uint Size, uint Flags);

/// <summary>One file of a kdump image and the pfn range whose page descriptors it holds.</summary>
internal sealed class KdumpPart
{
    /// <summary>Whether the block at <see cref="DataOffset"/> is all zeros: 0 not yet known, 1 yes, 2 no.</summary>
    private int _zeroBlockState;

    /// <summary>Creates a part for <paramref name="view"/>.</summary>
    public KdumpPart(IKdumpFileView view, KdumpHeader header)
    {
        View = view;
        Header = header;
    }

    /// <summary>The file's bytes (plain or flattened).</summary>
    public IKdumpFileView View { get; }

    /// <summary>The file's header.</summary>
    public KdumpHeader Header { get; }

    /// <summary>First pfn whose descriptor is in this file.</summary>
    public ulong StartPfn { get; set; }

    /// <summary>One past the last pfn whose descriptor is in this file.</summary>
    public ulong EndPfn { get; set; }

    /// <summary>Dumpable pages below <see cref="StartPfn"/>: subtracted from a pfn's rank to index this file's descriptors.</summary>
    public long RankBase { get; set; }

    /// <summary>
    /// Where page data starts: right after this file's descriptors (makedumpfile <c>write_kdump_pages_and_bitmap_cyclic</c>,
    /// QEMU <c>write_dump_pages</c>). With zero pages shared, the shared zero block is written first, here.
    /// </summary>
    public long DataOffset { get; set; }

    /// <summary>True when the block at <see cref="DataOffset"/> is all zeros; read once, then remembered.</summary>
    public bool FirstBlockIsZero()
    {
        int state = Volatile.Read(ref _zeroBlockState);
        if (state == 0)
        {
            var block = new byte[Header.BlockSize];
            bool zero = View.Read(DataOffset, block) == block.Length && !block.AsSpan().ContainsAnyExcept((byte)0);
            state = zero ? 1 : 2;
            Volatile.Write(ref _zeroBlockState, state);
        }

        return state == 1;
    }
}
