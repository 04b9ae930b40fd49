using System.Text.Json;

namespace Kvm.IntegrationTests;

/// <summary>
/// The real dumps made by scripts/make-test-dumps.sh, found through <c>$KVM_TEST_DUMPS/index.json</c> and each
/// variant's manifest.json. Truth (truth.json) was recorded inside the guest; tests compare against it.
/// </summary>
public static class DumpLab
{
    private static readonly Lazy<IReadOnlyList<LabVariant>> s_variants = new(Load);

    public static string BaseDirectory =>
        Environment.GetEnvironmentVariable("KVM_TEST_DUMPS") is { Length: > 0 } dir ? dir
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "kvm-test-dumps");

    public static bool IsCi => Environment.GetEnvironmentVariable("CI") == "true";

    public static IReadOnlyList<LabVariant> Variants => s_variants.Value;

    /// <summary>Why the dumps are unavailable, or null when they are there.</summary>
    public static string? MissingReason => Variants.Count > 0 ? null : $"no real dumps: {Path.Combine(BaseDirectory, "index.json")} is missing (run scripts/make-test-dumps.sh)";

    public static LabVariant Variant(string name) =>
        Variants.FirstOrDefault(v => v.Name == name) ?? throw new InvalidOperationException($"the lab has no '{name}' variant (have: {string.Join(", ", Variants.Select(v => v.Name))})");

    /// <summary>Every single-file dump of every variant, as theory data: (variant, file name).</summary>
    public static IEnumerable<object[]> AllDumps() => Variants.SelectMany(v => v.Dumps.Where(d => d.SplitSet is null).Select(d => new object[] { v.Name, d.Name }));

    private static IReadOnlyList<LabVariant> Load()
    {
        string index = Path.Combine(BaseDirectory, "index.json");
        if (!File.Exists(index))
        {
            return [];
        }

        using var doc = JsonDocument.Parse(File.ReadAllText(index));
        var dirs = doc.RootElement.GetProperty("variants").EnumerateArray().Select(v => Path.GetFullPath(v.GetString()!)).ToList();

        // index.json lists the variants of the last run only (demo.sh makes just "default"); every other variant of
        // the same lab version under root is complete too, since the lab moves a variant into place only when done.
        string root = doc.RootElement.GetProperty("root").GetString()!;
        if (Directory.Exists(root))
        {
            dirs.AddRange(Directory.EnumerateDirectories(root).Select(Path.GetFullPath).Where(d => File.Exists(Path.Combine(d, "manifest.json")) && !dirs.Contains(d)).Order(StringComparer.Ordinal));
        }

        return dirs.Select(LabVariant.Load).ToList();
    }
}

/// <summary>One variant directory: its manifest, truth and dumps.</summary>
public sealed class LabVariant
{
    private LabVariant(string directory, JsonElement manifest, JsonElement truth)
    {
        Directory = directory;
        Manifest = manifest;
        Truth = truth;
        Name = manifest.GetProperty("variant").GetString()!;
        Dumps = manifest.GetProperty("files").EnumerateArray().Select(f => new LabDump(this, f)).ToList();
    }

    public string Directory { get; }

    public string Name { get; }

    public JsonElement Manifest { get; }

    public JsonElement Truth { get; }

    public IReadOnlyList<LabDump> Dumps { get; }

    public string SystemMap => Path.Combine(Directory, Manifest.GetProperty("systemMap").GetString()!);

    public string SwapImage => Path.Combine(Directory, Manifest.GetProperty("swapImage").GetString()!);

    public bool HasVmcoreInfo => Manifest.GetProperty("qemu").GetProperty("vmcoreinfoDevice").GetBoolean();

    public int PagingLevels => Truth.GetProperty("pagingLevels").GetInt32();

    public long KaslrOffset => Convert.ToInt64(Truth.GetProperty("kaslrOffset").GetString()!, 16);

    public string Release => Truth.GetProperty("uname").GetProperty("release").GetString()!;

    public string ProcVersion => Truth.GetProperty("procVersion").GetString()!;

    public ulong TruthSymbol(string name) => Convert.ToUInt64(Truth.GetProperty("kallsyms").GetProperty(name).GetString()!, 16);

    public LabDump Dump(string name) => Dumps.First(d => d.Name == name);

    public static LabVariant Load(string directory)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, "manifest.json")));
        var m = manifest.RootElement.Clone();
        using var truth = JsonDocument.Parse(File.ReadAllText(Path.Combine(directory, m.GetProperty("truth").GetString()!)));
        return new LabVariant(directory, m, truth.RootElement.Clone());
    }

    public override string ToString() => Name;
}

/// <summary>One dump file as the manifest describes it.</summary>
public sealed class LabDump(LabVariant variant, JsonElement entry)
{
    public LabVariant Variant { get; } = variant;

    public string Name { get; } = entry.GetProperty("name").GetString()!;

    public string Path => System.IO.Path.Combine(Variant.Directory, Name);

    public string Format { get; } = entry.GetProperty("format").GetString()!;

    public bool Flattened { get; } = entry.GetProperty("flattened").GetBoolean();

    public string Compression { get; } = entry.GetProperty("compression").GetString()!;

    public int? DumpLevel { get; } = entry.TryGetProperty("dumpLevel", out var d) && d.ValueKind == JsonValueKind.Number ? d.GetInt32() : null;

    public long Size { get; } = entry.GetProperty("size").GetInt64();

    public string Sha256 { get; } = entry.GetProperty("sha256").GetString()!;

    public string? SplitSet { get; } = entry.TryGetProperty("splitSet", out var s) && s.ValueKind == JsonValueKind.String ? s.GetString() : null;

    public int? SplitIndex { get; } = entry.TryGetProperty("splitIndex", out var i) && i.ValueKind == JsonValueKind.Number ? i.GetInt32() : null;

    public bool KeepsUserPages => DumpLevel is null or < 8 || (DumpLevel & 8) == 0;

    public override string ToString() => $"{Variant.Name}/{Name}";
}
