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
