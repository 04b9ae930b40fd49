using System.Diagnostics;
using System.Globalization;
using Kvm.Memory;
using Kvm.Symbols;
using Xunit.Abstractions;

namespace Kvm.IntegrationTests;

/// <summary>
/// kallsyms decoded from the real kernel's memory against System.map, which is the guest's own /proc/kallsyms
/// moved to link-time addresses: every name, type and address must agree once the KASLR offset is added back.
/// </summary>
public sealed class KallsymsTests(ITestOutputHelper output)
{
    private const ulong StartKernelMap = 0xffffffff80000000;

    /// <summary>The full ELF core and the smallest kdump of each variant (novmcoreinfo has only QEMU's kdump).</summary>
    public static IEnumerable<object[]> Dumps() => DumpLab.Variants.SelectMany(v =>
        new[] { "qemu.elf", "mdf-c-d31.kdump", "qemu-kdump-zlib.kdump" }
            .Where(n => v.Dumps.Any(d => d.Name == n))
            .Take(2)
            .Select(n => new object[] { v.Name, n }));

    [LabTheory]
    [MemberData(nameof(Dumps))]
    public void Read_EqualsGuestSystemMap(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, withSystemMap: false);
        Assert.NotNull(image.VmcoreInfo);

        var table = KallsymsReader.Read((a, s) => image.Read(a, s), image.VmcoreInfo!, KvmLimits.Default, out var encoding);

        // x86-64 SMP kernels before v6.15 store per-CPU symbols as absolute values.
        Assert.Equal(KallsymsAddressEncoding.AbsolutePercpu, encoding);
        Assert.Equal(NamelistKind.KernelMemory, table.Kind);
        Assert.Equal(KallsymsReader.SourceName, table.Source);

        var expected = ReadSystemMap(v.SystemMap, (ulong)v.KaslrOffset);
        var actual = table.Enumerate().Select(s => (s.Address, s.Type, s.Name)).ToList();
        Assert.Equal(expected.Count, actual.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            if (expected[i] != actual[i])
            {
                Assert.Fail($"{variant}/{name}: symbol {i}: System.map has {Show(expected[i])}, kallsyms has {Show(actual[i])}");
            }
        }

        Assert.Equal(v.TruthSymbol("init_task"), table.TryLookup("init_task", out var initTask) ? initTask.Address : 0);
    }

    [LabFact]
    public void Decode_OfRealTables_IsFast()
    {
        var v = DumpLab.Variants[0];
        using var image = LabImages.Open(v.Dumps.First(d => d.Name == "qemu.elf"), withSystemMap: false);
        var info = image.VmcoreInfo!;

        // Record what the reader fetches, then time a second decode served from memory: the decode cost alone.
        var reads = new Dictionary<(ulong, int), byte[]>();
        VirtualReader recording = (address, buffer) =>
        {
            int n = image.Read(address, buffer);
            reads[(address, buffer.Length)] = buffer[..n].ToArray();
            return n;
        };
        var ioWatch = Stopwatch.StartNew();
        var first = KallsymsReader.Read(recording, info, KvmLimits.Default);
        ioWatch.Stop();

        VirtualReader replay = (address, buffer) =>
        {
            var bytes = reads[(address, buffer.Length)];
            bytes.CopyTo(buffer);
            return bytes.Length;
        };
        var best = TimeSpan.MaxValue;
        SymbolTable? table = null;
        for (int round = 0; round < 5; round++)
        {
            var watch = Stopwatch.StartNew();
            table = KallsymsReader.Read(replay, info, KvmLimits.Default);
            watch.Stop();
            best = watch.Elapsed < best ? watch.Elapsed : best;
        }

        // Of that, indexing the symbols (SymbolTable's sort and name dictionary) is not kallsyms work.
        var symbols = table!.Enumerate().ToArray();
        var indexing = TimeSpan.MaxValue;
        for (int round = 0; round < 5; round++)
        {
            var watch = Stopwatch.StartNew();
            _ = new SymbolTable("index only", NamelistKind.KernelMemory, symbols);
            watch.Stop();
            indexing = watch.Elapsed < indexing ? watch.Elapsed : indexing;
        }

        output.WriteLine($"{v.Name}/qemu.elf: {table.Count} symbols; first read with I/O {ioWatch.Elapsed.TotalMilliseconds:F1} ms; decode alone, best of 5: {best.TotalMilliseconds:F1} ms (of which SymbolTable indexing {indexing.TotalMilliseconds:F1} ms); {reads.Count} reads, {reads.Values.Sum(b => (long)b.Length)} bytes");
        Assert.Equal(first.Count, table.Count);
        Assert.True(best < TimeSpan.FromMilliseconds(500), $"decoding {table.Count} symbols took {best.TotalMilliseconds:F1} ms");
    }

    private static List<(ulong Address, char Type, string Name)> ReadSystemMap(string path, ulong kaslrOffset)
    {
        var list = new List<(ulong, char, string)>();
        foreach (var line in File.ReadLines(path))
        {
            var parts = line.Split(' ');
            ulong address = ulong.Parse(parts[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            list.Add((address >= StartKernelMap ? address + kaslrOffset : address, parts[1][0], parts[2]));
        }

        return list;
    }

    private static string Show((ulong Address, char Type, string Name) s) => $"{s.Address:x16} {s.Type} {s.Name}";
}
