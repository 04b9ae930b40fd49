using System.Buffers.Binary;
using System.Text;

namespace Kvm.IO;

/// <summary>
/// A bounds-checked cursor over bytes with an explicit byte order. Reading past the end throws
/// <see cref="CorruptImageException"/> naming <see cref="Context"/>, never an IndexOutOfRangeException.
/// </summary>
internal ref struct EndianReader
{
    private readonly ReadOnlySpan<byte> _data;

    public EndianReader(ReadOnlySpan<byte> data, bool bigEndian, string context)
    {
        _data = data;
        BigEndian = bigEndian;
        Context = context;
        Position = 0;
    }

    public bool BigEndian { get; }

    public string Context { get; }

    public int Position { get; set; }

    public readonly int Length => _data.Length;

    public readonly int Remaining => _data.Length - Position;

    public ReadOnlySpan<byte> ReadBytes(int count)
    {
        if (count < 0 || count > Remaining)
        {
            throw new CorruptImageException($"{Context}: truncated at offset {Position} (need {count} bytes, have {Remaining})");
        }

        var s = _data.Slice(Position, count);
        Position += count;
        return s;
    }

    public void Skip(int count) => ReadBytes(count);

    public byte ReadUInt8() => ReadBytes(1)[0];

    public ushort ReadUInt16() => BigEndian ? BinaryPrimitives.ReadUInt16BigEndian(ReadBytes(2)) : BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2));

    public uint ReadUInt32() => BigEndian ? BinaryPrimitives.ReadUInt32BigEndian(ReadBytes(4)) : BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4));

    public int ReadInt32() => unchecked((int)ReadUInt32());

    public ulong ReadUInt64() => BigEndian ? BinaryPrimitives.ReadUInt64BigEndian(ReadBytes(8)) : BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8));

    public long ReadInt64() => unchecked((long)ReadUInt64());

    /// <summary>Reads a word of the given size (4 or 8), zero-extended.</summary>
    public ulong ReadWord(int size) => size == 8 ? ReadUInt64() : ReadUInt32();

    /// <summary>Reads a fixed-size, NUL-padded ASCII field.</summary>
    public string ReadFixedString(int size)
    {
        var bytes = ReadBytes(size);
        int nul = bytes.IndexOf((byte)0);
        return Encoding.ASCII.GetString(nul < 0 ? bytes : bytes[..nul]);
    }
}
