using System.Text;
using Kvm.Images.Elf;
using Kvm.IO;

namespace Kvm.Types;

/// <summary>
/// Reads the bytes of a BTF blob from a raw BTF file or from the <c>.BTF</c> section of an ELF file; or, for FreeBSD,
/// CTF from a raw CTF file or the <c>.SUNW_ctf</c> section of a kernel, converted to BTF (<see cref="CtfConverter"/>).
/// </summary>
internal static class BtfFileReader
{
    public static (byte[] Data, string Source) Read(string path, KvmLimits limits)
    {
        using var file = RandomAccessFile.Open(path, writable: false);
        var head = new byte[64];
        int n = file.Read(0, head);
        if (ElfHeader.HasMagic(head.AsSpan(0, n)))
        {
            var (name, data) = ReadElfSection(file, head.AsSpan(0, n), limits);
            return name == ".BTF" ? (data, $"{path}: .BTF") : (CtfConverter.ToBtf(data, $"{path}: {name}", limits), $"{path}: {name} (CTF v{data[2]})");
        }

        var whole = ReadWhole(file, limits);
        return CtfConverter.HasMagic(whole) ? (CtfConverter.ToBtf(whole, path, limits), $"{path} (CTF v{whole[2]})") : (whole, path);
    }

    /// <summary>Reads to end of file, bounded by the BTF size cap rather than by the reported length (sysfs may not report it).</summary>
    private static byte[] ReadWhole(RandomAccessFile file, KvmLimits limits)
    {
        using var buffer = new MemoryStream();
        var chunk = new byte[1 << 16];
        long offset = 0;
        while (true)
        {
            int n = file.Read(offset, chunk);
            if (n <= 0)
            {
                break;
            }

            offset += n;
            if (offset > limits.MaxBtfBytes)
            {
                throw new CorruptImageException($"{file.Path}: BTF file is larger than the limit of {limits.MaxBtfBytes} bytes");
            }

            buffer.Write(chunk, 0, n);
        }

        return buffer.ToArray();
    }

    /// <summary>The <c>.BTF</c> section, else FreeBSD's <c>.SUNW_ctf</c>, with its name.</summary>
    private static (string Name, byte[] Data) ReadElfSection(RandomAccessFile file, ReadOnlySpan<byte> head, KvmLimits limits)
    {
        var header = ElfHeader.Parse(head, file.Path);
        var sections = ElfSectionHeader.ReadAll(file, header, 1 << 16);
        if (header.SectionNameIndex >= sections.Count)
        {
            throw new CorruptImageException($"{file.Path}: ELF section name table index {header.SectionNameIndex} is not a section ({sections.Count} sections)");
        }

        var names = ReadSection(file, sections[header.SectionNameIndex], "section name table", limits.MaxBtfBytes);
        foreach (string wanted in (string[])[".BTF", ".SUNW_ctf"])
        {
            foreach (var s in sections)
            {
                if (s.NameOffset < names.Length && NameAt(names, (int)s.NameOffset) == wanted)
                {
                    return (wanted, ReadSection(file, s, $"{wanted} section", limits.MaxBtfBytes));
                }
            }
        }

        throw new CorruptImageException($"{file.Path}: ELF file has no .BTF section (nor FreeBSD's .SUNW_ctf)");
    }

    private static string NameAt(byte[] table, int offset)
    {
        int end = Array.IndexOf(table, (byte)0, offset);
        return Encoding.ASCII.GetString(table, offset, (end < 0 ? table.Length : end) - offset);
    }

    private static byte[] ReadSection(RandomAccessFile file, ElfSectionHeader s, string what, int max)
    {
        if (s.Size > (ulong)max)
        {
            throw new CorruptImageException($"{file.Path}: {what} of {s.Size} bytes exceeds the limit of {max} bytes");
        }

        if (s.Type == ElfSectionHeader.ShtNobits || s.Offset > (ulong)file.Length || s.Size > (ulong)file.Length - s.Offset)
        {
            throw new CorruptImageException($"{file.Path}: {what} at offset 0x{s.Offset:x} ({s.Size} bytes) runs past the end of the file");
        }

        var data = new byte[s.Size];
        file.ReadExactly((long)s.Offset, data, what);
        return data;
    }
}
