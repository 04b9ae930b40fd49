using Kvm.Testing;
using Kvm.Translation.X86;

namespace Kvm.Tests.Translation;

/// <summary>
/// i386 swap PTEs as Linux 6.1 writes them: pgtable-2level.h (type bits 1..5, offset from bit 9, bit 7 the exclusive
/// marker) and pgtable-3level.h (type bits 59..63, offset inverted from bit 9, as on x86-64).
/// </summary>
public sealed class X86SwapEntryTests
{
    [Theory]
    [InlineData(false, 0, 1UL)]
    [InlineData(false, 1, 21UL)]
    [InlineData(false, 31, 0x7fffffUL)] // 23 offset bits: bits 9..31
    [InlineData(true, 0, 1UL)]
    [InlineData(true, 3, 21UL)]
    [InlineData(true, 31, 0x7ffffffUL)] // 27 offset bits survive the 32-bit swp_entry_t
    public void Decode_InvertsLinuxEncoding(bool pae, int type, ulong offset)
    {
        ulong pte = X86PageTableBuilder.SwapEntry(type, offset, pae);

        Assert.True(X86SwapEntry.IsSwapEntry(pte, pae));
        Assert.Equal(type, X86SwapEntry.Type(pte, pae));
        Assert.Equal(offset, X86SwapEntry.Offset(pte, pae));
        Assert.Equal(pte, X86SwapEntry.Encode(type, offset, pae));
    }

    [Fact]
    public void TwoLevel_KnownValue_FromTheHeaderLayout()
    {
        // type 2, offset 0x1234: (2 << 1) | (0x1234 << 9), with the exclusive marker (bit 7) set as well.
        ulong pte = (2UL << 1) | (0x1234UL << 9) | 0x80;

        Assert.Equal(2, X86SwapEntry.Type(pte, pae: false));
        Assert.Equal(0x1234UL, X86SwapEntry.Offset(pte, pae: false));
    }

    [Theory]
    [InlineData(false, 0UL)]
    [InlineData(false, 0x100UL | (5UL << 12))] // PROT_NONE
    [InlineData(false, 0x1001UL)]              // present
    [InlineData(true, 0UL)]
    [InlineData(true, 0x8000_0000_0000_0100UL)] // PROT_NONE with NX
    public void NotASwapEntry(bool pae, ulong pte) => Assert.False(X86SwapEntry.IsSwapEntry(pte, pae));

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Walker_ReportsSwapEntry_AndDecodesIt(bool pae)
    {
        var memory = new PhysicalMemoryBuilder();
        var tables = new X86PageTableBuilder(memory, pae).Map(0x08048000, 0x5000).SetPte(0x08049000, X86PageTableBuilder.SwapEntry(1, 77, pae));
        var walker = new X86PageTable(new DictionaryPhysicalSource(memory), pae, 64);

        Assert.False(walker.TryTranslate(tables.Root, 0x08049010, out _, out _, out var fault));
        Assert.Equal(TranslationFaultKind.SwapEntry, fault!.Kind);
        Assert.True(walker.TryDecodeSwapEntry(fault.Entry, out int type, out ulong offset));
        Assert.Equal(1, type);
        Assert.Equal(77UL, offset);
    }
}
