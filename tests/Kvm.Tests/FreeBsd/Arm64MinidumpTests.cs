using Kvm.Testing;
using Kvm.Testing.FreeBsd;

namespace Kvm.Tests.FreeBsd;

/// <summary>arm64 minidumps v1-v3 with 4 KiB and 16 KiB pages, made as sys/arm64/arm64/minidump_machdep.c writes them.</summary>
public sealed class Arm64MinidumpTests
{
    private const ulong RamStart = 0x40000000;
    private const ulong KernelVa = Arm64MinidumpBuilder.VmMinKernelAddress;

    [Theory]
    [InlineData(1u, 4096)]
    [InlineData(2u, 4096)]
    [InlineData(3u, 4096)]
    [InlineData(3u, 16384)]
    public void ReadsL3PagesBlocksAndTheDirectMap(uint version, int pageSize)
    {
        var (memory, map, builder) = Kernel(version, pageSize);
        ulong ps = (ulong)pageSize;
        using var file = new TempFile(builder.Build(), "vmcore.0");
        using var image = KernelImage.Open(file.Path);

        Assert.Equal(KernelOperatingSystem.FreeBsd, image.OperatingSystem);
        Assert.Equal("arm64", image.Architecture);
        Assert.Equal(PagingMode.Arm64, image.Layout.PagingMode);
        Assert.Equal(pageSize, image.PageSize);

        // L3 pages: a pattern in each, read whole and across the page boundary.
        var buffer = new byte[pageSize];
        for (int i = 0; i < 6; i++)
        {
            image.ReadExactly(KernelVa + ((ulong)i * ps), buffer);
            Assert.Equal(Pattern(memory, PageOf(i, ps), pageSize), buffer);
        }

        var across = new byte[64];
        image.ReadExactly(KernelVa + ps - 32, across);
        Assert.Equal(memory.Read(PageOf(0, ps) + ps - 32, 32).Concat(memory.Read(PageOf(1, ps), 32)), across);

        // The L2 block, recorded as fake L3 descriptors.
        ulong block = KernelVa + (4 * map.L2Size);
        Assert.Equal("inside the block", image.ReadCString(block + (3 * ps) + 17));

        // The direct map: dmapbase + pa - dmapphys.
        Assert.Equal("inside the block", image.ReadCString(Arm64MinidumpBuilder.DmapMinAddress + (BlockPhysical(map) - RamStart) + (3 * ps) + 17));

        // Read-only and execute-never descriptors give the page's protection in the walk.
        var pages = image.EnumeratePages().ToList();
        var ro = pages.Single(p => p.KernelMapAddress == KernelVa + (2 * ps));
        Assert.Equal(PageProtection.Read, ro.Protection);
        Assert.Equal(ps, ro.Length);
        Assert.Equal(Arm64MinidumpBuilder.DmapMinAddress + (ro.PhysicalAddress - RamStart), ro.DirectMapAddress);
        var text = pages.Single(p => p.KernelMapAddress == KernelVa);
        Assert.Equal(PageProtection.Read | PageProtection.Write | PageProtection.Execute, text.Protection);

        // A page only UMA put in the dump shows in the second pass.
        ulong uma = RamStart + (0x600 * 4096UL);
        Assert.Contains(pages, p => !p.IsKernelMapped && p.PhysicalAddress == uma && p.DirectMapAddress == Arm64MinidumpBuilder.DmapMinAddress + (uma - RamStart));

        var fault = image.Translate(KernelVa + (3 * map.L2Size));
        Assert.False(fault.Succeeded);
        Assert.Equal(TranslationFaultKind.NotPresent, fault.Fault!.Kind);
    }

    [Fact]
    public void L1Block_IsWrittenAsFakeL3Pages()
    {
        var memory = new PhysicalMemoryBuilder(RamStart + 0x800000);
        var map = new Arm64KernelMap(memory, 4096);
        map.MapL1Block(KernelVa + 0x40000000, RamStart);
        memory.Write(RamStart + 0x123456, "gigabyte block"u8.ToArray());
        memory.Write(RamStart + 0x1ff000, new byte[4096]);
        var builder = new Arm64MinidumpBuilder(memory, map) { DirectMapPhysical = RamStart, KernelVmEnd = KernelVa + 0x80000000, DumpAvail = [(RamStart, RamStart + 0x200000)] };
        using var file = new TempFile(builder.Build(), "vmcore.0");
        using var image = KernelImage.Open(file.Path);
        Assert.Equal("gigabyte block", image.ReadCString(KernelVa + 0x40000000 + 0x123456));
        Assert.Equal(512, image.EnumeratePages().Count(p => p.IsKernelMapped && image.TryTranslate(p.KernelMapAddress, out _) && p.PhysicalAddress < RamStart + 0x200000));
    }

    [Fact]
    public void UnknownPageSizeFlag_IsRefused()
    {
        var (_, _, builder) = Kernel(3, 4096);
        builder.Flags = 2;
        using var file = new TempFile(builder.Build(), "vmcore.0");
        var e = Assert.Throws<CorruptImageException>(() => KernelImage.Open(file.Path));
        Assert.Contains("unknown page size flag 2", e.Message, StringComparison.Ordinal);
    }

    private static ulong PageOf(int i, ulong ps) => RamStart + 0x100000 + ((ulong)(5 - i) * ps * 2);

    private static ulong BlockPhysical(Arm64KernelMap map) => RamStart + (map.L2Size * 4);

    private static byte[] Pattern(PhysicalMemoryBuilder memory, ulong pa, int size) => memory.Read(pa, size);

    private static (PhysicalMemoryBuilder Memory, Arm64KernelMap Map, Arm64MinidumpBuilder Builder) Kernel(uint version, int pageSize)
    {
        ulong ps = (ulong)pageSize;
        var memory = new PhysicalMemoryBuilder(RamStart + 0x2000000);
        var map = new Arm64KernelMap(memory, pageSize);
        for (int i = 0; i < 6; i++)
        {
            ulong pa = PageOf(i, ps);
            map.MapPage(KernelVa + ((ulong)i * ps), pa, i == 2 ? Arm64KernelMap.AttrReadOnly | Arm64KernelMap.AttrExecuteNever : 0);
            var bytes = new byte[pageSize];
            for (int j = 0; j < bytes.Length; j++)
            {
                bytes[j] = unchecked((byte)(j + (i * 31)));
            }

            memory.Write(pa, bytes);
        }

        map.MapL2Block(KernelVa + (4 * map.L2Size), BlockPhysical(map));
        memory.Write(BlockPhysical(map) + (3 * ps) + 17, "inside the block\0"u8.ToArray());
        ulong uma = RamStart + (0x600 * 4096UL);
        memory.Write(uma, "uma"u8.ToArray());
        ulong end = Math.Max(memory.Size, BlockPhysical(map) + map.L2Size);
        var builder = new Arm64MinidumpBuilder(memory, map)
        {
            Version = version,
            DirectMapPhysical = RamStart,
            KernelVmEnd = KernelVa + (8 * map.L2Size),
            DumpAvail = [(RamStart, MinidumpFile.RoundPage(end, pageSize))],
        };
        builder.ExtraPages.Add(uma);
        return (memory, map, builder);
    }
}
