using Kvm.IO;

namespace Kvm.Images;

/// <summary>
/// Shared read and write logic for images whose physical memory is a set of file ranges (ELF, LiME, raw).
/// A range's tail beyond <see cref="SegmentMap.Entry.FileLength"/> is excluded (ELF p_filesz &lt; p_memsz, as
/// makedumpfile -E writes it); a range that the file ends inside is truncated.
/// </summary>
internal abstract class FileBackedImage : DumpImage
{
    private readonly SegmentMap _map;

    protected FileBackedImage(RandomAccessFile file, SegmentMap map)
    {
        File = file;
        _map = map;
    }

    protected RandomAccessFile File { get; }

    protected SegmentMap Map => _map;

    public override IReadOnlyList<string> Files => [File.Path];

    public override IReadOnlyList<PhysicalRange> PhysicalRanges => _map.ToRanges();

    public override long ExcludedPages
    {
        get
        {
            ulong bytes = 0;
            foreach (var e in _map.Entries)
            {
                bytes += e.Length - Math.Min(e.Length, e.FileLength);
            }

            return (long)(bytes / 4096);
        }
    }

    public override bool CanWrite => File.CanWrite;

    public override int ReadPhysical(ulong physicalAddress, Span<byte> buffer, out PhysicalReadStatus status)
    {
        int done = 0;
        status = PhysicalReadStatus.Complete;
        while (done < buffer.Length)
        {
            ulong pa = physicalAddress + (ulong)done;
            if (!_map.TryFind(pa, out var e))
            {
                status = PhysicalReadStatus.NotInImage;
                break;
            }

            ulong inSegment = pa - e.Start;
            if (inSegment >= e.FileLength)
            {
                status = PhysicalReadStatus.Excluded;
                break;
            }

            if (inSegment > (ulong)(long.MaxValue - e.FileOffset))
            {
                // A hostile range longer than any file (LiME e_addr near 2^64): its far end can only be missing.
                status = PhysicalReadStatus.Truncated;
                break;
            }

            int chunk = (int)Math.Min((ulong)(buffer.Length - done), e.FileLength - inSegment);
            int n = File.Read(e.FileOffset + (long)inSegment, buffer.Slice(done, chunk));
            done += n;
            if (n < chunk)
            {
                status = PhysicalReadStatus.Truncated;
                break;
            }
        }

        return done;
    }

    public override PhysicalStorage Locate(ulong physicalAddress, ulong length)
    {
        ArgumentOutOfRangeException.ThrowIfZero(length);
        ulong done = 0;
        long firstOffset = -1;
        bool contiguous = true;
        while (done < length)
        {
            if (ulong.MaxValue - physicalAddress < done || !_map.TryFind(physicalAddress + done, out var e))
            {
                return PhysicalStorage.Of(StorageKind.NotInImage);
            }

            ulong inSegment = physicalAddress + done - e.Start;
            if (inSegment >= e.FileLength)
            {
                return PhysicalStorage.Of(StorageKind.Excluded);
            }

            ulong chunk = Math.Min(length - done, e.FileLength - inSegment);
            if (inSegment >= (ulong)(File.Length - Math.Min(e.FileOffset, File.Length)))
            {
                // The segment's data would start at or past the end of the file.
                return PhysicalStorage.Of(StorageKind.Truncated);
            }

            long offset = e.FileOffset + (long)inSegment;
            if (chunk > (ulong)(File.Length - offset))
            {
                return PhysicalStorage.Of(StorageKind.Truncated);
            }
            if (done == 0)
            {
                firstOffset = offset;
            }
            else if (offset != firstOffset + (long)done)
            {
                contiguous = false;
            }

            done += chunk;
        }

        return contiguous ? PhysicalStorage.PlainAt(0, firstOffset) : PhysicalStorage.Of(StorageKind.Stored);
    }

    public override IEnumerable<PhysicalRange> EnumerateStoredRanges()
    {
        // Each entry holds its first FileLength bytes, of which the file may cut off the tail (a truncated dump).
        ulong start = 0;
        ulong end = 0;
        bool any = false;
        foreach (var e in _map.Entries)
        {
            ulong held = e.FileOffset >= File.Length ? 0 : Math.Min(e.FileLength, (ulong)(File.Length - e.FileOffset));
            if (held == 0)
            {
                continue;
            }

            if (any && e.Start == end)
            {
                end += held;
                continue;
            }

            if (any)
            {
                yield return new PhysicalRange(start, end - start);
            }

            start = e.Start;
            end = e.Start + held;
            any = true;
        }

        if (any)
        {
            yield return new PhysicalRange(start, end - start);
        }
    }

    public override int WritePhysical(ulong physicalAddress, ReadOnlySpan<byte> data)
    {
        if (!File.CanWrite)
        {
            throw new KvmException(KvmErrorCode.ReadOnly, $"{File.Path}: image not opened for writing");
        }

        int done = 0;
        while (done < data.Length)
        {
            ulong pa = physicalAddress + (ulong)done;
            if (!_map.TryFind(pa, out var e) || pa - e.Start >= e.FileLength)
            {
                break;
            }

            ulong inSegment = pa - e.Start;
            int chunk = (int)Math.Min((ulong)(data.Length - done), e.FileLength - inSegment);
            File.Write(e.FileOffset + (long)inSegment, data.Slice(done, chunk));
            done += chunk;
        }

        return done;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            File.Dispose();
        }

        base.Dispose(disposing);
    }
}
