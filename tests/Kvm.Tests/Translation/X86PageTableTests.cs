using Kvm.Testing;
using Kvm.Translation;
using Kvm.Translation.X86;

namespace Kvm.Tests.Translation;

/// <summary>
/// The 32-bit x86 walker against Intel SDM vol. 3A §4.3 (2-level: index bits 31:22/21:12, PS in a PDE maps 4 MiB,
/// PSE-36 bits 13..20 give physical bits 32..39) and §4.4 (PAE: 31:30/29:21/20:12, a 32-byte-aligned 4-entry PDPT,
/// PS in a PDE maps 2 MiB, 52-bit frames, XD in bit 63).
/// </summary>
public sealed class X86PageTableTests
{
    public static TheoryData<bool, ulong, ulong, ulong, ulong> MappedPages => new()
    {
        // pae, page size, va, pa, offset within the page
        { false, 0x1000, 0xc0000000, 0x0, 0x0 },
        { false, 0x1000, 0xc1234000, 0x1234000, 0xabc },
        { false, 0x1000, 0x0804_8000, 0x3fff_f000, 0xfff },
        { false, 0x1000, 0xffff_f000, 0xffff_f000, 0x10 },       // the last page of the address space
        { false, 0x400000, 0xc0000000, 0x0, 0x3fffff },
        { false, 0x400000, 0xc1400000, 0x1400000, 0x12345 },
        { false, 0x400000, 0xf0000000, 0x3_4000_0000, 0x1 },     // PSE-36: physical bits 32..35 from PDE bits 13..16
        { false, 0x400000, 0xf0400000, 0xff_ffc0_0000, 0x2 },    // PSE-40: the highest 4 MiB frame
        { true, 0x1000, 0xc0000000, 0x0, 0x0 },
        { true, 0x1000, 0xc1234000, 0x1234000, 0xabc },
        { true, 0x1000, 0xbfff_f000, 0x1_2345_6000, 0x7 },       // a user page above 4 GiB
        { true, 0x1000, 0xffff_f000, 0x000f_ffff_ffff_f000, 0xfff }, // the highest 52-bit frame
        { true, 0x200000, 0xc0000000, 0x0, 0x1fffff },
        { true, 0x200000, 0xc1200000, 0x1_0020_0000, 0x54321 },
        { true, 0x200000, 0x4000_0000, 0x000f_ffff_ffe0_0000, 0x3 },
    };

    [Theory]
    [MemberData(nameof(MappedPages))]
    public void Translate_MappedPage_KeepsOffsetWithinPage(bool pae, ulong pageSize, ulong va, ulong pa, ulong offset)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae).Map(va, pa, pageSize);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae, 64);

        bool ok = walker.TryTranslate(tables.Root, va + offset, out ulong result, out ulong size, out var fault);

        Assert.True(ok, fault?.Message);
        Assert.Equal(pa + offset, result);
        Assert.Equal(pageSize, size);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Describe_NamesLinuxLevelsWithEntryAddresses(bool pae)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae).Map(0xc1234000, 0x5678000);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae, 64);

        var walk = walker.Describe(tables.Root, 0xc1234567);

        Assert.True(walk.Succeeded);
        Assert.Equal(0x5678567UL, walk.PhysicalAddress);
        Assert.Equal(pae ? ["pgd", "pmd", "pte"] : new[] { "pgd", "pte" }, walk.Steps.Select(s => s.Level));
        Assert.All(walk.Steps, s => Assert.Equal(pae ? 8 : 4, s.EntrySize));
        for (int level = 0; level < walk.Steps.Count; level++)
        {
            var step = walk.Steps[level];
            Assert.Equal(tables.Index(0xc1234567, level), step.Index);
            Assert.Equal(step.TableAddress + ((ulong)step.Index * (ulong)(pae ? 8 : 4)), step.EntryAddress);
            Assert.Equal(level == walk.Steps.Count - 1, step.IsLeaf);
        }

        // Without PAE the top index is bits 31:22 (0x304 for 0xc1234567); with PAE the PDPT index is bits 31:30 (3).
        Assert.Equal(pae ? 3 : 0x304, walk.Steps[0].Index);
    }

    [Fact]
    public void Pae_PdptIs32ByteAligned_RootNeedNotBePageAligned()
    {
        // Linux allocates a process's PDPT from a 32-byte slab (arch/x86/mm/pgtable.c, pgd_cache): CR3 bits 31:5.
        var memory = new PhysicalMemoryBuilder();
        ulong page = memory.AllocatePage();
        var tables = new X86PageTableBuilder(memory, pae: true, root: page + 0x60).Map(0x0804_8000, 0x2_0000_0000);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae: true, 64);

        Assert.True(walker.TryTranslate(tables.Root, 0x0804_8010, out ulong pa, out _, out var fault), fault?.Message);
        Assert.Equal(0x2_0000_0010UL, pa);
        Assert.Equal(page + 0x60, walker.Describe(tables.Root | 0x18, 0x0804_8010).Steps[0].TableAddress);
    }

    [Theory]
    [InlineData(false, 0)]
    [InlineData(false, 1)]
    [InlineData(true, 0)]
    [InlineData(true, 1)]
    [InlineData(true, 2)]
    public void Translate_NotPresentAtEachLevel_NamesTheLevel(bool pae, int level)
    {
        var memory = new PhysicalMemoryBuilder();
        ulong va = 0xc0801000;
        var tables = new X86PageTableBuilder(memory, pae).Map(va, 0x801000);
        // Frame bits with present clear; at the PTE level with PROT_NONE (bit 8) too, or it would be a swap entry.
        ulong entry = level == tables.Levels - 1 ? 0x1234100UL : 0x1234000UL;
        tables.SetEntry(va, level, entry);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae, 64);

        Assert.False(walker.TryTranslate(tables.Root, va, out _, out _, out var fault));
        string name = pae ? new[] { "pgd", "pmd", "pte" }[level] : new[] { "pgd", "pte" }[level];
        Assert.Equal(name, fault!.Level);
        Assert.Equal(tables.Index(va, level), fault.Index);
        Assert.Equal(TranslationFaultKind.NotPresent, fault.Kind);
        Assert.Contains($"{name}[{fault.Index}] = 0x{entry:x} not present", fault.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Translate_AddressAbove4GiB_IsOutsideTheAddressSpace(bool pae)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae).Map(0, 0x1000);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae, 64);

        Assert.False(walker.TryTranslate(tables.Root, 0x1_0000_0000, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.NonCanonical, fault!.Kind);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Translate_TableMissingFromImage_IsTableUnreadable(bool pae)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae);
        tables.SetEntry(0xc0000000, pae ? 1 : 0, 0x7777000 | X86PageTableBuilder.Present); // a PT nowhere in memory
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae, 64);

        Assert.False(walker.TryTranslate(tables.Root, 0xc0000123, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.TableUnreadable, fault!.Kind);
        Assert.Equal("pte", fault.Level);
        Assert.Equal(0x7777000UL, fault.TableAddress);
    }

    [Fact]
    public void TwoLevel_UpperHalfOfA64BitEntry_IsNotRead()
    {
        // Entries are 4 bytes: the next entry must not leak into this one's frame.
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae: false).Map(0x1000, 0x5000).Map(0x2000, 0xfffff000);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae: false, 64);

        Assert.True(walker.TryTranslate(tables.Root, 0x1000, out ulong pa, out _, out _));
        Assert.Equal(0x5000UL, pa);
    }

    [Fact]
    public void Cache_PdptAndDirectoryAtTheSameAddress_DoNotCollide()
    {
        // A corrupt PDPTE may point back at the PDPT's own page; the walk must read it as a directory, not reuse
        // the 4-entry PDPT array (an index above 3 would be out of range).
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae: true);
        tables.SetEntry(0xc0000000, 0, tables.Root | X86PageTableBuilder.Present);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae: true, 64);

        Assert.False(walker.TryTranslate(tables.Root, 0xc0e00000, out _, out _, out var fault));
        Assert.NotNull(fault);
    }
}
