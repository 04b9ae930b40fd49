using System.Text;
using Kvm.Images;

namespace Kvm.Tests.Images.Elf;

/// <summary>A file in its own temporary directory, deleted on dispose; plus helpers to open it as an image.</summary>
internal sealed class ScratchFile : IDisposable
{
    private readonly string _directory;

    public ScratchFile(byte[] contents, string name = "image")
    {
        _directory = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kvm-scratch-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_directory);
        Path = System.IO.Path.Combine(_directory, name);
        File.WriteAllBytes(Path, contents);
    }

    public ScratchFile(string text, string name = "System.map")
        : this(Encoding.UTF8.GetBytes(text), name)
    {
    }

    public string Path { get; }

    public byte[] ReadAll() => File.ReadAllBytes(Path);

    public DumpImage Open(bool writable = false, KvmLimits? limits = null) => OpenImage([Path], writable, limits);

    public static DumpImage OpenImage(IReadOnlyList<string> paths, bool writable = false, KvmLimits? limits = null) =>
        ImageFormats.Open(paths, new ImageOpenOptions(writable, limits ?? KvmLimits.Default, CacheOptions.Default));

    public void Dispose()
    {
        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
