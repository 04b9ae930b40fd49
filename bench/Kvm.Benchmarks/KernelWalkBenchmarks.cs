using BenchmarkDotNet.Attributes;

namespace Kvm.Benchmarks;

/// <summary>
/// Issue 4's path on a bare dump (no namelist): open with kallsyms decoded from memory, BTF parsed from memory, the
/// process walk with every argv and environment, and the kernel log. Run with:
/// dotnet run -c Release --project bench/Kvm.Benchmarks -- --filter '*KernelWalk*'.
/// </summary>
[MemoryDiagnoser]
public class KernelWalkBenchmarks
{
    private KernelImage? _image;

    [Params("qemu.elf", "mdf-c-d31.kdump", "qemu-kdump-zlib.flat")]
    public string Dump { get; set; } = "qemu.elf";

    [GlobalSetup]
    public void Setup()
    {
        _image = KernelImage.Open(Path.Combine(ReadBenchmarks.VariantDirectory, Dump));
        _ = _image.Types;
    }

    [GlobalCleanup]
    public void Cleanup() => _image?.Dispose();

    [Benchmark(Description = "open bare dump + kallsyms + BTF")]
    public int OpenWithSymbolsAndTypes()
    {
        using var image = KernelImage.Open(Path.Combine(ReadBenchmarks.VariantDirectory, Dump));
        return image.Types?.Count ?? 0;
    }

    [Benchmark(Description = "ps: processes + argv + env")]
    public int Processes()
    {
        int n = 0;
        foreach (var p in _image!.GetProcesses().Processes)
        {
            n += _image.GetArguments(p).Values.Count + _image.GetEnvironment(p).Values.Count;
        }

        return n;
    }

    [Benchmark(Description = "dmesg")]
    public int KernelLog() => _image!.ReadKernelLog().Records.Count;
}
