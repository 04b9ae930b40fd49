using System.Buffers.Binary;
using System.Text;
using Kvm.IO;

namespace Kvm.Images;

/// <summary>
/// The image of a Linux swap device or swap file (libkvm's <c>swapfile</c> argument): page <c>n</c> of the image
/// holds swap slot <c>n</c>, the offset a swap PTE records. Page 0 is the header, include/linux/swap.h
/// <c>union swap_header</c>: the magic <c>SWAPSPACE2</c> in the last 10 bytes of the page and, at offset 1024,
/// <c>info { u32 version; u32 last_page; u32 nr_badpages; u8 sws_uuid[16]; char sws_volume[16]; u32 padding[117];
/// u32 badpages[]; }</c> in the byte order of the kernel that ran <c>mkswap</c>.
/// </summary>
public sealed class SwapImage : IDisposable
{
    // include/linux/swap.h: info starts after bootbits[1024]; padding[117] puts badpages[] at 1024 + 512.
    private const int InfoOffset = 1024;
    private const int BadPagesOffset = 1536;
    private const int MagicLength = 10;
    private static readonly int[] s_pageSizes = [4096, 8192, 16384, 32768, 65536];

    private readonly RandomAccessFile _file;
    private readonly HashSet<uint> _badPages;

    private SwapImage(RandomAccessFile file, int pageSize, bool bigEndian, uint lastPage, uint[] badPages, Guid uuid, string? label)
    {
        _file = file;
        PageSize = pageSize;
        IsBigEndian = bigEndian;
        LastPage = lastPage;
        BadPages = badPages;
        _badPages = [.. badPages];
        Uuid = uuid;
        Label = label;
    }

    /// <summary>The path the image was opened from.</summary>
    public string Path => _file.Path;

    /// <summary>The page size of the kernel that formatted the device (where the magic was found: 4, 8, 16, 32 or 64 KiB).</summary>
    public int PageSize { get; }

    /// <summary>True when the header is big-endian (formatted by or for a big-endian kernel).</summary>
    public bool IsBigEndian { get; }

    /// <summary><c>info.last_page</c>: the highest usable slot; slots 1 to <see cref="LastPage"/> hold pages.</summary>
    public uint LastPage { get; }

    /// <summary><c>info.badpages</c>: slots marked unusable by <c>mkswap -c</c>.</summary>
    public IReadOnlyList<uint> BadPages { get; }

    /// <summary>
    /// <c>info.sws_uuid</c>. The 16 bytes are stored in the order <c>mkswap</c> and <c>blkid</c> print them, so the
    /// <see cref="Guid"/> is built big-endian and <see cref="Guid.ToString()"/> prints the same text as <c>blkid</c>.
    /// </summary>
    public Guid Uuid { get; }

    /// <summary><c>info.sws_volume</c>, the label given to <c>mkswap -L</c>, or null when none was set.</summary>
    public string? Label { get; }

    /// <summary>Opens and validates a swap image.</summary>
    /// <param name="path">A swap file or device image.</param>
    /// <returns>The image.</returns>
    /// <exception cref="CorruptImageException">No swap signature, or the header is inconsistent with itself or the file.</exception>
    /// <exception cref="KvmException">The header is a version other than 1 (<see cref="KvmErrorCode.NotSupported"/>).</exception>
    public static SwapImage Open(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        var file = RandomAccessFile.Open(path, writable: false);
        try
        {
            return Parse(file);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    private static SwapImage Parse(RandomAccessFile file)
    {
        var page = new byte[s_pageSizes[^1]];
        int got = file.Read(0, page);
        int pageSize = 0;
        foreach (int candidate in s_pageSizes)
        {
            if (got < candidate)
            {
                break;
            }

            var magic = page.AsSpan(candidate - MagicLength, MagicLength);
            if (magic.SequenceEqual("SWAPSPACE2"u8))
            {
                pageSize = candidate;
                break;
            }

            if (magic.SequenceEqual("SWAP-SPACE"u8))
            {
                throw new KvmException(KvmErrorCode.NotSupported, $"{file.Path}: version 0 swap header (SWAP-SPACE, removed in Linux 2.5) is not supported");
            }
        }

        if (pageSize == 0)
        {
            throw new CorruptImageException($"{file.Path}: not a swap image: no SWAPSPACE2 signature at the end of a 4-64 KiB first page");
        }

        var info = page.AsSpan(InfoOffset, BadPagesOffset - InfoOffset);
        uint versionLittle = BinaryPrimitives.ReadUInt32LittleEndian(info);
        uint versionBig = BinaryPrimitives.ReadUInt32BigEndian(info);
        if (versionLittle != 1 && versionBig != 1)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{file.Path}: swap header version {versionLittle} (0x{versionLittle:x8} as little-endian) is not supported; only version 1 is");
        }

        bool bigEndian = versionLittle != 1;
        uint U32(ReadOnlySpan<byte> at) => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(at) : BinaryPrimitives.ReadUInt32LittleEndian(at);
        uint lastPage = U32(info[4..]);
        uint badCount = U32(info[8..]);
        if (lastPage == 0)
        {
            throw new CorruptImageException($"{file.Path}: swap header last_page is 0 (an empty swap area, which the kernel refuses)");
        }

        long needed = ((long)lastPage + 1) * pageSize;
        if (!file.IsDevice && needed > file.Length)
        {
            throw new CorruptImageException($"{file.Path}: swap header last_page {lastPage} needs {needed} bytes but the file has {file.Length}");
        }

        // MAX_SWAP_BADPAGES (include/linux/swap.h): the badpages[] that fit between info.badpages and the magic.
        int maxBad = (pageSize - MagicLength - BadPagesOffset) / 4;
        if (badCount > maxBad)
        {
            throw new CorruptImageException($"{file.Path}: swap header nr_badpages {badCount} exceeds the {maxBad} that fit in a {pageSize}-byte header page");
        }

        var badPages = new uint[badCount];
        for (int i = 0; i < badPages.Length; i++)
        {
            badPages[i] = U32(page.AsSpan(BadPagesOffset + (4 * i)));

            // mm/swapfile.c setup_swap_map_and_extents() rejects the same entries with -EINVAL.
            if (badPages[i] == 0 || badPages[i] > lastPage)
            {
                throw new CorruptImageException($"{file.Path}: swap header bad page {i} is slot {badPages[i]}, outside 1..{lastPage}");
            }
        }

        var uuid = new Guid(info.Slice(12, 16), bigEndian: true);
        var volume = info.Slice(28, 16);
        int end = volume.IndexOf((byte)0);
        var labelBytes = end < 0 ? volume : volume[..end];
        string? label = labelBytes.IsEmpty ? null : Encoding.UTF8.GetString(labelBytes);
        return new SwapImage(file, pageSize, bigEndian, lastPage, badPages, uuid, label);
    }

    /// <summary>Reads swap slot <paramref name="offset"/> (the page at <c>offset * PageSize</c> in the image).</summary>
    /// <param name="offset">The swap offset from a swap entry (swp_offset()).</param>
    /// <param name="buffer">At least <see cref="PageSize"/> bytes; the page is written to its start.</param>
    /// <returns><see cref="PageSize"/>, the number of bytes written.</returns>
    /// <exception cref="ArgumentException"><paramref name="buffer"/> is shorter than a page.</exception>
    /// <exception cref="KvmException">
    /// The slot is the header (0), past <see cref="LastPage"/> or a bad page (<see cref="KvmErrorCode.MemoryFault"/>),
    /// or the file ends before the page (<see cref="CorruptImageException"/>).
    /// </exception>
    public int ReadPage(ulong offset, Span<byte> buffer)
    {
        if (buffer.Length < PageSize)
        {
            throw new ArgumentException($"the buffer holds {buffer.Length} bytes, less than a {PageSize}-byte page", nameof(buffer));
        }

        if (offset == 0)
        {
            throw new KvmException(KvmErrorCode.MemoryFault, $"{Path}: swap slot 0 is the swap header, not a swapped-out page");
        }

        if (offset > LastPage)
        {
            throw new KvmException(KvmErrorCode.MemoryFault, $"{Path}: swap slot {offset} is past last_page {LastPage}");
        }

        if (_badPages.Contains((uint)offset))
        {
            throw new KvmException(KvmErrorCode.MemoryFault, $"{Path}: swap slot {offset} is listed as a bad page");
        }

        long position = (long)offset * PageSize;
        int got = _file.Read(position, buffer[..PageSize]);
        if (got < PageSize)
        {
            throw new CorruptImageException($"{Path}: truncated: swap slot {offset} ({PageSize} bytes at offset 0x{position:x}) has only {got} bytes");
        }

        return PageSize;
    }

    /// <summary>Closes the file.</summary>
    public void Dispose() => _file.Dispose();
}
