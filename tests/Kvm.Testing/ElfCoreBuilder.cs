using System.Text;

namespace Kvm.Testing;

/// <summary>Writes ELF64 little-endian core files: PT_NOTE first, then PT_LOADs, as kexec and QEMU do.</summary>
public sealed class ElfCoreBuilder
{
    private readonly List<(string Name, uint Type, byte[] Desc)> _notes = [];
    private readonly List<(ulong VAddr, ulong PAddr, byte[] Data, ulong MemSize)> _loads = [];

    public ushort Machine { get; set; } = 62;

    public ushort Type { get; set; } = 4;

    /// <summary>e_ident[EI_OSABI]: 0 (System V) as Linux writes it; FreeBSD's full dumps carry 255 (ELFOSABI_STANDALONE).</summary>
    public byte OsAbi { get; set; }

    /// <summary>Write e_phnum = PN_XNUM and the real count in section header 0's sh_info.</summary>
    public bool UsePnXnum { get; set; }

    /// <summary>False for an ELFCLASS32 core (Elf32_Ehdr, Elf32_Phdr), as QEMU writes for an i386 guest whose memory ends below 4 GiB.</summary>
    public bool Is64 { get; set; } = true;

    public ElfCoreBuilder AddNote(string name, uint type, byte[] descriptor)
    {
        _notes.Add((name, type, descriptor));
        return this;
    }

    public ElfCoreBuilder AddVmcoreInfo(string text) => AddNote("VMCOREINFO", 0, Encoding.ASCII.GetBytes(text));

    /// <summary>Adds a QEMU CPU-state note with the given control registers.</summary>
    public ElfCoreBuilder AddQemuCpuState(ulong cr0, ulong cr3, ulong cr4)
    {
        const int crOffset = 8 + (18 * 8) + (10 * 24);
        var desc = new byte[crOffset + (5 * 8) + 8];
        BitConverter.GetBytes(1u).CopyTo(desc, 0);
        BitConverter.GetBytes((uint)desc.Length).CopyTo(desc, 4);
        BitConverter.GetBytes(cr0).CopyTo(desc, crOffset);
        BitConverter.GetBytes(cr3).CopyTo(desc, crOffset + 24);
        BitConverter.GetBytes(cr4).CopyTo(desc, crOffset + 32);
        return AddNote("QEMU", 0, desc);
    }

    /// <summary>Adds a PT_LOAD; <paramref name="memSize"/> larger than the data makes an excluded tail.</summary>
    public ElfCoreBuilder AddLoad(ulong vaddr, ulong paddr, byte[] data, ulong? memSize = null)
    {
        _loads.Add((vaddr, paddr, data, memSize ?? (ulong)data.Length));
        return this;
    }

    /// <summary>Adds every run of <paramref name="memory"/> as a QEMU-style PT_LOAD (p_vaddr == p_paddr).</summary>
    public ElfCoreBuilder AddPhysicalMemory(PhysicalMemoryBuilder memory)
    {
        foreach (var (start, data) in memory.Runs())
        {
            AddLoad(start, start, data);
        }

        return this;
    }

    public static byte[] EncodeNotes(IEnumerable<(string Name, uint Type, byte[] Desc)> notes)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        foreach (var (name, type, desc) in notes)
        {
            var nameBytes = Encoding.ASCII.GetBytes(name + "\0");
            w.Write(nameBytes.Length);
            w.Write(desc.Length);
            w.Write(type);
            w.Write(nameBytes);
            w.Write(new byte[Pad(nameBytes.Length)]);
            w.Write(desc);
            w.Write(new byte[Pad(desc.Length)]);
        }

        return ms.ToArray();
    }

    public byte[] Build() => Is64 ? Build64() : Build32();

    private byte[] Build32()
    {
        if (UsePnXnum)
        {
            throw new NotSupportedException("PN_XNUM is only built for ELF64 cores");
        }

        var notes = EncodeNotes(_notes);
        int phnum = _loads.Count + (notes.Length > 0 ? 1 : 0);
        const int ehSize = 52;
        const int phEntSize = 32;
        long dataOff = ehSize + ((long)phnum * phEntSize);
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 1, 1, 0 });
        w.Write(new byte[8]);
        w.Write(Type);
        w.Write(Machine);
        w.Write(1u);
        w.Write(0u);
        w.Write((uint)ehSize);
        w.Write(0u);
        w.Write(0u);
        w.Write((ushort)ehSize);
        w.Write((ushort)phEntSize);
        w.Write((ushort)phnum);
        w.Write((ushort)0);
        w.Write((ushort)0);
        w.Write((ushort)0);

        long offset = dataOff;
        void Phdr(uint type, long off, ulong vaddr, ulong paddr, ulong filesz, ulong memsz, uint align)
        {
            w.Write(type);
            w.Write(checked((uint)off));
            w.Write(checked((uint)vaddr));
            w.Write(checked((uint)paddr));
            w.Write(checked((uint)filesz));
            w.Write(checked((uint)memsz));
            w.Write(7u);
            w.Write(align);
        }

        if (notes.Length > 0)
        {
            Phdr(4, offset, 0, 0, (ulong)notes.Length, (ulong)notes.Length, 4);
            offset += notes.Length;
        }

        foreach (var l in _loads)
        {
            Phdr(1, offset, l.VAddr, l.PAddr, (ulong)l.Data.Length, l.MemSize, 4096);
            offset += l.Data.Length;
        }

        w.Write(notes);
        foreach (var l in _loads)
        {
            w.Write(l.Data);
        }

        return ms.ToArray();
    }

    private byte[] Build64()
    {
        var notes = EncodeNotes(_notes);
        int phnum = _loads.Count + (notes.Length > 0 ? 1 : 0);
        const int ehSize = 64;
        const int phEntSize = 56;
        const int shEntSize = 64;
        long phOff = ehSize;
        long shOff = UsePnXnum ? phOff + ((long)phnum * phEntSize) : 0;
        long dataOff = phOff + ((long)phnum * phEntSize) + (UsePnXnum ? shEntSize : 0);
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 2, 1, 1, OsAbi });
        w.Write(new byte[8]);
        w.Write(Type);
        w.Write(Machine);
        w.Write(1u);
        w.Write(0UL);
        w.Write((ulong)phOff);
        w.Write((ulong)shOff);
        w.Write(0u);
        w.Write((ushort)ehSize);
        w.Write((ushort)phEntSize);
        w.Write(UsePnXnum ? (ushort)0xffff : (ushort)phnum);
        w.Write((ushort)(UsePnXnum ? shEntSize : 0));
        w.Write((ushort)(UsePnXnum ? 1 : 0));
        w.Write((ushort)0);

        long offset = dataOff;
        if (notes.Length > 0)
        {
            WritePhdr(w, 4, (ulong)offset, 0, 0, (ulong)notes.Length, (ulong)notes.Length, 4);
            offset += notes.Length;
        }

        var loadOffsets = new List<long>();
        foreach (var l in _loads)
        {
            loadOffsets.Add(offset);
            WritePhdr(w, 1, (ulong)offset, l.VAddr, l.PAddr, (ulong)l.Data.Length, l.MemSize, 4096);
            offset += l.Data.Length;
        }

        if (UsePnXnum)
        {
            w.Write(0u);
            w.Write(0u);
            w.Write(0UL);
            w.Write(0UL);
            w.Write(0UL);
            w.Write(0UL);
            w.Write(0u);
            w.Write((uint)phnum);
            w.Write(0UL);
            w.Write(0UL);
        }

        w.Write(notes);
        foreach (var l in _loads)
        {
            w.Write(l.Data);
        }

        return ms.ToArray();
    }

    private static void WritePhdr(BinaryWriter w, uint type, ulong offset, ulong vaddr, ulong paddr, ulong filesz, ulong memsz, ulong align)
    {
        w.Write(type);
        w.Write(7u);
        w.Write(offset);
        w.Write(vaddr);
        w.Write(paddr);
        w.Write(filesz);
        w.Write(memsz);
        w.Write(align);
    }

    private static int Pad(int n) => (4 - (n % 4)) % 4;
}
