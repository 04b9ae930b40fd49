using System.Buffers.Binary;
using Kvm.Types;

namespace Kvm.FreeBsd;

/// <summary>
/// What every FreeBSD walker needs: the kernel's memory, its symbols and its CTF-derived types, with bounded reads of
/// whole structures and of their members by name. Layouts come from the CTF only, never from offsets of our own; a
/// member the kernel's CTF lacks is a <see cref="KvmException"/> (<see cref="KvmErrorCode.KernelType"/>) naming it.
/// </summary>
internal sealed class FreeBsdKernelReader
{
    private readonly Func<ulong, byte[], int> _read;
    private readonly Func<string, ulong?> _symbol;

    public FreeBsdKernelReader(Func<ulong, byte[], int> read, Func<string, ulong?> symbol, TypeCatalog types, KvmLimits limits)
    {
        _read = read;
        _symbol = symbol;
        Types = types;
        Limits = limits;
        PointerSize = types.PointerSize;
    }

    public TypeCatalog Types { get; }

    public KvmLimits Limits { get; }

    public int PointerSize { get; }

    /// <summary>The address of <paramref name="name"/>, or null.</summary>
    public ulong? Symbol(string name) => _symbol(name);

    /// <summary>The address of <paramref name="name"/>.</summary>
    /// <exception cref="SymbolNotFoundException">The kernel has no such symbol.</exception>
    public ulong RequireSymbol(string name) => _symbol(name) ?? throw new SymbolNotFoundException(name);

    /// <summary>Reads as much of <paramref name="buffer"/> as is readable; returns the count.</summary>
    public int Read(ulong address, byte[] buffer) => _read(address, buffer);

    /// <summary>The size of struct <paramref name="name"/> as the CTF gives it, bounded by <see cref="KvmLimits.MaxKernelObjectBytes"/>.</summary>
    public long StructSize(string name)
    {
        long size = Types.FindStruct(name) is { } t ? Types.SizeOf(t.Id) : throw new KvmException(KvmErrorCode.KernelType, $"{Types.Source}: no struct {name} in the kernel's CTF");
        if (size <= 0 || size > Limits.MaxKernelObjectBytes)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"{Types.Source}: struct {name} of {size} bytes is not a plausible size");
        }

        return size;
    }

    /// <summary>Reads struct <paramref name="name"/> at <paramref name="address"/>, whole.</summary>
    public byte[] ReadStruct(string name, ulong address)
    {
        var bytes = new byte[StructSize(name)];
        ReadExactly(address, bytes);
        return bytes;
    }

    /// <summary>Reads <paramref name="buffer"/> whole, or throws a <see cref="MemoryFaultException"/> at the first unreadable byte.</summary>
    public void ReadExactly(ulong address, byte[] buffer)
    {
        int n = _read(address, buffer);
        if (n != buffer.Length)
        {
            throw new MemoryFaultException(address + (ulong)n, AddressSpace.KernelVirtual, MemoryFaultReason.NotMapped, $"cannot read {buffer.Length} bytes at 0x{address:x} (read {n})");
        }
    }

    /// <summary>Reads a pointer-sized word at <paramref name="address"/>.</summary>
    public ulong ReadPointer(ulong address)
    {
        var buffer = new byte[PointerSize];
        ReadExactly(address, buffer);
        return PointerSize == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(buffer) : BinaryPrimitives.ReadUInt32LittleEndian(buffer);
    }

    /// <summary>Reads an integer of <paramref name="size"/> bytes (1, 2, 4 or 8) at <paramref name="address"/>.</summary>
    public long ReadInteger(ulong address, int size, bool signed)
    {
        var buffer = new byte[size];
        ReadExactly(address, buffer);
        return Decode(buffer, size, signed, $"{size}-byte value at 0x{address:x}");
    }

    /// <summary>
    /// The size of the integer type <paramref name="typeName"/> (a typedef such as <c>time_t</c>) as the CTF gives it,
    /// else <paramref name="fallback"/> — for types the kernel's CTF may not name when nothing in it uses them.
    /// </summary>
    public int IntegerSize(string typeName, int fallback) =>
        Types.TryGetSize(typeName, out long size) && size is 1 or 2 or 4 or 8 ? (int)size : fallback;

    /// <summary>An integer or enum member at <paramref name="path"/> (<c>struct.member</c>) of <paramref name="data"/>.</summary>
    public long Int(byte[] data, string path) => Int(data, Types.GetMember(path));

    /// <summary>An integer or enum member, signed as its type (through typedefs such as <c>pid_t</c>) says.</summary>
    public long Int(byte[] data, MemberLayout m)
    {
        if (m.Offset < 0 || m.Offset + Math.Max(m.Size, 1) > data.Length)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"member {m.Path} at offset {m.Offset} ({m.Size} bytes) lies outside its struct");
        }

        var type = Types.Resolve(m.TypeId);
        bool signed = type.Kind == BtfKind.Enum || type.IntEncoding.IsSigned;
        return Decode(data.AsSpan((int)m.Offset), m.Size, signed, $"member {m.Path}");
    }

    /// <summary>A pointer member at <paramref name="path"/> of <paramref name="data"/>.</summary>
    public ulong Pointer(byte[] data, string path) => PointerAt(data, Types.GetMember(path));

    /// <summary>A pointer member of <paramref name="data"/>.</summary>
    public ulong PointerAt(byte[] data, MemberLayout m)
    {
        if (m.Offset < 0 || m.Offset + PointerSize > data.Length)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"member {m.Path} at offset {m.Offset} lies outside its struct");
        }

        var s = data.AsSpan((int)m.Offset);
        return PointerSize == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
    }

    /// <summary>The bytes of member <paramref name="path"/> of <paramref name="data"/>.</summary>
    public ReadOnlySpan<byte> Bytes(byte[] data, string path)
    {
        var m = Types.GetMember(path);
        if (m.Offset < 0 || m.Size < 0 || m.Offset + m.Size > data.Length)
        {
            throw new KvmException(KvmErrorCode.KernelType, $"member {path} lies outside its struct");
        }

        return data.AsSpan((int)m.Offset, (int)m.Size);
    }

    /// <summary>A character-array member, up to its first NUL.</summary>
    public byte[] Text(byte[] data, string path)
    {
        var s = Bytes(data, path);
        int nul = s.IndexOf((byte)0);
        return (nul < 0 ? s : s[..nul]).ToArray();
    }

    private static long Decode(ReadOnlySpan<byte> s, long size, bool signed, string what) => size switch
    {
        1 => signed ? unchecked((sbyte)s[0]) : s[0],
        2 => signed ? BinaryPrimitives.ReadInt16LittleEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s),
        4 => signed ? BinaryPrimitives.ReadInt32LittleEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s),
        8 => BinaryPrimitives.ReadInt64LittleEndian(s),
        _ => throw new KvmException(KvmErrorCode.KernelType, $"{what} is {size} bytes, not an integer"),
    };
}
