using Kvm.IO;

namespace Kvm.Images.Elf;

/// <summary>One program header, widened to 64 bits.</summary>
internal readonly record struct ElfProgramHeader(
    uint Type,           // p_type
    uint Flags,          // p_flags
    ulong Offset,        // p_offset
    ulong VirtualAddress, // p_vaddr
    ulong PhysicalAddress, // p_paddr
    ulong FileSize,      // p_filesz
    ulong MemorySize,    // p_memsz
    ulong Alignment)     // p_align
{
    public const uint PtLoad = 1;
    public const uint PtNote = 4;

    public static ElfProgramHeader Read(ref EndianReader r, bool is64)
    {
        if (is64)
        {
            uint type = r.ReadUInt32();
            uint flags = r.ReadUInt32();
            return new ElfProgramHeader(type, flags, r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64(), r.ReadUInt64());
        }

        uint t = r.ReadUInt32();
        ulong off = r.ReadUInt32();
        ulong va = r.ReadUInt32();
        ulong pa = r.ReadUInt32();
        ulong fs = r.ReadUInt32();
        ulong ms = r.ReadUInt32();
        uint fl = r.ReadUInt32();
        ulong al = r.ReadUInt32();

        // A 32-bit core marks "no physical address" with 0xffffffff; widen it to the 64-bit marker.
        return new ElfProgramHeader(t, fl, off, va, pa == uint.MaxValue ? ulong.MaxValue : pa, fs, ms, al);
    }
}
