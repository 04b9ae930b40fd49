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
        new Raw.RawFormat(),
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
            foreach (var format in All)
            {
                if (format.Probe(span, first.Length))
                {
                    if (files.Count > 1 && format is not Kdump.KdumpFormat)
                    {
                        throw new KvmException(KvmErrorCode.NotSupported, $"{first.Path}: several files were given, but only kdump split sets span several files ({format.Name} detected)");
                    }

                    var image = format.Open(files, options);
                    files.Clear();
                    return image;
                }
            }

            throw new KvmException(KvmErrorCode.NotSupported, $"{first.Path}: unrecognized image format (not ELF, kdump, flattened kdump, LiME, or a page-aligned raw memory image)");
        }
        finally
        {
            foreach (var f in files)
            {
                f.Dispose();
            }
        }
    }
}
