using System.Text;
using Kvm.Images;
using Kvm.Testing;
using static Kvm.Tests.Images.Elf.ElfTestData;

namespace Kvm.Tests.Images.Elf;

/// <summary>ElfNote.Parse against the note layout of the ELF gABI and its Linux extension (elfutils gelf_getnote).</summary>
public sealed class ElfNoteTests
{
    [Fact]
    public void Parse_FourByteAlignment_PadsNameAndDescriptor()
    {
        // "CORE\0": namesz 5 → name padded to 8, desc at 20; descsz 5 → padded to 8, next note at 28.
        var blob = new byte[28 + 24];
        PutU32(blob, 0, 5);
        PutU32(blob, 4, 5);
        PutU32(blob, 8, 1);
        Encoding.ASCII.GetBytes("CORE\0").CopyTo(blob, 12);
        blob[17] = 0xee; // padding, not part of anything
        new byte[] { 1, 2, 3, 4, 5 }.CopyTo(blob, 20);
        blob[25] = 0xee;
        PutU32(blob, 28, 4);
        PutU32(blob, 32, 4);
        PutU32(blob, 36, 0x4711);
        Encoding.ASCII.GetBytes("Xen\0").CopyTo(blob, 40);
        new byte[] { 9, 8, 7, 6 }.CopyTo(blob, 44);

        var notes = ElfNote.Parse(blob, bigEndian: false);

        Assert.Equal(2, notes.Count);
        Assert.Equal("CORE", notes[0].Name);
        Assert.Equal(1u, notes[0].Type);
        Assert.Equal([1, 2, 3, 4, 5], notes[0].Descriptor);
        Assert.Equal("Xen", notes[1].Name);
        Assert.Equal(0x4711u, notes[1].Type);
        Assert.Equal([9, 8, 7, 6], notes[1].Descriptor);
    }

    [Fact]
    public void Parse_BuilderEncoding_RoundTrips()
    {
        var blob = ElfCoreBuilder.EncodeNotes([("VMCOREINFO", 0, Encoding.ASCII.GetBytes("A=1\n")), ("QEMU", 0, new byte[7])]);

        var notes = ElfNote.Parse(blob, bigEndian: false);

        Assert.Equal(["VMCOREINFO", "QEMU"], notes.Select(n => n.Name));
        Assert.Equal("A=1\n"u8.ToArray(), notes[0].Descriptor);
        Assert.Equal(7, notes[1].Descriptor.Length);
    }

    [Fact]
    public void Parse_BigEndianHeader_ReadsSizesBigEndian()
    {
        var blob = new byte[12 + 8 + 4];
        blob[3] = 5;  // namesz 5
        blob[7] = 4;  // descsz 4
        blob[11] = 1; // type 1
        Encoding.ASCII.GetBytes("CORE\0").CopyTo(blob, 12);
        new byte[] { 0xde, 0xad, 0xbe, 0xef }.CopyTo(blob, 20);

        var note = Assert.Single(ElfNote.Parse(blob, bigEndian: true));

        Assert.Equal("CORE", note.Name);
        Assert.Equal(1u, note.Type);
        Assert.Equal([0xde, 0xad, 0xbe, 0xef], note.Descriptor);
    }

    [Fact]
    public void Parse_RecordThatDoesNotFit_StopsCleanly()
    {
        var good = ElfCoreBuilder.EncodeNotes([("CORE", 1, new byte[8])]);
        var blob = new byte[good.Length + 16];
        good.CopyTo(blob, 0);
        PutU32(blob, good.Length, 4);
        PutU32(blob, good.Length + 4, 0x7fffffff); // descriptor far beyond the blob
        PutU32(blob, good.Length + 8, 1);

        var note = Assert.Single(ElfNote.Parse(blob, bigEndian: false));

        Assert.Equal("CORE", note.Name);
    }

    [Fact]
    public void Parse_TrailingZeroPadding_IsNotANote()
    {
        var good = ElfCoreBuilder.EncodeNotes([("CORE", 1, new byte[8])]);
        var blob = new byte[good.Length + 64];
        good.CopyTo(blob, 0);

        Assert.Single(ElfNote.Parse(blob, bigEndian: false));
    }

    [Fact]
    public void Parse_EightByteAlignment_AlignsDescriptorFromNoteStart()
    {
        var blob = EightByteAlignedBlob(out var gnuDesc, out var xenDesc);

        var notes = ElfNote.Parse(blob, bigEndian: false, alignment: 8);

        Assert.Equal(2, notes.Count);
        Assert.Equal("GNU", notes[0].Name);
        Assert.Equal(5u, notes[0].Type);
        Assert.Equal(gnuDesc, notes[0].Descriptor);
        Assert.Equal("Xen", notes[1].Name);
        Assert.Equal(6u, notes[1].Type);
        Assert.Equal(xenDesc, notes[1].Descriptor);
    }

    /// <summary>
    /// Two notes laid out with 8-byte alignment as elfutils reads ELF_T_NHDR8 data: "GNU\0" (namesz 4) type 5 with an
    /// 8-byte descriptor at 16 (= align8(12 + 4)); then at 24 "Xen\0" type 6 with a 12-byte descriptor at 40, padded to 56.
    /// </summary>
    internal static byte[] EightByteAlignedBlob(out byte[] gnuDesc, out byte[] xenDesc)
    {
        gnuDesc = [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88];
        xenDesc = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        var blob = new byte[56];
        PutU32(blob, 0, 4);
        PutU32(blob, 4, 8);
        PutU32(blob, 8, 5);
        Encoding.ASCII.GetBytes("GNU\0").CopyTo(blob, 12);
        gnuDesc.CopyTo(blob, 16);
        PutU32(blob, 24, 4);
        PutU32(blob, 28, 12);
        PutU32(blob, 32, 6);
        Encoding.ASCII.GetBytes("Xen\0").CopyTo(blob, 36);
        xenDesc.CopyTo(blob, 40);
        return blob;
    }
}
