using Kvm.IO;

namespace Kvm.Images;

/// <summary>
/// One container format. <see cref="Probe"/> looks only at the first bytes of the first file and must be cheap and
/// side-effect free; <see cref="Open"/> takes ownership of the files on success and throws
/// <see cref="CorruptImageException"/> (naming file and offset) when the headers are inconsistent.
/// </summary>
internal interface IImageFormat
{
    /// <summary>A short name for messages.</summary>
    string Name { get; }

    /// <summary>True when <paramref name="header"/> (up to 4096 bytes of the file's start) is this format.</summary>
    bool Probe(ReadOnlySpan<byte> header, long fileLength);

    /// <summary>
    /// True when <paramref name="tail"/> (up to 4096 bytes of the file's end) is this format: for containers
    /// recognized by a trailer, such as a FreeBSD dump device. Asked only when no format recognized the start.
    /// </summary>
    bool ProbeTail(ReadOnlySpan<byte> tail, long fileLength) => false;

    /// <summary>Opens the image. <paramref name="files"/> has one element except for split kdump sets.</summary>
    DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options);
}
