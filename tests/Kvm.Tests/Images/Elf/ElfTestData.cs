using System.Buffers.Binary;

namespace Kvm.Tests.Images.Elf;

/// <summary>Byte patterns and ELF64 header offsets (ELF gABI, Elf64_Ehdr / Elf64_Phdr) for patching built files.</summary>
internal static class ElfTestData
{
    public const int EType = 16;
    public const int EPhoff = 32;
    public const int EShoff = 40;
    public const int EPhentsize = 54;
    public const int EPhnum = 56;
    public const int PhdrStart = 64;
    public const int PhdrSize = 56;

    // Offsets inside one Elf64_Phdr.
    public const int POffset = 8;
    public const int PVaddr = 16;
    public const int PPaddr = 24;
    public const int PFilesz = 32;
    public const int PMemsz = 40;
    public const int PAlign = 48;

    /// <summary>Deterministic pseudo-random bytes.</summary>
    public static byte[] Pattern(int length, int seed)
    {
        var bytes = new byte[length];
        new Random(seed).NextBytes(bytes);
        return bytes;
    }

    public static void PutU16(byte[] b, int offset, ushort value) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(offset), value);

    public static void PutU32(byte[] b, int offset, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(b.AsSpan(offset), value);

    public static void PutU64(byte[] b, int offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(offset), value);

    public static ulong GetU64(byte[] b, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(offset));

    public static uint GetU32(byte[] b, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(offset));

    /// <summary>Offset of field <paramref name="field"/> of program header <paramref name="index"/>.</summary>
    public static int Phdr(int index, int field) => PhdrStart + (index * PhdrSize) + field;

    /// <summary>The p_offset of the PT_LOAD whose p_paddr is <paramref name="paddr"/>, read from the built file.</summary>
    public static long LoadFileOffset(byte[] elf, ulong paddr)
    {
        int phnum = BinaryPrimitives.ReadUInt16LittleEndian(elf.AsSpan(EPhnum));
        for (int i = 0; i < phnum; i++)
        {
            if (GetU32(elf, Phdr(i, 0)) == 1 && GetU64(elf, Phdr(i, PPaddr)) == paddr)
            {
                return (long)GetU64(elf, Phdr(i, POffset));
            }
        }

        throw new InvalidOperationException($"no PT_LOAD at 0x{paddr:x}");
    }
}
