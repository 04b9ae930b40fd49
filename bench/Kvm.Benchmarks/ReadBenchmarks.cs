using System.Text.Json;
using BenchmarkDotNet.Attributes;

namespace Kvm.Benchmarks;

/// <summary>
/// Kernel-virtual reads per format on the lab's real dumps: 1 MiB sequential through the direct map, 4 KiB random
/// reads across RAM, and open-to-first-read. Run with: dotnet run -c Release --project bench/Kvm.Benchmarks.
/// </summary>
[MemoryDiagnoser]
public class ReadBenchmarks
{
    private KernelImage? _image;
    private ulong[] _random = [];
    private readonly byte[] _buffer = new byte[1 << 20];

    [Params("qemu.elf", "qemu-kdump-zlib.kdump", "qemu-kdump-zlib.flat", "mdf-c-d1.kdump", "mdf-l-d1.kdump", "mdf-E-d31.elf")]
    public string Dump { get; set; } = "qemu.elf";

    public static string VariantDirectory
    {
        get
        {
            string baseDir = Environment.GetEnvironmentVariable("KVM_TEST_DUMPS") ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "kvm-test-dumps");
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(baseDir, "index.json")));
            return doc.RootElement.GetProperty("variants")[0].GetString()!;
        }
    }

    [GlobalSetup]
    public void Setup()
    {
        _image = KernelImage.Open(Path.Combine(VariantDirectory, Dump));
        ulong ram = _image.PhysicalRanges.Where(r => r.Start < 0x100000000).Max(r => r.End);
        var rng = new Random(42);
        _random = Enumerable.Range(0, 1024).Select(_ => _image.Layout.PageOffsetBase!.Value + ((ulong)rng.NextInt64(0x100000, (long)ram) & ~0xfffUL)).ToArray();
    }

    [GlobalCleanup]
    public void Cleanup() => _image?.Dispose();

    [Benchmark(Description = "sequential 1 MiB (direct map)")]
    public int Sequential() => _image!.Read(_image.Layout.PageOffsetBase!.Value + 0x1000000, _buffer);

    [Benchmark(Description = "random 4 KiB x1024", OperationsPerInvoke = 1024)]
    public int Random4K()
    {
        int total = 0;
        var span = _buffer.AsSpan(0, 4096);
        foreach (ulong va in _random)
        {
            total += _image!.Read(va, span);
        }

        return total;
    }

    [Benchmark(Description = "open to first read")]
    public int OpenToFirstRead()
    {
        using var image = KernelImage.Open(Path.Combine(VariantDirectory, Dump));
        return image.Read(image.VmcoreInfo!.GetSymbol("init_uts_ns")!.Value, _buffer.AsSpan(0, 64));
    }
}
