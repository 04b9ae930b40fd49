using System.Text.Json;

namespace Kvm.IntegrationTests;

/// <summary>
/// The real dumps made by scripts/make-test-dumps.sh, found through <c>$KVM_TEST_DUMPS/index.json</c> and each
/// variant's manifest.json. Truth (truth.json) was recorded inside the guest; tests compare against it.
/// </summary>
/// <remarks>
/// The lab boots Debian's x86-64 kernel (variants default, la57, nokaslr, novmcoreinfo) and also its arm64 and
/// i386 kernels (variants arm64, i386-pae, i386). Each manifest names its guest's <c>"architecture"</c>
/// (<c>x86_64</c>, <c>aarch64</c>, <c>i386</c>; a manifest without it is x86_64). <see cref="Variants"/> and
/// <see cref="AllDumps"/> keep to x86-64, which is what every test written before the other architectures
/// assumes; <see cref="ForeignVariants"/> and <see cref="VariantsFor"/> give the others.
/// </remarks>
public static class DumpLab
{
    /// <summary>The architecture of a variant whose manifest does not name one.</summary>
    public const string DefaultArchitecture = "x86_64";

    private static readonly Lazy<IReadOnlyList<LabVariant>> s_all = new(Load);
    private static readonly Lazy<IReadOnlyList<LabVariant>> s_variants = new(() => s_all.Value.Where(v => v.Architecture == DefaultArchitecture).ToList());
    private static readonly Lazy<IReadOnlyList<LabVariant>> s_foreign = new(() => s_all.Value.Where(v => v.Architecture != DefaultArchitecture).ToList());

    public static string BaseDirectory =>
        Environment.GetEnvironmentVariable("KVM_TEST_DUMPS") is { Length: > 0 } dir ? dir
        : Path.Combine(Environment.GetEnvironmentVariable("XDG_CACHE_HOME") is { Length: > 0 } x ? x : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache"), "kvm-test-dumps");

    public static bool IsCi => Environment.GetEnvironmentVariable("CI") == "true";

    /// <summary>The x86-64 variants (manifest <c>"architecture"</c> x86_64 or absent).</summary>
    public static IReadOnlyList<LabVariant> Variants => s_variants.Value;

    /// <summary>The variants of every other architecture (arm64: <c>aarch64</c>; i386-pae and i386: <c>i386</c>).</summary>
    public static IReadOnlyList<LabVariant> ForeignVariants => s_foreign.Value;

    /// <summary>The variants whose guest is <paramref name="architecture"/> (<c>x86_64</c>, <c>aarch64</c>, <c>i386</c>).</summary>
    public static IReadOnlyList<LabVariant> VariantsFor(string architecture) => s_all.Value.Where(v => v.Architecture == architecture).ToList();

    /// <summary>Why the dumps are unavailable, or null when they are there.</summary>
    public static string? MissingReason => Variants.Count > 0 ? null : $"no real dumps: {Path.Combine(BaseDirectory, "index.json")} is missing (run scripts/make-test-dumps.sh)";

    /// <summary>Why the other architectures' dumps are unavailable, or null when there is at least one.</summary>
    public static string? ForeignMissingReason => ForeignVariants.Count > 0 ? null : $"no arm64/i386 dumps in {BaseDirectory} (run scripts/make-test-dumps.sh --variants arm64,i386-pae,i386)";

    /// <summary>A variant by name, of any architecture.</summary>
    public static LabVariant Variant(string name) =>
        s_all.Value.FirstOrDefault(v => v.Name == name) ?? throw new InvalidOperationException($"the lab has no '{name}' variant (have: {string.Join(", ", s_all.Value.Select(v => v.Name))})");

    /// <summary>Every single-file dump of every x86-64 variant, as theory data: (variant, file name).</summary>
    public static IEnumerable<object[]> AllDumps() => DumpsOf(Variants);

    /// <summary>Every single-file dump of every variant of <paramref name="architecture"/>, as theory data: (variant, file name).</summary>
    public static IEnumerable<object[]> AllDumpsFor(string architecture) => DumpsOf(VariantsFor(architecture));

    /// <summary>Every single-file dump of every foreign variant, as theory data: (variant, file name).</summary>
    public static IEnumerable<object[]> AllForeignDumps() => DumpsOf(ForeignVariants);

    /// <summary>Every variant of every architecture (x86-64 first).</summary>
    public static IReadOnlyList<LabVariant> AllVariants => [.. Variants, .. ForeignVariants];

    /// <summary>Every single-file dump of every variant of every architecture, as theory data: (variant, file name).</summary>
    public static IEnumerable<object[]> AllArchitectureDumps() => DumpsOf(AllVariants);

    /// <summary>
    /// Every single-file dump of every architecture, with the System.map (true) and — where the kernel's own kallsyms
    /// lists data symbols too (CONFIG_KALLSYMS_ALL, Debian's x86-64 kernel) — also with no namelist at all (false):
    /// (variant, file name, with System.map). Debian's arm64 and i386 kernels list functions only, so avenrun or
    /// swap_info are not in a bare dump of theirs (<see cref="LabVariant.KallsymsListsData"/>).
    /// </summary>
    public static IEnumerable<object[]> AllDumpsBothWays() =>
        AllArchitectureDumps().SelectMany(d => Variant((string)d[0]).KallsymsListsData
            ? new[] { new object[] { d[0], d[1], true }, new object[] { d[0], d[1], false } }
            : [new object[] { d[0], d[1], true }]);

    /// <summary>
    /// Every single-file dump of every architecture with and without the System.map: (variant, file name, with
    /// System.map). For what needs only the BTF and <c>init_task</c> (processes, threads, argv, files), which a bare
    /// dump of a kernel whose kallsyms lists functions only still gives: they are found by scanning the image.
    /// </summary>
    public static IEnumerable<object[]> AllDumpsWithAndWithoutSystemMap() =>
        AllArchitectureDumps().SelectMany(d => new[] { new object[] { d[0], d[1], true }, new object[] { d[0], d[1], false } });

    private static IEnumerable<object[]> DumpsOf(IEnumerable<LabVariant> variants) =>
        variants.SelectMany(v => v.Dumps.Where(d => d.SplitSet is null).Select(d => new object[] { v.Name, d.Name }));

    private static IReadOnlyList<LabVariant> Load()
    {
        string index = Path.Combine(BaseDirectory, "index.json");
        if (!File.Exists(index))
        {
            return [];
        }

        using var doc = JsonDocument.Parse(File.ReadAllText(index));
        var dirs = Paths(doc.RootElement, "variants").Concat(Paths(doc.RootElement, "foreignVariants")).Distinct().ToList();

        // index.json lists the variants of the last run only (demo.sh makes just "default"); every other variant of
        // the same lab version is complete too, since the lab moves a variant into place only when done. It lives
        // under one of "roots" (one directory per kernel: amd64, arm64, 686-pae, 686), or "root" in older indexes.
        var roots = doc.RootElement.TryGetProperty("roots", out _) ? Paths(doc.RootElement, "roots") : [Path.GetFullPath(doc.RootElement.GetProperty("root").GetString()!)];
        foreach (string root in roots.Where(Directory.Exists))
        {
            dirs.AddRange(Directory.EnumerateDirectories(root).Select(Path.GetFullPath).Where(d => File.Exists(Path.Combine(d, "manifest.json")) && !dirs.Contains(d)).Order(StringComparer.Ordinal).ToList());
        }

        return dirs.Select(LabVariant.Load).ToList();
    }

    private static List<string> Paths(JsonElement index, string property) =>
        index.TryGetProperty(property, out var list) && list.ValueKind == JsonValueKind.Array
            ? list.EnumerateArray().Select(v => Path.GetFullPath(v.GetString()!)).ToList()
            : [];
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
        Architecture = manifest.TryGetProperty("architecture", out var a) && a.ValueKind == JsonValueKind.String ? a.GetString()! : DumpLab.DefaultArchitecture;
        Dumps = manifest.GetProperty("files").EnumerateArray().Select(f => new LabDump(this, f)).ToList();
    }

    public string Directory { get; }

    public string Name { get; }

    /// <summary>The guest's architecture: <c>x86_64</c>, <c>aarch64</c> or <c>i386</c> (manifest <c>"architecture"</c>).</summary>
    public string Architecture { get; }

    public JsonElement Manifest { get; }

    public JsonElement Truth { get; }

    public IReadOnlyList<LabDump> Dumps { get; }

    public string SystemMap => Path.Combine(Directory, Manifest.GetProperty("systemMap").GetString()!);

    public string SwapImage => Path.Combine(Directory, Manifest.GetProperty("swapImage").GetString()!);

    /// <summary>
    /// pahole's BTF of the -dbg vmlinux (manifest <c>"btf"</c>) for a kernel built without CONFIG_DEBUG_INFO_BTF
    /// (Debian's 686 and 686-pae), else null: the kernel's own BTF is in its memory.
    /// </summary>
    public string? Btf => Manifest.TryGetProperty("btf", out var b) && b.ValueKind == JsonValueKind.String ? Path.Combine(Directory, b.GetString()!) : null;

    /// <summary>Whether the kernel's kallsyms lists data symbols as well as functions (CONFIG_KALLSYMS_ALL=y in its config).</summary>
    public bool KallsymsListsData => HasConfig("CONFIG_KALLSYMS_ALL=y");

    /// <summary>Whether the kernel's config (Debian's /boot/config-*) has this exact line, such as <c>CONFIG_NO_HZ_COMMON=y</c>.</summary>
    public bool HasConfig(string line) => File.ReadLines(Path.Combine(Directory, Manifest.GetProperty("config").GetString()!)).Contains(line);

    public bool HasVmcoreInfo => Manifest.GetProperty("qemu").GetProperty("vmcoreinfoDevice").GetBoolean();

    public int PagingLevels => Truth.GetProperty("pagingLevels").GetInt32();

    public long KaslrOffset => Convert.ToInt64(Truth.GetProperty("kaslrOffset").GetString()!, 16);

    public string Release => Truth.GetProperty("uname").GetProperty("release").GetString()!;

    public string ProcVersion => Truth.GetProperty("procVersion").GetString()!;

    /// <summary>A symbol's address as the guest's /proc/kallsyms listed it.</summary>
    public ulong TruthSymbol(string name) => Convert.ToUInt64(Truth.GetProperty("kallsyms").GetProperty(name).GetString()!, 16);

    /// <summary>
    /// A symbol's run-time address from truth.json <c>"symbols"</c>: the guest's kallsyms where it lists the symbol,
    /// else (arm64 and i386 kernels list functions only) Debian's link-time System.map plus the guest's KASLR offset
    /// (<c>"symbolSources"</c> says which). Falls back to <see cref="TruthSymbol"/> for labs made before "symbols".
    /// </summary>
    public ulong SymbolAddress(string name) =>
        Truth.TryGetProperty("symbols", out var symbols) && symbols.TryGetProperty(name, out var address)
            ? Convert.ToUInt64(address.GetString()!, 16)
            : TruthSymbol(name);

    public LabDump Dump(string name) => Dumps.First(d => d.Name == name);

    /// <summary>
    /// A symbol's run-time address from the variant's link-time System.map plus the guest's KASLR offset (arm64 and
    /// i386: Debian's -dbg map, whose addresses truth.json's "systemMapCheck" found to agree with the guest's kallsyms).
    /// </summary>
    public ulong MapSymbolAddress(string name)
    {
        foreach (string line in File.ReadLines(SystemMap))
        {
            var f = line.Split(' ');
            if (f.Length == 3 && f[2] == name)
            {
                ulong link = ulong.Parse(f[0], System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
                ulong address = unchecked(link + (ulong)KaslrOffset);
                return Architecture == "i386" ? address & uint.MaxValue : address;
            }
        }

        throw new InvalidOperationException($"{SystemMap}: no {name}");
    }

    /// <summary>
    /// The text of the first line of the guest's dmesg, without its timestamp: "Linux version …" on x86, "Booting Linux
    /// on physical CPU …" on arm64 (its setup_arch prints that before the banner).
    /// </summary>
    public string FirstKernelLogText
    {
        get
        {
            string first = Truth.GetProperty("dmesg").GetString()!.Split('\n')[0];
            return first[(first.IndexOf("] ", StringComparison.Ordinal) + 2)..];
        }
    }

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
