using Kvm.IO;

namespace Kvm.Images.Kdump;

/// <summary>
/// The bytes of one kdump-compressed file as makedumpfile lays them out (header at 0, sub-header at block_size,
/// bitmaps, page descriptors, page data), whether the file on disk is that layout itself or a flattened stream of
/// records that would reassemble into it. The header, bitmap and descriptor code reads only through this, so it
/// is the same for both.
/// </summary>
internal interface IKdumpFileView
{
    /// <summary>The path of the file on disk, for messages.</summary>
    string Path { get; }

    /// <summary>The length of the (reassembled) file.</summary>
    long Length { get; }

    /// <summary>True when the file on disk is in the flattened format.</summary>
    bool IsFlattened { get; }

    /// <summary>
    /// Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/> of the (reassembled) file and
    /// returns the count read, which is short only at the end of the file. Thread-safe.
    /// </summary>
    int Read(long offset, Span<byte> buffer);

    /// <summary>
    /// The offset in the file on disk where the <paramref name="length"/> bytes at <paramref name="offset"/> of the
    /// (reassembled) file lie contiguously, or -1 when they do not (beyond the end, or spread over several records
    /// or a hole of a flattened file).
    /// </summary>
    long FileOffsetOf(long offset, long length);
}

/// <summary>A kdump file read as it is on disk.</summary>
internal sealed class PlainKdumpFileView : IKdumpFileView
{
    private readonly RandomAccessFile _file;

    /// <summary>Wraps <paramref name="file"/>; the caller keeps ownership.</summary>
    public PlainKdumpFileView(RandomAccessFile file)
    {
        _file = file;
    }

    /// <inheritdoc/>
    public string Path => _file.Path;

    /// <inheritdoc/>
    public long Length => _file.Length;

    /// <inheritdoc/>
    public bool IsFlattened => false;

    /// <inheritdoc/>
    public int Read(long offset, Span<byte> buffer) => _file.Read(offset, buffer);

    /// <inheritdoc/>
    public long FileOffsetOf(long offset, long length) =>
        offset >= 0 && length >= 0 && offset <= _file.Length - length ? offset : -1;
}
