namespace Kvm.IntegrationTests;

/// <summary>
/// The lab's Linux arm64 variant, when one was made: any <c>$KVM_TEST_DUMPS/&lt;kernel&gt;/&lt;variant&gt;/manifest.json</c>
/// whose <c>architecture</c> is <c>aarch64</c> (the newest if several). <see cref="DumpLab"/> lists the variants of
/// the amd64 lab root only, so the arm64 one is looked up here by its manifest.
/// </summary>
public static class Arm64Lab
{
    private static readonly Lazy<LabVariant?> s_variant = new(Find);

    /// <summary>The arm64 variant, or null.</summary>
    public static LabVariant? Variant => s_variant.Value;

    /// <summary>Why the arm64 tests are skipped, or null when the variant is there.</summary>
    public static string? MissingReason => Variant is null ? $"no arm64 dumps: no manifest.json with \"architecture\": \"aarch64\" under {DumpLab.BaseDirectory}" : null;

    /// <summary>The variant's single-file dumps, as theory data.</summary>
    public static IEnumerable<object[]> Dumps() =>
        Variant is { } v ? v.Dumps.Where(d => d.SplitSet is null).Select(d => new object[] { d.Name }) : [new object[] { "(none)" }];

    private static LabVariant? Find()
    {
        if (!Directory.Exists(DumpLab.BaseDirectory))
        {
            return null;
        }

        var manifests = Directory.EnumerateDirectories(DumpLab.BaseDirectory)
            .SelectMany(Directory.EnumerateDirectories)
            .Select(d => Path.Combine(d, "manifest.json"))
            .Where(File.Exists)
            .Where(m => System.Text.Json.JsonDocument.Parse(File.ReadAllText(m)).RootElement.TryGetProperty("architecture", out var a) && a.GetString() == "aarch64")
            .OrderByDescending(File.GetLastWriteTimeUtc)
            .ToList();
        return manifests.Count == 0 ? null : LabVariant.Load(Path.GetDirectoryName(manifests[0])!);
    }
}

/// <summary>A fact on the arm64 dumps: skipped with a reason when the lab has none (in CI too: the variant is optional).</summary>
public sealed class Arm64LabFactAttribute : FactAttribute
{
    public Arm64LabFactAttribute()
    {
        if (Arm64Lab.MissingReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A theory on the arm64 dumps, with the same skip rule as <see cref="Arm64LabFactAttribute"/>.</summary>
public sealed class Arm64LabTheoryAttribute : TheoryAttribute
{
    public Arm64LabTheoryAttribute()
    {
        if (Arm64Lab.MissingReason is { } reason)
        {
            Skip = reason;
        }
    }
}
