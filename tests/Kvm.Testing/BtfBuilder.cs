using System.Buffers.Binary;
using System.Text;

namespace Kvm.Testing;

/// <summary>
/// Writes BTF blobs (include/uapi/linux/btf.h, Documentation/bpf/btf.rst) of every kind 1..19, in either byte order:
/// a <c>struct btf_header</c> of <c>hdr_len</c> bytes, then the type section, then the string section (offset 0 = "").
/// Each Add method returns the new type's id (1-based, in order of addition). Raw records allow hostile input.
/// </summary>
public sealed class BtfBuilder
{
    // BTF_KIND_* values from include/uapi/linux/btf.h, spelled out here rather than taken from the reader under test.
    public const int KindInt = 1;
    public const int KindPtr = 2;
    public const int KindArray = 3;
    public const int KindStruct = 4;
    public const int KindUnion = 5;
    public const int KindEnum = 6;
    public const int KindFwd = 7;
    public const int KindTypedef = 8;
    public const int KindVolatile = 9;
    public const int KindConst = 10;
    public const int KindRestrict = 11;
    public const int KindFunc = 12;
    public const int KindFuncProto = 13;
    public const int KindVar = 14;
    public const int KindDatasec = 15;
    public const int KindFloat = 16;
    public const int KindDeclTag = 17;
    public const int KindTypeTag = 18;
    public const int KindEnum64 = 19;

    private readonly List<uint[]> _records = [];
    private readonly MemoryStream _strings = new();
    private readonly Dictionary<string, uint> _stringOffsets = [];

    public BtfBuilder()
    {
        _strings.WriteByte(0);
        _stringOffsets[""] = 0;
    }

    /// <summary>The id the next added type will get.</summary>
    public int NextId => _records.Count + 1;

    /// <summary>Number of records added.</summary>
    public int Count => _records.Count;

    /// <summary>The string-section offset of <paramref name="s"/>, adding it if new.</summary>
    public uint Str(string s)
    {
        if (!_stringOffsets.TryGetValue(s, out uint off))
        {
            off = (uint)_strings.Length;
            var bytes = Encoding.UTF8.GetBytes(s);
            _strings.Write(bytes);
            _strings.WriteByte(0);
            _stringOffsets[s] = off;
        }

        return off;
    }

    /// <summary>btf_type.info: vlen bits 0-15, kind bits 24-28, kind_flag bit 31.</summary>
    public static uint Info(int kind, int vlen, bool kindFlag = false) => ((uint)vlen & 0xffff) | ((uint)kind << 24) | (kindFlag ? 0x8000_0000u : 0);

    /// <summary>Adds a record with arbitrary words: name_off, info, size_or_type, then the trailing words as given.</summary>
    public int AddRaw(uint nameOff, uint info, uint sizeOrType, params uint[] trailing)
    {
        _records.Add([nameOff, info, sizeOrType, .. trailing]);
        return _records.Count;
    }

    public int Int(string name, int size, int bits, bool signed = false, bool isChar = false, bool isBool = false, int bitOffset = 0)
    {
        uint encoding = (signed ? 1u : 0) | (isChar ? 2u : 0) | (isBool ? 4u : 0);
        return AddRaw(Str(name), Info(KindInt, 0), (uint)size, (encoding << 24) | ((uint)bitOffset << 16) | (uint)bits);
    }

    public int Pointer(int target) => AddRaw(0, Info(KindPtr, 0), (uint)target);

    public int Array(int element, int index, uint count) => AddRaw(0, Info(KindArray, 0), 0, (uint)element, (uint)index, count);

    /// <summary>A struct; kind_flag is set when any member has a bitfield size (or when forced).</summary>
    public int Struct(string name, int size, params (string Name, int Type, int BitOffset, int BitfieldSize)[] members) =>
        Composite(KindStruct, name, size, members.Any(m => m.BitfieldSize != 0), members);

    public int Union(string name, int size, params (string Name, int Type, int BitOffset, int BitfieldSize)[] members) =>
        Composite(KindUnion, name, size, members.Any(m => m.BitfieldSize != 0), members);

    public int Composite(int kind, string name, int size, bool kindFlag, params (string Name, int Type, int BitOffset, int BitfieldSize)[] members)
    {
        var words = new List<uint>();
        foreach (var m in members)
        {
            words.Add(Str(m.Name));
            words.Add((uint)m.Type);
            words.Add(kindFlag ? ((uint)m.BitfieldSize << 24) | (uint)m.BitOffset : (uint)m.BitOffset);
        }

        return AddRaw(Str(name), Info(kind, members.Length, kindFlag), (uint)size, [.. words]);
    }

    public int Enum(string name, int size, bool signed, params (string Name, int Value)[] values)
    {
        var words = values.SelectMany(v => new[] { Str(v.Name), unchecked((uint)v.Value) }).ToArray();
        return AddRaw(Str(name), Info(KindEnum, values.Length, signed), (uint)size, words);
    }

    public int Enum64(string name, int size, bool signed, params (string Name, ulong Value)[] values)
    {
        // BTF stores a 64-bit enumerator as lo32 then hi32; the first cast keeps only the low word on purpose.
        var words = values.SelectMany(v => new[] { Str(v.Name), unchecked((uint)v.Value), (uint)(v.Value >> 32) }).ToArray();
        return AddRaw(Str(name), Info(KindEnum64, values.Length, signed), (uint)size, words);
    }

    public int Forward(string name, bool union = false) => AddRaw(Str(name), Info(KindFwd, 0, union), 0);

    public int Typedef(string name, int type) => AddRaw(Str(name), Info(KindTypedef, 0), (uint)type);

    public int Volatile(int type) => AddRaw(0, Info(KindVolatile, 0), (uint)type);

    public int Const(int type) => AddRaw(0, Info(KindConst, 0), (uint)type);

    public int Restrict(int type) => AddRaw(0, Info(KindRestrict, 0), (uint)type);

    public int Function(string name, int proto, int linkage = 1) => AddRaw(Str(name), Info(KindFunc, linkage), (uint)proto);

    /// <summary>A FUNC_PROTO; <paramref name="variadic"/> appends the nameless type-0 parameter that marks varargs.</summary>
    public int FunctionProto(int returnType, bool variadic, params (string Name, int Type)[] parameters)
    {
        var all = variadic ? [.. parameters, ("", 0)] : parameters;
        var words = all.SelectMany(p => new[] { Str(p.Name), (uint)p.Type }).ToArray();
        return AddRaw(0, Info(KindFuncProto, all.Length), (uint)returnType, words);
    }

    public int Variable(string name, int type, int linkage = 1) => AddRaw(Str(name), Info(KindVar, 0), (uint)type, (uint)linkage);

    public int DataSection(string name, int size, params (int Variable, int Offset, int Size)[] entries)
    {
        var words = entries.SelectMany(e => new[] { (uint)e.Variable, (uint)e.Offset, (uint)e.Size }).ToArray();
        return AddRaw(Str(name), Info(KindDatasec, entries.Length), (uint)size, words);
    }

    public int Float(string name, int size) => AddRaw(Str(name), Info(KindFloat, 0), (uint)size);

    public int DeclTag(string name, int type, int componentIndex) => AddRaw(Str(name), Info(KindDeclTag, 0), (uint)type, unchecked((uint)componentIndex));

    public int TypeTag(string name, int type) => AddRaw(Str(name), Info(KindTypeTag, 0), (uint)type);

    /// <summary>Length of the type section as built.</summary>
    public int TypeSectionLength => _records.Sum(r => r.Length * 4);

    /// <summary>
    /// Emits the blob. The header is <paramref name="headerLength"/> bytes (24, or more with zero padding, as future kernels
    /// may send); the type section starts right after it and the string section right after the types.
    /// </summary>
    public byte[] Build(bool bigEndian = false, int headerLength = 24)
    {
        var strings = _strings.ToArray();
        int typeLen = TypeSectionLength;
        var blob = new byte[headerLength + typeLen + strings.Length];
        var span = blob.AsSpan();
        Put16(span, 0, 0xEB9F, bigEndian);
        blob[2] = 1;
        blob[3] = 0;
        Put32(span, 4, (uint)headerLength, bigEndian);
        Put32(span, 8, 0, bigEndian);
        Put32(span, 12, (uint)typeLen, bigEndian);
        Put32(span, 16, (uint)typeLen, bigEndian);
        Put32(span, 20, (uint)strings.Length, bigEndian);
        int at = headerLength;
        foreach (var record in _records)
        {
            foreach (uint word in record)
            {
                Put32(span, at, word, bigEndian);
                at += 4;
            }
        }

        strings.CopyTo(span[at..]);
        return blob;
    }

    /// <summary>Overwrites a 32-bit header field (offset 4 hdr_len, 8 type_off, 12 type_len, 16 str_off, 20 str_len).</summary>
    public static void PatchHeader(byte[] blob, int fieldOffset, uint value, bool bigEndian = false) => Put32(blob, fieldOffset, value, bigEndian);

    /// <summary>
    /// Wraps a blob in a minimal ELF64 relocatable-looking file with sections null, <c>.text</c>, <c>.BTF</c> and
    /// <c>.shstrtab</c> (ELF gABI Elf64_Ehdr/Elf64_Shdr), as a vmlinux or module carries it.
    /// </summary>
    public static byte[] WrapInElf(byte[] btf, bool bigEndian = false)
    {
        var shstr = Encoding.ASCII.GetBytes("\0.text\0.BTF\0.shstrtab\0");
        const int ehSize = 64;
        const int shEntSize = 64;
        int textOff = ehSize;
        int btfOff = textOff + 16;
        int strOff = btfOff + btf.Length;
        int shOff = (strOff + shstr.Length + 7) & ~7;
        var file = new byte[shOff + (4 * shEntSize)];
        var s = file.AsSpan();
        file[0] = 0x7f;
        file[1] = (byte)'E';
        file[2] = (byte)'L';
        file[3] = (byte)'F';
        file[4] = 2;
        file[5] = bigEndian ? (byte)2 : (byte)1;
        file[6] = 1;
        Put16(s, 16, 2, bigEndian);          // e_type ET_EXEC
        Put16(s, 18, 62, bigEndian);         // e_machine EM_X86_64
        Put32(s, 20, 1, bigEndian);          // e_version
        Put64(s, 40, (ulong)shOff, bigEndian); // e_shoff
        Put16(s, 52, ehSize, bigEndian);     // e_ehsize
        Put16(s, 58, shEntSize, bigEndian);  // e_shentsize
        Put16(s, 60, 4, bigEndian);          // e_shnum
        Put16(s, 62, 3, bigEndian);          // e_shstrndx
        btf.CopyTo(s[btfOff..]);
        shstr.CopyTo(s[strOff..]);
        WriteSection(s, shOff + shEntSize, 1, 1, 6, (ulong)textOff, 16, bigEndian);
        WriteSection(s, shOff + (2 * shEntSize), 7, 1, 0, (ulong)btfOff, (ulong)btf.Length, bigEndian);
        WriteSection(s, shOff + (3 * shEntSize), 12, 3, 0, (ulong)strOff, (ulong)shstr.Length, bigEndian);
        return file;
    }

    private static void WriteSection(Span<byte> s, int at, uint name, uint type, ulong flags, ulong offset, ulong size, bool bigEndian)
    {
        Put32(s, at, name, bigEndian);
        Put32(s, at + 4, type, bigEndian);
        Put64(s, at + 8, flags, bigEndian);
        Put64(s, at + 24, offset, bigEndian);
        Put64(s, at + 32, size, bigEndian);
        Put64(s, at + 48, 1, bigEndian);
    }

    private static void Put16(Span<byte> s, int at, ushort v, bool be)
    {
        if (be)
        {
            BinaryPrimitives.WriteUInt16BigEndian(s[at..], v);
        }
        else
        {
            BinaryPrimitives.WriteUInt16LittleEndian(s[at..], v);
        }
    }

    private static void Put32(Span<byte> s, int at, uint v, bool be)
    {
        if (be)
        {
            BinaryPrimitives.WriteUInt32BigEndian(s[at..], v);
        }
        else
        {
            BinaryPrimitives.WriteUInt32LittleEndian(s[at..], v);
        }
    }

    private static void Put64(Span<byte> s, int at, ulong v, bool be)
    {
        if (be)
        {
            BinaryPrimitives.WriteUInt64BigEndian(s[at..], v);
        }
        else
        {
            BinaryPrimitives.WriteUInt64LittleEndian(s[at..], v);
        }
    }
}
