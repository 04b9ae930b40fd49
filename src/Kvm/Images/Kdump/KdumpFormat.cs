using Kvm.IO;

namespace Kvm.Images.Kdump;

/// <summary>kdump-compressed images (scaffold; the reader is being written).</summary>
internal sealed class KdumpFormat : IImageFormat
{
    public string Name => "kdump";

    public bool Probe(ReadOnlySpan<byte> header, long fileLength) =>
        header.StartsWith("KDUMP   "u8) || header.StartsWith("DISKDUMP"u8) || header.StartsWith("makedumpfile\0"u8);

    public DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options) =>
        throw new KvmException(KvmErrorCode.NotSupported, "kdump reader not built yet");
}
