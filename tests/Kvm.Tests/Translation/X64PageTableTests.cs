using Kvm.Testing;
using Kvm.Translation.X64;

namespace Kvm.Tests.Translation;

/// <summary>
/// The x86-64 walker against Intel SDM vol. 3A §4.5 (4- and 5-level paging): index bits 47:39/38:30/29:21/20:12
/// (plus 56:48 with LA57), PS in a PDPTE (1 GiB) or PDE (2 MiB), frame bits 51:12 (51:21, 51:30 for large pages).
/// </summary>
public sealed class X64PageTableTests
{
    private const ulong P = 1;      // present
    private const ulong Rw = 2;     // writable
    private const ulong Ps = 0x80;  // page size (leaf) in a PDPTE/PDE; PAT in a PTE
    private const ulong Nx = 1UL << 63;

    // Hand-built 4-level walk used by several tests: tables at fixed physical pages, indices chosen to be distinct.
    // pgd index 0x111, pud index 0xa2, pmd index 3, pte index 0x1ff, page offset 0x678.
    private const ulong HandVa4 = 0xffff88a8807ff678;

    // The same lower indices under pgd (PML5) index 0x1f5 and p4d (PML4) index 0x111.
    private const ulong HandVa5 = 0xfff588a8807ff678;

    [Fact]
    public void HandVa_Constants_DecomposeToTheChosenIndices()
    {
        // Guards the constants the other tests rely on, computed from the SDM index layout.
        Assert.Equal(HandVa4, Va4(0x111, 0xa2, 3, 0x1ff, 0x678));
        Assert.Equal(HandVa5, Va5(0x1f5, 0x111, 0xa2, 3, 0x1ff, 0x678));
    }

    [Theory]
    [InlineData(false, 0x1000UL, 0xffff888012345000UL, 0x76543000UL, 0xabcUL)]
    [InlineData(false, 0x1000UL, 0x00007ffffffff000UL, 0x1000UL, 0xfffUL)]
    [InlineData(false, 0x1000UL, 0xffff888000000000UL, 0x000ffffffffff000UL, 0x10UL)] // highest 52-bit frame
    [InlineData(false, 0x200000UL, 0xffffffff81000000UL, 0x4000000UL, 0x1abcdeUL)]
    [InlineData(false, 0x200000UL, 0xffffffff81e00000UL, 0x7fe00000UL, 0x1fffffUL)]
    [InlineData(false, 0x40000000UL, 0xffff888000000000UL, 0x140000000UL, 0x23456789UL)]
    [InlineData(false, 0x40000000UL, 0xffff888040000000UL, 0x0UL, 0x3fffffffUL)]
    [InlineData(true, 0x1000UL, 0xff11000012345000UL, 0x76543000UL, 0xabcUL)]
    [InlineData(true, 0x1000UL, 0x00fffffffffff000UL, 0x2000UL, 0x1UL)] // canonical only with LA57
    [InlineData(true, 0x200000UL, 0xffffffff81000000UL, 0x4000000UL, 0x1abcdeUL)]
    [InlineData(true, 0x40000000UL, 0xff35000000000000UL, 0x80000000UL, 0x3fffffffUL)]
    public void Translate_MappedPage_KeepsOffsetWithinPage(bool fiveLevel, ulong pageSize, ulong va, ulong pa, ulong offset)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory, fiveLevel).Map(va, pa, pageSize);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), fiveLevel ? 5 : 4, 0, 64);

        bool ok = walker.TryTranslate(tables.Root, va + offset, out ulong result, out ulong size, out var fault);

        Assert.True(ok, fault?.Message);
        Assert.Null(fault);
        Assert.Equal(pa + offset, result);
        Assert.Equal(pageSize, size);
    }

    [Fact]
    public void Translate_2MiBPage_KeepsOffsetWithinLargePage()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory).Map(0xffffffff82000000, 0x12600000, 0x200000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.True(walker.TryTranslate(tables.Root, 0xffffffff821f0123, out ulong pa, out ulong size, out _));

        Assert.Equal(0x127f0123UL, pa);
        Assert.Equal(0x200000UL, size);
    }

    [Fact]
    public void Translate_1GiBPage_KeepsOffsetWithinLargePage()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory).Map(0xffff888080000000, 0x2c0000000, 0x40000000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.True(walker.TryTranslate(tables.Root, 0xffff8880b1234567, out ulong pa, out ulong size, out _));

        Assert.Equal(0x2f1234567UL, pa);
        Assert.Equal(0x40000000UL, size);
    }

    [Fact]
    public void Translate_NeighbouringPages_MapIndependently()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory)
            .Map(0xffff888000001000, 0x9000)
            .Map(0xffff888000002000, 0x3000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.True(walker.TryTranslate(tables.Root, 0xffff888000001ffc, out ulong a, out _, out _));
        Assert.True(walker.TryTranslate(tables.Root, 0xffff888000002004, out ulong b, out _, out _));
        Assert.False(walker.TryTranslate(tables.Root, 0xffff888000003000, out _, out _, out var fault));

        Assert.Equal(0x9ffcUL, a);
        Assert.Equal(0x3004UL, b);
        Assert.Equal(TranslationFaultKind.NotPresent, fault!.Kind);
        Assert.Equal("pte", fault.Level);
        Assert.Equal(3, fault.Index);
    }

    [Fact]
    public void Translate_HandBuilt4KiBChain_ReturnsFramePlusOffset()
    {
        var memory = HandBuilt4();
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.True(walker.TryTranslate(0x1000, HandVa4, out ulong pa, out ulong size, out var fault));

        Assert.Null(fault);
        Assert.Equal(0x12345678UL, pa);
        Assert.Equal(4096UL, size);
    }

    [Theory]
    [InlineData(0x1000UL)]
    [InlineData(0x1001UL)]                 // PCID 1 in CR3 bits 11:0
    [InlineData(0x8000000000001fffUL)]     // CR3 bit 63 (no-flush) and PCID 0xfff
    [InlineData(0x1018UL)]                 // PWT/PCD without PCIDE
    public void Translate_RootWithCr3ControlBits_UsesOnlyTheFrame(ulong cr3)
    {
        var walker = new X64PageTable(new DictionaryPhysicalSource(HandBuilt4()), 4, 0, 64);

        Assert.True(walker.TryTranslate(cr3, HandVa4, out ulong pa, out _, out var fault), fault?.Message);
        Assert.Equal(0x12345678UL, pa);
    }

    [Fact]
    public void Translate_NxProtectionKeyAndIgnoredBits_AreNotPartOfTheFrame()
    {
        var memory = new PhysicalMemoryBuilder();

        // Bits 63 (XD), 62:59 (protection key) and 58:52 (ignored) set everywhere they may be.
        const ulong high = Nx | (0xfUL << 59) | (0x7fUL << 52);
        memory.WriteUInt64(0x1000 + (0x111 * 8), high | 0x2000 | P | Rw);
        memory.WriteUInt64(0x2000 + (0xa2 * 8), high | 0x3000 | P | Rw);
        memory.WriteUInt64(0x3000 + (3 * 8), high | 0x4000 | P | Rw);
        memory.WriteUInt64(0x4000 + (0x1ff * 8), high | 0x000abcdef0123000 | P | Rw | 0x60);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.True(walker.TryTranslate(0x1000, HandVa4, out ulong pa, out _, out var fault), fault?.Message);

        Assert.Equal(0x000abcdef0123678UL, pa);
    }

    [Fact]
    public void Translate_PteWithBit7Set_IsStillA4KiBPage()
    {
        // In a PTE, bit 7 is PAT, not PS (SDM table 4-19).
        var memory = HandBuilt4();
        memory.WriteUInt64(0x4000 + (0x1ff * 8), 0x12345000 | P | Ps);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.True(walker.TryTranslate(0x1000, HandVa4, out ulong pa, out ulong size, out _));

        Assert.Equal(0x12345678UL, pa);
        Assert.Equal(4096UL, size);
    }

    [Theory]
    [InlineData(2, 0x200000UL, 0x1fffffUL, 0x000fffffffe00000UL)]   // PDE: frame 51:21, bit 12 is PAT
    [InlineData(1, 0x40000000UL, 0x3fffffffUL, 0x000fffffc0000000UL)] // PDPTE: frame 51:30, bit 12 is PAT
    public void Translate_LargePageWithPatBit_IgnoresBit12(int leafLevel, ulong pageSize, ulong offsetMask, ulong frameMask)
    {
        var memory = new PhysicalMemoryBuilder();
        ulong frame = 0x0004_5678_0000_0000 & frameMask;
        const ulong pat = 0x1000;
        ulong[] tables = [0x1000, 0x2000, 0x3000];
        int[] indices = [0x111, 0xa2, 3];
        for (int level = 0; level < leafLevel; level++)
        {
            memory.WriteUInt64(tables[level] + ((ulong)indices[level] * 8), tables[level + 1] | P | Rw);
        }

        memory.WriteUInt64(tables[leafLevel] + ((ulong)indices[leafLevel] * 8), frame | pat | Ps | P | Rw);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.True(walker.TryTranslate(0x1000, HandVa4, out ulong pa, out ulong size, out var fault), fault?.Message);

        Assert.Equal(frame | (HandVa4 & offsetMask), pa);
        Assert.Equal(pageSize, size);
    }

    [Fact]
    public void Translate_NotPresentPmd_MessageNamesLevelIndexAndEntry()
    {
        var memory = HandBuilt4();
        memory.WriteUInt64(0x3000 + (3 * 8), 0);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.False(walker.TryTranslate(0x1000, HandVa4, out ulong pa, out ulong size, out var fault));

        Assert.Equal(0UL, pa);
        Assert.Equal(0UL, size);
        Assert.NotNull(fault);
        Assert.Equal(TranslationFaultKind.NotPresent, fault.Kind);
        Assert.Equal("pmd", fault.Level);
        Assert.Equal(3, fault.Index);
        Assert.Equal(0x3000UL, fault.TableAddress);
        Assert.Equal(0UL, fault.Entry);
        Assert.Equal(HandVa4, fault.VirtualAddress);
        Assert.Equal("cannot translate 0xffff88a8807ff678: pmd[3] = 0x0 not present", fault.Message);
        Assert.Equal(fault.Message, fault.ToString());
    }

    [Fact]
    public void Translate_NonPresentNonZeroUpperEntry_IsNotPresentWithRawEntry()
    {
        // A non-present PUD entry that happens to look like a swap entry is still "not present": swap entries are PTEs.
        var memory = HandBuilt4();
        const ulong entry = 0x17ffffffffdffe00;
        memory.WriteUInt64(0x2000 + (0xa2 * 8), entry);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.False(walker.TryTranslate(0x1000, HandVa4, out _, out _, out var fault));

        Assert.Equal(TranslationFaultKind.NotPresent, fault!.Kind);
        Assert.Equal("pud", fault.Level);
        Assert.Equal(0xa2, fault.Index);
        Assert.Equal(entry, fault.Entry);
        Assert.Equal("cannot translate 0xffff88a8807ff678: pud[162] = 0x17ffffffffdffe00 not present", fault.Message);
    }

    [Theory]
    [InlineData(false, 0, "pgd")]
    [InlineData(false, 1, "pud")]
    [InlineData(false, 2, "pmd")]
    [InlineData(false, 3, "pte")]
    [InlineData(true, 0, "pgd")]
    [InlineData(true, 1, "p4d")]
    [InlineData(true, 2, "pud")]
    [InlineData(true, 3, "pmd")]
    [InlineData(true, 4, "pte")]
    public void Translate_NotPresentAtLevel_ReportsLevelNameIndexAndTable(bool fiveLevel, int failingLevel, string expectedName)
    {
        int[] indices = fiveLevel ? [0x1f5, 0x111, 0xa2, 3, 0x1ff] : [0x111, 0xa2, 3, 0x1ff];
        ulong va = VaFromIndices(indices, 0x678);
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory, fiveLevel);
        if (failingLevel > 0)
        {
            // A sibling that shares every table above the failing level, but uses another entry in it.
            int[] sibling = [.. indices];
            sibling[failingLevel] ^= 1;
            tables.Map(VaFromIndices(sibling, 0), 0x5555000);
        }

        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), fiveLevel ? 5 : 4, 0, 64);

        Assert.False(walker.TryTranslate(tables.Root, va, out _, out _, out var fault));

        Assert.NotNull(fault);
        Assert.Equal(TranslationFaultKind.NotPresent, fault.Kind);
        Assert.Equal(expectedName, fault.Level);
        Assert.Equal(indices[failingLevel], fault.Index);
        Assert.Equal(0UL, fault.Entry);
        Assert.Equal(TableAt(memory, tables.Root, indices, failingLevel), fault.TableAddress);
        Assert.Equal($"cannot translate 0x{va:x}: {expectedName}[{indices[failingLevel]}] = 0x0 not present", fault.Message);
    }

    [Theory]
    [InlineData(4, 0x0000000000000000UL, true)]
    [InlineData(4, 0x00007fffffffffffUL, true)]
    [InlineData(4, 0x0000800000000000UL, false)]
    [InlineData(4, 0xffff7fffffffffffUL, false)]
    [InlineData(4, 0xffff800000000000UL, true)]
    [InlineData(4, 0xffffffffffffffffUL, true)]
    [InlineData(4, 0x00fffffffffff000UL, false)]
    [InlineData(4, 0x8000000000000000UL, false)]
    [InlineData(5, 0x0000800000000000UL, true)]
    [InlineData(5, 0x00ffffffffffffffUL, true)]
    [InlineData(5, 0x0100000000000000UL, false)]
    [InlineData(5, 0xfeffffffffffffffUL, false)]
    [InlineData(5, 0xff00000000000000UL, true)]
    [InlineData(5, 0xffff7fffffffffffUL, true)]
    public void IsCanonical_FollowsTheModeBound(int levels, ulong va, bool canonical)
    {
        var walker = new X64PageTable(new DictionaryPhysicalSource(new PhysicalMemoryBuilder()), levels, 0, 64);

        Assert.Equal(canonical, walker.IsCanonical(va));
    }

    [Theory]
    [InlineData(4, 0x0000800000000000UL)]
    [InlineData(4, 0xffff7fffffffffffUL)]
    [InlineData(4, 0x00fffffffffff000UL)]
    [InlineData(5, 0x0100000000000000UL)]
    [InlineData(5, 0xfeffffffffffffffUL)]
    public void Translate_NonCanonical_FailsWithoutReadingTables(int levels, ulong va)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory, levels == 5);
        var source = new DictionaryPhysicalSource(memory);
        var walker = new X64PageTable(source, levels, 0, 64);

        Assert.False(walker.TryTranslate(tables.Root, va, out _, out _, out var fault));

        Assert.Equal(TranslationFaultKind.NonCanonical, fault!.Kind);
        Assert.Null(fault.Level);
        Assert.Equal($"cannot translate 0x{va:x}: non-canonical address", fault.Message);
        Assert.Equal(0, source.Reads);
    }

    [Fact]
    public void Translate_AddressAbove47Bits_WorksOnlyWithFiveLevels()
    {
        const ulong va = 0x0000912345678000;
        var memory4 = new PhysicalMemoryBuilder();
        var memory5 = new PhysicalMemoryBuilder();
        var tables5 = new X64PageTableBuilder(memory5, fiveLevel: true).Map(va, 0xabc000);
        var tables4 = new X64PageTableBuilder(memory4);

        var walker5 = new X64PageTable(new DictionaryPhysicalSource(memory5), 5, 0, 64);
        var walker4 = new X64PageTable(new DictionaryPhysicalSource(memory4), 4, 0, 64);

        Assert.True(walker5.TryTranslate(tables5.Root, va + 0x42, out ulong pa, out _, out _));
        Assert.Equal(0xabc042UL, pa);
        Assert.False(walker4.TryTranslate(tables4.Root, va + 0x42, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.NonCanonical, fault!.Kind);
    }

    [Fact]
    public void Translate_RootNotInImage_GivesTableUnreadableAtPgd()
    {
        var walker = new X64PageTable(new DictionaryPhysicalSource(new PhysicalMemoryBuilder()), 4, 0, 64);

        Assert.False(walker.TryTranslate(0x5000, HandVa4, out _, out _, out var fault));

        Assert.Equal(TranslationFaultKind.TableUnreadable, fault!.Kind);
        Assert.Equal("pgd", fault.Level);
        Assert.Equal(0x111, fault.Index);
        Assert.Equal(0x5000UL, fault.TableAddress);
        Assert.Equal("cannot translate 0xffff88a8807ff678: pgd table at physical 0x5000 is not in the image", fault.Message);
    }

    [Theory]
    [InlineData(4, 1, "pud", 0xa2)]
    [InlineData(4, 3, "pte", 0x1ff)]
    [InlineData(5, 1, "p4d", 0x111)]
    [InlineData(5, 2, "pud", 0xa2)]
    public void Translate_MissingLowerTable_GivesTableUnreadableAtThatLevel(int levels, int missingLevel, string name, int index)
    {
        // A present entry pointing at a page the image does not hold.
        var memory = new PhysicalMemoryBuilder();
        int[] indices = levels == 5 ? [0x1f5, 0x111, 0xa2, 3, 0x1ff] : [0x111, 0xa2, 3, 0x1ff];
        const ulong missing = 0x9000;
        for (int level = 0; level < missingLevel; level++)
        {
            ulong next = level == missingLevel - 1 ? missing : 0x1000 * (ulong)(level + 2);
            memory.WriteUInt64((0x1000 * (ulong)(level + 1)) + ((ulong)indices[level] * 8), next | P | Rw);
        }

        ulong va = VaFromIndices(indices, 0);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), levels, 0, 64);

        Assert.False(walker.TryTranslate(0x1000, va, out _, out _, out var fault));

        Assert.Equal(TranslationFaultKind.TableUnreadable, fault!.Kind);
        Assert.Equal(name, fault.Level);
        Assert.Equal(index, fault.Index);
        Assert.Equal(missing, fault.TableAddress);
        Assert.Equal($"cannot translate 0x{va:x}: {name} table at physical 0x9000 is not in the image", fault.Message);
    }

    [Theory]
    [InlineData(47, 0x1000UL)]
    [InlineData(47, 0x200000UL)]
    [InlineData(47, 0x40000000UL)]
    [InlineData(51, 0x1000UL)]
    [InlineData(51, 0x200000UL)]
    public void Translate_SmeCBit_IsStrippedFromRootAndEveryEntry(int cBit, ulong pageSize)
    {
        ulong sme = 1UL << cBit;
        const ulong va = 0xffff888040000000;
        const ulong frame = 0x80000000;
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory, smeMask: sme).Map(va, frame, pageSize);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, sme, 64);

        // CR3 carries the C-bit too when the root table is encrypted.
        bool ok = walker.TryTranslate(tables.Root | sme, va + 0x123, out ulong pa, out _, out var fault);

        Assert.True(ok, fault?.Message);
        Assert.Equal(frame + 0x123, pa);
        Assert.Equal(sme, walker.SmeMask);
    }

    [Fact]
    public void Translate_SmeCBitWithoutMask_CannotFollowTables()
    {
        // The control for the test above: without the mask the C-bit is taken as an address bit.
        const ulong sme = 1UL << 47;
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory, smeMask: sme).Map(0xffff888040000000, 0x80000000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.False(walker.TryTranslate(tables.Root, 0xffff888040000000, out _, out _, out var fault));

        Assert.Equal(TranslationFaultKind.TableUnreadable, fault!.Kind);
        Assert.Equal("pud", fault.Level);
        Assert.True((fault.TableAddress & sme) != 0);
    }

    [Fact]
    public void Describe_SmeEntries_RecordRawEntriesWithCBit()
    {
        const ulong sme = 1UL << 47;
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory, smeMask: sme).Map(0xffff888040000000, 0x80000000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, sme, 64);

        var walk = walker.Describe(tables.Root, 0xffff888040000000);

        Assert.True(walk.Succeeded);
        Assert.Equal(4, walk.Steps.Count);
        Assert.All(walk.Steps, s => Assert.True((s.Entry & sme) != 0));
        Assert.All(walk.Steps, s => Assert.True((s.TableAddress & sme) == 0));
        Assert.Equal(0x80000000UL, walk.PhysicalAddress);
    }

    [Theory]
    [InlineData(0, 1UL)]
    [InlineData(1, 0UL)]
    [InlineData(2, 0x1000UL)]
    [InlineData(7, 0x12345678UL)]
    [InlineData(15, 0x2000000000000UL)]     // 2^49
    [InlineData(30, 0xffffffffffUL)]
    [InlineData(31, 0x3fffffffffffeUL)]     // 2^50 - 2: the largest offset that does not encode as pte_none with type 0
    public void Translate_SwapPte_GivesSwapEntryFaultAndDecodes(int type, ulong offset)
    {
        const ulong va = 0x00007f1234567000;
        ulong raw = X64PageTableBuilder.SwapEntry(type, offset);
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory).Map(va + 0x1000, 0x1000).SetPte(va, raw);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.False(walker.TryTranslate(tables.Root, va + 8, out _, out _, out var fault));

        Assert.Equal(TranslationFaultKind.SwapEntry, fault!.Kind);
        Assert.Equal("pte", fault.Level);
        Assert.Equal((int)((va >> 12) & 511), fault.Index);
        Assert.Equal(raw, fault.Entry);
        Assert.Equal($"cannot translate 0x{va + 8:x}: pte[{fault.Index}] = 0x{raw:x} is a swap entry", fault.Message);
        Assert.Equal(type, X64SwapEntry.Type(fault.Entry));
        Assert.Equal(offset, X64SwapEntry.Offset(fault.Entry));
    }

    [Fact]
    public void Translate_ProtNonePte_IsNotASwapEntry()
    {
        // _PAGE_PROTNONE (bit 8, the global bit) marks a PROT_NONE mapping, not a swapped-out page.
        var memory = HandBuilt4();
        const ulong protNone = 0x7fffffffedcba100;
        memory.WriteUInt64(0x4000 + (0x1ff * 8), protNone);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.False(walker.TryTranslate(0x1000, HandVa4, out _, out _, out var fault));

        Assert.Equal(TranslationFaultKind.NotPresent, fault!.Kind);
        Assert.Equal(protNone, fault.Entry);
    }

    [Fact]
    public void Describe_4KiBWalk_ListsFourStepsWithTablesIndicesAndLeaf()
    {
        var walker = new X64PageTable(new DictionaryPhysicalSource(HandBuilt4()), 4, 0, 64);

        var walk = walker.Describe(0x1000, HandVa4);

        Assert.True(walk.Succeeded);
        Assert.Equal("pgtable", walk.Method);
        Assert.Equal(HandVa4, walk.VirtualAddress);
        Assert.Equal(0x12345678UL, walk.PhysicalAddress);
        Assert.Equal(4096UL, walk.PageSize);
        Assert.Null(walk.Fault);
        Assert.Equal(
            [
                new TranslationStep("pgd", 0x1000, 0x111, 0x2003, false),
                new TranslationStep("pud", 0x2000, 0xa2, 0x3003, false),
                new TranslationStep("pmd", 0x3000, 3, 0x4003, false),
                new TranslationStep("pte", 0x4000, 0x1ff, Nx | 0x12345003, true),
            ],
            walk.Steps);
        Assert.Equal(0x1888UL, walk.Steps[0].EntryAddress);
        Assert.Equal(0x3018UL, walk.Steps[2].EntryAddress);
        Assert.Equal(0x4ff8UL, walk.Steps[3].EntryAddress);
    }

    [Fact]
    public void Describe_2MiBWalk_StopsAtLeafPmd()
    {
        var memory = HandBuilt4();
        memory.WriteUInt64(0x3000 + (3 * 8), 0x7fe00000 | Ps | P | Rw);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        var walk = walker.Describe(0x1000, HandVa4);

        Assert.Equal(3, walk.Steps.Count);
        Assert.Equal(new TranslationStep("pmd", 0x3000, 3, 0x7fe00083, true), walk.Steps[2]);
        Assert.False(walk.Steps[1].IsLeaf);
        Assert.Equal(0x200000UL, walk.PageSize);
        Assert.Equal(0x7fe00000UL + (HandVa4 & 0x1fffff), walk.PhysicalAddress);
    }

    [Fact]
    public void Describe_1GiBWalk_StopsAtLeafPud()
    {
        var memory = HandBuilt4();
        memory.WriteUInt64(0x2000 + (0xa2 * 8), 0x1c0000000 | Ps | P | Rw);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        var walk = walker.Describe(0x1000, HandVa4);

        Assert.Equal(2, walk.Steps.Count);
        Assert.Equal(new TranslationStep("pud", 0x2000, 0xa2, 0x1c0000083, true), walk.Steps[1]);
        Assert.Equal(0x40000000UL, walk.PageSize);
        Assert.Equal(0x1c0000000UL + (HandVa4 & 0x3fffffff), walk.PhysicalAddress);
    }

    [Fact]
    public void Describe_FiveLevelWalk_NamesAllFiveLevels()
    {
        var memory = new PhysicalMemoryBuilder();
        memory.WriteUInt64(0x1000 + (0x1f5 * 8), 0x2000 | P | Rw);
        memory.WriteUInt64(0x2000 + (0x111 * 8), 0x3000 | P | Rw);
        memory.WriteUInt64(0x3000 + (0xa2 * 8), 0x4000 | P | Rw);
        memory.WriteUInt64(0x4000 + (3 * 8), 0x5000 | P | Rw);
        memory.WriteUInt64(0x5000 + (0x1ff * 8), 0x6000 | P | Rw);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 5, 0, 64);

        var walk = walker.Describe(0x1000, HandVa5);

        Assert.Equal(
            [
                new TranslationStep("pgd", 0x1000, 0x1f5, 0x2003, false),
                new TranslationStep("p4d", 0x2000, 0x111, 0x3003, false),
                new TranslationStep("pud", 0x3000, 0xa2, 0x4003, false),
                new TranslationStep("pmd", 0x4000, 3, 0x5003, false),
                new TranslationStep("pte", 0x5000, 0x1ff, 0x6003, true),
            ],
            walk.Steps);
        Assert.Equal(0x6678UL, walk.PhysicalAddress);
        Assert.Equal(PagingMode.X64FiveLevel, walker.Mode);
    }

    [Fact]
    public void Describe_NotPresent_StopsAtFaultingLevel()
    {
        var memory = HandBuilt4();
        memory.WriteUInt64(0x3000 + (3 * 8), 0);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        var walk = walker.Describe(0x1000, HandVa4);

        Assert.False(walk.Succeeded);
        Assert.Null(walk.PhysicalAddress);
        Assert.Equal(0UL, walk.PageSize);
        Assert.Equal(3, walk.Steps.Count);
        Assert.Equal(new TranslationStep("pmd", 0x3000, 3, 0, false), walk.Steps[2]);
        Assert.Equal("cannot translate 0xffff88a8807ff678: pmd[3] = 0x0 not present", walk.Fault!.Message);
    }

    [Fact]
    public void Describe_NonCanonical_HasNoSteps()
    {
        var walker = new X64PageTable(new DictionaryPhysicalSource(HandBuilt4()), 4, 0, 64);

        var walk = walker.Describe(0x1000, 0x0000800000000000);

        Assert.Empty(walk.Steps);
        Assert.Equal(TranslationFaultKind.NonCanonical, walk.Fault!.Kind);
    }

    [Fact]
    public void Translate_RepeatedWalk_ReadsEachTableOnceUntilFlushed()
    {
        var source = new DictionaryPhysicalSource(HandBuilt4());
        var walker = new X64PageTable(source, 4, 0, 64);

        Assert.True(walker.TryTranslate(0x1000, HandVa4, out _, out _, out _));
        Assert.Equal(4, source.Reads);
        Assert.Equal([0x1000UL, 0x2000UL, 0x3000UL, 0x4000UL], source.ReadAddresses);

        Assert.True(walker.TryTranslate(0x1000, HandVa4 - 0x10, out _, out _, out _));
        Assert.Equal(4, source.Reads);

        walker.FlushCache();
        Assert.True(walker.TryTranslate(0x1000, HandVa4, out _, out _, out _));
        Assert.Equal(8, source.Reads);
    }

    [Fact]
    public void Translate_AfterFlush_SeesChangedTables()
    {
        var memory = HandBuilt4();
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);
        Assert.True(walker.TryTranslate(0x1000, HandVa4, out _, out _, out _));

        memory.WriteUInt64(0x4000 + (0x1ff * 8), 0xfedc000 | P);
        walker.FlushCache();

        Assert.True(walker.TryTranslate(0x1000, HandVa4, out ulong pa, out _, out _));
        Assert.Equal(0xfedc678UL, pa);
    }

    [Theory]
    [InlineData(3)]
    [InlineData(6)]
    [InlineData(0)]
    public void Constructor_LevelsOtherThanFourOrFive_Throws(int levels)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new X64PageTable(new DictionaryPhysicalSource(new PhysicalMemoryBuilder()), levels, 0, 64));
    }

    [Fact]
    public void Mode_FourLevels_IsX64FourLevel()
    {
        var walker = new X64PageTable(new DictionaryPhysicalSource(new PhysicalMemoryBuilder()), 4, 0, 64);

        Assert.Equal(PagingMode.X64FourLevel, walker.Mode);
        Assert.Equal(4, walker.Levels);
    }

    [Fact]
    public void Translate_ConcurrentWalks_AllSucceed()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory);
        for (ulong i = 0; i < 64; i++)
        {
            tables.Map(0xffff888000000000 + (i * 0x201000), 0x10000000 + (i * 0x1000));
        }

        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 8);
        Parallel.For(0, 8, t =>
        {
            for (ulong n = 0; n < 2000; n++)
            {
                ulong i = (n * 7 + (ulong)t) % 64;
                Assert.True(walker.TryTranslate(tables.Root, 0xffff888000000000 + (i * 0x201000) + 0x10, out ulong pa, out _, out _));
                Assert.Equal(0x10000000 + (i * 0x1000) + 0x10, pa);
            }
        });
    }

    /// <summary>Root 0x1000 → pud 0x2000 → pmd 0x3000 → pt 0x4000 → frame 0x12345000 (NX set), for <see cref="HandVa4"/>.</summary>
    private static PhysicalMemoryBuilder HandBuilt4()
    {
        var memory = new PhysicalMemoryBuilder();
        memory.WriteUInt64(0x1000 + (0x111 * 8), 0x2000 | P | Rw);
        memory.WriteUInt64(0x2000 + (0xa2 * 8), 0x3000 | P | Rw);
        memory.WriteUInt64(0x3000 + (3 * 8), 0x4000 | P | Rw);
        memory.WriteUInt64(0x4000 + (0x1ff * 8), Nx | 0x12345000 | P | Rw);
        return memory;
    }

    private static ulong Va4(int pgd, int pud, int pmd, int pte, ulong offset) =>
        SignExtend(((ulong)pgd << 39) | ((ulong)pud << 30) | ((ulong)pmd << 21) | ((ulong)pte << 12) | offset, 48);

    private static ulong Va5(int pgd, int p4d, int pud, int pmd, int pte, ulong offset) =>
        SignExtend(((ulong)pgd << 48) | ((ulong)p4d << 39) | ((ulong)pud << 30) | ((ulong)pmd << 21) | ((ulong)pte << 12) | offset, 57);

    private static ulong VaFromIndices(int[] indices, ulong offset) => indices.Length == 5
        ? Va5(indices[0], indices[1], indices[2], indices[3], indices[4], offset)
        : Va4(indices[0], indices[1], indices[2], indices[3], offset);

    private static ulong SignExtend(ulong value, int bits) =>
        ((value >> (bits - 1)) & 1) != 0 ? value | (ulong.MaxValue << bits) : value;

    /// <summary>The physical address of the table at <paramref name="level"/> on the path of <paramref name="indices"/>, read from memory.</summary>
    private static ulong TableAt(PhysicalMemoryBuilder memory, ulong root, int[] indices, int level)
    {
        ulong table = root;
        for (int i = 0; i < level; i++)
        {
            ulong entry = BitConverter.ToUInt64(memory.Read(table + ((ulong)indices[i] * 8), 8));
            table = entry & 0x000ffffffffff000;
        }

        return table;
    }
}
