using Kvm.IO;

namespace Kvm.Images;

/// <summary>
/// The explicit, ordered table of container formats (no reflection, so NativeAOT-safe). Detection is by content,
/// never by file name: the first format whose probe accepts the file's first page wins. Raw images come last
/// because they have no signature at all.
/// </summary>
/// <remarks>
/// To add a format: implement <see cref="IImageFormat"/> and <see cref="DumpImage"/> in a folder of their own,
/// add one row here in probe order, and add a builder plus bounds tests in tests/Kvm.Testing and tests/Kvm.Tests.
/// </remarks>
internal static class ImageFormats
{
    /// <summary>Probe order. Signatured formats first, raw last.</summary>
    public static IReadOnlyList<IImageFormat> All { get; } =
    [
        new Kdump.KdumpFormat(),
        new Elf.ElfCoreFormat(),
        new Lime.LimeFormat(),
        new FreeBsd.MinidumpFormat(),
        new FreeBsd.KernelDumpDeviceFormat(),
        new Compressed.CompressedDumpFormat(),
        new Raw.RawFormat(),
    ];

    /// <summary>
    /// The formats a container may hold (a dump device's payload, a decompressed stream): the signatured ones that
    /// are not containers themselves. kdump files are compressed already and are not among them.
    /// </summary>
    private static IReadOnlyList<IImageFormat> Inner { get; } =
    [
        new Elf.ElfCoreFormat(),
        new Lime.LimeFormat(),
        new FreeBsd.MinidumpFormat(),
    ];

    /// <summary>The probe window: every signature we know fits in the first page.</summary>
    public const int ProbeBytes = 4096;

    /// <summary>Opens <paramref name="paths"/> (one file, or the parts of a split kdump set) as an image.</summary>
    public static DumpImage Open(IReadOnlyList<string> paths, ImageOpenOptions options)
    {
        if (paths.Count == 0)
        {
            throw new ArgumentException("no image file given", nameof(paths));
        }

        var files = new List<RandomAccessFile>(paths.Count);
        try
        {
            foreach (var path in paths)
            {
                files.Add(RandomAccessFile.Open(path, options.Writable));
            }

            var first = files[0];
            if (!first.IsDevice && first.Length == 0)
            {
                throw new CorruptImageException($"{first.Path}: empty file");
            }

            var header = new byte[ProbeBytes];
            int n = first.Read(0, header);
            var span = header.AsSpan(0, n);
            IImageFormat? found = null;
            foreach (var format in All)
            {
                // Containers known by a trailer (a dump device's image starts with whatever the device held before)
                // are looked for once no signature matched the start, and before raw images take the file.
                if (format is Raw.RawFormat && FindByTail(first) is { } byTail)
                {
                    found = byTail;
                    break;
                }

                if (format.Probe(span, first.Length))
                {
                    found = format;
                    break;
                }
            }

            if (found is not null)
            {
                if (files.Count > 1 && found is not Kdump.KdumpFormat)
                {
                    throw new KvmException(KvmErrorCode.NotSupported, $"{first.Path}: several files were given, but only kdump split sets span several files ({found.Name} detected)");
                }

                var image = found.Open(files, options);
                files.Clear();
                return image;
            }

            throw new KvmException(KvmErrorCode.NotSupported, $"{first.Path}: unrecognized image format (not ELF, kdump, flattened kdump, LiME, a FreeBSD minidump or dump device, a gzip or zstd stream, or a page-aligned raw memory image)");
        }
        finally
        {
            foreach (var f in files)
            {
                f.Dispose();
            }
        }
    }

    /// <summary>The format of a container's payload whose first bytes are <paramref name="header"/>, or null.</summary>
    public static IImageFormat? FindInner(ReadOnlySpan<byte> header, long length)
    {
        foreach (var format in Inner)
        {
            if (format.Probe(header, length))
            {
                return format;
            }
        }

        return null;
    }

    /// <summary>The format whose trailer ends the file (read from its last <see cref="ProbeBytes"/>), or null.</summary>
    private static IImageFormat? FindByTail(RandomAccessFile file)
    {
        if (file.IsDevice || file.Length == 0)
        {
            return null;
        }

        var tail = new byte[Math.Min(ProbeBytes, file.Length)];
        if (file.Read(file.Length - tail.Length, tail) != tail.Length)
        {
            return null;
        }

        return All.FirstOrDefault(f => f.ProbeTail(tail, file.Length));
    }
}
