using Kvm.Testing;
using Kvm.Translation.Arm64;

namespace Kvm.Tests.Translation;

/// <summary>
/// The AArch64 walker against the VMSAv8-64 descriptor formats (Arm ARM D8) for every granule and virtual-address
/// size Linux builds (arch/arm64/Kconfig ARM64_VA_BITS_*), through tables built by <see cref="Arm64PageTableBuilder"/>.
/// </summary>
public sealed class Arm64PageTableTests
{
    /// <summary>Every (granule, VA bits) Linux supports, with the levels and top-table entries the Arm ARM gives.</summary>
    public static TheoryData<ulong, int, int, int> LinuxConfigurations => new()
    {
        { 4096, 39, 3, 512 },
        { 4096, 48, 4, 512 },
        { 4096, 52, 5, 16 },
        { 16384, 36, 2, 2048 },
        { 16384, 47, 3, 2048 },
        { 16384, 48, 4, 2 },
        { 16384, 52, 4, 32 },
        { 65536, 42, 2, 8192 },
        { 65536, 48, 3, 64 },
        { 65536, 52, 3, 1024 },
    };

    [Theory]
    [MemberData(nameof(LinuxConfigurations))]
    public void Format_LevelsAndTopEntries_MatchTheArchitecture(ulong granule, int vaBits, int levels, int topEntries)
    {
        var format = Arm64PagingFormat.Create(granule, vaBits);

        Assert.Equal(levels, format.Levels);
        Assert.Equal(topEntries, format.TopEntries);
        Assert.Equal($"{granule >> 10} KiB granule, {vaBits}-bit VA, {levels} levels{(vaBits == 52 && granule != 65536 ? ", LPA2" : "")}", format.ToString());
    }

    [Theory]
    [MemberData(nameof(LinuxConfigurations))]
    public void Translate_KernelAndUserPages_InEveryConfiguration(ulong granule, int vaBits, int levels, int topEntries)
    {
        _ = topEntries;
        var memory = new PhysicalMemoryBuilder();
        var kernel = new Arm64PageTableBuilder(memory, granule, vaBits);
        var user = new Arm64PageTableBuilder(memory, granule, vaBits);
        ulong kernelVa = (ulong.MaxValue << vaBits) | (0x5a5a5a5a5a5aUL << 12 & ((1UL << vaBits) - 1) & ~(granule - 1));
        ulong userVa = (0x3c3c3c3c3c3cUL << 12) & ((1UL << vaBits) - 1) & ~(granule - 1);
        kernel.Map(kernelVa, 0x1234_5678UL * granule & 0x0000_7fff_ffff_ffffUL);
        user.Map(userVa, 0x2468_ace0UL * granule & 0x0000_7fff_ffff_ffffUL);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(granule, vaBits), kernel.Root, 64);

        Assert.Equal(levels, walker.Levels);
        Assert.True(walker.TryTranslate(user.Root, kernelVa + 0x123, out ulong kpa, out ulong kSize, out var kFault), kFault?.Message);
        Assert.Equal((0x1234_5678UL * granule & 0x0000_7fff_ffff_ffffUL) + 0x123, kpa);
        Assert.Equal(granule, kSize);
        Assert.True(walker.TryTranslate(user.Root, userVa + granule - 1, out ulong upa, out _, out var uFault), uFault?.Message);
        Assert.Equal((0x2468_ace0UL * granule & 0x0000_7fff_ffff_ffffUL) + granule - 1, upa);

        var walk = walker.Describe(user.Root, userVa);
        Assert.Equal(levels, walk.Steps.Count);
        Assert.Equal(user.Root, walk.Steps[0].TableAddress);
        Assert.True(walk.Steps[^1].IsLeaf);
        Assert.All(walk.Steps.SkipLast(1), s => Assert.False(s.IsLeaf));
    }

    [Theory]
    [InlineData(4096UL, 48, 1UL << 30)]   // level 1 block
    [InlineData(4096UL, 48, 1UL << 21)]   // level 2 block
    [InlineData(4096UL, 39, 1UL << 30)]   // level 1 block at the top of a 3-level table
    [InlineData(4096UL, 52, 1UL << 39)]   // level 0 block, LPA2 only
    [InlineData(16384UL, 47, 1UL << 25)]  // level 2 block
    [InlineData(16384UL, 52, 1UL << 36)]  // level 1 block, LPA2 only
    [InlineData(65536UL, 48, 1UL << 29)]  // level 2 block
    [InlineData(65536UL, 52, 1UL << 42)]  // level 1 block (FEAT_LPA)
    public void Translate_Block_KeepsOffsetWithinBlock(ulong granule, int vaBits, ulong blockSize)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, granule, vaBits);
        ulong va = (ulong.MaxValue << vaBits) + (3 * blockSize);
        ulong pa = 5 * blockSize;
        tables.Map(va, pa, blockSize);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(granule, vaBits), null, 64);

        Assert.True(walker.TryTranslate(tables.Root, va + blockSize - 8, out ulong result, out ulong size, out var fault), fault?.Message);
        Assert.Equal(pa + blockSize - 8, result);
        Assert.Equal(blockSize, size);
        Assert.True(walker.Describe(tables.Root, va).Steps[^1].IsLeaf);
    }

    [Theory]
    [InlineData(4096UL, 48, 0, "pgd")]   // 512 GiB block without LPA2: invalid
    [InlineData(16384UL, 47, 0, "pgd")]  // 64 GiB block without LPA2: invalid
    [InlineData(4096UL, 48, 3, "pte")]   // 01 at the last level is reserved
    public void Translate_BlockWhereNoneIsAllowed_Faults(ulong granule, int vaBits, int level, string name)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, granule, vaBits);
        ulong va = ulong.MaxValue << vaBits;
        tables.SetEntry(va, level, 0x40000000 | Arm64PageTableBuilder.Block | Arm64PageTableBuilder.AccessFlag);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(granule, vaBits), null, 64);

        Assert.False(walker.TryTranslate(tables.Root, va, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.NotPresent, fault!.Kind);
        Assert.Equal(name, fault.Level);
    }

    [Fact]
    public void Translate_64KGranule_TakesPhysicalBits51To48FromBits15To12()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, 65536, 52);
        const ulong Pa = 0x000f_1234_5678_0000UL;
        tables.Map(0xfff0_0000_0001_0000UL, Pa);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(65536, 52), null, 16);

        Assert.True(walker.TryTranslate(tables.Root, 0xfff0_0000_0001_0abcUL, out ulong pa, out _, out var fault), fault?.Message);
        Assert.Equal(Pa + 0xabc, pa);
        Assert.Equal(0xfUL << 12, walker.Describe(tables.Root, 0xfff0_0000_0001_0000UL).Steps[^1].Entry & 0xf000);
    }

    [Theory]
    [InlineData(4096UL)]
    [InlineData(16384UL)]
    public void Translate_Lpa2_TakesPhysicalBits51To50FromBits9To8(ulong granule)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, granule, 52);
        ulong pa = 0x000f_1234_5678_0000UL & ~(granule - 1);
        ulong va = 0xfff0_0000_0000_0000UL + (7 * granule);
        tables.Map(va, pa);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(granule, 52), null, 16);

        Assert.True(walker.TryTranslate(tables.Root, va + 0x10, out ulong result, out _, out var fault), fault?.Message);
        Assert.Equal(pa + 0x10, result);
    }

    [Fact]
    public void Translate_48BitWith4K_IgnoresShareabilityBits9To8()
    {
        // Without LPA2, bits [9:8] are SH (inner shareable, 0b11, on every Linux mapping): not address bits.
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, 4096, 48);
        tables.Map(0xffff_0000_1234_5000UL, 0x8765_4000UL);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(4096, 48), null, 16);

        Assert.True(walker.TryTranslate(tables.Root, 0xffff_0000_1234_5000UL, out ulong pa, out _, out _));
        Assert.Equal(0x8765_4000UL, pa);
        Assert.Equal(Arm64PageTableBuilder.InnerShareable, walker.Describe(tables.Root, 0xffff_0000_1234_5000UL).Steps[^1].Entry & 0x300);
    }

    [Fact]
    public void Translate_ContiguousHint_IsIgnored()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, 4096, 48) { LeafAttributes = Arm64PageTableBuilder.AccessFlag | Arm64PageTableBuilder.Contiguous };
        for (ulong i = 0; i < 16; i++)
        {
            tables.Map(0xffff_8000_0801_0000UL + (i * 4096), 0x4001_0000UL + (i * 4096));
        }

        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(4096, 48), null, 16);
        for (ulong i = 0; i < 16; i++)
        {
            Assert.True(walker.TryTranslate(tables.Root, 0xffff_8000_0801_0000UL + (i * 4096) + 4, out ulong pa, out ulong size, out _));
            Assert.Equal(0x4001_0000UL + (i * 4096) + 4, pa);
            Assert.Equal(4096UL, size);
        }
    }

    [Theory]
    [InlineData(4096UL, 48, new[] { "pgd", "pud", "pmd", "pte" })]
    [InlineData(4096UL, 39, new[] { "pgd", "pmd", "pte" })]
    [InlineData(65536UL, 42, new[] { "pgd", "pte" })]
    [InlineData(4096UL, 52, new[] { "pgd", "p4d", "pud", "pmd", "pte" })]
    public void Describe_NamesLevelsAsLinuxFoldsThem(ulong granule, int vaBits, string[] names)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, granule, vaBits);
        ulong va = ulong.MaxValue << vaBits;
        tables.Map(va, 0x100000UL * granule);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(granule, vaBits), null, 16);

        Assert.Equal(names, walker.Describe(tables.Root, va).Steps.Select(s => s.Level));
    }

    [Fact]
    public void Translate_NotPresent_NamesLevelIndexAndEntry()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, 4096, 48);

        // pgd index 0x100, pud 5, pmd 3: the pmd table exists (its pte table does not).
        ulong va = 0xffff_8001_4060_0000UL;
        tables.TableFor(va, 2);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(4096, 48), null, 16);

        Assert.False(walker.TryTranslate(tables.Root, va, out _, out _, out var fault));
        Assert.Equal("cannot translate 0xffff800140600000: pmd[3] = 0x0 not present", fault!.Message);
        Assert.Equal(tables.TableFor(va, 2), fault.TableAddress);
    }

    [Theory]
    [InlineData(48, 0x0001_0000_0000_0000UL)]
    [InlineData(48, 0xfffe_ffff_ffff_f000UL)]
    [InlineData(39, 0xffff_ff00_0000_0000UL)]
    public void Translate_OutsideBothHalves_IsNonCanonical(int vaBits, ulong va)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory, 4096, vaBits);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(4096, vaBits), null, 16);

        Assert.False(walker.TryTranslate(tables.Root, va, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.NonCanonical, fault!.Kind);
    }

    [Fact]
    public void Translate_UpperHalf_AlwaysWalksTheKernelRoot()
    {
        // TTBR1 serves the upper half whatever process runs: a user root only serves the lower half.
        var memory = new PhysicalMemoryBuilder();
        var kernel = new Arm64PageTableBuilder(memory).Map(0xffff_8000_0000_1000UL, 0x5000);
        var user = new Arm64PageTableBuilder(memory).Map(0xffff_8000_0000_1000UL, 0x6000).Map(0x1000, 0x7000);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(4096, 48), kernel.Root, 16);

        Assert.True(walker.TryTranslate(user.Root, 0xffff_8000_0000_1000UL, out ulong kpa, out _, out _));
        Assert.Equal(0x5000UL, kpa);
        Assert.True(walker.TryTranslate(user.Root, 0x1000, out ulong upa, out _, out _));
        Assert.Equal(0x7000UL, upa);
        Assert.False(walker.TryTranslate(kernel.Root, 0x1000, out _, out _, out _));
    }

    [Fact]
    public void Translate_TableOutsideTheImage_IsUnreadable()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory);
        ulong va = 0xffff_0000_0000_0000UL;
        tables.SetEntry(va, 0, 0x7777_0000_0000UL | Arm64PageTableBuilder.Table);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(4096, 48), null, 16);

        Assert.False(walker.TryTranslate(tables.Root, va, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.TableUnreadable, fault!.Kind);
        Assert.Equal("pud", fault.Level);
        Assert.Equal(0x7777_0000_0000UL, fault.TableAddress);
    }

    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    public void Translate_SwapPte_IsASwapEntryThatDecodesForLinux518And61(int typeShift)
    {
        var memory = new PhysicalMemoryBuilder();
        ulong pte = Arm64PageTableBuilder.SwapEntry(3, 0x12345, typeShift);
        var tables = new Arm64PageTableBuilder(memory).SetPte(0x40_0000, pte);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(4096, 48), null, 16);

        Assert.False(walker.TryTranslate(tables.Root, 0x40_0123, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.SwapEntry, fault!.Kind);
        Assert.Equal(pte, fault.Entry);
        Assert.Equal(3, Arm64SwapEntry.Type(fault.Entry, typeShift));
        Assert.Equal(0x12345UL, Arm64SwapEntry.Offset(fault.Entry));
    }

    [Theory]
    [InlineData("5.18.19", 2)]
    [InlineData("5.10.0-30-arm64", 2)]
    [InlineData("5.19.0", 3)]
    [InlineData("6.1.0-50-arm64", 3)]
    [InlineData("6.12.9-arm64", 3)]
    [InlineData(null, 3)]
    public void SwapTypeShift_FollowsTheKernelRelease(string? release, int shift) =>
        Assert.Equal(shift, Arm64SwapEntry.TypeShift(Kvm.Linux.SwapEntryFormat.ParseRelease(release)));

    [Fact]
    public void Translate_ProtNone_IsNotASwapEntry()
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory).SetPte(0x40_0000, 0x8000_0000UL | Arm64PageTableBuilder.ProtNone | Arm64PageTableBuilder.AccessFlag);
        var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(4096, 48), null, 16);

        Assert.False(walker.TryTranslate(tables.Root, 0x40_0000, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.NotPresent, fault!.Kind);
    }

    [Fact]
    public void Translate_TableThatPointsAtItself_EndsWithinTheLevelCount()
    {
        // A corrupt pgd whose entries are tables pointing back at the pgd: the walk is bounded by the level count.
        var memory = new PhysicalMemoryBuilder();
        var tables = new Arm64PageTableBuilder(memory);
        for (int i = 0; i < 512; i++)
        {
            memory.WriteUInt64(tables.Root + ((ulong)i * 8), tables.Root | Arm64PageTableBuilder.Table);
        }

        var source = new DictionaryPhysicalSource(memory);
        var walker = new Arm64PageTable(source, Arm64PagingFormat.Create(4096, 48), null, 0);
        var walk = walker.Describe(tables.Root, 0xffff_0000_0000_0000UL);

        Assert.Equal(4, walk.Steps.Count);
        Assert.True(walk.Succeeded);
        Assert.Equal(tables.Root, walk.PhysicalAddress);
        Assert.Equal(4, source.Reads);
    }

    [Fact]
    public void Translate_RandomTables_NeverThrowNorLoop()
    {
        var random = new Random(61);
        foreach (var (granule, vaBits) in new[] { (4096UL, 48), (4096UL, 52), (16384UL, 47), (65536UL, 42), (65536UL, 52) })
        {
            var memory = new PhysicalMemoryBuilder(0);
            for (ulong pa = 0; pa < 0x40000; pa += 4096)
            {
                var page = new byte[4096];
                random.NextBytes(page);

                // Point many entries back into the random pages so walks go deep.
                for (int i = 0; i < 512; i += 3)
                {
                    BitConverter.GetBytes((ulong)random.Next(0, 0x40) * 4096 | 3).CopyTo(page, i * 8);
                }

                memory.Write(pa, page);
            }

            var walker = new Arm64PageTable(new DictionaryPhysicalSource(memory), Arm64PagingFormat.Create(granule, vaBits), 0x1000, 8);
            for (int n = 0; n < 2000; n++)
            {
                ulong va = (ulong)random.NextInt64();
                va = (n & 1) == 0 ? va & ((1UL << vaBits) - 1) : va | (ulong.MaxValue << vaBits);
                var walk = walker.Describe((ulong)random.Next(0, 0x40) * 4096, va);
                Assert.InRange(walk.Steps.Count, 0, walker.Levels);
                Assert.Equal(walk.Succeeded, walk.Fault is null);
            }
        }
    }

    [Fact]
    public void Create_RejectsWhatTheArchitectureCannotTranslate()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => Arm64PagingFormat.Create(8192, 48));
        Assert.Throws<ArgumentOutOfRangeException>(() => Arm64PagingFormat.Create(4096, 53));
        Assert.Throws<ArgumentOutOfRangeException>(() => Arm64PagingFormat.Create(65536, 28));
        Assert.Throws<ArgumentException>(() => Arm64PagingFormat.Create(65536, 52, lpa2: true));
    }
}
