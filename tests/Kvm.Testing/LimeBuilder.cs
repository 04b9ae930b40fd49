namespace Kvm.Testing;

/// <summary>
/// Writes LiME images (504ensicsLabs/LiME src/lime.h): each range is a packed 32-byte
/// <c>lime_mem_range_header { u32 magic = 0x4C694D45; u32 version = 1; u64 s_addr; u64 e_addr; u8 reserved[8]; }</c>
/// (little-endian, e_addr inclusive) followed by <c>e_addr - s_addr + 1</c> bytes of memory.
/// </summary>
public sealed class LimeBuilder
{
    public const uint Magic = 0x4C694D45;
    public const uint Version = 1;
    public const int HeaderSize = 32;

    private readonly List<(uint Magic, uint Version, ulong Start, ulong End, byte[] Data)> _ranges = [];

    /// <summary>Adds a range holding <paramref name="data"/> at <paramref name="start"/>.</summary>
    public LimeBuilder AddRange(ulong start, byte[] data)
    {
        ArgumentOutOfRangeException.ThrowIfZero(data.Length);
        return AddRawRange(Magic, Version, start, start + (ulong)data.Length - 1, data);
    }

    /// <summary>Adds a range with an arbitrary header; the data written is <paramref name="data"/>, whatever the header claims.</summary>
    public LimeBuilder AddRawRange(uint magic, uint version, ulong start, ulong endInclusive, byte[] data)
    {
        _ranges.Add((magic, version, start, endInclusive, data));
        return this;
    }

    /// <summary>Adds every run of <paramref name="memory"/> as a range.</summary>
    public LimeBuilder AddPhysicalMemory(PhysicalMemoryBuilder memory)
    {
        foreach (var (start, data) in memory.Runs())
        {
            AddRange(start, data);
        }

        return this;
    }

    /// <summary>The file offset of range <paramref name="index"/>'s header in <see cref="Build"/>'s output.</summary>
    public long HeaderOffset(int index)
    {
        long offset = 0;
        for (int i = 0; i < index; i++)
        {
            offset += HeaderSize + _ranges[i].Data.Length;
        }

        return offset;
    }

    public byte[] Build()
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        foreach (var r in _ranges)
        {
            w.Write(r.Magic);
            w.Write(r.Version);
            w.Write(r.Start);
            w.Write(r.End);
            w.Write(new byte[8]);
            w.Write(r.Data);
        }

        return ms.ToArray();
    }
}
