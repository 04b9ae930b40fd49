using System.Globalization;
using System.Text;
using Kvm.Images.Elf;
using Kvm.IO;

namespace Kvm.Symbols;

/// <summary>
/// Loads a namelist file, detected by content: an ELF kernel (a Linux vmlinux or a FreeBSD kernel; its .symtab), or a text listing in the
/// <c>&lt;hex address&gt; &lt;type&gt; &lt;name&gt;[\t[module]]</c> format shared by System.map and /proc/kallsyms
/// (formats.md §6.6).
/// </summary>
internal static class NamelistLoader
{
    public static SymbolTable Load(string path, KvmLimits limits)
    {
        using var file = RandomAccessFile.Open(path, writable: false);
        var head = new byte[64];
        int n = file.Read(0, head);
        if (n == 0)
        {
            throw new CorruptImageException($"{path}: empty namelist");
        }

        if (ElfHeader.HasMagic(head))
        {
            return LoadElf(file, limits);
        }

        return LoadText(path, limits);
    }

    /// <summary>Parses a System.map or kallsyms text listing.</summary>
    public static SymbolTable LoadText(string path, KvmLimits limits)
    {
        // /proc files report size 0, so bound the read by what we accept, not by the stat size.
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite, 1 << 16);
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var symbols = new List<KernelSymbol>();
        bool sawModule = false;
        int lineNo = 0;
        int bad = 0;
        long bytes = 0;
        bool anyNonZero = false;
        while (reader.ReadLine() is { } line)
        {
            lineNo++;
            bytes += line.Length + 1;
            if (bytes > limits.MaxSymbolFileBytes || symbols.Count >= limits.MaxSymbols)
            {
                throw new CorruptImageException($"{path}: namelist exceeds the limit of {limits.MaxSymbols} symbols or {limits.MaxSymbolFileBytes} bytes (line {lineNo})");
            }

            if (line.Length == 0)
            {
                continue;
            }

            if (!TryParseLine(line, out ulong address, out char type, out string name, out bool module))
            {
                bad++;
                if (bad > 16 && bad > symbols.Count)
                {
                    throw new CorruptImageException($"{path}: not a System.map, kallsyms listing or vmlinux (line {lineNo} is not '<hex> <type> <name>')");
                }

                continue;
            }

            sawModule |= module;
            anyNonZero |= address != 0;
            symbols.Add(new KernelSymbol(name, address, type, path));
        }

        if (symbols.Count == 0)
        {
            throw new CorruptImageException($"{path}: no symbols found (not a System.map, kallsyms listing or vmlinux)");
        }

        if (!anyNonZero)
        {
            throw new KvmException(KvmErrorCode.SymbolNotFound, $"{path}: every address is zero (kallsyms hidden by kernel.kptr_restrict; read it as root)");
        }

        var kind = sawModule || path.EndsWith("kallsyms", StringComparison.Ordinal) ? NamelistKind.Kallsyms : NamelistKind.SystemMap;
        return new SymbolTable(path, kind, symbols);
    }

    private static bool TryParseLine(string line, out ulong address, out char type, out string name, out bool module)
    {
        address = 0;
        type = '?';
        name = string.Empty;
        module = false;
        var span = line.AsSpan();
        int sp1 = span.IndexOf(' ');
        if (sp1 <= 0 || sp1 + 3 > span.Length || span[sp1 + 2] != ' ')
        {
            return false;
        }

        if (!ulong.TryParse(span[..sp1], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out address))
        {
            return false;
        }

        type = span[sp1 + 1];
        var rest = span[(sp1 + 3)..];
        int tab = rest.IndexOf('\t');
        if (tab >= 0)
        {
            module = rest[tab..].Contains('[');
            rest = rest[..tab];
        }

        if (rest.IsEmpty || rest.Contains(' '))
        {
            return false;
        }

        name = rest.ToString();
        return true;
    }

    private static SymbolTable LoadElf(RandomAccessFile file, KvmLimits limits)
    {
        var head = new byte[64];
        int n = file.Read(0, head);
        var header = ElfHeader.Parse(head.AsSpan(0, n), file.Path);
        if (header.Type is not (ElfHeader.EtExec or ElfHeader.EtDyn))
        {
            throw new CorruptImageException($"{file.Path}: ELF file is not a kernel executable (e_type {header.Type})");
        }

        var sections = ElfSectionHeader.ReadAll(file, header, 1 << 16);
        int symIndex = sections.FindIndex(s => s.Type == ElfSectionHeader.ShtSymtab);
        if (symIndex < 0)
        {
            throw new KvmException(KvmErrorCode.SymbolNotFound, $"{file.Path}: vmlinux has no .symtab (stripped)");
        }

        var symtab = sections[symIndex];
        if (symtab.Link >= sections.Count)
        {
            throw new CorruptImageException($"{file.Path}: .symtab links to missing string table {symtab.Link}");
        }

        var strtab = sections[(int)symtab.Link];
        int entSize = header.Is64 ? 24 : 16;
        ulong count = symtab.Size / (ulong)entSize;
        if (count > (ulong)limits.MaxSymbols)
        {
            throw new CorruptImageException($"{file.Path}: .symtab holds {count} symbols, more than the limit {limits.MaxSymbols}");
        }

        CheckInFile(file, symtab, ".symtab");
        CheckInFile(file, strtab, ".strtab");
        var symBytes = new byte[count * (ulong)entSize];
        file.ReadExactly((long)symtab.Offset, symBytes, ".symtab");
        var strBytes = new byte[strtab.Size];
        file.ReadExactly((long)strtab.Offset, strBytes, ".strtab");

        var symbols = new List<KernelSymbol>((int)count);
        for (int i = 1; i < (int)count; i++)
        {
            var r = new EndianReader(symBytes.AsSpan(i * entSize, entSize), header.BigEndian, $"{file.Path}: symbol {i}");
            uint nameOff;
            ulong value;
            byte info;
            ushort shndx;
            if (header.Is64)
            {
                nameOff = r.ReadUInt32();
                info = r.ReadUInt8();
                r.Skip(1);
                shndx = r.ReadUInt16();
                value = r.ReadUInt64();
            }
            else
            {
                nameOff = r.ReadUInt32();
                value = r.ReadUInt32();
                r.Skip(4);
                info = r.ReadUInt8();
                r.Skip(1);
                shndx = r.ReadUInt16();
            }

            int stType = info & 0xf;
            int bind = info >> 4;
            if (shndx == 0 || stType is 3 or 4 || nameOff >= strBytes.Length)
            {
                continue;
            }

            int end = Array.IndexOf(strBytes, (byte)0, (int)nameOff);
            if (end <= (int)nameOff)
            {
                continue;
            }

            char type = TypeLetter(shndx, sections);
            if (type == '\0')
            {
                continue;
            }

            string name = Encoding.UTF8.GetString(strBytes, (int)nameOff, end - (int)nameOff);
            // nm: weak objects are V, other weak symbols W; locals are lower case.
            char letter = bind == 2 && type != 'A' ? (stType == 1 ? 'V' : 'W') : bind == 0 ? char.ToLowerInvariant(type) : type;
            symbols.Add(new KernelSymbol(name, value, letter, file.Path));
        }

        // FreeBSD brands its kernel ELFOSABI_FREEBSD (ld -m elf_*_fbsd); a kernel.debug or an unbranded build still
        // has kernbase and allproc, which no Linux kernel defines.
        bool freeBsd = header.OsAbi == ElfHeader.OsAbiFreeBsd
            || (symbols.Any(s => s.Name == "kernbase") && symbols.Any(s => s.Name == "allproc"));
        return new SymbolTable(file.Path, freeBsd ? NamelistKind.FreeBsdKernel : NamelistKind.Vmlinux, symbols) { Machine = header.Machine };
    }

    /// <summary>nm's letter from the symbol's section: text, data, bss, read-only data, or absolute.</summary>
    private static char TypeLetter(ushort shndx, List<ElfSectionHeader> sections)
    {
        if (shndx == 0xfff1)
        {
            return 'A';
        }

        if (shndx >= sections.Count)
        {
            return '\0';
        }

        var s = sections[shndx];
        if ((s.Flags & ElfSectionHeader.ShfAlloc) == 0)
        {
            return '\0';
        }

        if ((s.Flags & ElfSectionHeader.ShfExecInstr) != 0)
        {
            return 'T';
        }

        if (s.Type == ElfSectionHeader.ShtNobits)
        {
            return 'B';
        }

        return (s.Flags & ElfSectionHeader.ShfWrite) != 0 ? 'D' : 'R';
    }

    private static void CheckInFile(RandomAccessFile file, ElfSectionHeader s, string name)
    {
        if (s.Offset > (ulong)file.Length || s.Size > (ulong)file.Length - s.Offset || s.Size > int.MaxValue)
        {
            throw new CorruptImageException($"{file.Path}: {name} at offset 0x{s.Offset:x} ({s.Size} bytes) runs past the end of the file");
        }
    }

    /// <summary>The SYMBOL() lines of VMCOREINFO as a runtime-address table.</summary>
    public static SymbolTable FromVmcoreInfo(VmcoreInfo info)
    {
        var symbols = new List<KernelSymbol>();
        foreach (var (key, _) in info.Values)
        {
            if (key.StartsWith("SYMBOL(", StringComparison.Ordinal) && key.EndsWith(')'))
            {
                string name = key[7..^1];
                if (info.GetSymbol(name) is { } address)
                {
                    symbols.Add(new KernelSymbol(name, address, '?', "vmcoreinfo"));
                }
            }
        }

        return new SymbolTable("vmcoreinfo", NamelistKind.VmcoreInfo, symbols);
    }
}
