using Microsoft.Win32.SafeHandles;

namespace Kvm.IO;

/// <summary>
/// pread-style access to a file through <see cref="RandomAccess"/>: no shared stream position, so any number of
/// threads may read at once. The OS page cache is the only cache at this level.
/// </summary>
internal sealed class RandomAccessFile : IDisposable
{
    private readonly SafeFileHandle _handle;
    private long _length;

    private RandomAccessFile(string path, SafeFileHandle handle, bool writable, bool isDevice)
    {
        Path = path;
        _handle = handle;
        CanWrite = writable;
        IsDevice = isDevice;
        _length = isDevice ? long.MaxValue : RandomAccess.GetLength(handle);
    }

    /// <summary>The path the file was opened from.</summary>
    public string Path { get; }

    /// <summary>The file length in bytes (long.MaxValue for character devices and procfs files that report 0).</summary>
    public long Length => _length;

    /// <summary>True when opened for writing.</summary>
    public bool CanWrite { get; }

    /// <summary>True for character devices and pseudo-files whose length is not meaningful.</summary>
    public bool IsDevice { get; }

    /// <summary>Opens <paramref name="path"/> for reading, or reading and writing.</summary>
    public static RandomAccessFile Open(string path, bool writable)
    {
        var handle = File.OpenHandle(path, FileMode.Open, writable ? FileAccess.ReadWrite : FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        // /proc/kcore reports its virtual size, /proc/vmcore its real size; devices report 0.
        bool isDevice = RandomAccess.GetLength(handle) == 0 && (path.StartsWith("/dev/", StringComparison.Ordinal) || path.StartsWith("/proc/", StringComparison.Ordinal));
        return new RandomAccessFile(path, handle, writable, isDevice);
    }

    /// <summary>Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="offset"/>; returns the count read (short at end of file).</summary>
    public int Read(long offset, Span<byte> buffer)
    {
        if (offset < 0)
        {
            return 0;
        }

        int total = 0;
        while (total < buffer.Length)
        {
            int n = RandomAccess.Read(_handle, buffer[total..], offset + total);
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
            throw new CorruptImageException($"{Path}: truncated: cannot read {what} ({buffer.Length} bytes at offset 0x{offset:x}, got {n})");
        }
    }

    /// <summary>Writes <paramref name="data"/> at <paramref name="offset"/>.</summary>
    public void Write(long offset, ReadOnlySpan<byte> data)
    {
        if (!CanWrite)
        {
            throw new KvmException(KvmErrorCode.ReadOnly, $"{Path}: not opened for writing");
        }

        RandomAccess.Write(_handle, data, offset);
        if (!IsDevice && offset + data.Length > _length)
        {
            _length = offset + data.Length;
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _handle.Dispose();
}
