using Kvm.Testing;
using Kvm.Translation.X86;

namespace Kvm.Tests.Translation;

/// <summary>The 32-bit walker's leaf enumeration: order, ranges, large pages, combined rights, and corrupt tables.</summary>
public sealed class X86PageTableEnumerationTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Enumerate_YieldsEveryLeafInAscendingOrder_AndAgreesWithTranslate(bool pae)
    {
        var memory = new PhysicalMemoryBuilder();
        ulong large = pae ? 0x200000UL : 0x400000UL;
        var tables = new X86PageTableBuilder(memory, pae)
            .Map(0xf8000000, 0x9000)
            .Map(0xc0000000, 0, large)
            .Map(0x08048000, 0x123000)
            .Map(0xfffff000, 0x77000);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae, 64);

        var mappings = walker.EnumerateMappings(tables.Root, 0, uint.MaxValue, 1000).ToList();

        Assert.Equal([0x08048000UL, 0xc0000000, 0xf8000000, 0xfffff000], mappings.Select(m => m.VirtualAddress));
        Assert.Equal([4096UL, large, 4096, 4096], mappings.Select(m => m.Size));
        foreach (var m in mappings)
        {
            Assert.True(walker.TryTranslate(tables.Root, m.VirtualAddress, out ulong pa, out ulong size, out _));
            Assert.Equal(m.PhysicalAddress, pa);
            Assert.Equal(m.Size, size);
        }
    }

    [Fact]
    public void Enumerate_RangeLimits_AreInclusive()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae: true).Map(0xc0000000, 0x1000).Map(0xc0001000, 0x2000).Map(0xc0002000, 0x3000);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae: true, 64);

        var mappings = walker.EnumerateMappings(tables.Root, 0xc0001000, 0xc0001fff, 1000).ToList();

        Assert.Equal(0xc0001000UL, Assert.Single(mappings).VirtualAddress);
    }

    [Fact]
    public void Pae_Rights_CombineDirectoryAndTable_PdptDoesNotRestrict()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae: true) { LeafFlags = X86PageTableBuilder.NoExecute };
        tables.Map(0xc1000000, 0x1000000);
        tables.LeafFlags = X86PageTableBuilder.User;
        tables.Map(0x08048000, 0x5000);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae: true, 64);

        var byVa = walker.EnumerateMappings(tables.Root, 0, uint.MaxValue, 100).ToDictionary(m => m.VirtualAddress);

        // The builder's PDPTEs hold only P (as Linux writes them): R/W, U/S and XD come from the PD and PT entries.
        Assert.True(byVa[0xc1000000].Writable);
        Assert.False(byVa[0xc1000000].Executable);
        Assert.False(byVa[0xc1000000].User);
        Assert.True(byVa[0x08048000].Executable);
        Assert.True(byVa[0x08048000].User);
    }

    [Fact]
    public void TwoLevel_NothingDisablesExecution()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae: false) { LeafFlags = 1UL << 63 }.Map(0xc1000000, 0x1000000);
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae: false, 64);

        Assert.True(Assert.Single(walker.EnumerateMappings(tables.Root, 0, uint.MaxValue, 100)).Executable);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Enumerate_TableThatPointsAtItsOwnPath_IsSkipped(bool pae)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae).Map(0xc0000000, 0x1000);

        // A directory entry pointing back at the top-level table, the way a corrupt (or recursive) map would.
        tables.SetEntry(0xc0400000, pae ? 1 : 0, tables.Root | X86PageTableBuilder.Present | X86PageTableBuilder.Writable);
        if (pae)
        {
            ulong pd = tables.TableAt(0xc0000000, 1);
            tables.SetEntry(0xc0600000, 1, pd | X86PageTableBuilder.Present);
        }

        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae, 64);

        var mappings = walker.EnumerateMappings(tables.Root, 0, uint.MaxValue, 1000).ToList();

        Assert.Contains(mappings, m => m.VirtualAddress == 0xc0000000);
    }

    [Fact]
    public void Enumerate_MoreTablesThanTheCap_Throws()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae: false);
        for (ulong va = 0; va < 0x4000000; va += 0x400000)
        {
            tables.Map(va, va);
        }

        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae: false, 64);

        Assert.Throws<CorruptImageException>(() => walker.EnumerateMappings(tables.Root, 0, uint.MaxValue, 8).ToList());
    }

    [Fact]
    public void Enumerate_GarbageTables_StayBounded()
    {
        // Every PDE present and pointing at the same garbage page: 1024 leaves per table at most, nothing loops.
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae: false);
        ulong garbage = memory.AllocatePage();
        var junk = new byte[4096];
        new Random(7).NextBytes(junk);
        memory.Write(garbage, junk);
        for (int i = 0; i < 1024; i++)
        {
            memory.Write(tables.Root + ((ulong)i * 4), BitConverter.GetBytes((uint)garbage | 1));
        }

        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae: false, 64);

        int count = walker.EnumerateMappings(tables.Root, 0, uint.MaxValue, 2048).Count();

        Assert.InRange(count, 1, 1024 * 1024);
    }
}
