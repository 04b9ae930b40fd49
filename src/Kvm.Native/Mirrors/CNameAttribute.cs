namespace Kvm.Native.Mirrors;

/// <summary>
/// Names the C field of <c>kvm.h</c> that a mirror field stands for, so that the ABI tests can compare every
/// <c>offsetof</c> the C compiler computes with the managed layout.
/// </summary>
[AttributeUsage(AttributeTargets.Field | AttributeTargets.Struct)]
internal sealed class CNameAttribute(string name) : Attribute
{
    /// <summary>The C name: a field name, or <c>struct tag</c> / typedef name on a struct.</summary>
    public string Name { get; } = name;
}
