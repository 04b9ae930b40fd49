using Kvm.IO;

namespace Kvm.Images.Elf;

/// <summary>One section header, widened to 64 bits.</summary>
internal readonly record struct ElfSectionHeader(
    uint NameOffset,   // sh_name
    uint Type,         // sh_type
    ulong Flags,       // sh_flags
    ulong Address,     // sh_addr
    ulong Offset,      // sh_offset
    ulong Size,        // sh_size
    uint Link,         // sh_link
    uint Info,         // sh_info
    ulong EntrySize)   // sh_entsize
{
    public const uint ShtSymtab = 2;
    public const uint ShtNobits = 8;
    public const ulong ShfWrite = 1;
    public const ulong ShfAlloc = 2;
    public const ulong ShfExecInstr = 4;

    public static ElfSectionHeader Read(ref EndianReader r, bool is64)
    {
        uint name = r.ReadUInt32();
        uint type = r.ReadUInt32();
        if (is64)
        {
            ulong flags = r.ReadUInt64();
            ulong addr = r.ReadUInt64();
            ulong off = r.ReadUInt64();
            ulong size = r.ReadUInt64();
            uint link = r.ReadUInt32();
            uint info = r.ReadUInt32();
            r.Skip(8);
            return new ElfSectionHeader(name, type, flags, addr, off, size, link, info, r.ReadUInt64());
        }

        ulong f = r.ReadUInt32();
        ulong a = r.ReadUInt32();
        ulong o = r.ReadUInt32();
        ulong s = r.ReadUInt32();
        uint l = r.ReadUInt32();
        uint i = r.ReadUInt32();
        r.Skip(4);
        return new ElfSectionHeader(name, type, f, a, o, s, l, i, r.ReadUInt32());
    }

    /// <summary>Reads all section headers of a file, bounded by the file length.</summary>
    public static List<ElfSectionHeader> ReadAll(RandomAccessFile file, ElfHeader header, int maxCount)
    {
        var list = new List<ElfSectionHeader>();
        if (header.SectionHeaderOffset == 0 || header.SectionHeaderCount == 0)
        {
            return list;
        }

        int entSize = header.SectionHeaderEntrySize;
        int minSize = header.Is64 ? 64 : 40;
        if (entSize < minSize)
        {
            throw new CorruptImageException($"{file.Path}: ELF e_shentsize {entSize} is smaller than {minSize}");
        }

        int count = header.SectionHeaderCount;
        if (count > maxCount)
        {
            throw new CorruptImageException($"{file.Path}: ELF section count {count} exceeds the limit {maxCount}");
        }

        long bytes = (long)count * entSize;
        if (header.SectionHeaderOffset > (ulong)file.Length || (ulong)bytes > (ulong)file.Length - header.SectionHeaderOffset)
        {
            throw new CorruptImageException($"{file.Path}: truncated: section headers at offset 0x{header.SectionHeaderOffset:x} ({count} x {entSize} bytes) run past the end of the file");
        }

        var buf = new byte[bytes];
        file.ReadExactly((long)header.SectionHeaderOffset, buf, "ELF section headers");
        for (int i = 0; i < count; i++)
        {
            var r = new EndianReader(buf.AsSpan(i * entSize, entSize), header.BigEndian, $"{file.Path}: section header {i}");
            list.Add(Read(ref r, header.Is64));
        }

        return list;
    }
}
