using Kvm.Symbols;
using Kvm.Testing;

namespace Kvm.Tests.Symbols;

public sealed class KallsymsReaderTests
{
    private const ulong Text = 0xffffffff9a000000;

    // Test methods are public and the encoding is internal, so theories pass its name.
    public static TheoryData<string> Encodings => [.. Enum.GetNames<KallsymsAddressEncoding>()];

    [Theory]
    [MemberData(nameof(Encodings))]
    public void Read_EachEncoding_DecodesEveryNameTypeAndAddress(string encodingName)
    {
        var encoding = Enum.Parse<KallsymsAddressEncoding>(encodingName);
        var builder = Kernel(encoding);
        var image = builder.Build();

        var table = KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default, out var chosen);

        Assert.Equal(encoding, chosen);
        Assert.Equal(NamelistKind.KernelMemory, table.Kind);
        Assert.Equal("kallsyms in memory", table.Source);
        Assert.Equal(0, table.Displacement);
        Assert.Equal(builder.Sorted, table.Enumerate().Select(s => (s.Name, s.Type, s.Address)).ToList());
        Assert.All(table.Enumerate(), s => Assert.Equal(KallsymsReader.SourceName, s.Source));
    }

    [Fact]
    public void Build_UsesSingleAndMultiCharacterTokens()
    {
        var image = Kernel(KallsymsAddressEncoding.BaseRelative).Build();

        Assert.Contains(image.Tokens, t => t is { Length: 1 });
        Assert.Contains(image.Tokens, t => t is { Length: > 2 });
        Assert.Equal("_", image.Tokens['_']);
    }

    [Fact]
    public void Read_AbsolutePercpu_PerCpuSymbolsAreAbsoluteAndNeverDisplaced()
    {
        var builder = Kernel(KallsymsAddressEncoding.AbsolutePercpu)
            .Add("fixed_percpu_data", 'A', 0)
            .Add("cpu_tss_rw", 'A', 0x6000)
            .Add("runqueues", 'A', 0x2f400);
        var image = builder.Build();

        var table = KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default);

        Assert.True(table.TryLookup("fixed_percpu_data", out var first));
        Assert.Equal(0UL, first.Address);
        Assert.True(table.TryLookup("runqueues", out var rq));
        Assert.Equal(0x2f400UL, rq.Address);
        Assert.True(table.TryLookup("_stext", out var stext));
        Assert.Equal(Text, stext.Address);
        Assert.True(table.TryFindByAddress(0x6010, out var tss));
        Assert.Equal("cpu_tss_rw", tss.Name);
    }

    [Theory]
    [InlineData(nameof(KallsymsAddressEncoding.BaseRelative))]
    [InlineData(nameof(KallsymsAddressEncoding.AbsolutePercpu))]
    public void Read_OnlyTextInVmcoreInfo_ChoosesByText(string encodingName)
    {
        var encoding = Enum.Parse<KallsymsAddressEncoding>(encodingName);
        var image = Kernel(encoding).Build();
        image.SetVmcoreInfo("SYMBOL(_stext)", null);

        KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default, out var chosen);

        Assert.Equal(encoding, chosen);
    }

    [Fact]
    public void Read_StextDisagreesWithEveryEncoding_NamesStextAndTheCandidates()
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();
        image.SetVmcoreInfo("SYMBOL(_stext)", "ffffffff81000000");

        var ex = Assert.Throws<CorruptImageException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Contains("_stext", ex.Message, StringComparison.Ordinal);
        Assert.Contains("0xffffffff81000000", ex.Message, StringComparison.Ordinal);
        Assert.Contains("AbsolutePercpu", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NoAnchorAndSeveralEncodingsPossible_Throws()
    {
        var image = Kernel(KallsymsAddressEncoding.BaseRelative).Build();
        image.SetVmcoreInfo("SYMBOL(_stext)", null);
        image.SetVmcoreInfo("SYMBOL(_text)", null);

        Assert.False(KallsymsReader.TryRead(image.Read, image.VmcoreInfo(), KvmLimits.Default, out var table, out var error));

        Assert.Null(table);
        Assert.Contains("SYMBOL(_stext)", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NoAnchorButOnlyPlaceRelativePossible_UsesIt()
    {
        var builder = Kernel(KallsymsAddressEncoding.PlaceRelative);
        var image = builder.Build();
        image.SetVmcoreInfo("SYMBOL(_stext)", null);
        image.SetVmcoreInfo("SYMBOL(_text)", null);

        var table = KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default, out var chosen);

        Assert.Equal(KallsymsAddressEncoding.PlaceRelative, chosen);
        Assert.Equal(builder.Sorted.Count, table.Count);
    }

    [Fact]
    public void Read_LongNamesOnV61_UseTwoByteLengths()
    {
        string longName = LongName(600);
        var builder = Kernel(KallsymsAddressEncoding.AbsolutePercpu, "6.1.0-56-amd64").Add(longName, 't', Text + 0x5000);
        var image = builder.Build();
        Assert.True(image.EncodedLengths.Max() >= 128, "the long name should need at least 128 tokens");

        var table = KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default);

        Assert.True(table.TryLookup(longName, out var s));
        Assert.Equal(Text + 0x5000, s.Address);
        Assert.Equal(builder.Sorted, table.Enumerate().Select(x => (x.Name, x.Type, x.Address)).ToList());
    }

    [Fact]
    public void Read_LongNamesOnV60_UseOneByteLengths()
    {
        string longName = LongName(200);
        var builder = Kernel(KallsymsAddressEncoding.AbsolutePercpu, "6.0.19").Add(longName, 'T', Text + 0x5000);
        builder.Compress = false;
        var image = builder.Build();
        Assert.True(image.EncodedLengths.Max() is >= 128 and <= 255);

        var table = KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default);

        Assert.True(table.TryLookup(longName, out _));
        Assert.Equal(builder.Sorted.Count, table.Count);
    }

    [Fact]
    public void Read_OneByteTableReadAsTwoByte_FailsClearly()
    {
        // The data cannot tell the forms apart: a v6.0 table with a long name misread with v6.1 rules must not crash.
        var builder = Kernel(KallsymsAddressEncoding.AbsolutePercpu, "6.0.19").Add(LongName(200), 'T', Text + 0x5000);
        builder.Compress = false;
        var image = builder.Build();
        image.SetVmcoreInfo("OSRELEASE", "6.1.0");

        Assert.False(KallsymsReader.TryRead(image.Read, image.VmcoreInfo(), KvmLimits.Default, out _, out var error));
        Assert.StartsWith("kallsyms", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("6.1.0-56-amd64", true)]
    [InlineData("6.0.19", false)]
    [InlineData("5.15.0-91-generic", false)]
    [InlineData("6.12.9+bpo-amd64", true)]
    [InlineData("7.0.0-rc1", true)]
    [InlineData("10.2", true)]
    [InlineData("garbage", true)]
    [InlineData(null, true)]
    public void UsesTwoByteLengths_FollowsRelease(string? release, bool expected) =>
        Assert.Equal(expected, KallsymsReader.UsesTwoByteLengths(release));

    [Theory]
    [InlineData(0u)]
    [InlineData(0x7fffffffu)]
    [InlineData(0xffffffffu)]
    public void Read_NumSymsOutsideLimit_ThrowsNamingTheLimit(uint count)
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();
        image.WriteUInt32(image.NumSymsAddress, count);

        var ex = Assert.Throws<CorruptImageException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Contains("kallsyms_num_syms", ex.Message, StringComparison.Ordinal);
        Assert.Contains("MaxSymbols", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NumSymsAtLimit_IsAccepted()
    {
        var builder = Kernel(KallsymsAddressEncoding.AbsolutePercpu);
        var image = builder.Build();

        var table = KallsymsReader.Read(image.Read, image.VmcoreInfo(), new KvmLimits { MaxSymbols = builder.Sorted.Count });

        Assert.Equal(builder.Sorted.Count, table.Count);
    }

    [Fact]
    public void Read_TokenIndexPastTheTable_ThrowsNamingTheTokenTable()
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();
        image.WriteUInt16(image.TokenIndexAddress + 2 * 'a', 0xfff0);

        var ex = Assert.Throws<KvmException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Contains("kallsyms_token_table", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_TokenWithoutNul_ThrowsCorrupt()
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();

        // A token table with no NUL anywhere in what the reader fetches: no token ends.
        const ulong Elsewhere = 0xffffffff88000000;
        image.Write(Elsewhere, Enumerable.Repeat((byte)'x', 0x20000).ToArray());
        image.SetVmcoreInfo("SYMBOL(kallsyms_token_table)", $"{Elsewhere:x}");

        var ex = Assert.Throws<CorruptImageException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Contains("kallsyms_token_table", ex.Message, StringComparison.Ordinal);
        Assert.Contains("no NUL", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NamesRunOffTheMappedMemory_ThrowsNamingTheSymbol()
    {
        var builder = Kernel(KallsymsAddressEncoding.AbsolutePercpu);
        var image = builder.Build();

        // Move the names so they end exactly at a page whose successor is unmapped, then promise more symbols.
        var names = new byte[image.NamesLength];
        image.Read(image.NamesAddress, names);
        ulong moved = 0xffffffff88000000 - (ulong)names.Length;
        image.Write(moved, names);
        image.SetVmcoreInfo("SYMBOL(kallsyms_names)", $"{moved:x}");
        image.WriteUInt32(image.NumSymsAddress, (uint)builder.Sorted.Count + 10);

        var ex = Assert.Throws<KvmException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Equal(KvmErrorCode.MemoryFault, ex.Code);
        Assert.Contains("kallsyms_names", ex.Message, StringComparison.Ordinal);
        Assert.Contains($"symbol {builder.Sorted.Count} ", ex.Message, StringComparison.Ordinal);
        Assert.Contains("0xffffffff88000000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_NameLongerThanTheNamesLimit_ThrowsNamingTheLimit()
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();
        image.Write(image.NamesAddress, [0xff, 0x7f]);

        var ex = Assert.Throws<CorruptImageException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), new KvmLimits { MaxKallsymsNamesBytes = 4096 }));

        Assert.Contains("MaxKallsymsNamesBytes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_ZeroLengthName_ThrowsCorrupt()
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();
        image.Write(image.NamesAddress, [0]);

        var ex = Assert.Throws<CorruptImageException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Contains("symbol 0", ex.Message, StringComparison.Ordinal);
        Assert.Contains("length 0", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_GarbageNames_ThrowCorruptNotACrash()
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();
        var random = new Random(7);
        var junk = new byte[image.NamesLength];
        random.NextBytes(junk);
        image.Write(image.NamesAddress, junk);

        Assert.False(KallsymsReader.TryRead(image.Read, image.VmcoreInfo(), KvmLimits.Default, out _, out var error));
        Assert.StartsWith("kallsyms", error, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("kallsyms_offsets")]
    [InlineData("kallsyms_token_index")]
    [InlineData("kallsyms_num_syms")]
    [InlineData("kallsyms_relative_base")]
    [InlineData("kallsyms_names")]
    public void Read_UnreadableTable_NamesTableAndAddress(string which)
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();
        image.SetVmcoreInfo($"SYMBOL({which})", "ffffffffc0000000");

        var ex = Assert.Throws<KvmException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Equal(KvmErrorCode.MemoryFault, ex.Code);
        Assert.Contains(which, ex.Message, StringComparison.Ordinal);
        Assert.Contains("0xffffffffc0000000", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_OffsetsTableEndsInAnUnmappedPage_ReportsTheFaultingAddress()
    {
        var image = Kernel(KallsymsAddressEncoding.BaseRelative, count: 3000).Build();
        ulong secondPage = (image.OffsetsAddress & ~0xfffUL) + 0x1000;
        image.Unmap(secondPage);

        var ex = Assert.Throws<KvmException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Contains($"cannot read 0x{secondPage:x}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("kallsyms_names")]
    [InlineData("kallsyms_token_table")]
    [InlineData("kallsyms_num_syms")]
    public void Read_MissingVmcoreInfoKey_IsSymbolNotFound(string key)
    {
        var image = Kernel(KallsymsAddressEncoding.AbsolutePercpu).Build();
        image.SetVmcoreInfo($"SYMBOL({key})", null);

        var ex = Assert.Throws<KvmException>(() => KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default));

        Assert.Equal(KvmErrorCode.SymbolNotFound, ex.Code);
        Assert.Contains($"SYMBOL({key})", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_ManySymbols_MarkersAndChunkedNamesReadRoundTrip()
    {
        // Uncompressed names average more than the reader's first guess of 16 bytes a symbol, so it reads in several chunks.
        var builder = Kernel(KallsymsAddressEncoding.AbsolutePercpu, count: 20000);
        builder.Compress = false;
        var image = builder.Build();

        var table = KallsymsReader.Read(image.Read, image.VmcoreInfo(), KvmLimits.Default);

        Assert.Equal(builder.Sorted, table.Enumerate().Select(s => (s.Name, s.Type, s.Address)).ToList());
    }

    private static KallsymsBuilder Kernel(KallsymsAddressEncoding encoding, string release = "6.1.0-56-amd64", int count = 40)
    {
        var builder = new KallsymsBuilder(encoding, release)
            .Add("_text", 'T', Text)
            .Add("_stext", 'T', Text)
            .Add("startup_64", 'T', Text)
            .Add("jiffies", 'D', Text + 0x1a05000)
            .Add("init_task", 'D', Text + 0x1a15940)
            .Add("__bss_start", 'B', Text + 0x2200000)
            .Add("_end", 'B', Text + 0x3430000);
        string[] stems = ["do_sys_open", "vfs_read", "vfs_write", "schedule", "tcp_sendmsg", "kmem_cache_alloc", "__x64_sys_read"];
        for (int i = 0; i < count; i++)
        {
            char type = (i % 3) switch { 0 => 'T', 1 => 't', _ => 'r' };
            builder.Add($"{stems[i % stems.Length]}_{i}", type, Text + 0x1000 + ((ulong)i * 0x40));
        }

        return builder;
    }

    private static string LongName(int length)
    {
        // Varied characters so that compression cannot shrink it below 128 tokens.
        const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.";
        var random = new Random(length);
        return new string(Enumerable.Range(0, length).Select(_ => alphabet[random.Next(alphabet.Length)]).ToArray());
    }
}
