using Kvm.Symbols;
using Kvm.Testing;
using Kvm.Tests.Images.Elf;
using static Kvm.Testing.ElfExecutableBuilder;
using static Kvm.Tests.Images.Elf.ElfTestData;

namespace Kvm.Tests.Symbols;

/// <summary>
/// .symtab of an ELF ET_EXEC read as nm would list it. The expected letters are what GNU nm (binutils) prints for the
/// same builder output: T/t text, D/d data, B/b bss, R/r read-only, A/a absolute, W/V weak. Section and file symbols
/// are hidden by nm without -a; undefined (U) and non-allocated-section (n) symbols have no kernel address and are skipped.
/// </summary>
public sealed class VmlinuxSymtabTests
{
    [Theory]
    [InlineData("_text", 'T', TextAddress)]
    [InlineData("do_thing", 't', TextAddress + 0x10)]
    [InlineData("jiffies", 'D', DataAddress)]
    [InlineData("local_data", 'd', DataAddress + 8)]
    [InlineData("big_buf", 'B', BssAddress)]
    [InlineData("small_buf", 'b', BssAddress + 0x100)]
    [InlineData("linux_banner", 'R', RodataAddress)]
    [InlineData("local_ro", 'r', RodataAddress + 0x20)]
    [InlineData("current_task", 'D', 0x1f000UL)]
    [InlineData("__per_cpu_start", 'D', 0x0UL)]
    [InlineData("phys_startup_64", 'A', 0x1000000UL)]
    [InlineData("local_abs", 'a', 0x42UL)]
    public void Load_Vmlinux_GivesNmTypeLetters(string name, char type, ulong address)
    {
        using var file = new ScratchFile(Kernel().Build(), "vmlinux");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.True(table.TryLookup(name, out var symbol));
        Assert.Equal(type, symbol.Type);
        Assert.Equal(address, symbol.Address);
        Assert.Equal(file.Path, symbol.Source);
    }

    [Fact]
    public void Load_WeakSymbols_AreWAndV()
    {
        using var file = new ScratchFile(Kernel().Build(), "vmlinux");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.True(table.TryLookup("weak_fn", out var fn));
        Assert.True(table.TryLookup("weak_obj", out var obj));
        Assert.Equal('W', fn.Type);
        Assert.Equal('V', obj.Type);
    }

    [Fact]
    public void Load_WeakSymbols_AreListedAsGlobals()
    {
        using var file = new ScratchFile(Kernel().Build(), "vmlinux");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.True(table.TryLookup("weak_fn", out var fn));
        Assert.True(fn.IsGlobal);
        Assert.Equal(TextAddress + 0x20, fn.Address);
    }

    [Theory]
    [InlineData("main.c")]          // STT_FILE
    [InlineData(".text")]           // STT_SECTION (no name of its own)
    [InlineData("undefined_thing")] // SHN_UNDEF
    [InlineData("in_comment")]      // a section that is not SHF_ALLOC
    public void Load_Vmlinux_SkipsSectionFileUndefinedAndNonAllocSymbols(string name)
    {
        using var file = new ScratchFile(Kernel().Build(), "vmlinux");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.False(table.TryLookup(name, out _));
    }

    [Fact]
    public void Load_Vmlinux_IsVmlinuxKindWithEveryListedSymbol()
    {
        using var file = new ScratchFile(Kernel().Build(), "vmlinux");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.Equal(NamelistKind.Vmlinux, table.Kind);
        Assert.Equal(file.Path, table.Source);
        Assert.Equal(14, table.Count); // nm lists 16 of the 18; minus the U and n ones
    }

    [Fact]
    public void Load_Vmlinux_DisplacementMovesTextButNotPerCpuOrLowAbsolutes()
    {
        using var file = new ScratchFile(Kernel().Build(), "vmlinux");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);
        table.Displacement = 0x2a000000;

        Assert.True(table.TryLookup("_text", out var text));
        Assert.True(table.TryLookup("current_task", out var task));
        Assert.True(table.TryLookup("phys_startup_64", out var abs));
        Assert.Equal(0xffffffffab000000UL, text.Address);
        Assert.Equal(0x1f000UL, task.Address);
        Assert.Equal(0x1000000UL, abs.Address);
        Assert.Equal(TextAddress, table.RawValue("_text"));
    }

    [Fact]
    public void Load_EtDyn_IsAccepted()
    {
        var builder = Kernel();
        builder.Type = 3;
        using var file = new ScratchFile(builder.Build(), "vmlinux");

        Assert.Equal(NamelistKind.Vmlinux, NamelistLoader.Load(file.Path, KvmLimits.Default).Kind);
    }

    [Theory]
    [InlineData((ushort)1)] // ET_REL (a module .ko)
    [InlineData((ushort)4)] // ET_CORE
    public void Load_ElfThatIsNotAnExecutable_IsRejected(ushort type)
    {
        var builder = Kernel();
        builder.Type = type;
        using var file = new ScratchFile(builder.Build(), "vmlinux");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Contains("not a kernel executable", ex.Message);
    }

    [Fact]
    public void Load_StrippedVmlinux_IsSymbolNotFoundMentioningStripped()
    {
        var builder = Kernel();
        builder.Stripped = true;
        using var file = new ScratchFile(builder.Build(), "vmlinux");

        var ex = Assert.Throws<KvmException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Equal(KvmErrorCode.SymbolNotFound, ex.Code);
        Assert.Contains("stripped", ex.Message);
        Assert.Contains(file.Path, ex.Message);
    }

    [Fact]
    public void Load_SymtabLinkingToMissingStringTable_IsCorrupt()
    {
        var builder = Kernel();
        builder.SymtabLink = 99;
        using var file = new ScratchFile(builder.Build(), "vmlinux");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Contains("string table", ex.Message);
    }

    [Fact]
    public void Load_MoreSymbolsThanLimit_IsCorrupt()
    {
        using var file = new ScratchFile(Kernel().Build(), "vmlinux");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, new KvmLimits { MaxSymbols = 10 }));
        Assert.Contains("limit 10", ex.Message);
    }

    [Fact]
    public void Load_SymtabPastEndOfFile_IsCorrupt()
    {
        var builder = Kernel();
        var elf = builder.Build();
        int shdr = (int)GetU64(elf, EShoff) + (builder.SymtabIndex * 64);
        PutU64(elf, shdr + 32, 0x100000); // sh_size
        using var file = new ScratchFile(elf, "vmlinux");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Contains(".symtab", ex.Message);
        Assert.Contains("past the end of the file", ex.Message);
    }

    [Fact]
    public void Load_TruncatedSectionHeaders_IsCorrupt()
    {
        var elf = Kernel().Build();
        using var file = new ScratchFile(elf.AsSpan(0, elf.Length - 100).ToArray(), "vmlinux");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Contains("section headers", ex.Message);
    }

    /// <summary>The symbol set checked against GNU nm's listing of the same file.</summary>
    internal static ElfExecutableBuilder Kernel() => new ElfExecutableBuilder()
        .AddSymbol("_text", TextAddress, Text)
        .AddSymbol("do_thing", TextAddress + 0x10, Text, StbLocal)
        .AddSymbol("jiffies", DataAddress, Data, type: SttObject)
        .AddSymbol("local_data", DataAddress + 8, Data, StbLocal, SttObject)
        .AddSymbol("big_buf", BssAddress, Bss, type: SttObject)
        .AddSymbol("small_buf", BssAddress + 0x100, Bss, StbLocal, SttObject)
        .AddSymbol("linux_banner", RodataAddress, Rodata, type: SttObject)
        .AddSymbol("local_ro", RodataAddress + 0x20, Rodata, StbLocal, SttObject)
        .AddSymbol("current_task", 0x1f000, PerCpu, type: SttObject)
        .AddSymbol("__per_cpu_start", 0, PerCpu, type: SttNotype)
        .AddSymbol("phys_startup_64", 0x1000000, ShnAbs, type: SttNotype)
        .AddSymbol("local_abs", 0x42, ShnAbs, StbLocal, SttNotype)
        .AddSymbol("main.c", 0, ShnAbs, StbLocal, SttFile)
        .AddSymbol(".text", TextAddress, Text, StbLocal, SttSection)
        .AddSymbol("undefined_thing", 0, ShnUndef)
        .AddSymbol("weak_fn", TextAddress + 0x20, Text, StbWeak)
        .AddSymbol("weak_obj", DataAddress + 0x10, Data, StbWeak, SttObject)
        .AddSymbol("in_comment", 0, Comment, StbLocal, SttObject);
}
