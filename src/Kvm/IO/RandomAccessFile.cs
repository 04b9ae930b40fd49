using Microsoft.Win32.SafeHandles;

namespace Kvm.IO;

/// <summary>
/// pread-style access to a file through <see cref="RandomAccess"/>: no shared stream position, so any number of
/// threads may read at once. The OS page cache is the only cache at this level. A file may also be a window onto
/// part of another (<see cref="Slice"/>: a dump inside a dump device's framing), or a private temporary file that
/// holds a decompressed dump and is deleted when closed (<see cref="CreateTemporary"/>).
/// </summary>
internal sealed class RandomAccessFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private readonly bool _ownsHandle;
    private readonly long _base;
    private long _length;

    private RandomAccessFile(string path, SafeFileHandle handle, bool writable, bool isDevice, bool ownsHandle, long baseOffset, long length)
    {
        Path = path;
        _handle = handle;
        CanWrite = writable;
        IsDevice = isDevice;
        _ownsHandle = ownsHandle;
        _base = baseOffset;
        _length = length;
    }

    /// <summary>The path the file was opened from (for a temporary file, the path of the file it was made from).</summary>
    public string Path { get; }

    /// <summary>The file length in bytes (long.MaxValue for character devices and procfs files that report 0).</summary>
    public long Length => _length;

    /// <summary>True when opened for writing.</summary>
    public bool CanWrite { get; }

    /// <summary>True for character devices and pseudo-files whose length is not meaningful.</summary>
    public bool IsDevice { get; }

    /// <summary>Where this file's byte 0 lies in the file on disk: non-zero for a slice.</summary>
    public long BaseOffset => _base;

    /// <summary>Opens <paramref name="path"/> for reading, or reading and writing.</summary>
    public static RandomAccessFile Open(string path, bool writable)
    {
        var handle = File.OpenHandle(path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        // /proc/kcore reports its virtual size, /proc/vmcore its real size; devices report 0.
        long length = RandomAccess.GetLength(handle);
        bool isDevice = length == 0 && (path.StartsWith("/dev/", StringComparison.Ordinal) || path.StartsWith("/proc/", StringComparison.Ordinal));
        return new RandomAccessFile(path, handle, writable, isDevice, ownsHandle: true, 0, isDevice ? long.MaxValue : length);
    }

    /// <summary>
    /// Creates an empty private file in <paramref name="directory"/> (the system's temporary directory when null),
    /// deleted when it is closed, to be filled with <see cref="Append"/>. <paramref name="displayPath"/> is the name
    /// messages use: the file the content came from.
    /// </summary>
    public static RandomAccessFile CreateTemporary(string displayPath, string? directory = null)
    {
        string path = System.IO.Path.Combine(directory ?? System.IO.Path.GetTempPath(), $"kvm-{Guid.NewGuid():N}.tmp");
        var handle = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, FileOptions.DeleteOnClose);
        return new RandomAccessFile(displayPath, handle, writable: false, isDevice: false, ownsHandle: true, 0, 0);
    }

    /// <summary>
    /// A read-only window of <paramref name="length"/> bytes at <paramref name="offset"/> of this file. The window
    /// shares the handle and does not own it: dispose this file, not the window, to close it.
    /// </summary>
    public RandomAccessFile Slice(long offset, long length)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(offset);
        ArgumentOutOfRangeException.ThrowIfNegative(length);
        long available = Math.Max(0, _length - Math.Min(offset, _length));
        return new RandomAccessFile(Path, _handle, CanWrite, IsDevice, ownsHandle: false, _base + offset, Math.Min(length, available));
    }

    /// <summary>
    /// Appends <paramref name="data"/> to a temporary file. A run of zero bytes may be skipped (<paramref name="zero"/>):
    /// the file then grows sparse, and reads of the hole return zeros.
    /// </summary>
    public void Append(ReadOnlySpan<byte> data, bool zero = false)
    {
        if (!zero)
        {
            RandomAccess.Write(_handle, data, _base + _length);
        }

        _length += data.Length;
    }

    /// <summary>Gives a temporary file its final length (a trailing hole is not written by <see cref="Append"/>).</summary>
    public void FinishAppending() => RandomAccess.SetLength(_handle, _base + _length);

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>; returns the count read (short at end of file).</summary>
    public int Read(long offset, Span<byte> buffer)
    {
        if (offset < 0 || offset >= _length)
        {
            return 0;
        }

        if ((ulong)buffer.Length > (ulong)(_length - offset))
        {
            buffer = buffer[..(int)(_length - offset)];
        }

        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(_handle, buffer[total..], _base + offset + total);
            if (n <= 0)
            {
                break;
            }

            total += n;
        }

        return total;
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes or throws, naming the file, offset and what was being read.</summary>
    public void ReadExactly(long offset, Span<byte> buffer, string what)
    {
        int n = Read(offset, buffer);
        if (n != buffer.Length)
        {
            throw new CorruptImageException($"{Path}: truncated: cannot read {what} ({buffer.Length} bytes at offset 0x{_base + offset:x}, got {n})");
        }
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>.</summary>
    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (!CanWrite)
        {
            throw new KvmException(KvmErrorCode.ReadOnly, $"{Path}: not opened for writing");
        }

        if (!_ownsHandle && (offset < 0 || data.Length > _length - offset))
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{Path}: a write at 0x{_base + offset:x} would leave the dump's part of the file");
        }

        RandomAccess.Write(_handle, data, _base + offset);
        if (!IsDevice && offset + data.Length > _length)
        {
            _length = offset + data.Length;
        }
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (_ownsHandle)
        {
            _handle.Dispose();
        }
    }
}
