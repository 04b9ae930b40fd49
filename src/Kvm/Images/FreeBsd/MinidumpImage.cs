using System.Buffers.Binary;
using Kvm.IO;

namespace Kvm.Images.FreeBsd;

/// <summary>
/// A FreeBSD minidump as physical memory. The file holds, each part starting on a page boundary: the header page,
/// the kernel message buffer, <c>dump_avail</c> (newer versions), the page bitmap, the page map (the kernel's
/// page-table entries for the kernel map), then every dumped page in bit order (the writers in
/// sys/{amd64,arm64,i386}/*/minidump_machdep*.c; the readers lib/libkvm kvm_minidump_*.c).
/// </summary>
/// <remarks>
/// Physical reads go through <see cref="SparsePageMap"/>; translation through the page map is the Translation
/// layer's (its FreeBsd minidump translators). The bitmap and the page map are read into memory once, capped by
/// <see cref="KvmLimits.MaxBitmapBytes"/> and <see cref="KvmLimits.MaxMinidumpPageMapBytes"/>; the pages stay in the
/// file. A file that ends inside the sparse area still opens: the pages it lost read as truncated.
/// </remarks>
internal sealed class MinidumpImage : DumpImage
{
    private readonly RandomAccessFile _file;
    private readonly byte[] _pageMap;
    private readonly int _pageMask;

    private MinidumpImage(RandomAccessFile file, MinidumpHeader header, SparsePageMap map, byte[] pageMap, long messageBufferOffset)
    {
        _file = file;
        Header = header;
        Map = map;
        _pageMap = pageMap;
        _pageMask = header.PageSize - 1;
        MessageBufferOffset = messageBufferOffset;
        FreeBsd = new FreeBsdDumpInfo(header.Architecture, this, null);
    }

    public MinidumpHeader Header { get; }

    public SparsePageMap Map { get; }

    /// <summary>Where the kernel message buffer starts in the file.</summary>
    public long MessageBufferOffset { get; }

    /// <summary>Entries in the page map.</summary>
    public long PageMapEntries => _pageMap.Length / Header.PageMapEntrySize;

    public override FreeBsdDumpInfo FreeBsd { get; }

    public override DumpFormat Format => DumpFormat.Minidump;

    public override string Description => $"FreeBSD {Header.ArchitectureName} minidump v{Header.Version}{(Header.Architecture == FreeBsdArchitecture.I386 ? Header.Pae ? " (PAE)" : " (non-PAE)" : string.Empty)}";

    public override IReadOnlyList<string> Files => [_file.Path];

    public override int? PageSize => Header.PageSize;

    public override ushort ElfMachine => FreeBsdDumpInfo.ElfMachineOf(Header.Architecture);

    public override string? MachineName => Header.ArchitectureName;

    public override IReadOnlyList<PhysicalRange> PhysicalRanges => Map.Ranges;

    public override long ExcludedPages
    {
        get
        {
            ulong pages = 0;
            foreach (var r in Map.Ranges)
            {
                pages += ((r.End + (ulong)_pageMask) >> Shift) - (r.Start >> Shift);
            }

            return Math.Max(0, (long)pages - Map.StoredPages);
        }
    }

    private int Shift => System.Numerics.BitOperations.TrailingZeroCount(Header.PageSize);

    /// <summary>Opens the minidump in <paramref name="file"/>, which it then owns.</summary>
    public static MinidumpImage Open(RandomAccessFile file, ImageOpenOptions options)
    {
        var limits = options.Limits;
        var first = new byte[4096];
        int n = file.Read(0, first);
        var header = MinidumpHeader.Parse(first.AsSpan(0, n), file.Path);
        long page = header.PageSize;
        long Round(long x) => (x + page - 1) / page * page;

        if (header.BitmapSize > limits.MaxBitmapBytes)
        {
            throw new CorruptImageException($"{file.Path}: minidump bitmap of {header.BitmapSize} bytes exceeds KvmLimits.MaxBitmapBytes ({limits.MaxBitmapBytes})");
        }

        if (header.PageMapSize > limits.MaxMinidumpPageMapBytes)
        {
            throw new CorruptImageException($"{file.Path}: minidump page map of {header.PageMapSize} bytes exceeds KvmLimits.MaxMinidumpPageMapBytes ({limits.MaxMinidumpPageMapBytes})");
        }

        if (header.DumpAvailSize / 16 > (ulong)limits.MaxDumpAvailRanges)
        {
            throw new CorruptImageException($"{file.Path}: minidump dump_avail of {header.DumpAvailSize} bytes exceeds KvmLimits.MaxDumpAvailRanges ({limits.MaxDumpAvailRanges} ranges)");
        }

        if (header.DirectMapEnd < header.DirectMapBase)
        {
            throw new CorruptImageException($"{file.Path}: minidump direct map ends (0x{header.DirectMapEnd:x}) before it starts (0x{header.DirectMapBase:x})");
        }

        if (header.DirectMapPhysical > MaxPhysicalAddress || header.DirectMapEnd - header.DirectMapBase > MaxPhysicalAddress - header.DirectMapPhysical)
        {
            throw new CorruptImageException($"{file.Path}: minidump direct map [0x{header.DirectMapBase:x}, 0x{header.DirectMapEnd:x}) from physical 0x{header.DirectMapPhysical:x} reaches beyond 2^52, the largest physical address");
        }

        // The page map covers one entry's span per entry from kernbase; it must end inside the address space.
        ulong span = header.Architecture == FreeBsdArchitecture.Amd64 && header.Version >= 2 ? 1UL << 21 : (ulong)header.PageSize;
        ulong covered = header.PageMapSize / (ulong)header.PageMapEntrySize * span;
        if (covered > ulong.MaxValue - header.KernelBase)
        {
            throw new CorruptImageException($"{file.Path}: the minidump's page map ({header.PageMapSize} bytes from kernbase 0x{header.KernelBase:x}) runs past the top of the address space");
        }

        long messageBuffer = page;
        long dumpAvail = messageBuffer + Round(header.MessageBufferSize);
        long bitmap = dumpAvail + Round(header.DumpAvailSize);
        long pageMap = bitmap + Round(header.BitmapSize);
        long sparse = pageMap + Round(header.PageMapSize);

        IReadOnlyList<PhysicalRange>? ranges = null;
        if (header.DumpAvailSize > 0)
        {
            var avail = ReadPart(file, dumpAvail, header.DumpAvailSize, "dump_avail");
            ranges = ParseDumpAvail(avail, file.Path);
        }

        var bits = ReadPart(file, bitmap, header.BitmapSize, "page bitmap");
        var entries = ReadPart(file, pageMap, header.PageMapSize, header.Architecture == FreeBsdArchitecture.I386 ? "PTE map (ptesize)" : "page map (pmapsize)");
        var map = new SparsePageMap(bits, ranges, header.PageSize, sparse, file.Length);
        return new MinidumpImage(file, header, map, entries, messageBuffer);
    }

    /// <summary>The largest physical address any of the three architectures has (52 bits: amd64, arm64 LPA, i386 PAE).</summary>
    public const ulong MaxPhysicalAddress = 1UL << 52;

    /// <summary>
    /// Parses <c>dump_avail</c>: pairs of 64-bit [start, end) physical addresses, ending at the first pair whose end
    /// is 0 (sys/vm/vm_dumpset.h stops there). Pairs must ascend, not overlap, and end below 2^52; empty pairs are
    /// skipped.
    /// </summary>
    public static IReadOnlyList<PhysicalRange> ParseDumpAvail(ReadOnlySpan<byte> data, string context)
    {
        var ranges = new List<PhysicalRange>();
        ulong previousEnd = 0;
        for (int i = 0; i + 16 <= data.Length; i += 16)
        {
            ulong start = BinaryPrimitives.ReadUInt64LittleEndian(data[i..]);
            ulong end = BinaryPrimitives.ReadUInt64LittleEndian(data[(i + 8)..]);
            if (end == 0)
            {
                break;
            }

            if (end > MaxPhysicalAddress)
            {
                throw new CorruptImageException($"{context}: dump_avail[{i / 8}] = [0x{start:x}, 0x{end:x}) ends beyond 2^52, the largest physical address");
            }

            if (end < start || start < previousEnd)
            {
                throw new CorruptImageException($"{context}: dump_avail[{i / 8}] = [0x{start:x}, 0x{end:x}) is out of order (ranges must ascend without overlapping)");
            }

            if (end > start)
            {
                ranges.Add(new PhysicalRange(start, end - start));
                previousEnd = end;
            }
        }

        if (ranges.Count == 0)
        {
            throw new CorruptImageException($"{context}: dump_avail lists no memory");
        }

        return ranges;
    }

    /// <summary>The entry at <paramref name="index"/> of the page map, zero-extended; false beyond its end.</summary>
    public bool TryGetPageMapEntry(long index, out ulong entry)
    {
        int size = Header.PageMapEntrySize;
        if (index < 0 || index >= PageMapEntries)
        {
            entry = 0;
            return false;
        }

        int at = (int)(index * size);
        entry = size == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(_pageMap.AsSpan(at)) : BinaryPrimitives.ReadUInt32LittleEndian(_pageMap.AsSpan(at));
        return true;
    }

    /// <summary>Reads the kernel message buffer stored after the header (raw circular text).</summary>
    public byte[] ReadMessageBuffer()
    {
        var buffer = new byte[Header.MessageBufferSize];
        int n = _file.Read(MessageBufferOffset, buffer);
        return n == buffer.Length ? buffer : buffer[..n];
    }

    public override int ReadPhysical(ulong physicalAddress, Span<byte> buffer, out PhysicalReadStatus status)
    {
        int done = 0;
        status = PhysicalReadStatus.Complete;
        while (done < buffer.Length)
        {
            ulong pa = physicalAddress + (ulong)done;
            int inPage = (int)(pa & (ulong)_pageMask);
            int chunk = Math.Min(buffer.Length - done, Header.PageSize - inPage);
            var found = Map.Find(pa, out long offset);
            if (found != SparsePageStatus.Present)
            {
                status = ToStatus(found);
                break;
            }

            int read = _file.Read(offset + inPage, buffer.Slice(done, chunk));
            done += read;
            if (read < chunk)
            {
                status = PhysicalReadStatus.Truncated;
                break;
            }
        }

        return done;
    }

    public override PhysicalStorage Locate(ulong physicalAddress, ulong length)
    {
        ArgumentOutOfRangeException.ThrowIfZero(length);
        if (ulong.MaxValue - physicalAddress < length - 1)
        {
            return PhysicalStorage.Of(StorageKind.NotInImage);
        }

        ulong last = physicalAddress + (length - 1);
        ulong firstPage = physicalAddress & ~(ulong)_pageMask;
        long firstOffset = -1;
        long expected = -1;
        bool contiguous = true;
        for (ulong pa = firstPage; ; pa += (ulong)Header.PageSize)
        {
            var found = Map.Find(pa, out long offset);
            if (found != SparsePageStatus.Present)
            {
                return PhysicalStorage.Of(found switch
                {
                    SparsePageStatus.Excluded => StorageKind.Excluded,
                    SparsePageStatus.Truncated => StorageKind.Truncated,
                    _ => StorageKind.NotInImage,
                });
            }

            if (firstOffset < 0)
            {
                firstOffset = offset;
            }
            else if (offset != expected)
            {
                contiguous = false;
            }

            expected = offset + Header.PageSize;
            if (last - pa < (ulong)Header.PageSize)
            {
                break;
            }
        }

        return contiguous
            ? PhysicalStorage.PlainAt(0, firstOffset + (long)(physicalAddress - firstPage))
            : PhysicalStorage.Of(StorageKind.Stored);
    }

    public override IEnumerable<PhysicalRange> EnumerateStoredRanges()
    {
        ulong start = 0;
        ulong end = 0;
        bool any = false;
        ulong size = (ulong)Header.PageSize;
        foreach (var (pa, _) in Map.EnumeratePresentPages())
        {
            if (any && pa == end)
            {
                end += size;
                continue;
            }

            if (any)
            {
                yield return new PhysicalRange(start, end - start);
            }

            start = pa;
            end = pa + size;
            any = true;
        }

        if (any)
        {
            yield return new PhysicalRange(start, end - start);
        }
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _file.Dispose();
        }

        base.Dispose(disposing);
    }

    private static byte[] ReadPart(RandomAccessFile file, long offset, uint size, string what)
    {
        if (offset > file.Length || size > file.Length - offset)
        {
            throw new CorruptImageException($"{file.Path}: truncated: the minidump's {what} ({size} bytes at offset 0x{file.BaseOffset + offset:x}) runs past the end of the file ({file.Length} bytes)");
        }

        var bytes = new byte[size];
        file.ReadExactly(offset, bytes, $"the minidump's {what}");
        return bytes;
    }

    private static PhysicalReadStatus ToStatus(SparsePageStatus status) => status switch
    {
        SparsePageStatus.Excluded => PhysicalReadStatus.Excluded,
        SparsePageStatus.Truncated => PhysicalReadStatus.Truncated,
        _ => PhysicalReadStatus.NotInImage,
    };
}

/// <summary>FreeBSD minidumps: <c>"minidump FreeBSD/…"</c> at offset 0.</summary>
internal sealed class MinidumpFormat : IImageFormat
{
    public string Name => "FreeBSD minidump";

    public bool Probe(ReadOnlySpan<byte> header, long fileLength) => MinidumpHeader.HasMagic(header);

    public DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options) => MinidumpImage.Open(files[0], options);
}
