namespace Kvm.Linux;

/// <summary>Where a member lies in its structure: byte offset, size in bytes, and bitfield position when it is one.</summary>
/// <param name="Path">The path asked for, e.g. <c>task_struct.mm</c>.</param>
/// <param name="Offset">Byte offset from the start of the outermost structure (of the containing byte for bitfields).</param>
/// <param name="Size">Size in bytes of the member's type, or 0 when the source does not say (VMCOREINFO OFFSET()).</param>
/// <param name="BitOffset">For a bitfield, the bit position within the byte at <paramref name="Offset"/>.</param>
/// <param name="BitSize">For a bitfield, its width in bits; 0 otherwise.</param>
internal readonly record struct FieldLayout(string Path, long Offset, long Size, int BitOffset, int BitSize);

/// <summary>
/// Structure layouts as the kernel walkers need them, whatever their source (BTF, VMCOREINFO OFFSET()/SIZE(), or a
/// test's table). Walkers resolve every field once, when they are created, and then read with fixed offsets.
/// </summary>
internal interface IKernelTypes
{
    /// <summary>A short description of where the layouts come from, for messages.</summary>
    string Source { get; }

    /// <summary>Finds a member by path (<c>struct.member[.member…]</c>).</summary>
    bool TryGetField(string path, out FieldLayout field);

    /// <summary>Finds the size of a structure, union, typedef or base type by name.</summary>
    bool TryGetSize(string typeName, out long size);

    /// <summary>Finds the value of an enumerator by name (e.g. <c>SWP_USED</c>, <c>PIDTYPE_PGID</c>).</summary>
    bool TryGetEnumValue(string enumerator, out long value);
}
