namespace Kvm.Linux;

/// <summary>Throwing and first-of lookups over <see cref="IKernelTypes"/>.</summary>
internal static class KernelTypesExtensions
{
    /// <summary>Finds a member or throws an error naming the member and the layout source.</summary>
    public static FieldLayout Field(this IKernelTypes types, string path) =>
        types.TryGetField(path, out var f)
            ? f
            : throw new KvmException(KvmErrorCode.KernelType, $"{path}: no such member in the kernel's type information ({types.Source})");

    /// <summary>Finds the first of several alternative member paths (fields renamed across kernel versions).</summary>
    public static FieldLayout FirstField(this IKernelTypes types, params string[] paths)
    {
        foreach (var p in paths)
        {
            if (types.TryGetField(p, out var f))
            {
                return f;
            }
        }

        throw new KvmException(KvmErrorCode.KernelType, $"{string.Join(" / ", paths)}: no such member in the kernel's type information ({types.Source})");
    }

    /// <summary>Finds an optional member: null when the kernel does not have it.</summary>
    public static FieldLayout? OptionalField(this IKernelTypes types, params string[] paths)
    {
        foreach (var p in paths)
        {
            if (types.TryGetField(p, out var f))
            {
                return f;
            }
        }

        return null;
    }

    /// <summary>Finds a type's size or throws an error naming it.</summary>
    public static long Size(this IKernelTypes types, string typeName) =>
        types.TryGetSize(typeName, out long s)
            ? s
            : throw new KvmException(KvmErrorCode.KernelType, $"sizeof({typeName}): unknown in the kernel's type information ({types.Source})");

    /// <summary>Finds an enumerator's value, or returns <paramref name="fallback"/> (a constant stable across the kernels we read).</summary>
    public static long EnumValue(this IKernelTypes types, string enumerator, long fallback) =>
        types.TryGetEnumValue(enumerator, out long v) ? v : fallback;
}
