using System.Text;

namespace Kvm.Testing;

/// <summary>
/// Writes a minimal ELF64 little-endian x86-64 executable (a stand-in for vmlinux) with sections only, no program
/// headers: <c>.text</c> (ALLOC|EXECINSTR), <c>.data</c> (WRITE|ALLOC), <c>.bss</c> (NOBITS, WRITE|ALLOC),
/// <c>.rodata</c> (ALLOC), <c>.data..percpu</c> (WRITE|ALLOC at address 0), <c>.comment</c> (not ALLOC), then
/// <c>.symtab</c>, <c>.strtab</c> and <c>.shstrtab</c> (ELF gABI, Elf64_Ehdr/Elf64_Shdr/Elf64_Sym).
/// </summary>
public sealed class ElfExecutableBuilder
{
    // Section indices in the built file.
    public const ushort Text = 1;
    public const ushort Data = 2;
    public const ushort Bss = 3;
    public const ushort Rodata = 4;
    public const ushort PerCpu = 5;
    public const ushort Comment = 6;

    // Special section indices.
    public const ushort ShnUndef = 0;
    public const ushort ShnAbs = 0xfff1;

    // st_info binding (high nibble) and type (low nibble).
    public const byte StbLocal = 0;
    public const byte StbGlobal = 1;
    public const byte StbWeak = 2;
    public const byte SttNotype = 0;
    public const byte SttObject = 1;
    public const byte SttFunc = 2;
    public const byte SttSection = 3;
    public const byte SttFile = 4;

    public const ulong TextAddress = 0xffffffff81000000;
    public const ulong RodataAddress = 0xffffffff81e00000;
    public const ulong DataAddress = 0xffffffff82000000;
    public const ulong BssAddress = 0xffffffff83000000;

    private const int EhSize = 64;
    private const int ShEntSize = 64;
    private const int SymSize = 24;

    private readonly List<(string Name, ulong Value, ushort Section, byte Bind, byte Type, ulong Size)> _symbols = [];

    /// <summary>e_type: 2 (ET_EXEC) by default.</summary>
    public ushort Type { get; set; } = 2;

    /// <summary>e_machine: 62 (EM_X86_64) by default; 3 for i386, 183 for arm64.</summary>
    public ushort Machine { get; set; } = 62;

    /// <summary>e_ident[EI_OSABI]: 0 by default; FreeBSD brands its kernel 9 (ELFOSABI_FREEBSD).</summary>
    public byte OsAbi { get; set; }

    /// <summary>ELFCLASS64 (true, the default) or ELFCLASS32 (FreeBSD/i386 kernels).</summary>
    public bool Is64 { get; set; } = true;

    /// <summary>Section addresses (the constants by default: a Linux x86-64 layout).</summary>
    public ulong TextBase { get; set; } = TextAddress;

    public ulong RodataBase { get; set; } = RodataAddress;

    public ulong DataBase { get; set; } = DataAddress;

    public ulong BssBase { get; set; } = BssAddress;

    /// <summary>Leave out .symtab and .strtab, as <c>strip</c> does.</summary>
    public bool Stripped { get; set; }

    /// <summary>Overrides .symtab's sh_link (normally the index of .strtab).</summary>
    public uint? SymtabLink { get; set; }

    /// <summary>More sections (not allocated, PROGBITS), after .strtab: FreeBSD's <c>.SUNW_ctf</c>, a <c>.BTF</c>.</summary>
    public List<(string Name, byte[] Bytes)> ExtraSections { get; } = [];

    public ElfExecutableBuilder AddSymbol(string name, ulong value, ushort section, byte bind = StbGlobal, byte type = SttFunc, ulong size = 0)
    {
        _symbols.Add((name, value, section, bind, type, size));
        return this;
    }

    /// <summary>Index of the .symtab section header, or -1 when <see cref="Stripped"/>.</summary>
    public int SymtabIndex => Stripped ? -1 : Comment + 1;

    public byte[] Build()
    {
        var shstr = new StringTable();
        var strtab = new StringTable();

        // ELF requires local symbols first; sh_info is the index of the first non-local one.
        var ordered = _symbols.Where(s => s.Bind == StbLocal).Concat(_symbols.Where(s => s.Bind != StbLocal)).ToList();
        var symtab = new MemoryStream();
        var sw = new BinaryWriter(symtab);
        int symSize = Is64 ? SymSize : 16;
        sw.Write(new byte[symSize]); // symbol 0 is the null symbol
        foreach (var s in ordered)
        {
            uint name = s.Name.Length == 0 ? 0u : strtab.Add(s.Name);
            byte info = (byte)((s.Bind << 4) | (s.Type & 0xf));
            if (Is64)
            {
                sw.Write(name);
                sw.Write(info);
                sw.Write((byte)0);
                sw.Write(s.Section);
                sw.Write(s.Value);
                sw.Write(s.Size);
            }
            else
            {
                sw.Write(name);
                sw.Write((uint)s.Value);
                sw.Write((uint)s.Size);
                sw.Write(info);
                sw.Write((byte)0);
                sw.Write(s.Section);
            }
        }

        uint firstGlobal = (uint)(1 + ordered.Count(s => s.Bind == StbLocal));

        var text = Enumerable.Repeat((byte)0xcc, 0x100).ToArray();
        var data = Enumerable.Range(0, 0x40).Select(i => (byte)i).ToArray();
        var rodata = Encoding.ASCII.GetBytes("Linux version 6.1.0-test\0".PadRight(0x40, '\0'));
        var percpu = new byte[0x40];
        var comment = Encoding.ASCII.GetBytes("GCC: (test) 12\0");

        var sections = new List<(uint Name, uint Type, ulong Flags, ulong Addr, byte[]? Bytes, ulong Size, uint Link, uint Info, ulong Align, ulong EntSize)>
        {
            (0, 0, 0, 0, null, 0, 0, 0, 0, 0),
            (shstr.Add(".text"), 1, 0x6, TextBase, text, (ulong)text.Length, 0, 0, 16, 0),
            (shstr.Add(".data"), 1, 0x3, DataBase, data, (ulong)data.Length, 0, 0, 8, 0),
            (shstr.Add(".bss"), 8, 0x3, BssBase, null, 0x1000, 0, 0, 8, 0),
            (shstr.Add(".rodata"), 1, 0x2, RodataBase, rodata, (ulong)rodata.Length, 0, 0, 8, 0),
            (shstr.Add(".data..percpu"), 1, 0x3, 0, percpu, (ulong)percpu.Length, 0, 0, 8, 0),
            (shstr.Add(".comment"), 1, 0x30, 0, comment, (ulong)comment.Length, 0, 0, 1, 1),
        };

        if (!Stripped)
        {
            uint strtabIndex = (uint)sections.Count + 1;
            var symBytes = symtab.ToArray();
            sections.Add((shstr.Add(".symtab"), 2, 0, 0, symBytes, (ulong)symBytes.Length, SymtabLink ?? strtabIndex, firstGlobal, 8, (ulong)symSize));
            var strBytes = strtab.ToArray();
            sections.Add((shstr.Add(".strtab"), 3, 0, 0, strBytes, (ulong)strBytes.Length, 0, 0, 1, 0));
        }

        foreach (var (name, bytes) in ExtraSections)
        {
            sections.Add((shstr.Add(name), 1, 0, 0, bytes, (ulong)bytes.Length, 0, 0, 1, 0));
        }

        uint shstrName = shstr.Add(".shstrtab");
        var shstrBytes = shstr.ToArray();
        sections.Add((shstrName, 3, 0, 0, shstrBytes, (ulong)shstrBytes.Length, 0, 0, 1, 0));

        // Layout: header, section contents (8-aligned), section header table.
        int ehSize = Is64 ? EhSize : 52;
        var body = new MemoryStream();
        var offsets = new List<ulong>();
        foreach (var s in sections)
        {
            while ((ehSize + body.Length) % 8 != 0)
            {
                body.WriteByte(0);
            }

            offsets.Add(s.Type == 0 ? 0 : (ulong)(ehSize + body.Length));
            if (s.Bytes is not null)
            {
                body.Write(s.Bytes);
            }
        }

        while ((ehSize + body.Length) % 8 != 0)
        {
            body.WriteByte(0);
        }

        ulong shoff = (ulong)(ehSize + body.Length);
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', (byte)(Is64 ? 2 : 1), 1, 1, OsAbi });
        w.Write(new byte[8]);
        w.Write(Type);
        w.Write(Machine);
        w.Write(1u);                     // e_version
        if (Is64)
        {
            w.Write(TextBase);           // e_entry
            w.Write(0UL);                // e_phoff
            w.Write(shoff);              // e_shoff
        }
        else
        {
            w.Write((uint)TextBase);
            w.Write(0u);
            w.Write((uint)shoff);
        }

        w.Write(0u);                     // e_flags
        w.Write((ushort)ehSize);
        w.Write((ushort)(Is64 ? 56 : 32)); // e_phentsize
        w.Write((ushort)0);              // e_phnum
        w.Write((ushort)(Is64 ? ShEntSize : 40));
        w.Write((ushort)sections.Count); // e_shnum
        w.Write((ushort)(sections.Count - 1)); // e_shstrndx
        w.Write(body.ToArray());
        for (int i = 0; i < sections.Count; i++)
        {
            var s = sections[i];
            w.Write(s.Name);
            w.Write(s.Type);
            if (Is64)
            {
                w.Write(s.Flags);
                w.Write(s.Addr);
                w.Write(offsets[i]);
                w.Write(s.Size);
                w.Write(s.Link);
                w.Write(s.Info);
                w.Write(s.Align);
                w.Write(s.EntSize);
            }
            else
            {
                w.Write((uint)s.Flags);
                w.Write((uint)s.Addr);
                w.Write((uint)offsets[i]);
                w.Write((uint)s.Size);
                w.Write(s.Link);
                w.Write(s.Info);
                w.Write((uint)s.Align);
                w.Write((uint)s.EntSize);
            }
        }

        return ms.ToArray();
    }

    private sealed class StringTable
    {
        private readonly MemoryStream _bytes = new();

        public StringTable() => _bytes.WriteByte(0);

        public uint Add(string s)
        {
            uint offset = (uint)_bytes.Length;
            _bytes.Write(Encoding.UTF8.GetBytes(s));
            _bytes.WriteByte(0);
            return offset;
        }

        public byte[] ToArray() => _bytes.ToArray();
    }
}
