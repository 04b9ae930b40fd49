using Kvm.Images.FreeBsd;
using Kvm.IO;

namespace Kvm.Images;

/// <summary>
/// An image whose format lives inside another container: a dump inside a dump device's framing (a window of the
/// file), or a compressed dump decompressed into a temporary file. It forwards to the inner image and corrects what
/// the container changes: the file names (the file given, not the window or the temporary copy), the description,
/// the compression, and where a page's plain bytes are on disk (offset by the window's start; none for a
/// decompressed copy, whose bytes are not in the file given).
/// </summary>
internal sealed class ContainedImage : DumpImage
{
    private readonly DumpImage _inner;
    private readonly string _path;
    private readonly long _baseOffset;
    private readonly bool _plainOnDisk;
    private readonly string _description;
    private readonly DumpCompression _compression;
    private readonly FreeBsdDumpInfo? _freeBsd;
    private readonly IDisposable[] _owned;

    /// <param name="inner">The image read from the inner data.</param>
    /// <param name="path">The file given.</param>
    /// <param name="baseOffset">Where the inner data starts in that file (a window), when <paramref name="plainOnDisk"/>.</param>
    /// <param name="plainOnDisk">False for decompressed data: no page is plain in the file given.</param>
    /// <param name="description">The container's words, put in front of the inner image's description.</param>
    /// <param name="compression">Compression the container adds.</param>
    /// <param name="deviceHeader">The FreeBSD dump device header, when the container is that framing.</param>
    /// <param name="owned">Files to close with the image (the file given, the temporary file).</param>
    public ContainedImage(DumpImage inner, string path, long baseOffset, bool plainOnDisk, string description, DumpCompression compression, KernelDumpHeader? deviceHeader, params IDisposable[] owned)
    {
        _inner = inner;
        _path = path;
        _baseOffset = baseOffset;
        _plainOnDisk = plainOnDisk;
        _description = description;
        _compression = compression;
        _owned = owned;
        var innerInfo = inner.FreeBsd;
        if (deviceHeader is not null)
        {
            // The framing says FreeBSD even for an ELF core that does not.
            var architecture = innerInfo?.Architecture ?? FreeBsdDumpInfo.FromElfMachine(inner.ElfMachine);
            _freeBsd = architecture is { } a ? new FreeBsdDumpInfo(a, innerInfo?.Minidump, deviceHeader) : innerInfo;
        }
        else
        {
            _freeBsd = innerInfo;
        }
    }

    /// <summary>The image inside the container.</summary>
    public DumpImage Inner => _inner;

    public override DumpFormat Format => _inner.Format;

    public override string Description => $"{_inner.Description}, {_description}";

    public override DumpCompression Compression => _inner.Compression | _compression;

    public override bool IsFlattened => _inner.IsFlattened;

    public override IReadOnlyList<string> Files => [_path];

    public override int? PageSize => _inner.PageSize;

    public override ushort ElfMachine => _inner.ElfMachine;

    public override string? MachineName => _inner.MachineName;

    public override IReadOnlyList<ElfNote> Notes => _inner.Notes;

    public override VmcoreInfo? VmcoreInfo => _inner.VmcoreInfo;

    public override FreeBsdDumpInfo? FreeBsd => _freeBsd;

    public override IReadOnlyList<PhysicalRange> PhysicalRanges => _inner.PhysicalRanges;

    public override IReadOnlyList<VirtualSegment> VirtualSegments => _inner.VirtualSegments;

    public override long ExcludedPages => _inner.ExcludedPages;

    public override int? DumpLevel => _inner.DumpLevel;

    public override bool CanWrite => _plainOnDisk && _inner.CanWrite;

    public override IReadOnlyList<CacheStatistics> CacheStatistics => _inner.CacheStatistics;

    public override int ReadPhysical(ulong physicalAddress, Span<byte> buffer, out PhysicalReadStatus status) =>
        _inner.ReadPhysical(physicalAddress, buffer, out status);

    public override PhysicalStorage Locate(ulong physicalAddress, ulong length)
    {
        var storage = _inner.Locate(physicalAddress, length);
        if (storage.Kind != StorageKind.Plain)
        {
            return storage;
        }

        return _plainOnDisk ? PhysicalStorage.PlainAt(storage.FileIndex, _baseOffset + storage.FileOffset) : PhysicalStorage.Of(StorageKind.Stored);
    }

    public override IEnumerable<PhysicalRange> EnumerateStoredRanges() => _inner.EnumerateStoredRanges();

    public override int WritePhysical(ulong physicalAddress, ReadOnlySpan<byte> data) =>
        CanWrite ? _inner.WritePhysical(physicalAddress, data) : throw new KvmException(KvmErrorCode.NotSupported, $"writing is not supported for {Description} images");

    public override void FlushCaches() => _inner.FlushCaches();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _inner.Dispose();
            foreach (var d in _owned)
            {
                d.Dispose();
            }
        }

        base.Dispose(disposing);
    }
}
