using Kvm.Testing;
using Kvm.Testing.FreeBsd;

namespace Kvm.Tests.FreeBsd;

/// <summary>i386 minidumps, PAE and not, v1 and v2; i386 full dumps through the kernel's own page tables.</summary>
public sealed class I386MinidumpTests
{
    private const ulong KernBase = I386MinidumpBuilder.KernBase;

    [Theory]
    [InlineData(false, 1u)]
    [InlineData(false, 2u)]
    [InlineData(true, 1u)]
    [InlineData(true, 2u)]
    public void ReadsThroughThePteArray(bool pae, uint version)
    {
        var (memory, tables) = Kernel(pae);
        var builder = new I386MinidumpBuilder(memory, tables) { Version = version, DumpAvail = [(0x1000, 0xa0000), (0x100000, 0x2000000)] };
        builder.ExtraPages.Add(0x1500000);
        using var file = new TempFile(builder.Build(), "vmcore.0");
        using var image = KernelImage.Open(file.Path);

        Assert.Equal("i386", image.Architecture);
        Assert.Equal(pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel, image.Layout.PagingMode);
        Assert.Equal($"FreeBSD i386 minidump v{version} ({(pae ? "PAE" : "non-PAE")})", image.FormatDescription);
        Assert.Null(image.Layout.PageOffsetBase);

        // The kernel's large pages (fake PTEs in the dump) and 4 KiB pages.
        Assert.Equal("kernel text", image.ReadCString(KernBase + 0x400000 + 0x1230));
        Assert.Equal("small page 1", image.ReadCString(KernBase + 0x1000000 + 0x1000));
        var step = image.Translate(KernBase + 0x1000000 + 0x1000).Steps.Single();
        Assert.Equal(pae ? 8 : 4, step.EntrySize);

        // Below kernbase: nothing (i386 has no direct map).
        Assert.False(image.TryTranslate(0x400000, out _));
        Assert.False(image.TryTranslate(KernBase + 0x1800000, out _));

        var pages = image.EnumeratePages().ToList();
        var nx = pages.Single(p => p.KernelMapAddress == KernBase + 0x1000000 + 0x2000);
        Assert.Equal(pae ? PageProtection.Read : PageProtection.Read | PageProtection.Execute, nx.Protection);
        Assert.All(pages, p => Assert.Equal(0UL, p.DirectMapAddress));
        Assert.Contains(pages, p => !p.IsKernelMapped && p.PhysicalAddress == 0x1500000);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FullDump_ReadsThroughTheKernelsPageTables_AsTheMinidumpOfTheSameMemory(bool pae)
    {
        var (memory, tables) = Kernel(pae);
        var avail = new List<(ulong, ulong)> { (0x1000, 0xa0000), (0x100000, 0x2000000) };
        const ulong Variable = KernBase + 0x500000;
        memory.WriteUInt32(Variable - KernBase, (uint)(pae ? tables.Pdpt : tables.PageDirectory));
        using var full = new TempFile(FreeBsdFullDump.I386(memory, avail), "vmcore.1");
        using var mini = new TempFile(new I386MinidumpBuilder(memory, tables) { DumpAvail = avail }.Build(), "vmcore.0");
        var elf = new ElfExecutableBuilder { Is64 = false, Machine = 3, OsAbi = 9, TextBase = KernBase + 0x400000, RodataBase = KernBase + 0x480000, DataBase = KernBase + 0x500000, BssBase = KernBase + 0x580000 };
        elf.AddSymbol("kernbase", KernBase, ElfExecutableBuilder.ShnAbs).AddSymbol(pae ? "IdlePDPT" : "IdlePTD", Variable, ElfExecutableBuilder.Data, type: ElfExecutableBuilder.SttObject);
        using var kernel = new TempFile(elf.Build(), "kernel");

        using var image = KernelImage.Open(full.Path, new KernelImageOptions { Namelists = [kernel.Path] });
        using var minidump = KernelImage.Open(mini.Path);

        Assert.Equal("i386", image.Architecture);
        Assert.Equal(pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel, image.Layout.PagingMode);
        Assert.Equal("kernel text", image.ReadCString(KernBase + 0x400000 + 0x1230));
        for (int i = 0; i < 4; i++)
        {
            ulong va = KernBase + 0x1000000 + ((ulong)i * 4096);
            Assert.Equal($"small page {i}", image.ReadCString(va));
            Assert.Equal(minidump.ReadCString(va), image.ReadCString(va));
        }

        // An address the kernel never mapped fails alike through both.
        Assert.False(image.TryRead(KernBase + 0x1800000, new byte[8], out _, out _));
        Assert.False(minidump.TryRead(KernBase + 0x1800000, new byte[8], out _, out _));
    }

    [Fact]
    public void AnAmd64Kernel_WithAnI386Dump_IsRefused()
    {
        var (memory, tables) = Kernel(false);
        using var file = new TempFile(new I386MinidumpBuilder(memory, tables).Build(), "vmcore.0");
        using var kernel = new TempFile(new FreeBsdAmd64Kernel(ramBytes: 4 << 20).KernelElf(), "kernel");
        var e = Assert.Throws<KvmException>(() => KernelImage.Open(file.Path, new KernelImageOptions { Namelists = [kernel.Path] }));
        Assert.Contains("i386", e.Message, StringComparison.Ordinal);
    }

    private static (PhysicalMemoryBuilder Memory, I386PageTableBuilder Tables) Kernel(bool pae)
    {
        var memory = new PhysicalMemoryBuilder(0x1c00000);
        var tables = new I386PageTableBuilder(memory, pae);
        tables.Map(KernBase + 0x400000, 0x400000, large: true);
        memory.Write(0x400000 + 0x1230, "kernel text\0"u8.ToArray());
        for (int i = 0; i < 4; i++)
        {
            ulong pa = 0x1400000 + ((ulong)i * 0x3000);
            tables.Map(KernBase + 0x1000000 + ((ulong)i * 4096), pa, flags: i == 2 ? I386PageTableBuilder.PgNx : I386PageTableBuilder.PgRw);
            memory.Write(pa, System.Text.Encoding.ASCII.GetBytes($"small page {i}\0"));
        }

        memory.Write(0x1500000, "uma"u8.ToArray());
        return (memory, tables);
    }
}
