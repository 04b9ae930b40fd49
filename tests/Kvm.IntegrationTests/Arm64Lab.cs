namespace Kvm.IntegrationTests;

/// <summary>
/// The lab's Linux arm64 variant, when one was made: the <see cref="DumpLab"/> variant whose manifest's
/// <c>architecture</c> is <c>aarch64</c>.
/// </summary>
public static class Arm64Lab
{
    /// <summary>The arm64 variant, or null.</summary>
    public static LabVariant? Variant => DumpLab.VariantsFor("aarch64") is [var first, ..] ? first : null;

    /// <summary>Why the arm64 tests are skipped, or null when the variant is there.</summary>
    public static string? MissingReason => Variant is null ? $"no arm64 dumps: no manifest.json with \"architecture\": \"aarch64\" in the lab at {DumpLab.BaseDirectory}" : null;

    /// <summary>The variant's single-file dumps, as theory data.</summary>
    public static IEnumerable<object[]> Dumps() =>
        Variant is { } v ? v.Dumps.Where(d => d.SplitSet is null).Select(d => new object[] { d.Name }) : [new object[] { "(none)" }];
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
