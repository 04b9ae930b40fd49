using System.IO.Compression;
using Kvm.Images.FreeBsd;
using Kvm.IO;
using ZstdSharp;

namespace Kvm.Images.Compressed;

/// <summary>
/// A dump compressed as one gzip or zstd stream: FreeBSD's <c>savecore -z</c> (<c>vmcore.N.gz</c>) and the dumps the
/// kernel compresses itself (<c>dumpon -z</c> or <c>-Z</c>), which savecore(8) saves as <c>vmcore.N.gz</c> or
/// <c>vmcore.N.zst</c> (usr.sbin/savecore/savecore.c). Any dump whose decompressed start is a format Kvm reads
/// (a minidump, an ELF core, a LiME image) is accepted.
/// </summary>
/// <remarks>
/// Neither stream can be read at random, so the image is decompressed once, when opened, into a private temporary
/// file (the system's temporary directory, <c>$TMPDIR</c>; deleted when the image is closed; pages of zeros are left
/// as holes, so the copy takes the disk space of the non-zero data). Nothing is held in memory beyond a 1 MiB
/// buffer, and a stream that inflates past <see cref="KvmLimits.MaxDecompressedBytes"/> is refused. Pages then read
/// as from the uncompressed dump, but none is stored plainly in the file given: a page walk reports no file offsets.
/// </remarks>
internal sealed class CompressedDumpFormat : IImageFormat
{
    public string Name => "gzip- or zstd-compressed dump";

    public bool Probe(ReadOnlySpan<byte> header, long fileLength) => KindOf(header) is not null;

    public DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options)
    {
        var file = files[0];
        Span<byte> head = stackalloc byte[4];
        int n = file.Read(0, head);
        var kind = KindOf(head[..n]) ?? throw new CorruptImageException($"{file.Path}: not a gzip or zstd stream");
        return Open(file, kind, options, null, file);
    }

    /// <summary>gzip (1f 8b, deflate) or zstd (28 b5 2f fd), or null.</summary>
    public static DumpCompression? KindOf(ReadOnlySpan<byte> header) =>
        header.Length >= 3 && header[0] == 0x1f && header[1] == 0x8b && header[2] == 8 ? DumpCompression.Gzip
        : header.Length >= 4 && header[0] == 0x28 && header[1] == 0xb5 && header[2] == 0x2f && header[3] == 0xfd ? DumpCompression.Zstd
        : null;

    /// <summary>
    /// Decompresses <paramref name="source"/> (a whole file, or the payload window of a dump device) and opens what
    /// it holds. <paramref name="owner"/> is closed with the image (or at once if this fails).
    /// </summary>
    public static DumpImage Open(RandomAccessFile source, DumpCompression kind, ImageOpenOptions options, KernelDumpHeader? deviceHeader, IDisposable owner)
    {
        string name = kind == DumpCompression.Gzip ? "gzip" : "zstd";
        RandomAccessFile? copy = null;
        try
        {
            // Look before decompressing it all: a compressed file that is not a dump is refused at once.
            var head = new byte[ImageFormats.ProbeBytes];
            int n;
            using (var probe = Decompressor(source, kind))
            {
                n = ReadFully(probe, head, source.Path, name, 0);
            }

            var format = ImageFormats.FindInner(head.AsSpan(0, n), long.MaxValue)
                ?? throw new KvmException(KvmErrorCode.NotSupported, $"{source.Path}: {name}-compressed, but what it holds is not a dump Kvm reads (not a FreeBSD minidump, an ELF core or a LiME image)");

            copy = RandomAccessFile.CreateTemporary(source.Path);
            using (var stream = Decompressor(source, kind))
            {
                Inflate(stream, copy, source.Path, name, options.Limits.MaxDecompressedBytes);
            }

            var inner = format.Open([copy], options with { Writable = false });
            var image = new ContainedImage(inner, source.Path, 0, plainOnDisk: false, $"{name}-compressed (decompressed to a temporary file)", kind, deviceHeader, owner);
            copy = null;
            return image;
        }
        catch
        {
            copy?.Dispose();
            owner.Dispose();
            throw;
        }
    }

    private static Stream Decompressor(RandomAccessFile source, DumpCompression kind)
    {
        var raw = new RandomAccessFileStream(source);
        return kind == DumpCompression.Gzip ? new GZipStream(raw, CompressionMode.Decompress) : new DecompressionStream(raw);
    }

    private static void Inflate(Stream stream, RandomAccessFile copy, string path, string name, long limit)
    {
        const int Block = 4096;
        var buffer = new byte[1 << 20];
        long total = 0;
        while (true)
        {
            int n = ReadFully(stream, buffer, path, name, total);
            if (n == 0)
            {
                break;
            }

            total += n;
            if (total > limit)
            {
                throw new CorruptImageException($"{path}: the {name} stream decompresses to more than KvmLimits.MaxDecompressedBytes ({limit} bytes)");
            }

            // Runs of whole zero blocks become holes; everything else is written in one piece per run.
            int start = 0;
            while (start < n)
            {
                int end = start;
                bool zero = IsZero(buffer, start, Math.Min(Block, n - start));
                while (end < n && IsZero(buffer, end, Math.Min(Block, n - end)) == zero)
                {
                    end += Math.Min(Block, n - end);
                }

                try
                {
                    copy.Append(buffer.AsSpan(start, end - start), zero);
                }
                catch (IOException e)
                {
                    throw new KvmException(KvmErrorCode.NotSupported, $"{path}: cannot write the decompressed copy to the temporary directory {Path.GetTempPath()}: {e.Message}", e);
                }

                start = end;
            }

            if (n < buffer.Length)
            {
                break;
            }
        }

        copy.FinishAppending();
    }

    private static bool IsZero(byte[] buffer, int start, int length) => buffer.AsSpan(start, length).IndexOfAnyExcept((byte)0) < 0;

    private static int ReadFully(Stream stream, byte[] buffer, string path, string name, long at)
    {
        int done = 0;
        try
        {
            while (done < buffer.Length)
            {
                int n = stream.Read(buffer, done, buffer.Length - done);
                if (n == 0)
                {
                    break;
                }

                done += n;
            }
        }
        catch (Exception e) when (e is InvalidDataException or ZstdException)
        {
            throw new CorruptImageException($"{path}: the {name} stream is corrupt near decompressed offset 0x{at + done:x}: {e.Message}", e);
        }

        return done;
    }
}
