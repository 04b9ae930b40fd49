using System.Buffers.Binary;
using System.Text;

namespace Kvm.Images;

/// <summary>One ELF note record (PRSTATUS, VMCOREINFO, QEMU CPU state, …).</summary>
internal sealed record ElfNote(string Name, uint Type, byte[] Descriptor)
{
    public const uint NtPrStatus = 1;

    /// <summary>
    /// Parses a note blob. Names and descriptors are padded to 4 bytes (the kernel's and QEMU's writers), or to 8 when
    /// the segment's alignment is 8 (as drgn does). Parsing stops cleanly at the first record that does not fit.
    /// </summary>
    public static List<ElfNote> Parse(ReadOnlySpan<byte> blob, bool bigEndian, int alignment = 4)
    {
        var notes = new List<ElfNote>();
        int pos = 0;
        int align = alignment == 8 ? 8 : 4;
        while (pos + 12 <= blob.Length)
        {
            int noteStart = pos;
            uint nameSize = Read32(blob[pos..], bigEndian);
            uint descSize = Read32(blob[(pos + 4)..], bigEndian);
            uint type = Read32(blob[(pos + 8)..], bigEndian);
            if (nameSize == 0 && descSize == 0 && type == 0)
            {
                // Zero padding after the last record (kexec-tools leaves some): not a note.
                break;
            }

            // The descriptor starts at the name's end rounded up from the note's start (elfutils ELF_T_NHDR8, glibc).
            long nameStart = noteStart + 12L;
            long nameEnd = nameStart + nameSize;
            long descStart = noteStart + Align((ulong)(12L + nameSize), align);
            long descEnd = descStart + descSize;
            if (nameEnd > blob.Length || descEnd > blob.Length)
            {
                break;
            }

            var nameBytes = blob.Slice((int)nameStart, (int)nameSize);
            int nul = nameBytes.IndexOf((byte)0);
            string name = Encoding.ASCII.GetString(nul < 0 ? nameBytes : nameBytes[..nul]);
            notes.Add(new ElfNote(name, type, blob.Slice((int)descStart, (int)descSize).ToArray()));
            pos = (int)Math.Min(blob.Length, noteStart + Align((ulong)(descEnd - noteStart), align));
        }

        return notes;
    }

    private static long Align(ulong value, int align) => (long)((value + (ulong)align - 1) & ~((ulong)align - 1));

    private static uint Read32(ReadOnlySpan<byte> s, bool bigEndian) => bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);
}
