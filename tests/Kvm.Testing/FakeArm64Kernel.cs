using System.Text;

namespace Kvm.Testing;

/// <summary>
/// A small, self-consistent Linux arm64 "kernel" in physical memory, the AArch64 counterpart of
/// <see cref="FakeLinuxKernel"/>: the kernel image mapped at <c>KIMAGE_VADDR</c> plus a KASLR offset by granule
/// pages, the first GiB of RAM in the linear map at <c>PAGE_OFFSET</c> by blocks, <c>swapper_pg_dir</c> inside the
/// image, <c>linux_banner</c>, <c>init_uts_ns</c> and the kernel's VMCOREINFO page with the keys
/// arch/arm64/kernel/crash_core.c writes (Linux 6.1). It can be written as an EM_AARCH64 ELF core (with or without the
/// VMCOREINFO note) or as a raw image.
/// </summary>
public sealed class FakeArm64Kernel : IFakeKernel
{
    public const string Release = "6.1.0-fake-arm64";
    public const string Banner = "Linux version 6.1.0-fake-arm64 (fake@example.org) (gcc 12) #1 SMP Debian\n";
    public const ulong BannerOffset = 0x200000;
    public const ulong UtsOffset = 0x300000;
    public const ulong JiffiesOffset = 0x300800;
    public const ulong ImageSize = 0x1000000;

    public FakeArm64Kernel(ulong granule = 4096, int vaBits = 48, ulong kaslrOffset = 0x2a000000, ulong physicalLoad = 0x4000000, ulong physOffset = 0,
        bool exportT1sz = true)
    {
        Granule = granule;
        VaBits = vaBits;
        KaslrOffset = kaslrOffset;
        PhysicalLoad = physicalLoad;
        PhysOffset = physOffset;
        ExportT1sz = exportT1sz;

        // arch/arm64/include/asm/memory.h (5.11+): PAGE_OFFSET = -(1 << VA_BITS); the image is linked at KIMAGE_VADDR =
        // MODULES_END = _PAGE_END(VA_BITS_MIN) + 128 MiB, with VA_BITS_MIN 48 for 52-bit kernels.
        PageOffset = ulong.MaxValue << vaBits;
        LinkText = (ulong.MaxValue << (Math.Min(vaBits, 48) - 1)) + 0x8000000;

        Memory = new PhysicalMemoryBuilder(physicalLoad + 0x800000);
        Tables = new Arm64PageTableBuilder(Memory, granule, vaBits);
        Tables.MapRange(TextVa, physicalLoad, ImageSize);

        // The first GiB of RAM through the largest block the granule has below 1 GiB: 1 GiB, 32 MiB or 512 MiB.
        ulong block = granule switch { 4096 => 1UL << 30, 16384 => 1UL << 25, _ => 1UL << 29 };
        for (ulong off = 0; off < 1UL << 30; off += block)
        {
            Tables.Map(PageOffset + off, physOffset + off, block);
        }

        Memory.Write(physicalLoad + BannerOffset, Encoding.ASCII.GetBytes(Banner + "\0"));
        Memory.Write(PhysicalLoad + UtsOffset, FakeUtsname.Bytes(Release, "#1 SMP Debian", "aarch64"));
        Memory.WriteUInt64(physicalLoad + JiffiesOffset, 0x1234_5678_9abc);
        Memory.Write(VmcoreInfoPage, Encoding.ASCII.GetBytes(VmcoreInfoText));
    }

    public ulong Granule { get; }

    public int VaBits { get; }

    public ulong KaslrOffset { get; }

    public ulong PhysicalLoad { get; }

    /// <summary><c>PHYS_OFFSET</c>: the physical address the linear map starts with.</summary>
    public ulong PhysOffset { get; }

    /// <summary>Whether VMCOREINFO carries <c>NUMBER(TCR_EL1_T1SZ)</c> (Linux 5.9+).</summary>
    public bool ExportT1sz { get; }

    public ulong PageOffset { get; }

    public ulong LinkText { get; }

    public PhysicalMemoryBuilder Memory { get; }

    public Arm64PageTableBuilder Tables { get; }

    public ulong TextVa => LinkText + KaslrOffset;

    /// <summary><c>kimage_voffset</c>: image virtual address minus physical address.</summary>
    public ulong KimageVoffset => TextVa - PhysicalLoad;

    public ulong SwapperPgDirVa => Tables.Root + KimageVoffset;

    /// <summary>The direct-map address of physical 0 (<c>PAGE_OFFSET - PHYS_OFFSET</c>), for <see cref="IFakeKernel"/>.</summary>
    public ulong PageOffsetBase => PageOffset - PhysOffset;

    /// <summary>Where the kernel's vmcoreinfo_data page sits (found by the memory scan).</summary>
    public ulong VmcoreInfoPage => PhysOffset + 0x7000;

    public string VmcoreInfoText =>
        $"OSRELEASE={Release}\nPAGESIZE={Granule}\n" +
        $"SYMBOL(init_uts_ns)={TextVa + UtsOffset:x}\nSYMBOL(_stext)={TextVa:x}\nSYMBOL(swapper_pg_dir)={SwapperPgDirVa:x}\n" +
        $"OFFSET(uts_namespace.name)=0\nNUMBER(VA_BITS)={VaBits}\nNUMBER(kimage_voffset)=0x{KimageVoffset:x}\nNUMBER(PHYS_OFFSET)=0x{PhysOffset:x}\n" +
        (ExportT1sz ? $"NUMBER(TCR_EL1_T1SZ)=0x{64 - VaBits:x}\n" : string.Empty) +
        $"KERNELOFFSET={KaslrOffset:x}\n";

    /// <summary>A link-time System.map: per-CPU symbols are offsets into the per-CPU area, as the fake places them.</summary>
    public string SystemMap =>
        $"0000000000000000 D __per_cpu_start\n000000000001f000 D __entry_task\n" +
        $"{LinkText:x16} T _text\n{LinkText:x16} T _stext\n{LinkText + BannerOffset:x16} R linux_banner\n" +
        $"{LinkText + UtsOffset:x16} D init_uts_ns\n{LinkText + JiffiesOffset:x16} D jiffies\n" +
        $"{SwapperPgDirVa - KaslrOffset:x16} B swapper_pg_dir\n";

    ulong IFakeKernel.ImageSize => ImageSize;

    IFakePageTables IFakeKernel.NewUserTables() => new Arm64PageTableBuilder(Memory, Granule, VaBits);

    byte[] IFakeKernel.ToElf() => ToElf();

    /// <summary>The fake image as an EM_AARCH64 ELF core, as QEMU's dump-guest-memory writes it (no CPU-state note).</summary>
    public byte[] ToElf(bool vmcoreInfoNote = true)
    {
        var elf = new ElfCoreBuilder { Machine = 183 };
        if (vmcoreInfoNote)
        {
            elf.AddVmcoreInfo(VmcoreInfoText);
        }

        return elf.AddPhysicalMemory(Memory).Build();
    }

    /// <summary>The fake image as a raw (offset = physical address) file.</summary>
    public byte[] ToRaw() => Memory.ToFlat((PhysicalLoad + ImageSize + 0xfffff) & ~0xfffffUL);
}
