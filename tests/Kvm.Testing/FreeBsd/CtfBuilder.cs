using System.IO.Compression;
using System.Text;

namespace Kvm.Testing.FreeBsd;

/// <summary>
/// Writes CTF containers as ctfconvert/ctfmerge lay them out (sys/sys/ctf.h): the 36-byte header, then (zlib-compressed
/// when asked, <c>CTF_F_COMPRESS</c>) the type section and the string table; no labels, objects or functions. Version
/// 2 (16-bit ids and info) or 3 (32-bit), little-endian.
/// </summary>
public sealed class CtfBuilder
{
    public const int Integer = 1, Float = 2, Pointer = 3, Array = 4, Function = 5, Struct = 6, Union = 7, Enum = 8,
        Forward = 9, Typedef = 10, Volatile = 11, Const = 12, Restrict = 13;

    private readonly List<Entry> _types = [];
    private readonly MemoryStream _strings = new();
    private readonly Dictionary<string, uint> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<(string, int, bool, bool), int> _integers = [];

    public CtfBuilder(int version = 3)
    {
        Version = version;
        _strings.WriteByte(0);
        _names[string.Empty] = 0;
    }

    public int Version { get; }

    /// <summary>An integer type; asking twice for the same one gives the same id, as ctfmerge keeps one of each.</summary>
    public int Int(string name, int bytes, bool signed = true, bool isChar = false)
    {
        if (!_integers.TryGetValue((name, bytes, signed, isChar), out int id))
        {
            id = Add(new Entry(Integer, name, (ulong)bytes) { Data = ((uint)((signed ? 1 : 0) | (isChar ? 2 : 0)) << 24) | (uint)(bytes * 8) });
            _integers[(name, bytes, signed, isChar)] = id;
        }

        return id;
    }

    public int PointerTo(int type) => Add(new Entry(Pointer, string.Empty, (ulong)type));

    public int TypedefOf(string name, int type) => Add(new Entry(Typedef, name, (ulong)type));

    public int ConstOf(int type) => Add(new Entry(Const, string.Empty, (ulong)type));

    public int ArrayOf(int element, int index, uint count) => Add(new Entry(Array, string.Empty, 0) { Array = (element, index, count) });

    public int EnumOf(string name, params (string Name, int Value)[] values) => Add(new Entry(Enum, name, 4) { Values = values });

    public int ForwardOf(string name, bool union = false) => Add(new Entry(Forward, name, union ? (ulong)Union : Struct));

    public int FunctionOf(int returns, params int[] arguments) => Add(new Entry(Function, string.Empty, (ulong)returns) { Arguments = arguments });

    /// <summary>A struct whose members are given later (<see cref="SetMembers"/>), so that pointers may refer to it first.</summary>
    public int StructOf(string name, bool union = false) => Add(new Entry(union ? Union : Struct, name, 0));

    /// <summary>Sets a struct's size and members (name, type, bit offset).</summary>
    public void SetMembers(int id, ulong size, params (string Name, int Type, ulong BitOffset)[] members)
    {
        var e = _types[id - 1];
        e.Size = size;
        e.Members = members;
    }

    public byte[] Build(bool compress = true)
    {
        var types = new MemoryStream();
        var w = new BinaryWriter(types);
        foreach (var e in _types)
        {
            int vlen = e.Members?.Length ?? e.Values?.Length ?? e.Arguments?.Length ?? 0;
            w.Write(Name(e.Name));
            bool large = e.Size >= (Version == 3 ? 0xffffffffUL : 0xffffUL);
            if (Version == 3)
            {
                w.Write(((uint)e.Kind << 26) | (1u << 25) | (uint)vlen);
                w.Write(large ? 0xffffffffu : (uint)e.Size);
            }
            else
            {
                w.Write((ushort)((e.Kind << 11) | (1 << 10) | vlen));
                w.Write(large ? (ushort)0xffff : (ushort)e.Size);
            }

            if (large)
            {
                w.Write((uint)(e.Size >> 32));
                w.Write((uint)e.Size);
            }

            switch (e.Kind)
            {
                case Integer or Float:
                    w.Write(e.Data);
                    break;
                case Array:
                    Id(w, (uint)e.Array.Element);
                    Id(w, (uint)e.Array.Index);
                    w.Write(e.Array.Count);
                    break;
                case Function:
                    foreach (var a in e.Arguments!)
                    {
                        Id(w, (uint)a);
                    }

                    if (Version == 2 && (e.Arguments!.Length & 1) != 0)
                    {
                        w.Write((ushort)0);
                    }

                    break;
                case Struct or Union:
                    bool lmember = e.Size >= (Version == 3 ? 1UL << 29 : 1UL << 13);
                    foreach (var (name, type, offset) in e.Members ?? [])
                    {
                        w.Write(Name(name));
                        Id(w, (uint)type);
                        if (lmember)
                        {
                            if (Version == 2)
                            {
                                w.Write((ushort)0);
                            }

                            w.Write((uint)(offset >> 32));
                            w.Write((uint)offset);
                        }
                        else if (Version == 3)
                        {
                            w.Write((uint)offset);
                        }
                        else
                        {
                            w.Write((ushort)offset);
                        }
                    }

                    break;
                case Enum:
                    foreach (var (name, value) in e.Values!)
                    {
                        w.Write(Name(name));
                        w.Write(value);
                    }

                    break;
            }
        }

        var body = new MemoryStream();
        body.Write(types.ToArray());
        body.Write(_strings.ToArray());
        var data = body.ToArray();
        if (compress)
        {
            var z = new MemoryStream();
            using (var zs = new ZLibStream(z, CompressionLevel.Optimal, leaveOpen: true))
            {
                zs.Write(data);
            }

            data = z.ToArray();
        }

        var output = new MemoryStream();
        var h = new BinaryWriter(output);
        h.Write((ushort)0xcff1);
        h.Write((byte)Version);
        h.Write((byte)(compress ? 1 : 0));
        h.Write(0u);                        // cth_parlabel
        h.Write(0u);                        // cth_parname
        h.Write(0u);                        // cth_lbloff
        h.Write(0u);                        // cth_objtoff
        h.Write(0u);                        // cth_funcoff
        h.Write(0u);                        // cth_typeoff
        h.Write((uint)types.Length);        // cth_stroff
        h.Write((uint)_strings.Length);     // cth_strlen
        h.Write(data);
        return output.ToArray();
    }

    private int Add(Entry e)
    {
        _types.Add(e);
        return _types.Count;
    }

    private void Id(BinaryWriter w, uint id)
    {
        if (Version == 3)
        {
            w.Write(id);
        }
        else
        {
            w.Write((ushort)id);
        }
    }

    private uint Name(string name)
    {
        if (!_names.TryGetValue(name, out uint offset))
        {
            offset = (uint)_strings.Length;
            _strings.Write(Encoding.UTF8.GetBytes(name));
            _strings.WriteByte(0);
            _names[name] = offset;
        }

        return offset;
    }

    private sealed class Entry(int kind, string name, ulong size)
    {
        public int Kind { get; } = kind;

        public string Name { get; } = name;

        public ulong Size { get; set; } = size;

        public uint Data { get; init; }

        public (int Element, int Index, uint Count) Array { get; init; }

        public (string Name, int Value)[]? Values { get; init; }

        public int[]? Arguments { get; init; }

        public (string Name, int Type, ulong BitOffset)[]? Members { get; set; }
    }
}
