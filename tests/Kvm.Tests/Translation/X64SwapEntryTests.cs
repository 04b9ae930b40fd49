using Kvm.Testing;
using Kvm.Translation.X64;

namespace Kvm.Tests.Translation;

/// <summary>
/// Swap PTEs as arch/x86/include/asm/pgtable_64.h (Linux 4.20+) encodes them:
/// <c>__swp_entry(type, offset) = (~offset &lt;&lt; 14 &gt;&gt; 5) | (type &lt;&lt; 59)</c>.
/// </summary>
public sealed class X64SwapEntryTests
{
    [Theory]
    [InlineData(0x0ffffffffffffe00UL, 1, 0x0UL)]              // type 1, offset 0
    [InlineData(0x17ffffffffdffe00UL, 2, 0x1000UL)]             // type 2, offset 0x1000
    [InlineData(0xf800000000000200UL, 31, 0x3fffffffffffeUL)]   // type 31, offset 2^50 - 2
    [InlineData(0x07fffffffffffc00UL, 0, 0x1UL)]                // type 0, offset 1
    public void Decode_KernelEncodedLiterals_GivesTypeAndOffset(ulong pte, int type, ulong offset)
    {
        Assert.Equal(type, X64SwapEntry.Type(pte));
        Assert.Equal(offset, X64SwapEntry.Offset(pte));
        Assert.True(X64SwapEntry.IsSwapEntry(pte));
    }

    [Fact]
    public void Decode_EveryTypeWithSeveralOffsets_RoundTripsTheBuilderEncoding()
    {
        ulong[] offsets = [0, 1, 0xfff, 0x12345, 0xdeadbeef, 1UL << 40, (1UL << 49) + 3, (1UL << 50) - 2];
        for (int type = 0; type < 32; type++)
        {
            foreach (ulong offset in offsets)
            {
                ulong pte = X64PageTableBuilder.SwapEntry(type, offset);
                Assert.Equal(type, X64SwapEntry.Type(pte));
                Assert.Equal(offset, X64SwapEntry.Offset(pte));
                Assert.Equal(0UL, pte & 0x1ff);
            }
        }
    }

    [Fact]
    public void Builder_SwapEntry_MatchesKernelMacroLiteral()
    {
        // Guards the builder against the kernel's macro, evaluated by hand.
        Assert.Equal(0x17ffffffffdffe00UL, X64PageTableBuilder.SwapEntry(2, 0x1000));
    }

    [Theory]
    [InlineData(0x0UL, false)]                      // pte_none
    [InlineData(0x12345003UL, false)]               // present
    [InlineData(0x7fffffffedcba100UL, false)]       // PROT_NONE (bit 8)
    [InlineData(0x17ffffffffdffe00UL, true)]
    public void IsSwapEntry_ClassifiesEntries(ulong pte, bool expected)
    {
        Assert.Equal(expected, X64SwapEntry.IsSwapEntry(pte));
    }
}
