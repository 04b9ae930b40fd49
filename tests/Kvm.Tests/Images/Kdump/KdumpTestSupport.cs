using Kvm.Images;
using Kvm.Images.Kdump;
using Kvm.IO;

namespace Kvm.Tests.Images.Kdump;

/// <summary>A temporary directory for test dump files, deleted on dispose.</summary>
internal sealed class TempDumpDir : IDisposable
{
    public TempDumpDir()
    {
        Path = Directory.CreateTempSubdirectory("kvm-kdump-").FullName;
    }

    public string Path { get; }

    public string Write(string name, byte[] bytes)
    {
        string path = System.IO.Path.Combine(Path, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class KdumpTestSupport
{
    public static ImageOpenOptions Options(int cachePages = 1024, KvmLimits? limits = null) =>
        new(false, limits ?? KvmLimits.Default, new CacheOptions { DecompressedPages = cachePages });

    /// <summary>Opens <paramref name="paths"/> through the kdump format, closing the files if opening fails.</summary>
    public static KdumpImage Open(ImageOpenOptions options, params string[] paths)
    {
        var files = paths.Select(p => RandomAccessFile.Open(p, writable: false)).ToList();
        try
        {
            return (KdumpImage)new KdumpFormat().Open(files, options);
        }
        catch
        {
            foreach (var f in files)
            {
                f.Dispose();
            }

            throw;
        }
    }

    public static KdumpImage Open(params string[] paths) => Open(Options(), paths);

    /// <summary>Writes <paramref name="bytes"/> to a file in <paramref name="dir"/> and opens it.</summary>
    public static KdumpImage OpenBytes(TempDumpDir dir, byte[] bytes, ImageOpenOptions? options = null) =>
        Open(options ?? Options(), dir.Write($"dump-{Guid.NewGuid():N}", bytes));

    /// <summary>Reads <paramref name="length"/> bytes at <paramref name="address"/>.</summary>
    public static byte[] Read(DumpImage image, ulong address, int length, out PhysicalReadStatus status, out int count)
    {
        var buffer = new byte[length];
        count = image.ReadPhysical(address, buffer, out status);
        return buffer;
    }

    /// <summary>Reads one whole page and asserts it was complete.</summary>
    public static byte[] ReadPage(DumpImage image, ulong pfn, int pageSize = 4096)
    {
        var page = Read(image, pfn * (ulong)pageSize, pageSize, out var status, out int count);
        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal(pageSize, count);
        return page;
    }

    /// <summary>Asserts that opening <paramref name="bytes"/> throws <typeparamref name="T"/> whose message contains every phrase.</summary>
    public static T AssertOpenFails<T>(TempDumpDir dir, byte[] bytes, params string[] phrases)
        where T : Exception
    {
        var e = Assert.ThrowsAny<T>(() => OpenBytes(dir, bytes).Dispose());
        foreach (var phrase in phrases)
        {
            Assert.Contains(phrase, e.Message, StringComparison.Ordinal);
        }

        return e;
    }
}
