using Kvm.Testing;
using Kvm.Translation.X64;

namespace Kvm.Tests.Translation;

/// <summary>
/// Enumeration of every leaf of an x86-64 page table (Intel SDM vol. 3A §4.5): 4 KiB PTEs, 2 MiB PDEs and 1 GiB
/// PDPTEs with PS, in ascending address order; access rights combined over the levels as §4.6.1 says; and bounded
/// when the tables are corrupt.
/// </summary>
public sealed class X64PageTableEnumerationTests
{
    private const ulong P = 1;
    private const ulong Rw = 2;
    private const ulong Us = 4;
    private const ulong Ps = 0x80;
    private const ulong Nx = 1UL << 63;
    private const ulong KernelHalf4 = 0xffff800000000000;
    private const ulong KernelHalf5 = 0xff00000000000000;

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Enumerate_MixedPageSizes_YieldsEachLeafOnceInAscendingOrder(bool fiveLevel)
    {
        var memory = new PhysicalMemoryBuilder();
        ulong gig = fiveLevel ? 0xff35000000000000 : 0xffff888000000000;
        var tables = new X64PageTableBuilder(memory, fiveLevel)
            .Map(0xffffffff81000000, 0x4000000, 0x200000)
            .Map(0xffffffffc0001000, 0x7000)
            .Map(0xffffffffc0000000, 0x6000)
            .Map(gig, 0x40000000, 0x40000000)
            .Map(0x00007f0000001000, 0x9000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), fiveLevel ? 5 : 4, 0, 64);

        var all = walker.EnumerateMappings(tables.Root, 0, ulong.MaxValue, 1000).ToList();

        Assert.Equal(
            [
                (0x00007f0000001000UL, 0x9000UL, 4096UL),
                (gig, 0x40000000UL, 0x40000000UL),
                (0xffffffff81000000UL, 0x4000000UL, 0x200000UL),
                (0xffffffffc0000000UL, 0x6000UL, 4096UL),
                (0xffffffffc0001000UL, 0x7000UL, 4096UL),
            ],
            all.Select(m => (m.VirtualAddress, m.PhysicalAddress, m.Size)));
        foreach (var m in all)
        {
            Assert.True(walker.TryTranslate(tables.Root, m.VirtualAddress, out ulong pa, out ulong size, out _));
            Assert.Equal((m.PhysicalAddress, m.Size), (pa, size));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Enumerate_KernelHalfOnly_SkipsUserMappingsAndKeepsCanonicalForm(bool fiveLevel)
    {
        var memory = new PhysicalMemoryBuilder();
        ulong lowestKernel = fiveLevel ? KernelHalf5 : KernelHalf4;
        var tables = new X64PageTableBuilder(memory, fiveLevel)
            .Map(0x1000, 0x3000)
            .Map(lowestKernel, 0x5000)
            .Map(0xfffffffffffff000, 0x8000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), fiveLevel ? 5 : 4, 0, 64);

        var kernel = walker.EnumerateMappings(tables.Root, lowestKernel, ulong.MaxValue, 1000).Select(m => m.VirtualAddress).ToList();

        Assert.Equal([lowestKernel, 0xfffffffffffff000UL], kernel);
    }

    [Fact]
    public void Enumerate_Range_ReportsLeavesByTheirFirstAddress()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory)
            .Map(0xffffffff81000000, 0x4000000, 0x200000)
            .Map(0xffffffff81200000, 0x4200000)
            .Map(0xffffffff81201000, 0x4201000)
            .Map(0xffffffff81202000, 0x4202000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        // The 2 MiB page starts below the range, so it belongs to the range below; the last 4 KiB page's first
        // address is past the inclusive end.
        var inRange = walker.EnumerateMappings(tables.Root, 0xffffffff81100000, 0xffffffff81201fff, 1000).Select(m => m.VirtualAddress).ToList();

        Assert.Equal([0xffffffff81200000UL, 0xffffffff81201000UL], inRange);
        Assert.Empty(walker.EnumerateMappings(tables.Root, 0xffffffff81201fff, 0xffffffff81200000, 1000));
    }

    [Fact]
    public void Enumerate_Protection_CombinesEveryLevel()
    {
        // pgd 0x111 -> pud table 0x2000; pud 0xa2 -> pmd table 0x3000 (writable) and pud 0xa3 -> pmd table 0x5000
        // (read-only); pmd entries lead to PTE table 0x4000 with NX set at the pmd level for one of them.
        var memory = new PhysicalMemoryBuilder();
        memory.WriteUInt64(0x1000 + (0x111 * 8), 0x2000 | P | Rw | Us);
        memory.WriteUInt64(0x2000 + (0xa2 * 8), 0x3000 | P | Rw | Us);
        memory.WriteUInt64(0x2000 + (0xa3 * 8), 0x5000 | P | Us);
        memory.WriteUInt64(0x3000 + (0 * 8), 0x4000 | P | Rw | Us);
        memory.WriteUInt64(0x3000 + (1 * 8), 0x4000 | P | Rw | Nx);
        memory.WriteUInt64(0x3000 + (2 * 8), 0x0000000040000000 | P | Ps);            // 2 MiB, read-only, executable
        memory.WriteUInt64(0x5000 + (0 * 8), 0x0000000080000000 | P | Rw | Ps | Us);  // 2 MiB, RW here but not at the pud
        memory.WriteUInt64(0x4000 + (0 * 8), 0x10000 | P | Rw | Us);                  // rwx, user everywhere
        memory.WriteUInt64(0x4000 + (1 * 8), 0x11000 | P | Rw | Nx);                  // NX at the leaf
        memory.WriteUInt64(0x4000 + (2 * 8), 0x12000 | P);                            // read-only at the leaf
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        var m = walker.EnumerateMappings(0x1000, 0, ulong.MaxValue, 100).ToList();

        ulong pmdBase = 0xffff88a880000000;
        Assert.Equal(
            [
                (pmdBase, true, true, true),
                (pmdBase + 0x1000, true, false, false),
                (pmdBase + 0x2000, false, true, false),
                (pmdBase + 0x200000, true, false, false),            // the same PTE table under an NX pmd
                (pmdBase + 0x201000, true, false, false),
                (pmdBase + 0x202000, false, false, false),
                (pmdBase + 0x400000, false, true, false),
                (pmdBase + 0x40000000, false, true, true),           // RW at the leaf, but not at the pud
            ],
            m.Select(x => (x.VirtualAddress, x.Writable, x.Executable, x.User)));
    }

    [Fact]
    public void Enumerate_NotPresentAndUnreadable_AreSkipped_OutsideLeavesStillReported()
    {
        var memory = new PhysicalMemoryBuilder();
        memory.WriteUInt64(0x1000 + (0x111 * 8), 0x2000 | P | Rw);
        memory.WriteUInt64(0x1000 + (0x112 * 8), 0x2000 | Rw);                  // not present
        memory.WriteUInt64(0x1000 + (0x113 * 8), 0x7770000 | P | Rw);           // table not in memory
        memory.WriteUInt64(0x2000 + (0 * 8), 0x000ffffffff00000 | P | Rw | Ps); // 1 GiB leaf far beyond memory
        memory.WriteUInt64(0x2000 + (1 * 8), 0x40000000 | Ps);                  // not present large page
        var source = new DictionaryPhysicalSource(memory);
        var walker = new X64PageTable(source, 4, 0, 64);

        var m = Assert.Single(walker.EnumerateMappings(0x1000, 0, ulong.MaxValue, 100));

        Assert.Equal((0xffff888000000000UL, 0x000fffffc0000000UL, 0x40000000UL), (m.VirtualAddress, m.PhysicalAddress, m.Size));
    }

    [Fact]
    public void Enumerate_SmeMask_IsClearedFromTablesAndFrames()
    {
        const ulong sme = 1UL << 47;
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory, smeMask: sme).Map(0xffffffff81000000, 0x4000000, 0x200000).Map(0xffffc90000000000, 0x9000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, sme, 64);

        var m = walker.EnumerateMappings(tables.Root, 0, ulong.MaxValue, 100).ToList();

        Assert.Equal([0x9000UL, 0x4000000UL], m.Select(x => x.PhysicalAddress));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Enumerate_SelfReferencingEntries_AreSkippedAndTheWalkEnds(bool fiveLevel)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory, fiveLevel).Map(0xffffffff81000000, 0x4000000);
        ulong root = tables.Root;

        // Every other top-level slot points back at the root, as a recursive (self-map) slot would: read as a
        // lower level, the root would fan out into 511^k bogus mappings.
        for (int i = 0; i < 511; i++)
        {
            memory.WriteUInt64(root + ((ulong)i * 8), root | P | Rw);
        }

        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), fiveLevel ? 5 : 4, 0, 64);
        var m = Assert.Single(walker.EnumerateMappings(root, 0, ulong.MaxValue, 64));
        Assert.Equal(0xffffffff81000000UL, m.VirtualAddress);
    }

    [Fact]
    public void Enumerate_CycleThroughLowerLevels_IsSkipped()
    {
        var memory = new PhysicalMemoryBuilder();
        memory.WriteUInt64(0x1000 + (0x111 * 8), 0x2000 | P | Rw);   // pgd -> pud 0x2000
        memory.WriteUInt64(0x2000 + (5 * 8), 0x3000 | P | Rw);       // pud -> pmd 0x3000
        memory.WriteUInt64(0x3000 + (7 * 8), 0x2000 | P | Rw);       // pmd -> back to the pud table
        memory.WriteUInt64(0x3000 + (8 * 8), 0x1000 | P | Rw);       // pmd -> back to the root
        memory.WriteUInt64(0x3000 + (9 * 8), 0x4000 | P | Rw);       // pmd -> a real PTE table
        memory.WriteUInt64(0x4000, 0x8000 | P | Rw);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        var m = Assert.Single(walker.EnumerateMappings(0x1000, 0, ulong.MaxValue, 64));

        Assert.Equal(0x8000UL, m.PhysicalAddress);
    }

    [Fact]
    public void Enumerate_SharedTables_AreWalkedEachTime()
    {
        // ESPFIX-style sharing (arch/x86/kernel/espfix_64.c): many PMD entries name one PTE table.
        var memory = new PhysicalMemoryBuilder();
        memory.WriteUInt64(0x1000 + (511 * 8), 0x2000 | P | Rw);
        memory.WriteUInt64(0x2000 + (0 * 8), 0x3000 | P | Rw);
        for (int i = 0; i < 512; i++)
        {
            memory.WriteUInt64(0x3000 + ((ulong)i * 8), 0x4000 | P | Rw);
        }

        memory.WriteUInt64(0x4000 + (3 * 8), 0x9000 | P);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        var m = walker.EnumerateMappings(0x1000, 0, ulong.MaxValue, 1000).ToList();

        Assert.Equal(512, m.Count);
        Assert.All(m, x => Assert.Equal(0x9000UL, x.PhysicalAddress));
        Assert.Equal(m.Select(x => x.VirtualAddress).Order(), m.Select(x => x.VirtualAddress));
    }

    [Fact]
    public void Enumerate_HugeFanOut_StopsAtTheTableLimit()
    {
        // Every entry of every level names the next table, and that table's entries all name another: 512^3 tables
        // reachable from three physical pages. The walk must stop at the cap, not run for hours.
        var memory = new PhysicalMemoryBuilder();
        for (int i = 0; i < 512; i++)
        {
            memory.WriteUInt64(0x1000 + ((ulong)i * 8), 0x2000 | P | Rw);
            memory.WriteUInt64(0x2000 + ((ulong)i * 8), 0x3000 | P | Rw);
            memory.WriteUInt64(0x3000 + ((ulong)i * 8), 0x4000 | P | Rw);
            memory.WriteUInt64(0x4000 + ((ulong)i * 8), 0x5000 | P | Rw);
        }

        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        var e = Assert.Throws<CorruptImageException>(() => walker.EnumerateMappings(0x1000, 0, ulong.MaxValue, 5000).Count());

        Assert.Contains("MaxPageTableWalkTables", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Enumerate_UnreadableRoot_YieldsNothing()
    {
        var walker = new X64PageTable(new DictionaryPhysicalSource(new PhysicalMemoryBuilder()), 4, 0, 64);

        Assert.Empty(walker.EnumerateMappings(0x1000, 0, ulong.MaxValue, 10));
    }

    [Fact]
    public void Enumerate_DoesNotFillTheTranslationCache()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X64PageTableBuilder(memory).MapRange(0xffffc90000000000, 0x100000, 0x10000);
        var walker = new X64PageTable(new DictionaryPhysicalSource(memory), 4, 0, 64);

        Assert.Equal(16, walker.EnumerateMappings(tables.Root, 0, ulong.MaxValue, 100).Count());

        Assert.Equal(0, walker.Statistics.Count);
    }
}
