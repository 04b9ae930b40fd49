namespace Kvm.Testing;

/// <summary>A file in a fresh temporary directory, deleted on dispose.</summary>
public sealed class TempFile : IDisposable
{
    private readonly string _dir;

    public TempFile(byte[] contents, string name = "image")
    {
        _dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "kvm-tests-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(_dir);
        Path = System.IO.Path.Combine(_dir, name);
        File.WriteAllBytes(Path, contents);
    }

    public TempFile(string text, string name = "System.map")
        : this(System.Text.Encoding.UTF8.GetBytes(text), name)
    {
    }

    public string Path { get; }

    public void Dispose()
    {
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
