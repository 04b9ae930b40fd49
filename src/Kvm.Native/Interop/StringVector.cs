namespace Kvm.Native.Interop;

/// <summary>Builds C string vectors (<c>char **</c>, NULL-terminated) in one block: pointers first, then the strings.</summary>
internal static unsafe class StringVector
{
    /// <summary>Builds the vector in <paramref name="buffer"/> and returns it.</summary>
    public static nint Build(OwnedBuffer buffer, IReadOnlyList<byte[]> values)
    {
        nuint size = Size(values);
        return Write(buffer.Replace(size), values);
    }

    /// <summary>The bytes a vector of <paramref name="values"/> takes.</summary>
    public static nuint Size(IReadOnlyList<byte[]> values) =>
        (nuint)((values.Count + 1) * sizeof(nint) + values.Sum(v => (long)v.Length + 1));

    /// <summary>Writes the vector at <paramref name="block"/>, which must hold <see cref="Size"/> bytes.</summary>
    public static nint Write(void* block, IReadOnlyList<byte[]> values)
    {
        var pointers = (byte**)block;
        var text = (byte*)(pointers + values.Count + 1);
        for (int i = 0; i < values.Count; i++)
        {
            pointers[i] = text;
            values[i].CopyTo(new Span<byte>(text, values[i].Length));
            text[values[i].Length] = 0;
            text += values[i].Length + 1;
        }

        pointers[values.Count] = null;
        return (nint)block;
    }
}
