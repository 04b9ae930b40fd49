using Kvm.IO;

namespace Kvm.Images.Raw;

/// <summary>
/// A raw physical memory image (LiME <c>format=padded</c>, a copy of /dev/mem, a QEMU <c>pmemsave</c>): file offset
/// equals physical address. It has no signature, so it is probed last and only accepted when page-aligned and at
/// least 1 MiB; the kernel layout is then found by scanning for VMCOREINFO.
/// </summary>
internal sealed class RawFormat : IImageFormat
{
    private const long MinimumSize = 1 << 20;

    public string Name => "raw";

    public bool Probe(ReadOnlySpan<byte> header, long fileLength) => fileLength >= MinimumSize && fileLength % 4096 == 0;

    public DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options)
    {
        var file = files[0];
        return new RawImage(file, new SegmentMap([new SegmentMap.Entry(0, (ulong)file.Length, 0, (ulong)file.Length)]));
    }
}

/// <summary>A raw image as physical memory.</summary>
internal sealed class RawImage(RandomAccessFile file, SegmentMap map) : FileBackedImage(file, map)
{
    public override DumpFormat Format => DumpFormat.Raw;

    public override string Description => "raw physical memory image";
}
