using Kvm.IO;

namespace Kvm.Images.Elf;

/// <summary>The ELF file header (Elf32_Ehdr / Elf64_Ehdr), class and byte order decoded.</summary>
internal sealed record ElfHeader(
    bool Is64,
    bool BigEndian,
    ushort Type,
    ushort Machine,
    ulong ProgramHeaderOffset,
    ushort ProgramHeaderEntrySize,
    ushort ProgramHeaderCount,
    ulong SectionHeaderOffset,
    ushort SectionHeaderEntrySize,
    ushort SectionHeaderCount,
    ushort SectionNameIndex)
{
    public const ushort EtCore = 4;
    public const ushort EtExec = 2;
    public const ushort EtDyn = 3;
    public const ushort PnXnum = 0xffff;

    /// <summary><c>ELFOSABI_FREEBSD</c>: FreeBSD's kernel and programs are branded so.</summary>
    public const byte OsAbiFreeBsd = 9;

    /// <summary><c>ELFOSABI_STANDALONE</c>: what FreeBSD's full dumps carry (sys/kern/kern_dump.c <c>dumpsys_generic</c>).</summary>
    public const byte OsAbiStandalone = 255;

    /// <summary><c>e_ident[EI_OSABI]</c>.</summary>
    public byte OsAbi { get; init; }

    public static bool HasMagic(ReadOnlySpan<byte> data) => data.Length >= 4 && data[0] == 0x7f && data[1] == (byte)'E' && data[2] == (byte)'L' && data[3] == (byte)'F';

    /// <summary>Parses the header at the start of <paramref name="data"/>; <paramref name="context"/> names the file in errors.</summary>
    public static ElfHeader Parse(ReadOnlySpan<byte> data, string context)
    {
        if (!HasMagic(data) || data.Length < 52)
        {
            throw new CorruptImageException($"{context}: not an ELF file");
        }

        bool is64 = data[4] switch
        {
            1 => false,
            2 => true,
            _ => throw new CorruptImageException($"{context}: bad ELF class {data[4]}"),
        };
        bool be = data[5] switch
        {
            1 => false,
            2 => true,
            _ => throw new CorruptImageException($"{context}: bad ELF data encoding {data[5]}"),
        };
        byte osAbi = data[7];
        var r = new EndianReader(data, be, $"{context}: ELF header") { Position = 16 };
        ushort type = r.ReadUInt16();
        ushort machine = r.ReadUInt16();
        r.Skip(4);
        if (is64)
        {
            r.Skip(8);
            ulong phoff = r.ReadUInt64();
            ulong shoff = r.ReadUInt64();
            r.Skip(4 + 2);
            return new ElfHeader(true, be, type, machine, phoff, r.ReadUInt16(), r.ReadUInt16(), shoff, r.ReadUInt16(), r.ReadUInt16(), r.ReadUInt16()) { OsAbi = osAbi };
        }
        else
        {
            r.Skip(4);
            ulong phoff = r.ReadUInt32();
            ulong shoff = r.ReadUInt32();
            r.Skip(4 + 2);
            return new ElfHeader(false, be, type, machine, phoff, r.ReadUInt16(), r.ReadUInt16(), shoff, r.ReadUInt16(), r.ReadUInt16(), r.ReadUInt16()) { OsAbi = osAbi };
        }
    }
}
