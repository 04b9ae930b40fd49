namespace Kvm.IntegrationTests;

/// <summary>A fact on the real dumps: skipped with a reason when they are missing, except in CI, where a missing dump fails.</summary>
public sealed class LabFactAttribute : FactAttribute
{
    public LabFactAttribute()
    {
        if (DumpLab.MissingReason is { } reason && !DumpLab.IsCi)
        {
            Skip = reason;
        }
    }
}

/// <summary>A theory on the real dumps, with the same skip rule as <see cref="LabFactAttribute"/>.</summary>
public sealed class LabTheoryAttribute : TheoryAttribute
{
    public LabTheoryAttribute()
    {
        if (DumpLab.MissingReason is { } reason && !DumpLab.IsCi)
        {
            Skip = reason;
        }
    }
}

/// <summary>
/// A fact on the lab's arm64 and i386 dumps (<see cref="DumpLab.ForeignVariants"/>): skipped with a reason when there
/// are none, except in CI, where scripts/test.sh makes them and their absence fails.
/// </summary>
public sealed class ForeignLabFactAttribute : FactAttribute
{
    public ForeignLabFactAttribute()
    {
        if (DumpLab.ForeignMissingReason is { } reason && !DumpLab.IsCi)
        {
            Skip = reason;
        }
    }
}

/// <summary>A theory on the lab's arm64 and i386 dumps, with the same skip rule as <see cref="ForeignLabFactAttribute"/>.</summary>
public sealed class ForeignLabTheoryAttribute : TheoryAttribute
{
    public ForeignLabTheoryAttribute()
    {
        if (DumpLab.ForeignMissingReason is { } reason && !DumpLab.IsCi)
        {
            Skip = reason;
        }
    }
}
