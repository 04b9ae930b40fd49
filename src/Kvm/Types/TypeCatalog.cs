using System.Buffers.Binary;
using System.Text;
using Kvm.IO;

namespace Kvm.Types;

/// <summary>
/// The types of one BTF blob (Documentation/bpf/btf.rst, include/uapi/linux/btf.h), indexed for lookups by id, name and
/// member path. Parsing validates every record, offset, string reference and type id once; records are decoded into
/// <see cref="BtfType"/> objects on first use. All members are safe to call from several threads at once.
/// </summary>
public sealed partial class TypeCatalog
{
    /// <summary>Size of <c>struct btf_header</c> in version 1; <c>hdr_len</c> may be larger, never smaller.</summary>
    private const int HeaderSize = 24;

    /// <summary>Size of <c>struct btf_type</c>, the fixed part of every record.</summary>
    private const int RecordSize = 12;

    /// <summary>
    /// Longest typedef/qualifier chain followed, as the kernel's own verifier (kernel/bpf/btf.c <c>MAX_RESOLVE_DEPTH</c>) caps
    /// resolution depth at 32.
    /// </summary>
    private const int MaxResolveDepth = 32;

    private static readonly BtfType s_void = new(0, BtfKind.Void, "void", false);

    private readonly byte[] _types;
    private readonly byte[] _strings;
    private readonly int[] _offsets;
    private readonly BtfType?[] _cache;
    private Dictionary<string, int[]>? _byName;
    private Dictionary<string, long>? _enumerators;

    private TypeCatalog(string source, bool bigEndian, byte[] types, byte[] strings, int[] offsets)
    {
        Source = source;
        IsBigEndian = bigEndian;
        _types = types;
        _strings = strings;
        _offsets = offsets;
        _cache = new BtfType?[offsets.Length + 1];
        _cache[0] = s_void;
    }

    private TypeCatalog(TypeCatalog other, int pointerSize)
    {
        Source = other.Source;
        IsBigEndian = other.IsBigEndian;
        _types = other._types;
        _strings = other._strings;
        _offsets = other._offsets;
        _cache = other._cache;
        _byName = Volatile.Read(ref other._byName);
        _enumerators = Volatile.Read(ref other._enumerators);
        PointerSize = pointerSize;
    }

    /// <summary>Where the blob came from (a file path, or a description such as a dump and symbol range); used in error messages.</summary>
    public string Source { get; }

    /// <summary>The number of type records; valid ids are 1 to <see cref="Count"/>, plus 0 for <c>void</c>.</summary>
    public int Count => _offsets.Length;

    /// <summary>True when the blob is in big-endian byte order (its magic read as 0x9FEB little-endian).</summary>
    public bool IsBigEndian { get; }

    /// <summary>Size of a pointer in bytes, which BTF does not record; set it from the image's architecture.</summary>
    public int PointerSize { get; init; } = 8;

    /// <summary>
    /// Returns a catalog over the same types with another <see cref="PointerSize"/> (e.g. 4 for a 32-bit kernel); the
    /// parsed data and decoded types are shared, not copied.
    /// </summary>
    public TypeCatalog WithPointerSize(int pointerSize)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(pointerSize);
        return new TypeCatalog(this, pointerSize);
    }

    /// <summary>
    /// Parses a BTF blob. The bytes are copied, so <paramref name="data"/> may be reused afterwards.
    /// </summary>
    /// <param name="data">The blob, starting at <c>struct btf_header</c>.</param>
    /// <param name="source">Names the blob in error messages.</param>
    /// <param name="limits">Caps on the blob size and type count; <see cref="KvmLimits.Default"/> when null.</param>
    /// <exception cref="CorruptImageException">The blob is malformed, truncated, uses an unknown kind or exceeds a limit.</exception>
    public static TypeCatalog Parse(ReadOnlySpan<byte> data, string source, KvmLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        limits ??= KvmLimits.Default;
        if (data.Length > limits.MaxBtfBytes)
        {
            throw new CorruptImageException($"{source}: BTF blob of {data.Length} bytes exceeds the limit of {limits.MaxBtfBytes} bytes");
        }

        if (data.Length < HeaderSize)
        {
            throw new CorruptImageException($"{source}: truncated BTF header ({data.Length} bytes, need {HeaderSize})");
        }

        // The magic is 0xEB9F in the producer's byte order, so reading it little-endian tells the order (btf.rst §2).
        ushort magic = BinaryPrimitives.ReadUInt16LittleEndian(data);
        bool bigEndian = magic switch
        {
            0xEB9F => false,
            0x9FEB => true,
            _ => throw new CorruptImageException($"{source}: bad BTF magic 0x{magic:x4} at offset 0 (want 0xeb9f)"),
        };
        var r = new EndianReader(data, bigEndian, $"{source}: BTF header") { Position = 2 };
        byte version = r.ReadUInt8();
        if (version != 1)
        {
            throw new CorruptImageException($"{source}: unsupported BTF version {version} at offset 2 (want 1)");
        }

        r.Skip(1);
        long hdrLen = r.ReadUInt32();
        long typeOff = r.ReadUInt32();
        long typeLen = r.ReadUInt32();
        long strOff = r.ReadUInt32();
        long strLen = r.ReadUInt32();

        // hdr_len may grow in future kernels; section offsets are relative to its end (btf.h struct btf_header).
        if (hdrLen < HeaderSize || hdrLen > data.Length)
        {
            throw new CorruptImageException($"{source}: BTF hdr_len {hdrLen} is outside [{HeaderSize}, {data.Length}] (blob size)");
        }

        CheckSection(source, "type", hdrLen, typeOff, typeLen, data.Length);
        CheckSection(source, "string", hdrLen, strOff, strLen, data.Length);
        var strings = data.Slice((int)(hdrLen + strOff), (int)strLen);

        // The kernel requires a standalone string section to start with "" and end with NUL (kernel/bpf/btf.c
        // btf_check_sec_info/btf_parse_str_sec); that also guarantees every in-range offset reaches a terminator.
        if (strings.Length == 0 || strings[0] != 0 || strings[^1] != 0)
        {
            throw new CorruptImageException($"{source}: BTF string section at offset {hdrLen + strOff} ({strLen} bytes) must begin and end with a NUL byte");
        }

        var types = data.Slice((int)(hdrLen + typeOff), (int)typeLen);
        int[] offsets = IndexRecords(types, bigEndian, source, hdrLen + typeOff, limits);
        var catalog = new TypeCatalog(source, bigEndian, types.ToArray(), strings.ToArray(), offsets);
        catalog.Validate(hdrLen + typeOff);
        catalog.CheckChains();
        return catalog;
    }

    /// <summary>
    /// Loads BTF from a file: a raw blob such as <c>/sys/kernel/btf/vmlinux</c>, or an ELF file (vmlinux, a module) whose
    /// <c>.BTF</c> section is parsed. FreeBSD's CTF is read too — a raw CTF container, or the <c>.SUNW_ctf</c> section of a
    /// kernel (<c>/boot/kernel/kernel</c>) — and converted to BTF on the way (<see cref="ParseCtf"/>).
    /// </summary>
    /// <param name="path">The file.</param>
    /// <param name="limits">Caps on the blob size and type count; <see cref="KvmLimits.Default"/> when null.</param>
    /// <exception cref="CorruptImageException">The file or its BTF is malformed, or an ELF file has neither <c>.BTF</c> nor <c>.SUNW_ctf</c>.</exception>
    public static TypeCatalog Load(string path, KvmLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        limits ??= KvmLimits.Default;
        var (data, source) = BtfFileReader.Read(path, limits);
        return Parse(data, source, limits);
    }

    /// <summary>
    /// Parses a CTF container (FreeBSD's Compact C Type Format, version 2 or 3, compressed or not: sys/sys/ctf.h) as the
    /// BTF it converts to: the same kinds, the same type ids, the same names.
    /// </summary>
    /// <param name="data">The container, starting at <c>ctf_header_t</c> (the <c>.SUNW_ctf</c> section's bytes).</param>
    /// <param name="source">Names the container in error messages.</param>
    /// <param name="limits">Caps on the size and type count; <see cref="KvmLimits.Default"/> when null.</param>
    /// <exception cref="CorruptImageException">The container is malformed, truncated or exceeds a limit.</exception>
    public static TypeCatalog ParseCtf(ReadOnlySpan<byte> data, string source, KvmLimits? limits = null)
    {
        ArgumentNullException.ThrowIfNull(source);
        limits ??= KvmLimits.Default;
        return Parse(CtfConverter.ToBtf(data, source, limits), $"{source} (CTF v{(data.Length > 2 ? data[2] : 0)})", limits);
    }

    /// <summary>Returns the type with the given id; id 0 is <c>void</c>.</summary>
    /// <exception cref="KvmException">The id is not in the catalog (<see cref="KvmErrorCode.KernelType"/>).</exception>
    public BtfType GetType(int id)
    {
        if (!TryGetType(id, out var type))
        {
            throw new KvmException(KvmErrorCode.KernelType, $"{Source}: BTF type id {id} is out of range (0..{Count})");
        }

        return type;
    }

    /// <summary>Returns the type with the given id, or false when the id is not in the catalog.</summary>
    public bool TryGetType(int id, out BtfType type)
    {
        // Reinterpreting a negative id as a large unsigned one folds both range checks into one compare.
        if (unchecked((uint)id) > (uint)Count)
        {
            type = s_void;
            return false;
        }

        type = Volatile.Read(ref _cache[id]) ?? Materialize(id);
        return true;
    }

    /// <summary>All types of any kind with exactly this name, in id order; empty when there are none.</summary>
    public IReadOnlyList<BtfType> FindByName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!NameIndex().TryGetValue(name, out var ids))
        {
            return [];
        }

        var result = new BtfType[ids.Length];
        for (int i = 0; i < ids.Length; i++)
        {
            result[i] = GetType(ids[i]);
        }

        return result;
    }

    /// <summary>
    /// Finds a struct or union by name (a <c>struct </c> or <c>union </c> prefix is accepted), or the struct or union a
    /// typedef of that name stands for. A complete definition wins over a FWD, which is returned only when nothing else exists.
    /// </summary>
    public BtfType? FindStruct(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        BtfKind? wanted = null;
        if (name.StartsWith("struct ", StringComparison.Ordinal))
        {
            wanted = BtfKind.Struct;
            name = name[7..];
        }
        else if (name.StartsWith("union ", StringComparison.Ordinal))
        {
            wanted = BtfKind.Union;
            name = name[6..];
        }

        if (!NameIndex().TryGetValue(name.Trim(), out var ids))
        {
            return null;
        }

        BtfType? forward = null;
        BtfType? viaTypedef = null;
        foreach (int id in ids)
        {
            var t = GetType(id);
            if (t.IsStructOrUnion && (wanted is null || t.Kind == wanted))
            {
                return t;
            }

            if (t.Kind == BtfKind.Forward && (wanted is null || t.IsUnionForward == (wanted == BtfKind.Union)))
            {
                forward ??= t;
            }
            else if (wanted is null && t.Kind == BtfKind.Typedef && viaTypedef is null)
            {
                var target = Resolve(t.Id);
                if (target.IsStructOrUnion)
                {
                    viaTypedef = target;
                }
            }
        }

        return viaTypedef ?? forward;
    }

    /// <summary>
    /// Follows TYPEDEF, CONST, VOLATILE, RESTRICT and TYPE_TAG links from <paramref name="id"/> to the underlying type.
    /// </summary>
    /// <exception cref="KvmException">The id is out of range.</exception>
    /// <exception cref="CorruptImageException">The chain is longer than the kernel's resolution depth limit.</exception>
    public BtfType Resolve(int id)
    {
        var t = GetType(id);
        for (int depth = 0; IsModifier(t.Kind); depth++)
        {
            if (depth >= MaxResolveDepth)
            {
                throw new CorruptImageException($"{Source}: BTF type id {id}: typedef/qualifier chain longer than {MaxResolveDepth} links");
            }

            t = GetType(t.ReferencedTypeId);
        }

        return t;
    }

    /// <summary>
    /// Size of a type in bytes: arrays are element size times element count, pointers <see cref="PointerSize"/>, INT, ENUM,
    /// STRUCT, UNION, FLOAT and DATASEC their recorded size, a VAR the size of its type; void, FWD, FUNC, FUNC_PROTO and
    /// DECL_TAG have size 0.
    /// </summary>
    /// <exception cref="CorruptImageException">The size overflows or a chain is too long.</exception>
    public long SizeOf(int id)
    {
        long count = 1;
        for (int depth = 0; ; depth++)
        {
            if (depth > MaxResolveDepth)
            {
                throw new CorruptImageException($"{Source}: BTF type id {id}: array/variable nesting deeper than {MaxResolveDepth}");
            }

            var t = Resolve(id);
            long unit;
            switch (t.Kind)
            {
                case BtfKind.Array:
                    count = MultiplyOrThrow(count, t.Array!.Value.ElementCount, id);
                    id = t.Array.Value.ElementTypeId;
                    continue;
                case BtfKind.Variable:
                    id = t.ReferencedTypeId;
                    continue;
                case BtfKind.Pointer:
                    unit = PointerSize;
                    break;
                case BtfKind.Int or BtfKind.Enum or BtfKind.Enum64 or BtfKind.Struct or BtfKind.Union or BtfKind.Float or BtfKind.DataSection:
                    unit = t.Size;
                    break;
                default:
                    unit = 0;
                    break;
            }

            return MultiplyOrThrow(count, unit, id);
        }
    }

    /// <summary>
    /// Size in bytes of a named type: <c>struct x</c>, <c>union x</c>, <c>enum x</c>, a typedef or base type name, or any of
    /// these followed by <c>*</c> (a pointer). False when no complete type of that name exists.
    /// </summary>
    public bool TryGetSize(string typeName, out long size)
    {
        ArgumentNullException.ThrowIfNull(typeName);
        size = 0;
        string name = typeName.Trim();
        if (name.EndsWith('*'))
        {
            size = PointerSize;
            return true;
        }

        BtfKind[] kinds;
        if (name.StartsWith("struct ", StringComparison.Ordinal))
        {
            kinds = [BtfKind.Struct];
            name = name[7..].Trim();
        }
        else if (name.StartsWith("union ", StringComparison.Ordinal))
        {
            kinds = [BtfKind.Union];
            name = name[6..].Trim();
        }
        else if (name.StartsWith("enum ", StringComparison.Ordinal))
        {
            kinds = [BtfKind.Enum, BtfKind.Enum64];
            name = name[5..].Trim();
        }
        else
        {
            kinds = [BtfKind.Typedef, BtfKind.Int, BtfKind.Float, BtfKind.Struct, BtfKind.Union, BtfKind.Enum, BtfKind.Enum64];
        }

        if (!NameIndex().TryGetValue(name, out var ids))
        {
            return false;
        }

        // Try the kinds in preference order so that "foo" finds the typedef foo before an unrelated struct foo.
        foreach (var kind in kinds)
        {
            foreach (int id in ids)
            {
                var t = GetType(id);
                if (t.Kind == kind && Resolve(id).Kind != BtfKind.Forward)
                {
                    size = SizeOf(id);
                    return true;
                }
            }
        }

        return false;
    }

    /// <summary>Finds an enumerator of any ENUM or ENUM64 by name, e.g. <c>SWP_USED</c>; the first definition wins.</summary>
    public bool TryGetEnumValue(string enumerator, out long value)
    {
        ArgumentNullException.ThrowIfNull(enumerator);
        return EnumeratorIndex().TryGetValue(enumerator, out value);
    }

    /// <summary>
    /// Finds an enumerator of the enum named <paramref name="enumName"/> (an <c>enum </c> prefix is accepted, and a typedef
    /// naming an enum is followed).
    /// </summary>
    public bool TryGetEnumValue(string enumName, string enumerator, out long value)
    {
        ArgumentNullException.ThrowIfNull(enumName);
        ArgumentNullException.ThrowIfNull(enumerator);
        string name = enumName.StartsWith("enum ", StringComparison.Ordinal) ? enumName[5..].Trim() : enumName;
        if (NameIndex().TryGetValue(name, out var ids))
        {
            foreach (int id in ids)
            {
                var t = GetType(id).Kind == BtfKind.Typedef ? Resolve(id) : GetType(id);
                if (!t.IsEnum)
                {
                    continue;
                }

                foreach (var e in t.EnumValues)
                {
                    if (e.Name == enumerator)
                    {
                        value = e.Value;
                        return true;
                    }
                }
            }
        }

        value = 0;
        return false;
    }

    /// <summary>
    /// The entries of the DATASEC with this name (e.g. <c>.data..percpu</c>), each naming its VAR; empty when there is no
    /// such section.
    /// </summary>
    public IReadOnlyList<BtfDataSectionEntry> GetDataSection(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (NameIndex().TryGetValue(name, out var ids))
        {
            foreach (int id in ids)
            {
                var t = GetType(id);
                if (t.Kind == BtfKind.DataSection)
                {
                    return t.Variables;
                }
            }
        }

        return [];
    }

    private static bool IsModifier(BtfKind kind) =>
        kind is BtfKind.Typedef or BtfKind.Const or BtfKind.Volatile or BtfKind.Restrict or BtfKind.TypeTag;

    private long MultiplyOrThrow(long a, long b, int id)
    {
        try
        {
            return checked(a * b);
        }
        catch (OverflowException)
        {
            throw new CorruptImageException($"{Source}: BTF type id {id}: size overflows 64 bits");
        }
    }

    private static void CheckSection(string source, string what, long hdrLen, long off, long len, int total)
    {
        if (hdrLen + off > total || hdrLen + off + len > total)
        {
            throw new CorruptImageException(
                $"{source}: BTF {what} section (offset {off}, length {len} after a {hdrLen}-byte header) runs past the end of the {total}-byte blob");
        }
    }

    private uint U32(int offset) => IsBigEndian
        ? BinaryPrimitives.ReadUInt32BigEndian(_types.AsSpan(offset, 4))
        : BinaryPrimitives.ReadUInt32LittleEndian(_types.AsSpan(offset, 4));

    /// <summary>Decodes the NUL-terminated string at a string-section offset that <see cref="Validate"/> has checked.</summary>
    private string StringAt(uint offset)
    {
        if (offset == 0)
        {
            return "";
        }

        var s = _strings.AsSpan((int)offset);
        return Encoding.UTF8.GetString(s[..s.IndexOf((byte)0)]);
    }

    private Dictionary<string, int[]> NameIndex()
    {
        var index = Volatile.Read(ref _byName);
        if (index is not null)
        {
            return index;
        }

        // Built once, on first use: the names of all records, grouped. Strings are deduplicated in BTF, so one decode per
        // distinct string offset suffices.
        var byOffset = new Dictionary<uint, List<int>>();
        for (int id = 1; id <= Count; id++)
        {
            uint nameOff = U32(_offsets[id - 1]);
            if (nameOff == 0)
            {
                continue;
            }

            if (!byOffset.TryGetValue(nameOff, out var list))
            {
                list = new List<int>(1);
                byOffset.Add(nameOff, list);
            }

            list.Add(id);
        }

        var built = new Dictionary<string, int[]>(byOffset.Count, StringComparer.Ordinal);
        foreach (var (offset, ids) in byOffset)
        {
            string name = StringAt(offset);
            if (built.TryGetValue(name, out var existing))
            {
                // Two offsets holding the same text (BTF that was not string-deduplicated): merge, keeping id order.
                built[name] = [.. existing.Concat(ids).Order()];
            }
            else
            {
                built.Add(name, [.. ids]);
            }
        }

        Interlocked.CompareExchange(ref _byName, built, null);
        return _byName;
    }

    private Dictionary<string, long> EnumeratorIndex()
    {
        var index = Volatile.Read(ref _enumerators);
        if (index is not null)
        {
            return index;
        }

        var built = new Dictionary<string, long>(StringComparer.Ordinal);
        for (int id = 1; id <= Count; id++)
        {
            var kind = (BtfKind)((U32(_offsets[id - 1] + 4) >> 24) & 0x1f);
            if (kind is not (BtfKind.Enum or BtfKind.Enum64))
            {
                continue;
            }

            foreach (var e in GetType(id).EnumValues)
            {
                built.TryAdd(e.Name, e.Value);
            }
        }

        Interlocked.CompareExchange(ref _enumerators, built, null);
        return _enumerators;
    }
}
