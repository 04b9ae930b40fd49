using Kvm.Testing;
using Kvm.Types;

namespace Kvm.Tests.Types;

/// <summary>Malformed blobs: each must fail with a <see cref="CorruptImageException"/> that says what and where.</summary>
public sealed class BtfCorruptTests
{
    private static BtfBuilder Small()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4, 32, signed: true);
        b.Struct("s", 8, ("a", i, 0, 0), ("b", i, 32, 0));
        return b;
    }

    private static CorruptImageException Fails(byte[] blob, KvmLimits? limits = null) =>
        Assert.Throws<CorruptImageException>(() => TypeCatalog.Parse(blob, "bad.btf", limits));

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    [InlineData(23)]
    public void TruncatedHeader(int length)
    {
        var ex = Fails(Small().Build()[..length]);
        Assert.Contains("truncated BTF header", ex.Message, StringComparison.Ordinal);
        Assert.StartsWith("bad.btf", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadMagic()
    {
        var blob = Small().Build();
        blob[0] = 0x7f;
        Assert.Contains("magic", Fails(blob).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadVersion()
    {
        var blob = Small().Build();
        blob[2] = 2;
        Assert.Contains("version 2", Fails(blob).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(16u)]
    [InlineData(100_000u)]
    [InlineData(uint.MaxValue)]
    public void HeaderLengthOutOfRange(uint hdrLen)
    {
        var blob = Small().Build();
        BtfBuilder.PatchHeader(blob, 4, hdrLen);
        Assert.Contains($"hdr_len {hdrLen}", Fails(blob).Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(8, 1000u)]          // type_off
    [InlineData(12, 0xFFFF_FFF0u)]  // type_len, huge
    [InlineData(16, 0xFFFF_FFFFu)]  // str_off
    [InlineData(20, 1000u)]         // str_len
    public void SectionOutOfRange(int field, uint value)
    {
        var blob = Small().Build();
        BtfBuilder.PatchHeader(blob, field, value);
        var ex = Fails(blob);
        Assert.Contains("runs past the end", ex.Message, StringComparison.Ordinal);
        Assert.Contains(field <= 12 ? "type section" : "string section", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StringSectionNotNulTerminated()
    {
        var blob = Small().Build();
        blob[^1] = (byte)'x';
        Assert.Contains("NUL", Fails(blob).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadStringOffset_InTypeName()
    {
        var b = Small();
        b.AddRaw(1_000_000, BtfBuilder.Info(BtfBuilder.KindTypedef, 0), 1);
        var ex = Fails(b.Build());
        Assert.Contains("string offset 1000000", ex.Message, StringComparison.Ordinal);
        Assert.Contains("type id 3", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void BadStringOffset_InMemberName()
    {
        var b = new BtfBuilder();
        int i = b.Int("int", 4, 32);
        b.AddRaw(b.Str("s"), BtfBuilder.Info(BtfBuilder.KindStruct, 1), 4, 0xdead_beef, (uint)i, 0);
        Assert.Contains($"string offset {0xdead_beef}", Fails(b.Build()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnknownKind20_FailsWithKindAndOffset()
    {
        var b = Small();
        b.AddRaw(0, BtfBuilder.Info(20, 0), 0);
        var ex = Fails(b.Build());
        Assert.Contains("unknown kind 20", ex.Message, StringComparison.Ordinal);

        // Records before it: INT (16 bytes) + STRUCT with 2 members (36 bytes), after the 24-byte header.
        Assert.Contains("byte offset 76", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Kind0_IsRejected()
    {
        var b = Small();
        b.AddRaw(0, 0, 0);
        Assert.Contains("unknown kind 0", Fails(b.Build()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TypeIdOutOfRange()
    {
        var b = Small();
        b.Pointer(99);
        var ex = Fails(b.Build());
        Assert.Contains("type id 99", ex.Message, StringComparison.Ordinal);
        Assert.Contains("only 3 types", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MemberTypeIdOutOfRange()
    {
        var b = new BtfBuilder();
        b.Struct("s", 4, ("a", 7, 0, 0));
        Assert.Contains("type id 7", Fails(b.Build()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TypedefCycle()
    {
        var b = new BtfBuilder();
        b.Typedef("a", 2);
        b.Typedef("b", 3);
        b.Const(1);
        Assert.Contains("cycle", Fails(b.Build()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void PointerToItself()
    {
        var b = new BtfBuilder();
        b.Pointer(1);
        Assert.Contains("cycle", Fails(b.Build()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ArrayOfItself()
    {
        var b = new BtfBuilder();
        b.Int("int", 4, 32);
        b.Array(2, 1, 4);
        Assert.Contains("cycle", Fails(b.Build()).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void StructSelfReferenceThroughPointer_IsFine()
    {
        var b = new BtfBuilder();
        b.Struct("node", 8, ("next", 2, 0, 0));
        b.Pointer(1);
        Assert.Equal(8, TypeCatalog.Parse(b.Build(), "t").GetMember("node.next").Size);
    }

    [Fact]
    public void LongAcyclicTypedefChain_FailsOnResolve()
    {
        var b = new BtfBuilder();
        int id = b.Int("int", 4, 32);
        for (int i = 0; i < 40; i++)
        {
            id = b.Typedef($"t{i}", id);
        }

        var c = TypeCatalog.Parse(b.Build(), "t");
        Assert.Contains("chain longer than", Assert.Throws<CorruptImageException>(() => c.Resolve(id)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void AnonymousMemberContainingItself_FailsOnLookup()
    {
        var b = new BtfBuilder();
        b.Struct("loop", 4, ("", 1, 0, 0));
        var c = TypeCatalog.Parse(b.Build(), "t");
        Assert.Throws<CorruptImageException>(() => c.TryGetMember("loop.x", out _));
    }

    [Fact]
    public void VlenRunsPastEnd()
    {
        var b = Small();
        b.AddRaw(0, BtfBuilder.Info(BtfBuilder.KindStruct, 0xffff), 8, 0, 1, 0);
        var ex = Fails(b.Build());
        Assert.Contains("vlen 65535", ex.Message, StringComparison.Ordinal);
        Assert.Contains("runs past the end of the type section", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TruncatedRecord()
    {
        var b = Small();
        var blob = b.Build();

        // Shrink type_len by 4: the struct's last member is cut off.
        BtfBuilder.PatchHeader(blob, 12, (uint)(b.TypeSectionLength - 4));
        Assert.Contains("runs past the end of the type section", Fails(blob).Message, StringComparison.Ordinal);

        // Shrink it to 6: fewer than 12 bytes of a record header.
        BtfBuilder.PatchHeader(blob, 12, 6);
        Assert.Contains("truncated record", Fails(blob).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TooManyTypes_ExceedsLimit()
    {
        var b = new BtfBuilder();
        for (int i = 0; i < 100; i++)
        {
            b.Int("int", 4, 32);
        }

        var ex = Fails(b.Build(), new KvmLimits { MaxBtfTypes = 50 });
        Assert.Contains("limit of 50 types", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void TooManyBytes_ExceedsLimit()
    {
        var ex = Fails(Small().Build(), new KvmLimits { MaxBtfBytes = 30 });
        Assert.Contains("limit of 30 bytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HugeArray_SizeOverflowIsReported()
    {
        var b = new BtfBuilder();
        int i = b.Int("long", 8, 64);
        int a1 = b.Array(i, i, uint.MaxValue);
        int a2 = b.Array(a1, i, uint.MaxValue);
        int a3 = b.Array(a2, i, uint.MaxValue);
        var c = TypeCatalog.Parse(b.Build(), "t");
        Assert.Contains("overflows", Assert.Throws<CorruptImageException>(() => c.SizeOf(a3)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_ElfWithoutBtfSection()
    {
        var elf = BtfBuilder.WrapInElf(Small().Build());

        // Rename ".BTF" in .shstrtab to ".XTF".
        int at = elf.AsSpan().IndexOf(".BTF\0"u8);
        elf[at + 1] = (byte)'X';
        using var file = new TempFile(elf, "vmlinux");
        Assert.Contains("no .BTF section", Assert.Throws<CorruptImageException>(() => TypeCatalog.Load(file.Path)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RandomGarbage_NeverCrashes()
    {
        var good = Small().Build();
        var rng = new Random(1234);
        for (int round = 0; round < 2000; round++)
        {
            var blob = (byte[])good.Clone();
            int flips = rng.Next(1, 4);
            for (int f = 0; f < flips; f++)
            {
                blob[rng.Next(blob.Length)] = (byte)rng.Next(256);
            }

            try
            {
                var c = TypeCatalog.Parse(blob, "fuzz");
                for (int id = 0; id <= c.Count; id++)
                {
                    c.FormatTypeName(id);
                    c.SizeOf(id);
                }

                c.TryGetMember("s.b", out _);
            }
            catch (CorruptImageException)
            {
            }
        }
    }
}
