using System.Buffers.Binary;
using Kvm.IO;

namespace Kvm.Images.Kdump;

/// <summary>
/// kdump-compressed images: <c>KDUMP   </c> (makedumpfile, QEMU), <c>DISKDUMP</c> (legacy diskdump), and the
/// flattened stream (<c>makedumpfile</c> NUL-padded to 16 bytes, big-endian type 1 and version 1).
/// </summary>
internal sealed class KdumpFormat : IImageFormat
{
    /// <inheritdoc/>
    public string Name => "kdump";

    /// <inheritdoc/>
    public bool Probe(ReadOnlySpan<byte> header, long fileLength)
    {
        if (KdumpHeader.HasSignature(header))
        {
            return true;
        }

        int n = FlattenedKdumpFileView.SignatureLength;
        return FlattenedKdumpFileView.HasSignature(header)
            && header.Length >= n + 16
            && BinaryPrimitives.ReadInt64BigEndian(header[n..]) == 1
            && BinaryPrimitives.ReadInt64BigEndian(header[(n + 8)..]) == 1;
    }

    /// <inheritdoc/>
    public DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options) => KdumpImage.Open(files, options);
}
