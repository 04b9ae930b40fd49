using Kvm.Images.Compressed;
using Kvm.IO;

namespace Kvm.Images.FreeBsd;

/// <summary>
/// A FreeBSD dump as the kernel writes it to the dump device, before savecore(8) extracts it: a leading
/// <c>kerneldumpheader</c> (one block), the encryption key (<c>dumpkeysize</c> bytes, when encrypted), the dump
/// (<c>dumplength</c> bytes, compressed when <c>compression</c> says so, inside <c>dumpextent</c> bytes of space), and
/// a trailing copy of the header in the device's last block (sys/kern/kern_shutdown.c <c>dump_start</c>,
/// <c>dump_finish</c>; usr.sbin/savecore/savecore.c <c>DoFile</c>).
/// </summary>
/// <remarks>
/// Two shapes are read: a file that starts with the leading header (the dump's area cut out of the device), and an
/// image of the whole device, found as savecore finds it, by the trailing header in the last 512-byte or 4 KiB
/// block. When both copies are in the file they must agree, as savecore requires. Encrypted dumps (decrypt them
/// with decryptcore(8) first), text dumps (ddb output, no memory) and cleared headers are refused with what they
/// are.
/// </remarks>
internal sealed class KernelDumpDeviceFormat : IImageFormat
{
    private static readonly int[] s_sectorSizes = [512, 4096];

    public string Name => "FreeBSD dump device";

    public bool Probe(ReadOnlySpan<byte> header, long fileLength) => KernelDumpHeader.HasMagic(header);

    public bool ProbeTail(ReadOnlySpan<byte> tail, long fileLength)
    {
        foreach (int sector in s_sectorSizes)
        {
            if (tail.Length >= sector && KernelDumpHeader.HasMagic(tail[^sector..]))
            {
                return true;
            }
        }

        return false;
    }

    public DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options)
    {
        var file = files[0];
        var (header, payloadOffset) = Locate(file);
        switch (header.Kind)
        {
            case KernelDumpKind.Text:
                throw new KvmException(KvmErrorCode.NotSupported, $"{file.Path}: a FreeBSD textdump (ddb output in a tar archive): it holds no memory image");
            case KernelDumpKind.Cleared:
                throw new KvmException(KvmErrorCode.NotSupported, $"{file.Path}: the kernel dump header is marked cleared (savecore has already saved this dump)");
        }

        if (header.DumpKeySize > 0)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{file.Path}: an encrypted kernel dump (dumpon -k, {header.DumpKeySize}-byte key): decrypt it with decryptcore(8) first");
        }

        if (header.DumpLength > (ulong)(long.MaxValue - payloadOffset))
        {
            throw new CorruptImageException($"{file.Path}: the kernel dump header's dump length 0x{header.DumpLength:x} is impossible");
        }

        var payload = file.Slice(payloadOffset, (long)header.DumpLength);
        string where = $"in a dump device's framing (kerneldumpheader v{header.Version}, {header.Architecture}, dump at offset 0x{payloadOffset:x})";
        switch (header.Compression)
        {
            case KernelDumpHeader.CompressionNone:
                break;
            case KernelDumpHeader.CompressionGzip:
                return new ContainedImage(CompressedDumpFormat.Open(payload, DumpCompression.Gzip, options, header, payload), file.Path, 0, false, where, DumpCompression.None, header, file);
            case KernelDumpHeader.CompressionZstd:
                return new ContainedImage(CompressedDumpFormat.Open(payload, DumpCompression.Zstd, options, header, payload), file.Path, 0, false, where, DumpCompression.None, header, file);
            default:
                throw new CorruptImageException($"{file.Path}: unknown compression {header.Compression} in the kernel dump header (0 none, 1 gzip, 2 zstd)");
        }

        var head = new byte[ImageFormats.ProbeBytes];
        int n = payload.Read(0, head);
        var format = ImageFormats.FindInner(head.AsSpan(0, n), payload.Length)
            ?? throw new CorruptImageException($"{file.Path}: the dump at offset 0x{payloadOffset:x} behind the kernel dump header is neither a minidump nor an ELF core");
        var inner = format.Open([payload], options);
        return new ContainedImage(inner, file.Path, payloadOffset, plainOnDisk: true, where, DumpCompression.None, header, file);
    }

    /// <summary>The header and where the dump starts: after the leading header, or found from the trailing one.</summary>
    private static (KernelDumpHeader Header, long PayloadOffset) Locate(RandomAccessFile file)
    {
        var first = new byte[KernelDumpHeader.Size];
        int n = file.Read(0, first);
        if (KernelDumpHeader.HasMagic(first.AsSpan(0, n)))
        {
            var leading = KernelDumpHeader.Parse(first.AsSpan(0, n), $"{file.Path}: leading dump header");
            long block = BlockSize(leading, file.Path);
            long payload = block + leading.DumpKeySize;

            // The trailing copy sits right after the dump's extent; savecore insists the two agree.
            if (leading.DumpExtent <= (ulong)(long.MaxValue - payload) && payload + (long)leading.DumpExtent is long trailerAt && trailerAt <= file.Length - KernelDumpHeader.Size)
            {
                var trailer = new byte[KernelDumpHeader.Size];
                file.ReadExactly(trailerAt, trailer, "the trailing dump header");
                if (!trailer.AsSpan().SequenceEqual(leading.Raw))
                {
                    throw new CorruptImageException($"{file.Path}: the first and last dump headers disagree (the trailing header at offset 0x{trailerAt:x})");
                }
            }

            return (leading, payload);
        }

        foreach (int sector in s_sectorSizes)
        {
            long lastAt = file.Length - sector;
            if (lastAt < 0)
            {
                continue;
            }

            var last = new byte[KernelDumpHeader.Size];
            if (file.Read(lastAt, last) != last.Length || !KernelDumpHeader.HasMagic(last))
            {
                continue;
            }

            var trailing = KernelDumpHeader.Parse(last, $"{file.Path}: last dump header at offset 0x{lastAt:x}");

            // savecore: firsthd = lasthd - dumpextent - sectorsize - dumpkeysize.
            if (trailing.DumpExtent > (ulong)lastAt || trailing.DumpExtent + (ulong)sector + trailing.DumpKeySize > (ulong)lastAt)
            {
                throw new CorruptImageException($"{file.Path}: the last dump header's extent (0x{trailing.DumpExtent:x} bytes) reaches before the start of the file");
            }

            long firstAt = lastAt - (long)(trailing.DumpExtent + (ulong)sector + trailing.DumpKeySize);
            var leading = new byte[KernelDumpHeader.Size];
            file.ReadExactly(firstAt, leading, "the first dump header");
            if (!leading.AsSpan().SequenceEqual(last))
            {
                throw new CorruptImageException($"{file.Path}: the first and last dump headers disagree (the first one is expected at offset 0x{firstAt:x})");
            }

            return (trailing, firstAt + sector + trailing.DumpKeySize);
        }

        throw new CorruptImageException($"{file.Path}: no kernel dump header at the start or in the last block of the file");
    }

    private static long BlockSize(KernelDumpHeader header, string path)
    {
        // The leading header fills one block of the dump device; FreeBSD's disks have 512-byte to 64 KiB sectors.
        uint block = header.BlockSize;
        if (block < KernelDumpHeader.Size || block > 65536 || (block & (block - 1)) != 0)
        {
            throw new CorruptImageException($"{path}: the kernel dump header's block size {block} is not a power of two between 512 and 65536");
        }

        return block;
    }
}
