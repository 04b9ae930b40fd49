using System.Buffers.Binary;
using Kvm.IO;

namespace Kvm.Images.Lime;

/// <summary>
/// LiME images (504ensicsLabs/LiME src/lime.h): a sequence of ranges, each a 32-byte header
/// <c>u32 magic 0x4C694D45, u32 version 1, u64 s_addr, u64 e_addr (inclusive), u8 reserved[8]</c> followed by the data.
/// </summary>
internal sealed class LimeFormat : IImageFormat
{
    public const uint Magic = 0x4C694D45;
    public const int HeaderSize = 32;

    public string Name => "LiME";

    public bool Probe(ReadOnlySpan<byte> header, long fileLength) =>
        header.Length >= HeaderSize && BinaryPrimitives.ReadUInt32LittleEndian(header) == Magic && BinaryPrimitives.ReadUInt32LittleEndian(header[4..]) == 1;

    public DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options)
    {
        var file = files[0];
        var entries = new List<SegmentMap.Entry>();
        long offset = 0;
        ulong previousEnd = 0;
        var header = new byte[HeaderSize];
        while (offset < file.Length)
        {
            int n = file.Read(offset, header);
            if (n < HeaderSize)
            {
                throw new CorruptImageException($"{file.Path}: truncated LiME range header {entries.Count} at offset 0x{offset:x}");
            }

            uint magic = BinaryPrimitives.ReadUInt32LittleEndian(header);
            uint version = BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(4));
            ulong start = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(8));
            ulong end = BinaryPrimitives.ReadUInt64LittleEndian(header.AsSpan(16));
            if (magic != Magic || version != 1)
            {
                throw new CorruptImageException($"{file.Path}: bad LiME range header {entries.Count} at offset 0x{offset:x} (magic 0x{magic:x8}, version {version})");
            }

            // e_addr is inclusive; ranges ascend and do not overlap (LiME writes iomem "System RAM" in order).
            if (end < start || end == ulong.MaxValue || (entries.Count > 0 && start < previousEnd))
            {
                throw new CorruptImageException($"{file.Path}: LiME range {entries.Count} at offset 0x{offset:x} is invalid or out of order (0x{start:x}-0x{end:x})");
            }

            if (entries.Count >= options.Limits.MaxLimeRanges)
            {
                throw new CorruptImageException($"{file.Path}: more than {options.Limits.MaxLimeRanges} LiME ranges");
            }

            ulong length = end - start + 1;
            long dataOffset = offset + HeaderSize;
            ulong available = (ulong)Math.Max(0, file.Length - dataOffset);
            entries.Add(new SegmentMap.Entry(start, length, dataOffset, length));
            previousEnd = end + 1;
            if (length >= available)
            {
                // A short last range is kept: reads past the file's end report "truncated".
                break;
            }

            offset = dataOffset + (long)length;
        }

        return new LimeImage(file, new SegmentMap(entries));
    }
}

/// <summary>A LiME image as physical memory.</summary>
internal sealed class LimeImage(RandomAccessFile file, SegmentMap map) : FileBackedImage(file, map)
{
    public override DumpFormat Format => DumpFormat.Lime;

    public override string Description => "LiME image";
}
