using System.Buffers.Binary;
using System.IO.Compression;

namespace Kvm.Types;

/// <summary>
/// Turns CTF — the Compact C Type Format FreeBSD kernels carry in their <c>.SUNW_ctf</c> section for DTrace
/// (sys/sys/ctf.h; versions 2 and 3, the data after the header optionally zlib-compressed) — into a BTF blob, so that
/// the one type catalog (<see cref="TypeCatalog"/>) serves both kernels. BTF was derived from CTF and keeps its
/// model: the kinds map one to one, type ids are kept (both number from 1 in file order, 0 being void), and the
/// string section is copied as is.
/// </summary>
/// <remarks>
/// Mapping: INTEGER → INT (encoding bits signed/char/bool kept, varargs dropped), FLOAT → FLOAT, POINTER, ARRAY,
/// TYPEDEF, VOLATILE, CONST, RESTRICT alike, FUNCTION → FUNC_PROTO (a final argument of type 0 is the varargs marker in
/// both), STRUCT/UNION with bit offsets, ENUM (4 bytes), FORWARD → FWD (a union when its type word says
/// <c>CTF_K_UNION</c>), and UNKNOWN → a typedef of void under its name. Names that refer to the ELF string table
/// (<c>CTF_NAME_STID</c> 1) and references to a parent container (ids with the top bit, which only modules' CTF has)
/// become empty names and void. The label, object and function sections are not needed and are skipped.
/// </remarks>
internal static class CtfConverter
{
    /// <summary><c>CTF_MAGIC</c>.</summary>
    public const ushort Magic = 0xcff1;

    private const int HeaderSize = 36;
    private const int KindInteger = 1, KindFloat = 2, KindPointer = 3, KindArray = 4, KindFunction = 5, KindStruct = 6,
        KindUnion = 7, KindEnum = 8, KindForward = 9, KindTypedef = 10, KindVolatile = 11, KindConst = 12, KindRestrict = 13;

    /// <summary>True when <paramref name="data"/> starts with the CTF magic (in either byte order) and a known version.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> data) =>
        data.Length >= 4 && (BinaryPrimitives.ReadUInt16LittleEndian(data) == Magic || BinaryPrimitives.ReadUInt16BigEndian(data) == Magic) && data[2] is 2 or 3;

    /// <summary>Converts a CTF container to a BTF blob; throws <see cref="CorruptImageException"/> naming <paramref name="source"/>.</summary>
    public static byte[] ToBtf(ReadOnlySpan<byte> ctf, string source, KvmLimits limits)
    {
        if (ctf.Length < HeaderSize)
        {
            throw new CorruptImageException($"{source}: truncated CTF header ({ctf.Length} bytes, need {HeaderSize})");
        }

        bool bigEndian = BinaryPrimitives.ReadUInt16LittleEndian(ctf) != Magic;
        if ((bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(ctf) : Magic) != Magic)
        {
            throw new CorruptImageException($"{source}: bad CTF magic (want 0xcff1)");
        }

        int version = ctf[2];
        if (version is not (2 or 3))
        {
            throw new CorruptImageException($"{source}: CTF version {version} is not supported (2 and 3 are)");
        }

        bool compressed = (ctf[3] & 1) != 0;
        uint typeOff = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(ctf[24..]) : BinaryPrimitives.ReadUInt32LittleEndian(ctf[24..]);
        uint strOff = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(ctf[28..]) : BinaryPrimitives.ReadUInt32LittleEndian(ctf[28..]);
        uint strLen = bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(ctf[32..]) : BinaryPrimitives.ReadUInt32LittleEndian(ctf[32..]);
        var body = compressed ? Inflate(ctf[HeaderSize..], source, limits) : ctf[HeaderSize..].ToArray();
        if (typeOff > strOff || strOff > body.Length || strLen > body.Length - strOff)
        {
            throw new CorruptImageException($"{source}: CTF sections (types at {typeOff}, strings at {strOff}, {strLen} bytes) do not fit the {body.Length}-byte data");
        }

        var strings = body.AsSpan((int)strOff, (int)strLen);
        var reader = new Reader(body.AsSpan((int)typeOff, (int)(strOff - typeOff)), bigEndian, version, source);
        return Convert(ref reader, strings, source, limits);
    }

    private static byte[] Inflate(ReadOnlySpan<byte> data, string source, KvmLimits limits)
    {
        try
        {
            using var input = new MemoryStream(data.ToArray());
            using var z = new ZLibStream(input, CompressionMode.Decompress);
            using var output = new MemoryStream();
            var buffer = new byte[1 << 16];
            int n;
            while ((n = z.Read(buffer)) > 0)
            {
                if (output.Length + n > limits.MaxBtfBytes)
                {
                    throw new CorruptImageException($"{source}: CTF data inflates to more than the limit of {limits.MaxBtfBytes} bytes");
                }

                output.Write(buffer, 0, n);
            }

            return output.ToArray();
        }
        catch (InvalidDataException e)
        {
            throw new CorruptImageException($"{source}: CTF data does not inflate: {e.Message}", e);
        }
    }

    private static byte[] Convert(ref Reader r, ReadOnlySpan<byte> strings, string source, KvmLimits limits)
    {
        var types = new MemoryStream();
        var w = new BinaryWriter(types);
        int count = 0;
        while (!r.AtEnd)
        {
            if (++count > limits.MaxBtfTypes)
            {
                throw new CorruptImageException($"{source}: CTF holds more than the limit of {limits.MaxBtfTypes} types");
            }

            uint name = r.Name();
            var (kind, vlen) = r.Info();
            ulong sizeOrType = r.SizeOrType();
            uint size = (uint)Math.Min(sizeOrType, uint.MaxValue);
            switch (kind)
            {
                case KindInteger:
                {
                    uint data = r.U32();
                    uint encoding = (data >> 24) & 7;
                    uint offset = (data >> 16) & 0xff;
                    uint bits = data & 0xffff;
                    Record(w, name, 1, 0, size);
                    w.Write((encoding << 24) | (offset << 16) | Math.Min(bits, 128));
                    break;
                }

                case KindFloat:
                    r.U32();
                    Record(w, name, 16, 0, size);
                    break;
                case KindPointer:
                    Record(w, 0, 2, 0, r.Type(sizeOrType));
                    break;
                case KindArray:
                {
                    uint contents = r.TypeField();
                    uint index = r.TypeField();
                    uint elements = r.U32();
                    Record(w, 0, 3, 0, 0);
                    w.Write(contents);
                    w.Write(index);
                    w.Write(elements);
                    break;
                }

                case KindFunction:
                {
                    var args = new uint[vlen];
                    for (int i = 0; i < vlen; i++)
                    {
                        args[i] = r.TypeField();
                    }

                    r.AlignArguments(vlen);
                    Record(w, 0, 13, Vlen(vlen, source, count), r.Type(sizeOrType));
                    foreach (var a in args)
                    {
                        w.Write(0u);
                        w.Write(a);
                    }

                    break;
                }

                case KindStruct or KindUnion:
                {
                    Record(w, name, kind == KindStruct ? 4 : 5, Vlen(vlen, source, count), size);
                    bool large = r.LargeMembers(sizeOrType);
                    for (int i = 0; i < vlen; i++)
                    {
                        var (memberName, memberType, offset) = r.Member(large);
                        w.Write(memberName);
                        w.Write(memberType);
                        w.Write((uint)Math.Min(offset, uint.MaxValue));
                    }

                    break;
                }

                case KindEnum:
                    Record(w, name, 6, Vlen(vlen, source, count), size);
                    for (int i = 0; i < vlen; i++)
                    {
                        w.Write(r.Name());
                        w.Write(r.U32());
                    }

                    break;
                case KindForward:
                    Record(w, name, 7, 0, 0, union: sizeOrType == KindUnion);
                    break;
                case KindTypedef:
                    Record(w, name, 8, 0, r.Type(sizeOrType));
                    break;
                case KindVolatile:
                    Record(w, 0, 9, 0, r.Type(sizeOrType));
                    break;
                case KindConst:
                    Record(w, 0, 10, 0, r.Type(sizeOrType));
                    break;
                case KindRestrict:
                    Record(w, 0, 11, 0, r.Type(sizeOrType));
                    break;
                case 0:
                    Record(w, name, 8, 0, 0);
                    break;
                default:
                    throw new CorruptImageException($"{source}: CTF type {count} has unknown kind {kind}");
            }
        }

        // Names are kept as offsets into the copied string section (which, as BTF's, starts with the empty string);
        // ELF string-table names became 0, the empty name.
        if (strings.Length == 0 || strings[0] != 0)
        {
            throw new CorruptImageException($"{source}: CTF string table does not start with the empty string");
        }

        bool terminated = strings[^1] == 0;
        var btf = new MemoryStream();
        var b = new BinaryWriter(btf);
        b.Write((ushort)0xeb9f);
        b.Write((byte)1);
        b.Write((byte)0);
        b.Write(24u);
        b.Write(0u);
        b.Write((uint)types.Length);
        b.Write((uint)types.Length);
        b.Write((uint)(strings.Length + (terminated ? 0 : 1)));
        b.Write(types.ToArray());
        b.Write(strings);
        if (!terminated)
        {
            b.Write((byte)0);
        }

        return btf.ToArray();
    }

    private static int Vlen(int vlen, string source, int id) =>
        vlen <= 0xffff ? vlen : throw new CorruptImageException($"{source}: CTF type {id} has {vlen} members, more than BTF's 65535");

    private static void Record(BinaryWriter w, uint name, int kind, int vlen, uint sizeOrType, bool union = false)
    {
        w.Write(name);
        w.Write(((uint)kind << 24) | (uint)vlen | (union ? 1u << 31 : 0));
        w.Write(sizeOrType);
    }

    /// <summary>A cursor over the CTF type section, decoding v2 and v3 records in the file's byte order.</summary>
    private ref struct Reader
    {
        private readonly ReadOnlySpan<byte> _data;
        private readonly bool _bigEndian;
        private readonly bool _v3;
        private readonly string _source;
        private int _at;

        public Reader(ReadOnlySpan<byte> data, bool bigEndian, int version, string source)
        {
            _data = data;
            _bigEndian = bigEndian;
            _v3 = version == 3;
            _source = source;
            _at = 0;
        }

        public readonly bool AtEnd => _at >= _data.Length;

        public uint U32()
        {
            var s = Take(4);
            return _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
        }

        public ushort U16()
        {
            var s = Take(2);
            return _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);
        }

        /// <summary>A name reference: its offset in the CTF string table, or 0 for one in the ELF string table.</summary>
        public uint Name()
        {
            uint n = U32();
            return (n >> 31) != 0 ? 0 : n;
        }

        /// <summary>ctt_info: v2 kind bits 11-15 and vlen 0-9; v3 kind bits 26-31 and vlen 0-23.</summary>
        public (int Kind, int Vlen) Info()
        {
            if (_v3)
            {
                uint info = U32();
                return ((int)(info >> 26), (int)(info & 0xffffff));
            }

            ushort v2 = U16();
            return (v2 >> 11, v2 & 0x3ff);
        }

        /// <summary>ctt_size or ctt_type, with the large-size sentinel's 64-bit size after it.</summary>
        public ulong SizeOrType()
        {
            uint value = _v3 ? U32() : U16();
            uint sentinel = _v3 ? 0xffffffff : 0xffff;
            if (value != sentinel)
            {
                return value;
            }

            ulong hi = U32();
            return (hi << 32) | U32();
        }

        /// <summary>A type id field (16-bit in v2, 32-bit in v3).</summary>
        public uint TypeField() => Type(_v3 ? U32() : U16());

        /// <summary>A type id; ids of a parent container (top bit set) become void.</summary>
        public readonly uint Type(ulong id) => (id & (_v3 ? 0x80000000UL : 0x8000UL)) != 0 ? 0 : (uint)id;

        /// <summary>v2 pads an odd argument count of 16-bit ids to 32 bits.</summary>
        public void AlignArguments(int vlen)
        {
            if (!_v3 && (vlen & 1) != 0)
            {
                Take(2);
            }
        }

        /// <summary>Structures of <c>CTF_LSTRUCT_THRESH</c> bytes or more list their members with 64-bit offsets.</summary>
        public readonly bool LargeMembers(ulong size) => size >= (_v3 ? 1UL << 29 : 1UL << 13);

        public (uint Name, uint Type, ulong Offset) Member(bool large)
        {
            uint name = Name();
            if (_v3)
            {
                uint type = TypeField();
                return large ? (name, type, ((ulong)U32() << 32) | U32()) : (name, type, U32());
            }

            uint t = TypeField();
            if (!large)
            {
                return (name, t, U16());
            }

            Take(2);
            return (name, t, ((ulong)U32() << 32) | U32());
        }

        private ReadOnlySpan<byte> Take(int n)
        {
            if (_data.Length - _at < n)
            {
                throw new CorruptImageException($"{_source}: CTF type section truncated at byte {_at} (need {n} more)");
            }

            var s = _data.Slice(_at, n);
            _at += n;
            return s;
        }
    }
}
