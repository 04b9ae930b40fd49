using Kvm.Memory;
using Kvm.Testing;
using Kvm.Tests.Translation;
using Kvm.Translation;
using Kvm.Translation.Arm64;

namespace Kvm.Tests.Arm64;

/// <summary>
/// <see cref="Arm64PageTable.EnumerateMappings"/> and <see cref="KernelImage.EnumeratePages"/> on arm64, against
/// tables made by <see cref="Arm64PageTableBuilder"/>: the expected leaves, sizes and rights come from the builder's
/// inputs and the VMSAv8-64 descriptor formats (Arm ARM D8; Linux arch/arm64/include/asm/pgtable-hwdef.h), and the
/// linear map's bounds from arch/arm64/include/asm/memory.h.
/// </summary>
public sealed class Arm64PageWalkTests
{
    // Descriptor bits (Arm ARM VMSAv8-64 stage 1; Linux's names in pgtable-hwdef.h and pgtable-prot.h).
    private const ulong User = 1UL << 6;          // AP[1], PTE_USER
    private const ulong ReadOnly = 1UL << 7;      // AP[2], PTE_RDONLY
    private const ulong Dbm = 1UL << 51;          // PTE_DBM = PTE_WRITE
    private const ulong Pxn = 1UL << 53;          // PTE_PXN
    private const ulong Uxn = 1UL << 54;          // PTE_UXN
    private const ulong PxnTable = 1UL << 59;     // PMD_TABLE_PXN
    private const ulong ApTableNoEl0 = 1UL << 61; // APTable[0]
    private const ulong ApTableReadOnly = 1UL << 62; // APTable[1]

    /// <summary>
    /// The upper half of a 48-bit address space. Tests with one table tree walk only this half: given that tree as the
    /// user root too, the lower half would list it again, as an MMU with TTBR0 = TTBR1 would.
    /// </summary>
    private const ulong KernelHalf48 = 0xffff_0000_0000_0000;

    /// <summary>Granule, VA bits, and the block sizes the Arm ARM allows there, largest first (every level above the last that may hold one).</summary>
    public static TheoryData<ulong, int, ulong[]> Configurations => new()
    {
        { 4096, 39, [1UL << 30, 1UL << 21] },
        { 4096, 48, [1UL << 30, 1UL << 21] },
        { 4096, 52, [1UL << 39, 1UL << 30, 1UL << 21] }, // LPA2: 512 GiB at level 0
        { 16384, 36, [1UL << 25] },                      // 2 levels: the top level is the 32 MiB one
        { 16384, 47, [1UL << 25] },
        { 65536, 42, [1UL << 29] },
        { 65536, 52, [1UL << 42, 1UL << 29] },           // FEAT_LPA: 4 TiB at level 1
    };

    [Theory]
    [MemberData(nameof(Configurations))]
    public void EveryConfiguration_ListsPagesAndBlocks_LowerHalfThenUpperHalfSignExtended(ulong granule, int vaBits, ulong[] blocks)
    {
        var memory = new PhysicalMemoryBuilder();
        var kernel = new Arm64PageTableBuilder(memory, granule, vaBits);
        var user = new Arm64PageTableBuilder(memory, granule, vaBits);
        ulong kernelHalf = ulong.MaxValue << vaBits;
        ulong slot = 1UL << (vaBits - 4);
        var expected = new List<(ulong Va, ulong Pa, ulong Size)>
        {
            ((3 * slot) + (5 * granule), 11 * granule, granule),
            (kernelHalf + slot + (3 * granule), 7 * granule, granule),
        };
        for (int j = 0; j < blocks.Length; j++)
        {
            ulong b = blocks[j];
            expected.Add((kernelHalf + ((ulong)(j + 2) * slot) + b, b * (ulong)(j + 3), b));
        }

        user.Map(expected[0].Va, expected[0].Pa);
        foreach (var (va, pa, size) in expected.Skip(1))
        {
            kernel.Map(va, pa, size);
        }

        var walker = Walker(memory, granule, vaBits, kernel.Root);
        var all = walker.EnumerateMappings(user.Root, 0, ulong.MaxValue, 1000).ToList();

        Assert.Equal(expected, all.Select(m => (m.VirtualAddress, m.PhysicalAddress, m.Size)));

        // The builder's leaves carry AF (and SH) only: AP[2], PXN and AP[1] clear, so writable, executable, kernel-only.
        Assert.All(all, m => Assert.Equal((true, true, false), (m.Writable, m.Executable, m.User)));
        Assert.All(all.Skip(1), m => Assert.Equal(ulong.MaxValue, m.VirtualAddress | ~kernelHalf));
    }

    [Fact]
    public void InvalidAndReservedDescriptors_AreSkipped_ValidNeighboursListed()
    {
        var memory = new PhysicalMemoryBuilder();
        var t = new Arm64PageTableBuilder(memory);
        ulong baseVa = 0xffff_8000_1000_0000;
        t.Map(baseVa, 0x10_0000);
        t.SetPte(baseVa + 0x1000, 0x20_0000 | Arm64PageTableBuilder.AccessFlag);                      // bit 0 clear: invalid
        t.SetPte(baseVa + 0x2000, 0x30_0000 | Arm64PageTableBuilder.AccessFlag | Arm64PageTableBuilder.Block); // 01 at level 3: reserved
        t.SetPte(baseVa + 0x3000, Arm64PageTableBuilder.SwapEntry(1, 0x42));                            // a swap PTE
        t.Map(baseVa + 0x4000, 0x40_0000);

        // 01 at level 0 of a 4 KiB, 48-bit table: no block is allowed there (512 GiB blocks need LPA2).
        t.SetEntry(0xffff_0000_0000_0000, 0, 0x80_0000_0000 | Arm64PageTableBuilder.AccessFlag | Arm64PageTableBuilder.Block);

        // A block descriptor that is a valid 2 MiB block one level up is still listed.
        t.Map(baseVa + 0x20_0000, 0x60_0000, 1UL << 21);

        var walker = Walker(memory, 4096, 48, t.Root);
        var all = walker.EnumerateMappings(t.Root, KernelHalf48, ulong.MaxValue, 100).Select(m => (m.VirtualAddress, m.PhysicalAddress, m.Size)).ToList();

        Assert.Equal([(baseVa, 0x10_0000UL, 4096UL), (baseVa + 0x4000, 0x40_0000UL, 4096UL), (baseVa + 0x20_0000, 0x60_0000UL, 1UL << 21)], all);
    }

    /// <summary>Leaf attributes and the rights Linux reads in them (the PAGE_KERNEL* values of pgtable-prot.h, 6.1, among them).</summary>
    public static TheoryData<ulong, bool, bool, bool> LeafRights => new()
    {
        { 0, true, true, false },
        { ReadOnly, false, true, false },
        { ReadOnly | Dbm, true, true, false },                // writable-clean: pte_write() is true
        { Pxn, true, false, false },
        { Dbm | Pxn | Uxn, true, false, false },              // PAGE_KERNEL
        { ReadOnly | Pxn | Uxn, false, false, false },        // PAGE_KERNEL_RO
        { ReadOnly | Uxn, false, true, false },               // PAGE_KERNEL_ROX
        { Dbm | Uxn, true, true, false },                     // PAGE_KERNEL_EXEC
        { User, true, false, true },                          // AP[2:1] = 01: writable at EL0 implies PXN
        { User | ReadOnly, false, true, true },               // AP[2:1] = 11
        { User | ReadOnly | Dbm, true, true, true },          // not writable at EL0 until the first write
        { User | ReadOnly | Pxn | Uxn, false, false, true },
    };

    [Theory]
    [MemberData(nameof(LeafRights))]
    public void LeafAttributes_GiveTheRights_OfPagesAndBlocks(ulong attributes, bool writable, bool executable, bool user)
    {
        var memory = new PhysicalMemoryBuilder();
        var t = new Arm64PageTableBuilder(memory) { LeafAttributes = Arm64PageTableBuilder.AccessFlag | attributes };
        t.Map(0xffff_8000_0000_0000, 0x10_0000);
        t.Map(0xffff_8000_4000_0000, 0x4000_0000, 1UL << 30);

        var all = Walker(memory, 4096, 48, t.Root).EnumerateMappings(t.Root, KernelHalf48, ulong.MaxValue, 100).ToList();

        Assert.Equal(2, all.Count);
        Assert.All(all, m => Assert.Equal((writable, executable, user), (m.Writable, m.Executable, m.User)));
        Assert.Equal([4096UL, 1UL << 30], all.Select(m => m.Size));
    }

    /// <summary>
    /// Table attributes at levels 0 and 2 of one path, the leaf attributes of every page, and the rights expected
    /// below those tables and, for a page on another path with no table attributes, from the leaf alone.
    /// </summary>
    public static TheoryData<ulong, ulong, ulong, (bool W, bool X, bool U), (bool W, bool X, bool U)> TableRights => new()
    {
        { 0, 0, User | ReadOnly | Dbm, (true, true, true), (true, true, true) },
        { ApTableReadOnly, 0, User | ReadOnly | Dbm, (false, true, true), (true, true, true) },  // APTable[1] overrides DBM too
        { 0, ApTableReadOnly, 0, (false, true, false), (true, true, false) },
        { ApTableNoEl0, 0, User | ReadOnly | Dbm, (true, true, false), (true, true, true) },
        { 0, PxnTable, ReadOnly, (false, false, false), (false, true, false) },
        { PxnTable, ApTableReadOnly, Dbm, (false, false, false), (true, true, false) },          // two levels add up
        { ApTableNoEl0, 0, User, (true, true, false), (true, false, true) },                      // not EL0-writable below: no implied PXN
    };

    [Theory]
    [MemberData(nameof(TableRights))]
    public void TableAttributes_RestrictEverythingBelow_AndOnlyThat(ulong level0, ulong level2, ulong leaf, (bool W, bool X, bool U) below, (bool W, bool X, bool U) elsewhere)
    {
        var memory = new PhysicalMemoryBuilder();
        var t = new Arm64PageTableBuilder(memory) { LeafAttributes = Arm64PageTableBuilder.AccessFlag | leaf };
        ulong va = 0xffff_8000_0000_0000;
        ulong sibling = 0xffff_0000_0000_0000;     // another level-0 entry
        t.Map(va, 0x10_0000);
        t.Map(sibling, 0x20_0000);
        AddTableAttributes(memory, t, va, 0, level0);
        AddTableAttributes(memory, t, va, 2, level2);

        var all = Walker(memory, 4096, 48, t.Root).EnumerateMappings(t.Root, KernelHalf48, ulong.MaxValue, 100).ToDictionary(m => m.VirtualAddress);

        Assert.Equal(2, all.Count);
        Assert.Equal(below, (all[va].Writable, all[va].Executable, all[va].User));
        Assert.Equal(elsewhere, (all[sibling].Writable, all[sibling].Executable, all[sibling].User));
        Assert.Equal((0x10_0000UL, 0x20_0000UL), (all[va].PhysicalAddress, all[sibling].PhysicalAddress));
    }

    [Fact]
    public void Ascending_AndClippedToFirstAndLast_ByFirstAddress()
    {
        var memory = new PhysicalMemoryBuilder();
        var kernel = new Arm64PageTableBuilder(memory, 16384, 47);
        var user = new Arm64PageTableBuilder(memory, 16384, 47);
        ulong[] kernelPages = [0xffff_ffff_f000_0000, 0xffff_8000_0000_4000, 0xffff_c000_1234_0000, 0xffff_8000_0000_0000, 0xffff_9abc_def0_0000];
        ulong[] userPages = [0x7fff_ffff_c000, 0x4000, 0x1234_5678_0000];
        ulong block = 0xffff_a000_0200_0000;      // a 32 MiB block starting below 'first' below
        for (int i = 0; i < kernelPages.Length; i++)
        {
            kernel.Map(kernelPages[i], (ulong)(i + 1) << 20);
        }

        for (int i = 0; i < userPages.Length; i++)
        {
            user.Map(userPages[i], (ulong)(i + 16) << 20);
        }

        kernel.Map(block, 0x4000_0000, 1UL << 25);
        var walker = Walker(memory, 16384, 47, kernel.Root);

        var everything = walker.EnumerateMappings(user.Root, 0, ulong.MaxValue, 100).Select(m => m.VirtualAddress).ToList();
        Assert.Equal(userPages.Concat(kernelPages).Append(block).Order(), everything);

        ulong first = block + 0x4000;
        ulong last = 0xffff_ffff_f000_0000;
        var clipped = walker.EnumerateMappings(user.Root, first, last, 100).Select(m => m.VirtualAddress).ToList();
        Assert.Equal(kernelPages.Where(va => va >= first && va <= last).Order(), clipped);

        Assert.Equal(userPages.Where(va => va >= 0x4000 && va <= 0x7fff_ffff_c000).Order(), walker.EnumerateMappings(user.Root, 0x4000, 0x7fff_ffff_c000, 100).Select(m => m.VirtualAddress));
        Assert.Empty(walker.EnumerateMappings(user.Root, 0x0000_8000_0000_0000, 0xffff_7fff_ffff_ffff, 100)); // between the halves
        Assert.Empty(walker.EnumerateMappings(user.Root, last, first, 100));
    }

    [Fact]
    public void MoreTablesThanAllowed_Throws_AndExactlyEnoughDoesNot()
    {
        var memory = new PhysicalMemoryBuilder();
        var kernel = new Arm64PageTableBuilder(memory);
        var user = new Arm64PageTableBuilder(memory);
        kernel.Map(0xffff_8000_0000_0000, 0x10_0000);
        user.Map(0x1000, 0x20_0000);
        var walker = Walker(memory, 4096, 48, kernel.Root);

        // One page in the upper half: the root and three tables below it. One in each half: twice that.
        Assert.Single(walker.EnumerateMappings(user.Root, 0xffff_0000_0000_0000, ulong.MaxValue, 4));
        var e = Assert.Throws<CorruptImageException>(() => walker.EnumerateMappings(user.Root, 0xffff_0000_0000_0000, ulong.MaxValue, 3).ToList());
        Assert.Contains("more than 3 tables", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, walker.EnumerateMappings(user.Root, 0, ulong.MaxValue, 8).Count());
        Assert.Throws<CorruptImageException>(() => walker.EnumerateMappings(user.Root, 0, ulong.MaxValue, 7).ToList());
        Assert.Throws<ArgumentOutOfRangeException>(() => walker.EnumerateMappings(user.Root, 0, ulong.MaxValue, 0).ToList());
    }

    [Fact]
    public void TablesPointingBackAtAnAncestor_OrUnreadable_AreSkipped()
    {
        var memory = new PhysicalMemoryBuilder();
        var t = new Arm64PageTableBuilder(memory);
        ulong va = 0xffff_8000_0000_0000;
        t.Map(va, 0x10_0000);

        // A level-0 entry naming the root itself, a level-1 entry naming the root, and a level-2 entry naming its own
        // table: each would repeat the walk forever (the first through the root, the others through their ancestors).
        t.SetEntry(0xffff_0000_0000_0000, 0, t.Encode(t.Root) | Arm64PageTableBuilder.Table);
        t.SetEntry(va + (1UL << 30), 1, t.Encode(t.Root) | Arm64PageTableBuilder.Table);
        t.SetEntry(va + (1UL << 21), 2, t.Encode(t.TableFor(va, 2)) | Arm64PageTableBuilder.Table);

        // A table outside the image.
        t.SetEntry(va + (2UL << 30), 1, t.Encode(0x7_0000_0000) | Arm64PageTableBuilder.Table);

        var all = Walker(memory, 4096, 48, t.Root).EnumerateMappings(t.Root, KernelHalf48, ulong.MaxValue, 16).ToList();

        var only = Assert.Single(all);
        Assert.Equal((va, 0x10_0000UL), (only.VirtualAddress, only.PhysicalAddress));
    }

    [Fact]
    public void Lpa2And64KibLpa_FiftyTwoBitOutputAddresses_AreDecoded()
    {
        foreach (ulong granule in new ulong[] { 4096, 65536 })
        {
            var memory = new PhysicalMemoryBuilder();
            var t = new Arm64PageTableBuilder(memory, granule, 52);
            ulong va = 0xfff0_0000_0000_0000 + (5 * granule);
            ulong pa = 0x000a_bcde_0000_0000 + (7 * granule);   // bits 51:48 set
            t.Map(va, pa);

            var m = Assert.Single(Walker(memory, granule, 52, t.Root).EnumerateMappings(t.Root, 0xfff0_0000_0000_0000, ulong.MaxValue, 16));
            Assert.Equal((va, pa, granule), (m.VirtualAddress, m.PhysicalAddress, m.Size));
        }
    }

    /// <summary>PAGE_OFFSET, the VA size walked and the granule, and the linear map memory.h gives for them.</summary>
    public static TheoryData<ulong, int, int, ulong, ulong> LinearMaps => new()
    {
        { 0xffff_0000_0000_0000, 48, 4096, 0xffff_0000_0000_0000, 0xffff_8000_0000_0000 },  // 5.4+, 48-bit
        { 0xffff_8000_0000_0000, 48, 4096, 0xffff_8000_0000_0000, 0 },                      // before 5.4: the top half
        { 0xffff_ff80_0000_0000, 39, 4096, 0xffff_ff80_0000_0000, 0xffff_ffc0_0000_0000 },  // 39-bit
        { 0xffff_c000_0000_0000, 47, 16384, 0xffff_c000_0000_0000, 0 },                     // 16 KiB, 47-bit, before 5.4
        { 0xffff_8000_0000_0000, 47, 16384, 0xffff_8000_0000_0000, 0xffff_c000_0000_0000 },  // 16 KiB, 47-bit
        { 0xffff_fc00_0000_0000, 42, 65536, 0xffff_fc00_0000_0000, 0xffff_fe00_0000_0000 },  // 64 KiB, 42-bit
        { 0xfff0_0000_0000_0000, 52, 65536, 0xfff0_0000_0000_0000, 0xffff_8000_0000_0000 },  // 52-bit: PAGE_END from VA_BITS_MIN 48
        { 0xfff0_0000_0000_0000, 48, 4096, 0xfff0_0000_0000_0000, 0xffff_8000_0000_0000 },   // 52-bit kernel on 48-bit hardware
        { 0xfff0_0000_0000_0000, 52, 16384, 0xfff0_0000_0000_0000, 0xffff_c000_0000_0000 },  // 16 KiB 52-bit: VA_BITS_MIN 47
    };

    [Theory]
    [MemberData(nameof(LinearMaps))]
    public void LinearMap_IsPageOffsetToPageEnd(ulong pageOffset, int vaBits, int granule, ulong start, ulong end)
    {
        Assert.Equal((start, end), KernelPageWalker.Arm64LinearMap(pageOffset, vaBits, granule));

        // Pass 1 walks the rest of the kernel half.
        var ranges = KernelPageWalker.Arm64KernelMapRanges(vaBits, start, end);
        ulong kernelHalf = ulong.MaxValue << vaBits;
        var expected = new List<(ulong, ulong)>();
        if (start > kernelHalf)
        {
            expected.Add((kernelHalf, start - 1));
        }

        if (end != 0)
        {
            expected.Add((end, ulong.MaxValue));
        }

        Assert.Equal(expected, ranges);
    }

    [Fact]
    public void LinearMapRanges_OfTheTwoLayouts()
    {
        // 5.4+: modules, vmalloc, vmemmap, fixmap above the linear map; before: all of them below it.
        Assert.Equal([(0xffff_8000_0000_0000UL, ulong.MaxValue)], KernelPageWalker.Arm64KernelMapRanges(48, 0xffff_0000_0000_0000, 0xffff_8000_0000_0000));
        Assert.Equal([(0xffff_0000_0000_0000UL, 0xffff_7fff_ffff_ffffUL)], KernelPageWalker.Arm64KernelMapRanges(48, 0xffff_8000_0000_0000, 0));
    }

    public static TheoryData<ulong, int> FacadeConfigurations => new()
    {
        { 4096, 48 },
        { 16384, 47 },
        { 65536, 42 },
    };

    [Theory]
    [MemberData(nameof(FacadeConfigurations))]
    public void Facade_KernelMapOutsideTheLinearMap_ThenEveryOtherGranuleHeld(ulong granule, int vaBits)
    {
        const ulong PhysOffset = 0x4000_0000;
        var kernel = new FakeArm64Kernel(granule, vaBits, physOffset: PhysOffset, physicalLoad: 0x4400_0000);
        ulong pageEnd = ulong.MaxValue << (vaBits - 1);      // _PAGE_END(VA_BITS), memory.h 5.4+

        // A page just above the linear map (MODULES_VADDR), one just inside it, and data the second pass must list:
        // whole granules above PHYS_OFFSET (linear-mapped) and one below it (not).
        ulong modulePa = PhysOffset + 0x30_0000;
        kernel.Tables.Map(pageEnd, modulePa);
        kernel.Tables.Map(pageEnd - granule, PhysOffset + 0x50_0000);
        kernel.Memory.Write(modulePa, new byte[granule]);
        kernel.Memory.Write(PhysOffset + 0x20_0000, new byte[2 * granule]);
        kernel.Memory.Write(0x1000_0000, new byte[granule]);
        using var file = new TempFile(kernel.ToElf());
        using var image = KernelImage.Open(file.Path);

        var pages = image.EnumeratePages().ToList();
        var kmap = pages.TakeWhile(p => p.IsKernelMapped).ToList();
        var rest = pages.Skip(kmap.Count).ToList();

        ulong Linear(ulong pa) => kernel.Memory.Pages.ContainsKey(pa & ~0xfffUL) && pa >= PhysOffset ? pa - PhysOffset + kernel.PageOffset : 0;

        // Pass 1: the module page, then the image's granule pages; never the linear map's blocks or the page inside it.
        var expected = new List<(ulong Va, ulong Pa, ulong Length)> { (pageEnd, modulePa, granule) };
        for (ulong off = 0; off < FakeArm64Kernel.ImageSize; off += granule)
        {
            expected.Add((kernel.TextVa + off, kernel.PhysicalLoad + off, granule));
        }

        Assert.Equal(expected, kmap.Select(p => (p.KernelMapAddress, p.PhysicalAddress, p.Length)));
        Assert.All(kmap, p => Assert.Equal(PageProtection.Read | PageProtection.Write | PageProtection.Execute, p.Protection));
        Assert.All(kmap, p => Assert.Equal(Linear(p.PhysicalAddress), p.DirectMapAddress));
        Assert.Equal(kernel.PageOffset + 0x30_0000, kmap[0].DirectMapAddress);

        // Pass 2: every whole granule the image holds that pass 1 did not reach, granule-sized, linear-mapped from
        // PHYS_OFFSET up.
        var reached = kmap.Select(p => p.PhysicalAddress).ToHashSet();
        var held = kernel.Memory.Pages.Keys
            .Select(pa => pa & ~(granule - 1))
            .Distinct()
            .Where(g => Enumerable.Range(0, (int)(granule / 4096)).All(i => kernel.Memory.Pages.ContainsKey(g + ((ulong)i * 4096))))
            .Where(g => !reached.Contains(g))
            .Order()
            .ToList();
        Assert.Equal(held, rest.Select(p => p.PhysicalAddress));
        Assert.Contains(PhysOffset + 0x20_0000, held);
        Assert.Contains(PhysOffset + 0x20_0000 + granule, held);
        Assert.Contains(0x1000_0000UL, held);
        Assert.All(rest, p =>
        {
            Assert.Equal(granule, p.Length);
            Assert.Equal(PageProtection.Read | PageProtection.Write, p.Protection);
            Assert.Equal(Linear(p.PhysicalAddress), p.DirectMapAddress);
            Assert.True(p.FileOffset >= 0);
        });
        Assert.Equal(0UL, rest.Single(p => p.PhysicalAddress == 0x1000_0000).DirectMapAddress);
        Assert.Equal(kernel.PageOffset + 0x20_0000, rest.Single(p => p.PhysicalAddress == PhysOffset + 0x20_0000).DirectMapAddress);

        // Every linear-map address given reads the page's bytes.
        var viaLinear = new byte[16];
        var viaPhysical = new byte[16];
        foreach (var p in pages.Where(p => p.DirectMapAddress != 0))
        {
            Assert.Equal(16, image.ReadPhysical(p.PhysicalAddress, viaPhysical));
            image.Read(p.DirectMapAddress, viaLinear);
            Assert.Equal(viaPhysical, viaLinear);
        }
    }

    private static Arm64PageTable Walker(PhysicalMemoryBuilder memory, ulong granule, int vaBits, ulong? kernelRoot) =>
        new(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(granule, vaBits), kernelRoot, 64);

    /// <summary>ORs <paramref name="attributes"/> into the table descriptor at <paramref name="level"/> on <paramref name="va"/>'s path.</summary>
    private static void AddTableAttributes(PhysicalMemoryBuilder memory, Arm64PageTableBuilder t, ulong va, int level, ulong attributes)
    {
        ulong address = t.TableFor(va, level) + ((ulong)t.Index(va, level) * 8);
        ulong entry = memory.ReadUInt64(address);
        Assert.Equal(Arm64PageTableBuilder.Table, entry & 3);
        memory.WriteUInt64(address, entry | attributes);
    }
}
