namespace Kvm.Testing.FreeBsd;

/// <summary>
/// FreeBSD full dumps (<c>debug.minidump=0</c>) as sys/kern/kern_dump.c <c>dumpsys_generic</c> writes them: an ELF
/// core marked ELFOSABI_STANDALONE, no notes, one PT_LOAD per <c>dump_avail</c> chunk with p_vaddr = p_paddr = the
/// chunk's physical address and p_flags = PF_R, the data page-aligned after the headers.
/// </summary>
public static class FreeBsdFullDump
{
    /// <summary>An ELF64 (amd64) full dump, through <see cref="ElfCoreBuilder"/>.</summary>
    public static byte[] Amd64(PhysicalMemoryBuilder memory, IReadOnlyList<(ulong Start, ulong End)> dumpAvail)
    {
        var elf = new ElfCoreBuilder { OsAbi = 255, Machine = 62 };
        foreach (var (start, end) in dumpAvail)
        {
            elf.AddLoad(start, start, memory.Read(start, (int)(end - start)));
        }

        return elf.Build();
    }

    /// <summary>An ELF32 (i386, EM_386) full dump.</summary>
    public static byte[] I386(PhysicalMemoryBuilder memory, IReadOnlyList<(ulong Start, ulong End)> dumpAvail)
    {
        const int EhSize = 52, PhSize = 32;
        int phnum = dumpAvail.Count;
        long headers = EhSize + ((long)PhSize * phnum);
        long data = (headers + 4095) / 4096 * 4096;
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 1, 1, 255 });
        w.Write(new byte[8]);
        w.Write((ushort)4);       // ET_CORE
        w.Write((ushort)3);       // EM_386
        w.Write(1u);
        w.Write(0u);              // e_entry
        w.Write((uint)EhSize);    // e_phoff
        w.Write(0u);              // e_shoff
        w.Write(0u);
        w.Write((ushort)EhSize);
        w.Write((ushort)PhSize);
        w.Write((ushort)phnum);
        w.Write((ushort)40);
        w.Write((ushort)0);
        w.Write((ushort)0);
        long offset = data;
        foreach (var (start, end) in dumpAvail)
        {
            w.Write(1u);              // PT_LOAD
            w.Write((uint)offset);
            w.Write((uint)start);     // p_vaddr
            w.Write((uint)start);     // p_paddr
            w.Write((uint)(end - start));
            w.Write((uint)(end - start));
            w.Write(4u);              // PF_R
            w.Write(4096u);
            offset += (long)(end - start);
        }

        w.Write(new byte[data - headers]);
        foreach (var (start, end) in dumpAvail)
        {
            w.Write(memory.Read(start, (int)(end - start)));
        }

        return ms.ToArray();
    }
}
