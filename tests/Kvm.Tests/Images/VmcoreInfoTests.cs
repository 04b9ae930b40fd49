using System.Text;

namespace Kvm.Tests.Images;

/// <summary>VMCOREINFO text (include/linux/vmcore_info.h, kernel/vmcore_info.c) as the kernel writes it.</summary>
public sealed class VmcoreInfoTests
{
    [Theory]
    [InlineData("4096", 4096L)]
    [InlineData("0", 0L)]
    [InlineData("-1048576", -1048576L)]
    [InlineData("+17", 17L)]
    [InlineData("0x1000", 0x1000L)]
    [InlineData("0X1f", 0x1fL)]
    [InlineData("0xffffffff80000000", unchecked((long)0xffffffff80000000))]
    [InlineData("0xffffffffffffffff", -1L)]
    [InlineData("-0x10", -16L)]
    [InlineData("010", 8L)]
    [InlineData("0777", 511L)]
    [InlineData(" 42 ", 42L)]
    [InlineData("18446744073709551615", -1L)] // wraps like strtoull into a signed long
    public void GetNumber_StrtoullBaseZeroRules(string text, long expected)
    {
        var info = Parse($"NUMBER(x)={text}\n");

        Assert.Equal(expected, info.GetNumber("x"));
    }

    [Theory]
    [InlineData("")]
    [InlineData("abc")]
    [InlineData("0x")]
    [InlineData("12abc")]
    [InlineData("0xg")]
    [InlineData("-")]
    [InlineData("1 2")]
    public void GetNumber_Unparsable_IsNull(string text)
    {
        var info = Parse($"NUMBER(x)={text}\n");

        Assert.Null(info.GetNumber("x"));
        Assert.Equal(text, info.Get("NUMBER(x)"));
    }

    [Fact]
    public void GetNumber_NegativePhysBase_IsSigned()
    {
        var info = Parse("NUMBER(phys_base)=-1048576\n");

        Assert.Equal(-1048576L, info.GetNumber("phys_base"));
    }

    [Fact]
    public void Parse_RepeatedKey_LastOccurrenceWins()
    {
        var info = Parse("OSRELEASE=5.10.0\nNUMBER(x)=1\nOSRELEASE=6.1.0\nNUMBER(x)=2\n");

        Assert.Equal("6.1.0", info.OsRelease);
        Assert.Equal(2L, info.GetNumber("x"));
    }

    [Fact]
    public void WellKnownKeys_AreDecoded()
    {
        var info = Parse("OSRELEASE=6.1.0-13-amd64\nPAGESIZE=4096\nKERNELOFFSET=2a000000\nCRASHTIME=1700000000\n");

        Assert.Equal("6.1.0-13-amd64", info.OsRelease);
        Assert.Equal(4096, info.PageSize);
        Assert.Equal(0x2a000000UL, info.KernelOffset);
        Assert.Equal("1700000000", info.Get("CRASHTIME"));
    }

    [Theory]
    [InlineData("PAGESIZE=0\n")]
    [InlineData("PAGESIZE=-4096\n")]
    [InlineData("PAGESIZE=four\n")]
    [InlineData("OSRELEASE=6.1\n")]
    public void PageSize_MissingOrInvalid_IsNull(string text)
    {
        Assert.Null(Parse(text).PageSize);
    }

    [Fact]
    public void KernelOffset_MissingOrNotHex_IsNull()
    {
        Assert.Null(Parse("OSRELEASE=6.1\n").KernelOffset);
        Assert.Null(Parse("KERNELOFFSET=zz\n").KernelOffset);
    }

    [Fact]
    public void TypedGetters_ReadTheirOwnKeys()
    {
        var info = Parse(
            "SYMBOL(init_uts_ns)=ffffffff82a12340\n" +
            "SYMBOL(bad)=not-hex\n" +
            "OFFSET(uts_namespace.name)=4\n" +
            "SIZE(page)=64\n" +
            "LENGTH(zone.free_area)=11\n" +
            "NUMBER(pgtable_l5_enabled)=1\n");

        Assert.Equal(0xffffffff82a12340UL, info.GetSymbol("init_uts_ns"));
        Assert.Null(info.GetSymbol("bad"));
        Assert.Null(info.GetSymbol("missing"));
        Assert.Equal(4L, info.GetOffset("uts_namespace.name"));
        Assert.Equal(64L, info.GetSize("page"));
        Assert.Equal(11L, info.GetLength("zone.free_area"));
        Assert.Equal(1L, info.GetNumber("pgtable_l5_enabled"));
        Assert.Null(info.GetSize("uts_namespace.name"));
        Assert.Null(info.GetOffset("page"));
    }

    [Fact]
    public void Parse_TextAfterNul_IsIgnored()
    {
        var bytes = Encoding.ASCII.GetBytes("OSRELEASE=6.1\n\0PAGESIZE=4096\nNUMBER(x)=5\n");

        var info = VmcoreInfo.Parse(bytes, "test");

        Assert.Equal("6.1", info.OsRelease);
        Assert.Null(info.PageSize);
        Assert.Null(info.GetNumber("x"));
        Assert.Equal("OSRELEASE=6.1\n", info.Text);
    }

    [Fact]
    public void Parse_CrLfLines_AreTolerated()
    {
        var info = Parse("OSRELEASE=6.1.0\r\nPAGESIZE=4096\r\nSYMBOL(_stext)=ffffffff81000000\r\n");

        Assert.Equal("6.1.0", info.OsRelease);
        Assert.Equal(4096, info.PageSize);
        Assert.Equal(0xffffffff81000000UL, info.GetSymbol("_stext"));
    }

    [Fact]
    public void Parse_ValueWithEqualsAndLinesWithoutKey_SplitOnFirstEquals()
    {
        var info = Parse("BUILD-ID=a=b\nno equals here\n=orphan\n\nKEY=\n");

        Assert.Equal("a=b", info.Get("BUILD-ID"));
        Assert.Equal(string.Empty, info.Get("KEY"));
        Assert.Equal(2, info.Values.Count);
    }

    [Fact]
    public void Parse_KeepsSourceAndUnknownKeys()
    {
        var info = VmcoreInfo.Parse("FOO(bar)=baz\n"u8, "kdump header");

        Assert.Equal("kdump header", info.Source);
        Assert.Equal("baz", info.Values["FOO(bar)"]);
        Assert.Null(info.OsRelease);
    }

    private static VmcoreInfo Parse(string text) => VmcoreInfo.Parse(Encoding.ASCII.GetBytes(text), "test");
}
