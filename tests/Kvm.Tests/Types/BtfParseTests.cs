using Kvm.Testing;
using Kvm.Types;

namespace Kvm.Tests.Types;

public sealed class BtfParseTests
{
    /// <summary>One type of every kind 1..19, ids noted in comments.</summary>
    private static BtfBuilder EveryKind()
    {
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, 32, signed: true);                                  // 1
        int ptr = b.Pointer(i32);                                                     // 2
        int arr = b.Array(i32, i32, 3);                                               // 3
        int st = b.Struct("pair", 8, ("a", i32, 0, 0), ("b", i32, 32, 0));           // 4
        b.Union("either", 4, ("x", i32, 0, 0), ("y", ptr, 0, 0));                     // 5
        b.Enum("color", 4, false, ("RED", 0), ("BIG", -2));                           // 6
        b.Forward("later", union: true);                                              // 7
        int td = b.Typedef("pair_t", st);                                             // 8
        b.Volatile(i32);                                                              // 9
        b.Const(i32);                                                                 // 10
        b.Restrict(ptr);                                                              // 11
        b.Function("printk", b.NextId + 1, linkage: 1);                              // 12, forward reference to 13
        b.FunctionProto(i32, true, ("fmt", ptr));                                     // 13
        int v = b.Variable("counter", i32, linkage: 1);                               // 14
        b.DataSection(".data..percpu", 16, (v, 8, 4));                                // 15
        b.Float("double", 8);                                                         // 16
        b.DeclTag("bpf_kfunc", td, -1);                                               // 17
        b.TypeTag("rcu", st);                                                         // 18
        b.Enum64("big", 8, false, ("HUGE", 0xffff_ffff_0000_0001UL));                // 19
        _ = arr;
        return b;
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Parse_EveryKind_DecodesEachRecord(bool bigEndian)
    {
        var c = TypeCatalog.Parse(EveryKind().Build(bigEndian), "test");

        Assert.Equal(bigEndian, c.IsBigEndian);
        Assert.Equal(19, c.Count);
        for (int id = 1; id <= 19; id++)
        {
            Assert.Equal((BtfKind)id, c.GetType(id).Kind);
            Assert.Equal(id, c.GetType(id).Id);
        }

        var i = c.GetType(1);
        Assert.Equal("int", i.Name);
        Assert.Equal(4, i.Size);
        Assert.Equal(new BtfIntEncoding(32, 0, true, false, false), i.IntEncoding);

        Assert.Equal(1, c.GetType(2).ReferencedTypeId);
        Assert.Equal(new BtfArrayInfo(1, 1, 3), c.GetType(3).Array);

        var pair = c.GetType(4);
        Assert.Equal(8, pair.Size);
        Assert.Equal([new BtfMember("a", 1, 0, 0), new BtfMember("b", 1, 32, 0)], pair.Members);
        Assert.False(pair.KindFlag);

        Assert.Equal(["x", "y"], c.GetType(5).Members.Select(m => m.Name));

        var color = c.GetType(6);
        Assert.False(color.KindFlag);
        Assert.Equal([new BtfEnumValue("RED", 0), new BtfEnumValue("BIG", 0xffff_fffe)], color.EnumValues);

        Assert.True(c.GetType(7).IsUnionForward);
        Assert.Equal("later", c.GetType(7).Name);
        Assert.Equal(4, c.GetType(8).ReferencedTypeId);
        Assert.Equal(1, c.GetType(9).ReferencedTypeId);
        Assert.Equal(1, c.GetType(10).ReferencedTypeId);
        Assert.Equal(2, c.GetType(11).ReferencedTypeId);

        var proto = c.GetType(13);
        Assert.Equal(1, proto.ReferencedTypeId);
        Assert.True(proto.IsVariadic);
        Assert.Equal([new BtfParameter("fmt", 2)], proto.Parameters);

        var func = c.GetType(12);
        Assert.Equal(("printk", 13, 1), (func.Name, func.ReferencedTypeId, func.Linkage));

        var variable = c.GetType(14);
        Assert.Equal(("counter", 1, 1), (variable.Name, variable.ReferencedTypeId, variable.Linkage));

        var sec = c.GetType(15);
        Assert.Equal(16, sec.Size);
        Assert.Equal([new BtfDataSectionEntry(14, "counter", 8, 4)], sec.Variables);

        Assert.Equal(8, c.GetType(16).Size);

        var tag = c.GetType(17);
        Assert.Equal(("bpf_kfunc", 8, -1), (tag.Name, tag.ReferencedTypeId, tag.ComponentIndex));

        Assert.Equal(("rcu", 4), (c.GetType(18).Name, c.GetType(18).ReferencedTypeId));

        var big = c.GetType(19);
        Assert.Equal(8, big.Size);
        Assert.Equal(unchecked((long)0xffff_ffff_0000_0001UL), big.EnumValues.Single().Value);
    }

    [Fact]
    public void Parse_BigAndLittleEndian_GiveEqualTypes()
    {
        var b = EveryKind();
        var le = TypeCatalog.Parse(b.Build(bigEndian: false), "le");
        var be = TypeCatalog.Parse(b.Build(bigEndian: true), "be");
        for (int id = 1; id <= le.Count; id++)
        {
            Assert.Equal(le.FormatTypeName(id), be.FormatTypeName(id));
            Assert.Equal(le.GetType(id).Members, be.GetType(id).Members);
            Assert.Equal(le.GetType(id).EnumValues, be.GetType(id).EnumValues);
            Assert.Equal(le.GetType(id).Size, be.GetType(id).Size);
        }
    }

    [Fact]
    public void Parse_BigEndianBlob_HasByteSwappedMagic()
    {
        var blob = EveryKind().Build(bigEndian: true);
        Assert.Equal([0xEB, 0x9F], blob[..2]);
        Assert.True(TypeCatalog.Parse(blob, "be").IsBigEndian);
    }

    [Fact]
    public void Parse_LongerHeader_IsHonoured()
    {
        var c = TypeCatalog.Parse(EveryKind().Build(headerLength: 32), "hdr32");
        Assert.Equal(19, c.Count);
        Assert.Equal("int", c.GetType(1).Name);
    }

    [Fact]
    public void Parse_Bitfields_KindFlagSplitsSizeAndOffset()
    {
        var b = new BtfBuilder();
        int u32 = b.Int("unsigned int", 4, 32);
        b.Struct("flags", 4, ("a", u32, 0, 1), ("b", u32, 1, 3), ("c", u32, 4, 28));
        var c = TypeCatalog.Parse(b.Build(), "t");

        var s = c.GetType(2);
        Assert.True(s.KindFlag);
        Assert.Equal([new BtfMember("a", 1, 0, 1), new BtfMember("b", 1, 1, 3), new BtfMember("c", 1, 4, 28)], s.Members);
        var layout = c.GetMember("flags.c");
        Assert.Equal((0L, 4L, 28), (layout.Offset, layout.BitOffset, layout.BitSize));
    }

    [Fact]
    public void Parse_KindFlagMemberOffset_UsesLow24BitsAsOffset()
    {
        // offset word 0x05000108: bitfield size 5 (bits 24-31), bit offset 0x108 = 264 (bits 0-23), per btf.rst §2.2.4.
        var b = new BtfBuilder();
        int u32 = b.Int("unsigned int", 4, 32);
        b.AddRaw(b.Str("s"), BtfBuilder.Info(BtfBuilder.KindStruct, 1, kindFlag: true), 40, b.Str("f"), (uint)u32, 0x0500_0108);
        var m = TypeCatalog.Parse(b.Build(), "t").GetMember("s.f");
        Assert.Equal((264L, 33L, 5), (m.BitOffset, m.Offset, m.BitSize));
    }

    [Fact]
    public void Parse_LegacyIntBitfield_TakesBitsFromTheIntEncoding()
    {
        // Without kind_flag, a bitfield's width and extra offset live in its INT's encoding word (btf.rst §2.2.1).
        var b = new BtfBuilder();
        int bits3 = b.Int("unsigned int", 4, 3, bitOffset: 2);
        b.Struct("old", 4, ("f", bits3, 8, 0));
        var m = TypeCatalog.Parse(b.Build(), "t").GetMember("old.f");
        Assert.Equal((10L, 1L, 3), (m.BitOffset, m.Offset, m.BitSize));
    }

    [Fact]
    public void Parse_SignedEnum_SignExtends_UnsignedZeroExtends()
    {
        var b = new BtfBuilder();
        b.Enum("s", 4, true, ("NEG", -5));
        b.Enum("u", 4, false, ("ALL", -1));
        b.Enum64("s64", 8, true, ("MIN", 0x8000_0000_0000_0000UL));
        var c = TypeCatalog.Parse(b.Build(), "t");
        Assert.Equal(-5, c.GetType(1).EnumValues[0].Value);
        Assert.Equal(4294967295L, c.GetType(2).EnumValues[0].Value);
        Assert.Equal(long.MinValue, c.GetType(3).EnumValues[0].Value);
        Assert.True(c.TryGetEnumValue("NEG", out long neg));
        Assert.Equal(-5, neg);
        Assert.True(c.TryGetEnumValue("u", "ALL", out long all));
        Assert.Equal(4294967295L, all);
        Assert.False(c.TryGetEnumValue("s", "ALL", out _));
        Assert.False(c.TryGetEnumValue("NOPE", out _));
    }

    [Fact]
    public void Parse_FunctionProto_WithoutVarargs()
    {
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, 32, signed: true);
        b.FunctionProto(0, false, ("a", i32), ("", i32));
        var p = TypeCatalog.Parse(b.Build(), "t").GetType(2);
        Assert.False(p.IsVariadic);
        Assert.Equal(2, p.Parameters.Count);
        Assert.Equal(0, p.ReferencedTypeId);
    }

    [Fact]
    public void Load_RawFileAndElfSection_GiveTheSameTypes()
    {
        var blob = EveryKind().Build();
        using var raw = new TempFile(blob, "vmlinux.btf");
        using var elf = new TempFile(BtfBuilder.WrapInElf(blob), "vmlinux");
        var a = TypeCatalog.Load(raw.Path);
        var e = TypeCatalog.Load(elf.Path);
        Assert.Equal(19, a.Count);
        Assert.Equal(19, e.Count);
        Assert.Equal(a.FormatTypeName(12), e.FormatTypeName(12));
        Assert.Contains(".BTF", e.Source, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_BigEndianElf_ReadsItsBtf()
    {
        using var elf = new TempFile(BtfBuilder.WrapInElf(EveryKind().Build(bigEndian: true), bigEndian: true), "vmlinux");
        var c = TypeCatalog.Load(elf.Path);
        Assert.True(c.IsBigEndian);
        Assert.Equal("pair", c.GetType(4).Name);
    }
}
