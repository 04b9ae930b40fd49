using System.Text;
using Kvm.Symbols;
using Kvm.Testing;
using Kvm.Tests.Images.Elf;

namespace Kvm.Tests.Symbols;

/// <summary>System.map and /proc/kallsyms: <c>%016lx %c %s</c> lines, kallsyms adding <c>\t[module]</c>.</summary>
public sealed class NamelistTextTests
{
    private const string SystemMap =
        "0000000000000000 D __per_cpu_start\n" +
        "000000000001f000 D current_task\n" +
        "0000000001000000 A phys_startup_64\n" +
        "ffffffff81000000 T _text\n" +
        "ffffffff81000000 T _stext\n" +
        "ffffffff81000120 t __do_sys_thing\n" +
        "ffffffff81000200 T __x64_sys_read\n" +
        "ffffffff81e00000 R linux_banner\n" +
        "ffffffff81e00100 r __func__.1\n" +
        "ffffffff82000000 D jiffies\n" +
        "ffffffff82000040 d __UNIQUE_ID_ddebug123\n" +
        "ffffffff83000000 B __bss_start\n" +
        "ffffffff83000100 b small_buf\n" +
        "ffffffff83001000 W weak_hook\n";

    [Fact]
    public void Load_SystemMap_ParsesAddressTypeAndName()
    {
        using var file = new ScratchFile(SystemMap, "System.map-6.1.0");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.Equal(NamelistKind.SystemMap, table.Kind);
        Assert.Equal(14, table.Count);
        Assert.True(table.TryLookup("__do_sys_thing", out var local));
        Assert.Equal(new KernelSymbol("__do_sys_thing", 0xffffffff81000120, 't', file.Path), local);
        Assert.True(table.TryLookup("__func__.1", out var ro));
        Assert.Equal('r', ro.Type);
        Assert.True(table.TryLookup("__UNIQUE_ID_ddebug123", out var d));
        Assert.Equal(0xffffffff82000040UL, d.Address);
        Assert.True(table.TryLookup("weak_hook", out var weak));
        Assert.Equal('W', weak.Type);
        Assert.True(weak.IsGlobal);
        Assert.False(local.IsGlobal);
    }

    [Fact]
    public void Load_SystemMap_DisplacementAppliesOnlyToKernelTextMapAddresses()
    {
        using var file = new ScratchFile(SystemMap, "System.map");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);
        table.Displacement = 0x2a000000;

        Assert.Equal(0xffffffffab000000UL, Lookup(table, "_text"));
        Assert.Equal(0xffffffffac000000UL, Lookup(table, "jiffies"));
        Assert.Equal(0x1f000UL, Lookup(table, "current_task"));
        Assert.Equal(0UL, Lookup(table, "__per_cpu_start"));
        Assert.Equal(0x1000000UL, Lookup(table, "phys_startup_64"));
        Assert.Equal(0xffffffff81000000UL, table.RawValue("_text"));
    }

    [Fact]
    public void Load_SystemMapWithCrLf_StillParses()
    {
        using var file = new ScratchFile(SystemMap.Replace("\n", "\r\n", StringComparison.Ordinal), "System.map");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.Equal(14, table.Count);
        Assert.Equal(0xffffffff82000000UL, Lookup(table, "jiffies"));
    }

    [Fact]
    public void Load_KallsymsWithModuleLines_IsKallsymsAndStripsModuleTag()
    {
        const string kallsyms =
            "ffffffffab000000 T _text\n" +
            "ffffffffac000000 D jiffies\n" +
            "ffffffffc0a01000 t ext4_fill_super\t[ext4]\n" +
            "ffffffffc0a02000 T ext4_mount\t[ext4]\n";
        using var file = new ScratchFile(kallsyms, "saved-symbols.txt");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.Equal(NamelistKind.Kallsyms, table.Kind);
        Assert.Equal(4, table.Count);
        Assert.True(table.TryLookup("ext4_fill_super", out var s));
        Assert.Equal(new KernelSymbol("ext4_fill_super", 0xffffffffc0a01000, 't', file.Path), s);
        Assert.False(table.TryLookup("ext4_fill_super\t[ext4]", out _));
    }

    [Fact]
    public void Load_FileNamedKallsymsWithoutModules_IsKallsyms()
    {
        using var file = new ScratchFile("ffffffffab000000 T _text\n", "kallsyms");

        Assert.Equal(NamelistKind.Kallsyms, NamelistLoader.Load(file.Path, KvmLimits.Default).Kind);
    }

    [Fact]
    public void Load_AllZeroAddresses_MentionsKptrRestrict()
    {
        using var file = new ScratchFile("0000000000000000 T _text\n0000000000000000 D jiffies\n0000000000000000 t foo\t[mod]\n", "kallsyms");

        var ex = Assert.Throws<KvmException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Equal(KvmErrorCode.SymbolNotFound, ex.Code);
        Assert.Contains("kptr_restrict", ex.Message);
    }

    [Fact]
    public void Load_BinaryGarbage_IsCorrupt()
    {
        var bytes = ElfTestData.Pattern(64 << 10, 50);
        bytes[0] = 0x42; // never the ELF magic
        using var file = new ScratchFile(bytes, "garbage.bin");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Equal(KvmErrorCode.CorruptImage, ex.Code);
        Assert.Contains(file.Path, ex.Message);
    }

    [Fact]
    public void Load_ShortTextThatIsNotAListing_IsCorrupt()
    {
        using var file = new ScratchFile("#include <stdio.h>\nint main(void) { return 0; }\n", "main.c");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Contains("no symbols", ex.Message);
    }

    [Fact]
    public void Load_LongTextThatIsNotAListing_IsCorruptNamingTheLine()
    {
        var text = new StringBuilder();
        for (int i = 0; i < 40; i++)
        {
            text.Append("this is line ").Append(i).Append(" of some prose\n");
        }

        using var file = new ScratchFile(text.ToString(), "README");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Contains("line 17", ex.Message);
    }

    [Fact]
    public void Load_AFewBadLines_AreSkipped()
    {
        using var file = new ScratchFile("ffffffff81000000 T _text\nnot a symbol\nffffffff8100000 T\nzzzz T bad_hex\nffffffff82000000 D jiffies\n", "System.map");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);

        Assert.Equal(2, table.Count);
        Assert.False(table.TryLookup("bad_hex", out _));
    }

    [Fact]
    public void Load_EmptyFile_IsCorrupt()
    {
        using var file = new ScratchFile(string.Empty, "System.map");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, KvmLimits.Default));
        Assert.Contains("empty", ex.Message);
    }

    [Fact]
    public void Load_MaxSymbols_AcceptsExactlyTheLimit()
    {
        using var file = new ScratchFile("ffffffff81000000 T a\nffffffff81000010 T b\nffffffff81000020 T c\n", "System.map");

        Assert.Equal(3, NamelistLoader.Load(file.Path, new KvmLimits { MaxSymbols = 3 }).Count);
    }

    [Fact]
    public void Load_MoreSymbolsThanLimit_IsCorrupt()
    {
        using var file = new ScratchFile("ffffffff81000000 T a\nffffffff81000010 T b\nffffffff81000020 T c\nffffffff81000030 T d\n", "System.map");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, new KvmLimits { MaxSymbols = 3 }));
        Assert.Contains("limit of 3 symbols", ex.Message);
    }

    [Fact]
    public void Load_LargerThanByteLimit_IsCorrupt()
    {
        using var file = new ScratchFile(SystemMap, "System.map");

        var ex = Assert.Throws<CorruptImageException>(() => NamelistLoader.Load(file.Path, new KvmLimits { MaxSymbolFileBytes = 100 }));
        Assert.Contains("100 bytes", ex.Message);
    }

    [Fact]
    public void Load_FakeKernelSystemMap_MatchesItsLayout()
    {
        var kernel = new FakeLinuxKernel();
        using var file = new ScratchFile(kernel.SystemMap, "System.map");
        var table = NamelistLoader.Load(file.Path, KvmLimits.Default);
        table.Displacement = (long)kernel.KaslrOffset;

        Assert.Equal(kernel.TextVa, Lookup(table, "_text"));
        Assert.Equal(kernel.TextVa + FakeLinuxKernel.UtsOffset, Lookup(table, "init_uts_ns"));
        Assert.Equal(kernel.InitTopPgtVa, Lookup(table, "init_top_pgt"));
        Assert.Equal(0x1f000UL, Lookup(table, "current_task"));
    }

    [Fact]
    public void FromVmcoreInfo_SymbolLines_AreRuntimeAddresses()
    {
        var info = VmcoreInfo.Parse(
            "OSRELEASE=6.1\nSYMBOL(init_uts_ns)=ffffffffac612340\nSYMBOL(swapper_pg_dir)=ffffffffac80a000\nSYMBOL(broken)=xyz\nNUMBER(SYMBOL(x))=1\n"u8,
            "ELF note");

        var table = NamelistLoader.FromVmcoreInfo(info);

        Assert.Equal(NamelistKind.VmcoreInfo, table.Kind);
        Assert.Equal("vmcoreinfo", table.Source);
        Assert.Equal(2, table.Count);
        Assert.True(table.TryLookup("init_uts_ns", out var uts));
        Assert.Equal(new KernelSymbol("init_uts_ns", 0xffffffffac612340, '?', "vmcoreinfo"), uts);
        Assert.False(table.TryLookup("broken", out _));
    }

    private static ulong Lookup(SymbolTable table, string name)
    {
        Assert.True(table.TryLookup(name, out var symbol), name);
        return symbol.Address;
    }
}
