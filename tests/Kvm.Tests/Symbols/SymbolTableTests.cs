using Kvm.Symbols;

namespace Kvm.Tests.Symbols;

public sealed class SymbolTableTests
{
    [Fact]
    public void TryLookup_GlobalAfterStatic_GlobalWins()
    {
        var table = Table(("foo", 0xffffffff81000100, 't'), ("foo", 0xffffffff81000200, 'T'));

        Assert.True(table.TryLookup("foo", out var s));
        Assert.Equal(0xffffffff81000200UL, s.Address);
        Assert.Equal('T', s.Type);
    }

    [Fact]
    public void TryLookup_GlobalBeforeStatic_GlobalStillWins()
    {
        // The static comes first in the file and has the higher address: neither order nor address decides.
        var table = Table(("bar", 0xffffffff81000300, 't'), ("bar", 0xffffffff81000100, 'D'), ("bar", 0xffffffff81000500, 'd'));

        Assert.True(table.TryLookup("bar", out var s));
        Assert.Equal(0xffffffff81000100UL, s.Address);
    }

    [Fact]
    public void TryLookup_Missing_IsFalse()
    {
        var table = Table(("foo", 0xffffffff81000100, 'T'));

        Assert.False(table.TryLookup("Foo", out var s));
        Assert.Equal(default, s);
        Assert.Null(table.RawValue("nope"));
    }

    [Theory]
    [InlineData(0xffffffff81000000UL, "_text")]       // exact
    [InlineData(0xffffffff81000010UL, "_text")]       // between
    [InlineData(0xffffffff81000100UL, "do_fork")]     // exact, second
    [InlineData(0xffffffff810001ffUL, "do_fork")]
    [InlineData(0xffffffff82000000UL, "jiffies")]
    [InlineData(0xffffffffffffffffUL, "jiffies")]     // past the last: the last
    public void TryFindByAddress_FindsSymbolAtOrBelow(ulong address, string expected)
    {
        var table = Table(("_text", 0xffffffff81000000, 'T'), ("do_fork", 0xffffffff81000100, 'T'), ("jiffies", 0xffffffff82000000, 'D'));

        Assert.True(table.TryFindByAddress(address, out var s));
        Assert.Equal(expected, s.Name);
    }

    [Fact]
    public void TryFindByAddress_BeforeFirst_IsFalse()
    {
        var table = Table(("_text", 0xffffffff81000000, 'T'), ("do_fork", 0xffffffff81000100, 'T'));

        Assert.False(table.TryFindByAddress(0xffffffff80ffffff, out var s));
        Assert.Equal(default, s);
        Assert.False(table.TryFindByAddress(0, out _));
    }

    [Fact]
    public void TryFindByAddress_Displaced_TakesAndReturnsRuntimeAddresses()
    {
        var table = Table(("current_task", 0x1f000, 'D'), ("_text", 0xffffffff81000000, 'T'), ("do_fork", 0xffffffff81000100, 'T'));
        table.Displacement = 0x2a000000;

        Assert.True(table.TryFindByAddress(0xffffffffab000180, out var s));
        Assert.Equal("do_fork", s.Name);
        Assert.Equal(0xffffffffab000100UL, s.Address);

        // The link-time address itself is now below the displaced text: it falls back to the per-CPU symbol.
        Assert.True(table.TryFindByAddress(0xffffffff81000100, out var low));
        Assert.Equal("current_task", low.Name);

        Assert.True(table.TryFindByAddress(0x1f008, out var percpu));
        Assert.Equal("current_task", percpu.Name);
        Assert.Equal(0x1f000UL, percpu.Address);
    }

    [Theory]
    [InlineData(0xffffffff80000000UL, 0xffffffff80001000UL)] // __START_KERNEL_map itself is displaced
    [InlineData(0xffffffff7fffffffUL, 0xffffffff7fffffffUL)] // just below is not
    [InlineData(0xffff888000000000UL, 0xffff888000000000UL)]
    public void TryLookup_DisplacementBoundary_IsStartKernelMap(ulong raw, ulong expected)
    {
        var table = Table(("sym", raw, 'T'));
        table.Displacement = 0x1000;

        Assert.True(table.TryLookup("sym", out var s));
        Assert.Equal(expected, s.Address);
    }

    [Fact]
    public void Enumerate_ReturnsDisplacedSymbolsSortedByAddress()
    {
        var table = Table(("b", 0xffffffff81000200, 'T'), ("pcpu", 0x10, 'D'), ("a", 0xffffffff81000100, 'T'));
        table.Displacement = 0x100000;

        Assert.Equal(
            [("pcpu", 0x10UL), ("a", 0xffffffff81100100UL), ("b", 0xffffffff81100200UL)],
            table.Enumerate().Select(s => (s.Name, s.Address)));
    }

    private static SymbolTable Table(params (string Name, ulong Address, char Type)[] symbols) =>
        new("test", NamelistKind.SystemMap, symbols.Select(s => new KernelSymbol(s.Name, s.Address, s.Type, "test")));
}
