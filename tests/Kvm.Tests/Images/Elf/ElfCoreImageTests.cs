using Kvm.Images;
using Kvm.Images.Elf;
using Kvm.Testing;
using static Kvm.Tests.Images.Elf.ElfTestData;

namespace Kvm.Tests.Images.Elf;

public sealed class ElfCoreImageTests
{
    [Fact]
    public void Open_QemuStyleCore_HasPhysicalMapAndNoVirtualSegments()
    {
        var low = Pattern(0x2000, 1);
        var high = Pattern(0x1000, 2);
        var elf = new ElfCoreBuilder()
            .AddQemuCpuState(0x80050033, 0x1000, 0)
            .AddLoad(0, 0, low)
            .AddLoad(0x100000, 0x100000, high)
            .Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.IsType<ElfCoreImage>(image);
        Assert.Equal(DumpFormat.Elf, image.Format);
        Assert.Equal("ELF core (QEMU dump-guest-memory)", image.Description);
        Assert.Equal((ushort)62, image.ElfMachine);
        Assert.Empty(image.VirtualSegments);
        Assert.Equal([new PhysicalRange(0, 0x2000), new PhysicalRange(0x100000, 0x1000)], image.PhysicalRanges);
        Assert.Equal(0, image.ExcludedPages);
        Assert.Equal([file.Path], image.Files);

        var buffer = new byte[16];
        Assert.Equal(16, image.ReadPhysical(0x100010, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal(high.AsSpan(0x10, 16).ToArray(), buffer);
    }

    [Fact]
    public void Open_KexecStyleCore_HasSortedVirtualSegmentsAndOverlappingLoadsReadTheSameBytes()
    {
        // kexec-tools: a kernel-text PT_LOAD (vaddr in __START_KERNEL_map) overlapping the RAM PT_LOAD (vaddr in the
        // direct map) that covers the same physical pages with the same contents.
        var ram = Pattern(0x5000, 3);
        var text = ram.AsSpan(0x1000, 0x2000).ToArray();
        var elf = new ElfCoreBuilder()
            .AddLoad(0xffffffff81000000, 0x10000, text)
            .AddLoad(0xffff88800000f000, 0xf000, ram)
            .Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.Equal("ELF vmcore", image.Description);
        Assert.Equal(2, image.VirtualSegments.Count);
        var direct = image.VirtualSegments[0];
        var kernel = image.VirtualSegments[1];
        Assert.Equal(0xffff88800000f000UL, direct.VirtualAddress);
        Assert.Equal(0xf000UL, direct.PhysicalAddress);
        Assert.Equal(0x5000UL, direct.Length);
        Assert.Equal(0x5000UL, direct.FileLength);
        Assert.Equal(0xffffffff81000000UL, kernel.VirtualAddress);
        Assert.Equal(0x10000UL, kernel.PhysicalAddress);
        Assert.Equal(0x2000UL, kernel.Length);
        Assert.Equal(LoadFileOffset(elf, 0x10000), kernel.FileOffset);
        Assert.Equal(text, elf.AsSpan((int)kernel.FileOffset, 0x2000).ToArray());

        Assert.Equal([new PhysicalRange(0xf000, 0x5000)], image.PhysicalRanges);
        var buffer = new byte[0x5000];
        Assert.Equal(0x5000, image.ReadPhysical(0xf000, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal(ram, buffer);
    }

    [Fact]
    public void ReadPhysical_SpanningTwoLoads_ReadsBoth()
    {
        // Physically adjacent, but stored in the file in the opposite order.
        var upper = Pattern(0x2000, 4);
        var lower = Pattern(0x2000, 5);
        var elf = new ElfCoreBuilder().AddLoad(0x2000, 0x2000, upper).AddLoad(0, 0, lower).Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        var buffer = new byte[0x20];
        int n = image.ReadPhysical(0x1ff0, buffer, out var status);

        Assert.Equal(0x20, n);
        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal([.. lower.AsSpan(0x1ff0, 0x10), .. upper.AsSpan(0, 0x10)], buffer);
        Assert.Equal([new PhysicalRange(0, 0x4000)], image.PhysicalRanges);
    }

    [Fact]
    public void ReadPhysical_HoleBetweenLoads_StopsWithNotInImage()
    {
        var a = Pattern(0x1000, 6);
        var b = Pattern(0x1000, 7);
        var elf = new ElfCoreBuilder().AddLoad(0, 0, a).AddLoad(0x3000, 0x3000, b).Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();
        var buffer = new byte[0x20];

        Assert.Equal(0x10, image.ReadPhysical(0xff0, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);
        Assert.Equal(a.AsSpan(0xff0, 0x10).ToArray(), buffer.AsSpan(0, 0x10).ToArray());

        Assert.Equal(0, image.ReadPhysical(0x2000, buffer, out status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);

        Assert.Equal(0, image.ReadPhysical(0x4000, buffer, out status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);

        Assert.Equal(0x20, image.ReadPhysical(0x3000, buffer, out status));
        Assert.Equal(PhysicalReadStatus.Complete, status);
        Assert.Equal([new PhysicalRange(0, 0x1000), new PhysicalRange(0x3000, 0x1000)], image.PhysicalRanges);
    }

    [Fact]
    public void ReadPhysical_ExcludedTail_StopsWithExcludedAndIsCounted()
    {
        // makedumpfile -E: p_filesz < p_memsz; the next segment's data follows in the file and must not leak in.
        var head = Pattern(0x1000, 8);
        var next = Pattern(0x1000, 9);
        var elf = new ElfCoreBuilder()
            .AddLoad(0x10000, 0x10000, head, memSize: 0x3000)
            .AddLoad(0x20000, 0x20000, next, memSize: 0x2000)
            .Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();
        var buffer = new byte[0x20];

        Assert.Equal(0x10, image.ReadPhysical(0x10ff0, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.Excluded, status);

        Assert.Equal(0, image.ReadPhysical(0x11000, buffer, out status));
        Assert.Equal(PhysicalReadStatus.Excluded, status);

        Assert.Equal(0, image.ReadPhysical(0x12ff8, buffer, out status));
        Assert.Equal(PhysicalReadStatus.Excluded, status);

        Assert.Equal(3, image.ExcludedPages);
        Assert.Equal([new PhysicalRange(0x10000, 0x3000), new PhysicalRange(0x20000, 0x2000)], image.PhysicalRanges);
    }

    [Fact]
    public void ReadPhysical_TruncatedFile_StopsWithTruncated()
    {
        var data = Pattern(0x2000, 10);
        var elf = new ElfCoreBuilder().AddLoad(0x5000, 0x5000, data).Build();
        var cut = elf.AsSpan(0, elf.Length - 0x800).ToArray();
        using var file = new ScratchFile(cut);
        using var image = file.Open();
        var buffer = new byte[0x200];

        Assert.Equal(0x200, image.ReadPhysical(0x5000, buffer, out var status));
        Assert.Equal(PhysicalReadStatus.Complete, status);

        Assert.Equal(0x100, image.ReadPhysical(0x6700, buffer, out status));
        Assert.Equal(PhysicalReadStatus.Truncated, status);
        Assert.Equal(data.AsSpan(0x1700, 0x100).ToArray(), buffer.AsSpan(0, 0x100).ToArray());

        Assert.Equal(0, image.ReadPhysical(0x6800, buffer, out status));
        Assert.Equal(PhysicalReadStatus.Truncated, status);
    }

    [Fact]
    public void Open_PnXnumWithMoreThan65534Headers_ReadsTheRealCountFromSectionZero()
    {
        const int count = 65536;
        var builder = new ElfCoreBuilder { UsePnXnum = true };
        for (int i = 0; i < count; i++)
        {
            builder.AddLoad((ulong)i * 16, (ulong)i * 16, [unchecked((byte)(i * 7)), (byte)(i >> 8)]);
        }

        var elf = builder.Build();
        Assert.Equal((ushort)0xffff, BitConverter.ToUInt16(elf, EPhnum));
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        var core = Assert.IsType<ElfCoreImage>(image);
        Assert.Equal(count, core.ProgramHeaderCount);
        Assert.Equal(count, image.PhysicalRanges.Count);
        foreach (int i in new[] { 0, 1, 65533, 65534, 65535 })
        {
            var two = new byte[2];
            Assert.Equal(2, image.ReadPhysical((ulong)i * 16, two, out _));
            Assert.Equal([unchecked((byte)(i * 7)), (byte)(i >> 8)], two);
        }
    }

    [Fact]
    public void Open_PnXnumAboveProgramHeaderLimit_IsRejected()
    {
        var builder = new ElfCoreBuilder { UsePnXnum = true };
        for (int i = 0; i < 65535; i++)
        {
            builder.AddLoad((ulong)i * 16, (ulong)i * 16, [1]);
        }

        using var file = new ScratchFile(builder.Build());

        var ex = Assert.Throws<CorruptImageException>(() => file.Open(limits: new KvmLimits { MaxProgramHeaders = 65534 }));
        Assert.Contains("65535", ex.Message);
        Assert.Contains("exceeds the limit 65534", ex.Message);
        Assert.Contains(file.Path, ex.Message);
    }

    [Fact]
    public void Open_PnXnumWithHugeShInfo_IsRejectedByLimit()
    {
        var elf = new ElfCoreBuilder { UsePnXnum = true }.AddLoad(0, 0, new byte[16]).Build();
        long shoff = (long)GetU64(elf, EShoff);
        PutU32(elf, (int)shoff + 44, uint.MaxValue); // Elf64_Shdr.sh_info
        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("exceeds the limit", ex.Message);
    }

    [Fact]
    public void Open_PnXnumWithoutSectionHeader_IsRejected()
    {
        var elf = new ElfCoreBuilder().AddLoad(0, 0, new byte[16]).Build();
        PutU16(elf, EPhnum, 0xffff);
        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("PN_XNUM", ex.Message);
        Assert.Contains(file.Path, ex.Message);
    }

    [Fact]
    public void Open_MoreProgramHeadersThanLimit_IsRejected()
    {
        var builder = new ElfCoreBuilder();
        for (int i = 0; i < 5; i++)
        {
            builder.AddLoad((ulong)i * 0x1000, (ulong)i * 0x1000, new byte[8]);
        }

        using var file = new ScratchFile(builder.Build());

        var ex = Assert.Throws<CorruptImageException>(() => file.Open(limits: new KvmLimits { MaxProgramHeaders = 4 }));
        Assert.Contains("program header count 5 exceeds the limit 4", ex.Message);
    }

    [Theory]
    [InlineData(EPhoff, 0xffffffffffff0000UL, "past the end of the file")]
    [InlineData(EPhoff, 0x10000UL, "past the end of the file")]
    [InlineData(EPhnum, 0xfffeUL, "past the end of the file")]
    [InlineData(EPhentsize, 0xffffUL, "past the end of the file")]
    [InlineData(EPhentsize, 8UL, "e_phentsize 8 is smaller than 56")]
    [InlineData(EPhentsize, 0UL, "e_phentsize 0 is smaller than 56")]
    public void Open_AbsurdProgramHeaderTable_IsRejected(int field, ulong value, string phrase)
    {
        var elf = new ElfCoreBuilder().AddLoad(0, 0, new byte[64]).AddLoad(0x1000, 0x1000, new byte[64]).Build();
        if (field == EPhoff)
        {
            PutU64(elf, field, value);
        }
        else
        {
            PutU16(elf, field, (ushort)value);
        }

        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains(phrase, ex.Message);
        Assert.Contains(file.Path, ex.Message);
    }

    [Fact]
    public void Open_NoteLargerThanLimit_IsRejected()
    {
        var elf = new ElfCoreBuilder().AddVmcoreInfo(new string('A', 200) + "=1\n").AddLoad(0, 0, new byte[64]).Build();
        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open(limits: new KvmLimits { MaxNoteBytes = 64 }));
        Assert.Contains("PT_NOTE", ex.Message);
        Assert.Contains("exceed the limit 64", ex.Message);
    }

    [Fact]
    public void Open_NoteRunningPastEndOfFile_IsRejected()
    {
        var elf = new ElfCoreBuilder().AddVmcoreInfo("OSRELEASE=6.1\n").AddLoad(0, 0, new byte[64]).Build();
        PutU64(elf, Phdr(0, PFilesz), 0x100000);
        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("PT_NOTE", ex.Message);
        Assert.Contains("past the end of the file", ex.Message);
    }

    [Fact]
    public void Open_VmcoreInfoLargerThanLimit_IsRejected()
    {
        var elf = new ElfCoreBuilder().AddVmcoreInfo("OSRELEASE=" + new string('x', 300) + "\n").AddLoad(0, 0, new byte[64]).Build();
        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open(limits: new KvmLimits { MaxVmcoreInfoBytes = 256 }));
        Assert.Contains("VMCOREINFO", ex.Message);
        Assert.Contains("exceeds the limit 256", ex.Message);
    }

    [Theory]
    [InlineData(POffset, 0x8000000000000000UL)]
    [InlineData(PFilesz, 0x7ffffffffffffff0UL)] // p_offset + p_filesz beyond long.MaxValue
    [InlineData(PMemsz, 0xfffffffffffff001UL)] // p_paddr 0x1000 + p_memsz wraps
    public void Open_LoadWithImpossibleOffsetOrSize_IsRejected(int field, ulong value)
    {
        var elf = new ElfCoreBuilder().AddLoad(0x1000, 0x1000, new byte[64]).Build();
        PutU64(elf, Phdr(0, field), value);
        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("PT_LOAD 0 has an impossible offset or size", ex.Message);
    }

    [Fact]
    public void Open_ExecutableNotCore_MentionsNotACoreDump()
    {
        var elf = new ElfCoreBuilder { Type = 2 }.AddLoad(0, 0, new byte[64]).Build();
        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains("not a core dump", ex.Message);
        Assert.Contains(file.Path, ex.Message);
    }

    [Theory]
    [InlineData(4, 3, "bad ELF class 3")]
    [InlineData(5, 0, "bad ELF data encoding 0")]
    public void Open_BadIdent_IsRejected(int index, byte value, string phrase)
    {
        var elf = new ElfCoreBuilder().AddLoad(0, 0, new byte[64]).Build();
        elf[index] = value;
        using var file = new ScratchFile(elf);

        var ex = Assert.Throws<CorruptImageException>(() => file.Open());
        Assert.Contains(phrase, ex.Message);
    }

    [Fact]
    public void Open_TruncatedElfHeader_IsCorrupt()
    {
        var elf = new ElfCoreBuilder().AddLoad(0, 0, new byte[64]).Build();
        using var file = new ScratchFile(elf.AsSpan(0, 60).ToArray());

        Assert.Throws<CorruptImageException>(() => file.Open());
    }

    [Fact]
    public void Notes_FourBytePaddedRecords_ParseNamesTypesAndDescriptors()
    {
        var prstatus = Pattern(5, 11);   // odd sizes force padding
        var linux = Pattern(3, 12);
        var elf = new ElfCoreBuilder()
            .AddNote("CORE", 1, prstatus)
            .AddNote("LINUX", 0x202, linux)
            .AddNote("EMPTY", 7, [])
            .AddVmcoreInfo("OSRELEASE=6.1.0-test\n")
            .AddLoad(0, 0, new byte[64])
            .Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.Equal(4, image.Notes.Count);
        Assert.Equal(("CORE", 1u), (image.Notes[0].Name, image.Notes[0].Type));
        Assert.Equal(prstatus, image.Notes[0].Descriptor);
        Assert.Equal(("LINUX", 0x202u), (image.Notes[1].Name, image.Notes[1].Type));
        Assert.Equal(linux, image.Notes[1].Descriptor);
        Assert.Equal(("EMPTY", 7u), (image.Notes[2].Name, image.Notes[2].Type));
        Assert.Empty(image.Notes[2].Descriptor);
        Assert.Equal("VMCOREINFO", image.Notes[3].Name);
    }

    [Fact]
    public void Notes_EightByteAlignedSegment_ParseWithDescriptorsAlignedFromNoteStart()
    {
        // An 8-byte aligned note blob (gABI Linux extension; elfutils gelf_getnote with ELF_T_NHDR8): desc at
        // align8(12 + namesz), next note at align8(desc + descsz).
        var blob = ElfNoteTests.EightByteAlignedBlob(out var gnuDesc, out var xenDesc);
        var elf = new ElfCoreBuilder().AddNote("PAD", 0, new byte[blob.Length - 16]).AddLoad(0, 0, new byte[64]).Build();
        Assert.Equal((ulong)blob.Length, GetU64(elf, Phdr(0, PFilesz)));
        blob.CopyTo(elf, (int)GetU64(elf, Phdr(0, POffset)));
        PutU64(elf, Phdr(0, PAlign), 8);
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.Equal(2, image.Notes.Count);
        Assert.Equal(("GNU", 5u), (image.Notes[0].Name, image.Notes[0].Type));
        Assert.Equal(gnuDesc, image.Notes[0].Descriptor);
        Assert.Equal(("Xen", 6u), (image.Notes[1].Name, image.Notes[1].Type));
        Assert.Equal(xenDesc, image.Notes[1].Descriptor);
    }

    [Fact]
    public void VmcoreInfo_Note_IsParsed()
    {
        var elf = new ElfCoreBuilder()
            .AddVmcoreInfo("OSRELEASE=6.1.0-test\nPAGESIZE=4096\nSYMBOL(init_uts_ns)=ffffffff82a12340\nKERNELOFFSET=2a000000\n")
            .AddLoad(0, 0, new byte[64])
            .Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.NotNull(image.VmcoreInfo);
        Assert.Equal("ELF note", image.VmcoreInfo.Source);
        Assert.Equal("6.1.0-test", image.VmcoreInfo.OsRelease);
        Assert.Equal(4096, image.VmcoreInfo.PageSize);
        Assert.Equal(0xffffffff82a12340UL, image.VmcoreInfo.GetSymbol("init_uts_ns"));
        Assert.Equal(0x2a000000UL, image.VmcoreInfo.KernelOffset);
    }

    [Fact]
    public void VmcoreInfo_NoNote_IsNull()
    {
        using var file = new ScratchFile(new ElfCoreBuilder().AddLoad(0, 0, new byte[64]).Build());
        using var image = file.Open();

        Assert.Null(image.VmcoreInfo);
        Assert.Empty(image.Notes);
    }

    [Fact]
    public void Open_TaskStructNote_IsKcore()
    {
        var elf = new ElfCoreBuilder()
            .AddNote("CORE", 4, new byte[32])
            .AddLoad(0xffff888000000000, 0, new byte[64])
            .Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.Equal(DumpFormat.Kcore, image.Format);
        Assert.Equal("/proc/kcore (live kernel)", image.Description);
    }

    [Fact]
    public void Open_EveryPaddrZero_HasNoPhysicalMapButVirtualSegments()
    {
        // /proc/kcore before Linux 4.11 wrote p_paddr = 0 for every segment.
        var elf = new ElfCoreBuilder()
            .AddLoad(0xffffffff81000000, 0, Pattern(64, 13))
            .AddLoad(0xffff888000000000, 0, Pattern(64, 14))
            .Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.Empty(image.PhysicalRanges);
        Assert.Equal(2, image.VirtualSegments.Count);
        Assert.Equal(0, image.ReadPhysical(0, new byte[8], out var status));
        Assert.Equal(PhysicalReadStatus.NotInImage, status);
    }

    [Fact]
    public void Open_PaddrMinusOne_IsVirtualOnly()
    {
        // /proc/kcore marks segments without a physical address (vmalloc, modules) with p_paddr = -1.
        var elf = new ElfCoreBuilder()
            .AddLoad(0xffffc90000000000, ulong.MaxValue, Pattern(64, 15))
            .AddLoad(0xffff888000100000, 0x100000, Pattern(64, 16))
            .Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.Equal([new PhysicalRange(0x100000, 64)], image.PhysicalRanges);
        var vmalloc = Assert.Single(image.VirtualSegments, s => s.VirtualAddress == 0xffffc90000000000);
        Assert.Null(vmalloc.PhysicalAddress);
    }

    [Fact]
    public void Open_Elf32Core_WidensHeadersAndReads()
    {
        var data = Pattern(0x100, 17);
        using var file = new ScratchFile(BuildElf32Core(0x3000, data, extraPaddr: 0xffffffff));
        using var image = file.Open();

        Assert.Equal([new PhysicalRange(0x3000, 0x100)], image.PhysicalRanges);
        var buffer = new byte[0x100];
        Assert.Equal(0x100, image.ReadPhysical(0x3000, buffer, out _));
        Assert.Equal(data, buffer);
        var virtualOnly = Assert.Single(image.VirtualSegments, s => s.VirtualAddress == 0xc8000000);
        Assert.Null(virtualOnly.PhysicalAddress);
    }

    [Fact]
    public void WritePhysical_WritableCopy_RoundTripsAcrossLoads()
    {
        var a = Pattern(0x1000, 18);
        var b = Pattern(0x1000, 19);
        var elf = new ElfCoreBuilder().AddLoad(0x1000, 0x1000, b).AddLoad(0x9000, 0x9000, Pattern(0x1000, 20)).AddLoad(0, 0, a).Build();
        using var file = new ScratchFile(elf);
        var patch = Pattern(0x20, 21);

        using (var image = file.Open(writable: true))
        {
            Assert.True(image.CanWrite);
            Assert.Equal(0x20, image.WritePhysical(0xff0, patch));
        }

        var bytes = file.ReadAll();
        Assert.Equal(elf.Length, bytes.Length);
        Assert.Equal(patch.AsSpan(0, 0x10).ToArray(), bytes.AsSpan((int)LoadFileOffset(elf, 0) + 0xff0, 0x10).ToArray());
        Assert.Equal(patch.AsSpan(0x10).ToArray(), bytes.AsSpan((int)LoadFileOffset(elf, 0x1000), 0x10).ToArray());

        using var reopened = file.Open();
        var buffer = new byte[0x40];
        Assert.Equal(0x40, reopened.ReadPhysical(0xfe0, buffer, out _));
        Assert.Equal([.. a.AsSpan(0xfe0, 0x10), .. patch, .. b.AsSpan(0x10, 0x10)], buffer);
    }

    [Fact]
    public void WritePhysical_IntoExcludedTailOrHole_StopsThere()
    {
        var elf = new ElfCoreBuilder().AddLoad(0, 0, new byte[0x1000], memSize: 0x2000).Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open(writable: true);

        Assert.Equal(0x10, image.WritePhysical(0xff0, new byte[0x20]));
        Assert.Equal(0, image.WritePhysical(0x1000, new byte[8]));
        Assert.Equal(0, image.WritePhysical(0x5000, new byte[8]));
        Assert.Equal(elf.Length, new FileInfo(file.Path).Length);
    }

    [Fact]
    public void WritePhysical_ReadOnlyOpen_ThrowsReadOnly()
    {
        var elf = new ElfCoreBuilder().AddLoad(0, 0, Pattern(0x1000, 22)).Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        Assert.False(image.CanWrite);
        var ex = Assert.Throws<KvmException>(() => image.WritePhysical(0x10, new byte[] { 1, 2, 3 }));
        Assert.Equal(KvmErrorCode.ReadOnly, ex.Code);
        Assert.Contains(file.Path, ex.Message);
        Assert.Equal(elf, file.ReadAll());
    }

    [Fact]
    public void ReadPhysical_EightThreadsRandomRanges_ReturnTheRightBytes()
    {
        const int size = 0x40000;
        var memory = Pattern(size, 23);
        int[] cuts = [0, 0x3000, 0x9000, 0xa000, 0x17000, 0x20000, 0x33000, size];
        var builder = new ElfCoreBuilder();
        foreach (int i in new[] { 3, 0, 6, 1, 5, 2, 4 })
        {
            builder.AddLoad((ulong)cuts[i], (ulong)cuts[i], memory.AsSpan(cuts[i], cuts[i + 1] - cuts[i]).ToArray());
        }

        using var file = new ScratchFile(builder.Build());
        using var image = file.Open();
        int failures = 0;

        Parallel.For(0, 8, new ParallelOptions { MaxDegreeOfParallelism = 8 }, t =>
        {
            var random = new Random(100 + t);
            var buffer = new byte[0x3000];
            for (int n = 0; n < 400; n++)
            {
                int start = random.Next(size);
                int length = random.Next(1, Math.Min(buffer.Length, size - start) + 1);
                var span = buffer.AsSpan(0, length);
                int read = image.ReadPhysical((ulong)start, span, out var status);
                if (read != length || status != PhysicalReadStatus.Complete || !span.SequenceEqual(memory.AsSpan(start, length)))
                {
                    Interlocked.Increment(ref failures);
                }
            }
        });

        Assert.Equal(0, failures);
    }

    /// <summary>A minimal ELF32 little-endian core (Elf32_Ehdr 52 bytes, Elf32_Phdr 32 bytes) with two PT_LOADs.</summary>
    private static byte[] BuildElf32Core(uint paddr, byte[] data, uint extraPaddr)
    {
        var ms = new MemoryStream();
        var w = new BinaryWriter(ms);
        w.Write(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0 });
        w.Write((ushort)4);  // ET_CORE
        w.Write((ushort)3);  // EM_386
        w.Write(1u);         // e_version
        w.Write(0u);         // e_entry
        w.Write(52u);        // e_phoff
        w.Write(0u);         // e_shoff
        w.Write(0u);         // e_flags
        w.Write((ushort)52); // e_ehsize
        w.Write((ushort)32); // e_phentsize
        w.Write((ushort)2);  // e_phnum
        w.Write((ushort)0);
        w.Write((ushort)0);
        w.Write((ushort)0);
        uint dataOffset = 52 + (2 * 32);
        WritePhdr32(w, dataOffset, 0xc0000000 + paddr, paddr, (uint)data.Length);
        WritePhdr32(w, dataOffset, 0xc8000000, extraPaddr, (uint)data.Length);
        w.Write(data);
        return ms.ToArray();
    }

    private static void WritePhdr32(BinaryWriter w, uint offset, uint vaddr, uint paddr, uint size)
    {
        w.Write(1u);      // PT_LOAD
        w.Write(offset);
        w.Write(vaddr);
        w.Write(paddr);
        w.Write(size);    // p_filesz
        w.Write(size);    // p_memsz
        w.Write(7u);      // p_flags
        w.Write(0x1000u); // p_align
    }
}
