using System.Collections.Concurrent;
using System.IO.Compression;
using Snappier;
using ZstdSharp;

namespace Kvm.Images.Kdump;

/// <summary>
/// Decompresses one kdump page according to its <c>page_desc.flags</c> (makedumpfile diskdump_mod.h
/// DUMP_DH_COMPRESSED_*): zlib stream (<c>compress2</c>), LZO1X block (<c>lzo1x_1_compress</c>), raw snappy block
/// (<c>snappy_compress</c>, not the framed format), or one zstd frame (<c>ZSTD_compress</c>). Thread-safe: zstd
/// contexts are pooled, the others are stateless.
/// </summary>
internal sealed class KdumpPageDecoder : IDisposable
{
    /// <summary>page_desc flag: zlib.</summary>
    public const uint FlagZlib = 0x1;

    /// <summary>page_desc flag: LZO1X.</summary>
    public const uint FlagLzo = 0x2;

    /// <summary>page_desc flag: snappy.</summary>
    public const uint FlagSnappy = 0x4;

    /// <summary>page_desc flag: zstd.</summary>
    public const uint FlagZstd = 0x20;

    /// <summary>All compression flags.</summary>
    public const uint CompressionMask = FlagZlib | FlagLzo | FlagSnappy | FlagZstd;

    private readonly ConcurrentBag<Decompressor> _zstd = [];

    /// <summary>The name of the method <paramref name="flags"/> selects, for messages.</summary>
    public static string MethodName(uint flags) =>
        (flags & FlagZlib) != 0 ? "zlib"
        : (flags & FlagLzo) != 0 ? "lzo"
        : (flags & FlagSnappy) != 0 ? "snappy"
        : (flags & FlagZstd) != 0 ? "zstd"
        : "raw";

    /// <summary>
    /// Decompresses the first <paramref name="length"/> bytes of <paramref name="buffer"/> into
    /// <paramref name="page"/>, which must come out exactly full.
    /// When several flags are set the first of zlib, lzo, snappy, zstd wins, as in libkdumpfile's
    /// <c>diskdump_read_page</c>. Returns null on success, else a short reason (the caller adds file and offset).
    /// </summary>
    public string? Decode(uint flags, byte[] buffer, int length, Span<byte> page)
    {
        var source = buffer.AsSpan(0, length);
        try
        {
            int produced;
            if ((flags & FlagZlib) != 0)
            {
                produced = DecodeZlib(buffer, length, page);
            }
            else if ((flags & FlagLzo) != 0)
            {
                produced = Lzo1xDecompressor.Decompress(source, page);
            }
            else if ((flags & FlagSnappy) != 0)
            {
                int declared = Snappy.GetUncompressedLength(source);
                if (declared != page.Length)
                {
                    return $"snappy block declares {declared} bytes, expected {page.Length}";
                }

                produced = Snappy.Decompress(source, page);
            }
            else
            {
                produced = DecodeZstd(source, page);
            }

            return produced == page.Length ? null : $"{MethodName(flags)} data decompressed to {produced} bytes, expected {page.Length}";
        }
        catch (Exception e) when (e is InvalidDataException or ZstdException or ArgumentException or IndexOutOfRangeException)
        {
            return $"{MethodName(flags)} data is corrupt: {e.Message}";
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        while (_zstd.TryTake(out var d))
        {
            d.Dispose();
        }
    }

    private static int DecodeZlib(byte[] buffer, int length, Span<byte> page)
    {
        using var input = new MemoryStream(buffer, 0, length, writable: false);
        using var z = new ZLibStream(input, CompressionMode.Decompress);
        int total = 0;
        while (total < page.Length)
        {
            int n = z.Read(page[total..]);
            if (n == 0)
            {
                return total;
            }

            total += n;
        }

        // makedumpfile's uncompress() fails with Z_BUF_ERROR when a stream holds more than a page.
        Span<byte> probe = stackalloc byte[1];
        if (z.Read(probe) != 0)
        {
            throw new InvalidDataException($"decompresses to more than {page.Length} bytes");
        }

        return total;
    }

    private int DecodeZstd(ReadOnlySpan<byte> source, Span<byte> page)
    {
        if (!_zstd.TryTake(out var d))
        {
            d = new Decompressor();
        }

        bool fits;
        int written;
        try
        {
            fits = d.TryUnwrap(source, page, out written);
        }
        catch
        {
            // A context that failed mid-frame is not reused.
            d.Dispose();
            throw;
        }

        _zstd.Add(d);
        return fits ? written : throw new InvalidDataException($"decompresses to more than {page.Length} bytes");
    }
}
