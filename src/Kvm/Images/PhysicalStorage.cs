namespace Kvm.Images;

/// <summary>How a range of physical memory is kept in an image (<see cref="DumpImage.Locate"/>).</summary>
internal enum StorageKind
{
    /// <summary>Some of the range is not described by the image (outside every PT_LOAD, range, or bitmap).</summary>
    NotInImage,

    /// <summary>Some of the range is in memory but was left out of the dump (makedumpfile -d, an ELF tail past p_filesz).</summary>
    Excluded,

    /// <summary>Some of the range should be in the file but the file ends before it.</summary>
    Truncated,

    /// <summary>Every byte is in the image, but not as one run of plain bytes (compressed pages, or a large page split across segments or files).</summary>
    Stored,

    /// <summary>Every byte is in one file, plain and contiguous, at <see cref="PhysicalStorage.FileOffset"/>.</summary>
    Plain,
}

/// <summary>
/// Where the bytes of a physical range are: the answer to "which file, at which offset, holds the plain bytes of
/// this page" that FreeBSD's <c>kvm_walk_pages</c> reports as <c>kp_offset</c>.
/// </summary>
/// <param name="Kind">How the range is kept; for a range that is not wholly readable, why not (the first failing byte's reason).</param>
/// <param name="FileIndex">With <see cref="StorageKind.Plain"/>, the index in <see cref="DumpImage.Files"/>; otherwise -1.</param>
/// <param name="FileOffset">With <see cref="StorageKind.Plain"/>, the byte offset in that file on disk; otherwise -1.</param>
internal readonly record struct PhysicalStorage(StorageKind Kind, int FileIndex, long FileOffset)
{
    /// <summary>True when every byte of the range can be read from the image.</summary>
    public bool IsStored => Kind is StorageKind.Stored or StorageKind.Plain;

    /// <summary>A range whose bytes are not (all) plain in one file.</summary>
    public static PhysicalStorage Of(StorageKind kind) => new(kind, -1, -1);

    /// <summary>A range stored plain at <paramref name="fileOffset"/> of file <paramref name="fileIndex"/>.</summary>
    public static PhysicalStorage PlainAt(int fileIndex, long fileOffset) => new(StorageKind.Plain, fileIndex, fileOffset);
}
