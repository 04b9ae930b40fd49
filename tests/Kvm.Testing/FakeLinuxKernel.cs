using System.Globalization;
using System.Text;

namespace Kvm.Testing;

/// <summary>
/// A small, self-consistent x86-64 "kernel" in physical memory: a KASLR-displaced text map backed by 2 MiB pages,
/// a direct map, page tables, <c>linux_banner</c>, <c>init_uts_ns</c> and the kernel's VMCOREINFO page. It can be
/// written as a QEMU-style ELF core (with or without the VMCOREINFO and CPU notes) or as a raw image, with a
/// matching link-time System.map, so the façade can be tested end to end without QEMU.
/// </summary>
public sealed class FakeLinuxKernel : IFakeKernel
{
    public const ulong LinkText = 0xffffffff81000000;
    public const string Release = "6.1.0-fake-amd64";
    public const string Banner = "Linux version 6.1.0-fake-amd64 (fake@example.org) (gcc 12) #1 SMP PREEMPT_DYNAMIC\n";

    // Offsets of objects from _text in the fake image.
    public const ulong BannerOffset = 0x200000;
    public const ulong UtsOffset = 0x300000;
    public const ulong JiffiesOffset = 0x300800;
    public const ulong ImageSize = 0x1000000;

    public FakeLinuxKernel(bool fiveLevel = false, ulong kaslrOffset = 0x2a000000, ulong physicalLoad = 0x4000000, ulong pageOffsetBase = 0xffff9a8000000000)
    {
        FiveLevel = fiveLevel;
        KaslrOffset = kaslrOffset;
        PhysicalLoad = physicalLoad;
        PageOffsetBase = fiveLevel && pageOffsetBase == 0xffff9a8000000000 ? 0xff35000000000000 : pageOffsetBase;
        PhysBase = unchecked((long)(physicalLoad - (LinkText + kaslrOffset - 0xffffffff80000000)));

        // Tables live inside the kernel image, as init_top_pgt does, so their virtual address is a text address.
        Memory = new PhysicalMemoryBuilder(physicalLoad + 0x800000);
        Tables = new X64PageTableBuilder(Memory, fiveLevel);
        for (ulong off = 0; off < ImageSize; off += 0x200000)
        {
            Tables.Map(TextVa + off, physicalLoad + off, 0x200000);
        }

        // Direct map of the first 1 GiB with one 1 GiB page: PA 0 is mapped at page_offset_base.
        Tables.Map(PageOffsetBase, 0, 0x40000000);

        Memory.Write(physicalLoad + BannerOffset, Encoding.ASCII.GetBytes(Banner + "\0"));
        Memory.Write(PhysicalLoad + UtsOffset, FakeUtsname.Bytes(Release, "#1 SMP PREEMPT_DYNAMIC", "x86_64"));
        Memory.WriteUInt64(physicalLoad + JiffiesOffset, 0x1234_5678_9abc);
        Memory.Write(VmcoreInfoPage, Encoding.ASCII.GetBytes(VmcoreInfoText));
    }

    public bool FiveLevel { get; }

    public ulong KaslrOffset { get; }

    public ulong PhysicalLoad { get; }

    public ulong PageOffsetBase { get; }

    public long PhysBase { get; }

    public PhysicalMemoryBuilder Memory { get; }

    public X64PageTableBuilder Tables { get; }

    public ulong TextVa => LinkText + KaslrOffset;

    public ulong InitTopPgtVa => unchecked(Tables.Root + 0xffffffff80000000 - (ulong)PhysBase);

    /// <summary>Where the kernel's vmcoreinfo_data page sits (found by the memory scan).</summary>
    public ulong VmcoreInfoPage => 0x7000;

    public string VmcoreInfoText =>
        $"OSRELEASE={Release}\nPAGESIZE=4096\n" +
        $"SYMBOL(init_uts_ns)={TextVa + UtsOffset:x}\nSYMBOL(_stext)={TextVa:x}\nSYMBOL(init_top_pgt)={InitTopPgtVa:x}\nSYMBOL(swapper_pg_dir)={InitTopPgtVa:x}\n" +
        $"OFFSET(uts_namespace.name)=0\nNUMBER(phys_base)={PhysBase.ToString(CultureInfo.InvariantCulture)}\nNUMBER(pgtable_l5_enabled)={(FiveLevel ? 1 : 0)}\n" +
        $"KERNELOFFSET={KaslrOffset:x}\n";

    /// <summary>A link-time System.map for the fake image.</summary>
    public string SystemMap =>
        $"0000000000000000 D __per_cpu_start\n000000000001f000 D current_task\n" +
        $"{LinkText:x16} T _text\n{LinkText:x16} T _stext\n{LinkText + BannerOffset:x16} R linux_banner\n" +
        $"{LinkText + UtsOffset:x16} D init_uts_ns\n{LinkText + JiffiesOffset:x16} D jiffies\n" +
        $"{InitTopPgtVa - KaslrOffset:x16} D init_top_pgt\n";

    ulong IFakeKernel.ImageSize => ImageSize;

    IFakePageTables IFakeKernel.NewUserTables() => new X64PageTableBuilder(Memory, FiveLevel);

    byte[] IFakeKernel.ToElf() => ToElf();

    /// <summary>The fake image as a QEMU-style ELF core.</summary>
    public byte[] ToElf(bool vmcoreInfoNote = true, bool cpuNote = true)
    {
        var elf = new ElfCoreBuilder();
        if (cpuNote)
        {
            elf.AddQemuCpuState(0x80050033, Tables.Root, FiveLevel ? 0x1000UL : 0UL);
        }

        if (vmcoreInfoNote)
        {
            elf.AddVmcoreInfo(VmcoreInfoText);
        }

        return elf.AddPhysicalMemory(Memory).Build();
    }

    /// <summary>The fake image as a raw (offset = physical address) file.</summary>
    public byte[] ToRaw() => Memory.ToFlat((PhysicalLoad + ImageSize + 0xfffff) & ~0xfffffUL);
}
