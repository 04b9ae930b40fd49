using System.Text;

namespace Kvm.Testing.FreeBsd;

/// <summary>
/// A small FreeBSD/amd64 kernel in physical memory, laid out as FreeBSD lays out its own: the kernel image loaded
/// at physical 2 MiB and mapped at <c>KERNBASE</c> + 2 MiB with 2 MiB pages, <c>KPML4phys</c> holding the PML4's
/// physical address, the direct map in PML4 slots 496-503 (2 MiB pages over RAM), and a kernel map from
/// <c>VM_MIN_KERNEL_ADDRESS</c> with 4 KiB pages, a 2 MiB page and a 1 GiB page. It makes a minidump (any
/// version), a full ELF dump and the kernel's ELF with its .symtab, all of the same memory.
/// </summary>
public sealed class FreeBsdAmd64Kernel
{
    public const ulong KernBase = Amd64MinidumpBuilder.KernBase;
    public const ulong KernelLoad = 0x200000;
    public const ulong VersionAddress = KernBase + 0x280000;
    public const ulong OsreleaseAddress = KernBase + 0x280200;
    public const ulong KPml4PhysAddress = KernBase + 0x300000;
    public const ulong AllprocAddress = KernBase + 0x300100;
    public const ulong TicksAddress = KernBase + 0x300108;

    /// <summary>Where the kernel map's 4 KiB pages start, and how many there are.</summary>
    public const ulong KmemBase = Amd64MinidumpBuilder.VmMinKernelAddress + 0x10000;
    public const int KmemPages = 24;

    /// <summary>4 KiB pages above <c>KERNBASE</c> (where FreeBSD 7's kernel map, and a v1 minidump's page map, start).</summary>
    public const ulong HighKmemBase = KernBase + 0x1000000;
    public const int HighKmemPages = 4;

    /// <summary>A 2 MiB page of the kernel map, and the physical page it maps.</summary>
    public const ulong Kmem2M = Amd64MinidumpBuilder.VmMinKernelAddress + 0x400000;
    public const ulong Kmem2MPhysical = 0xa00000;

    /// <summary>A 1 GiB page of the kernel map over physical 0 (most of it beyond RAM).</summary>
    public const ulong Kmem1G = Amd64MinidumpBuilder.VmMinKernelAddress + 0x40000000;

    /// <summary>A kernel-map page mapping device memory outside <c>dump_avail</c> (the local APIC).</summary>
    public const ulong DeviceVa = Amd64MinidumpBuilder.VmMinKernelAddress + 0x80000;
    public const ulong DevicePhysical = 0xfee00000;

    public const string Version = "FreeBSD 14.0-RELEASE releng/14.0-n265380-f9716eee8ab4 GENERIC\n";
    public const string Osrelease = "14.0-RELEASE";

    /// <param name="ramBytes">RAM size (the second <c>dump_avail</c> range ends there).</param>
    /// <param name="withGigabytePage">Also map <see cref="Kmem1G"/> with a 1 GiB page over physical 0, which puts
    /// every RAM page in a minidump (the writer adds every dumpable page a large page covers).</param>
    public FreeBsdAmd64Kernel(ulong ramBytes = 32 << 20, bool withGigabytePage = false)
    {
        Memory = new PhysicalMemoryBuilder(allocationBase: 0x1800000);
        DumpAvail = [(0x1000, 0x9f000), (0x100000, ramBytes)];
        Tables = new X64PageTableBuilder(Memory);

        // The kernel image: 2 MiB pages from KERNBASE + 2 MiB to physical 2 MiB (sys/amd64/amd64/pmap.c create_pagetables).
        Tables.Map(KernBase + KernelLoad, KernelLoad, 0x200000).Map(KernBase + KernelLoad + 0x200000, KernelLoad + 0x200000, 0x200000);
        Memory.Write(VersionAddress - KernBase, Encoding.ASCII.GetBytes(Version + "\0"));
        Memory.Write(OsreleaseAddress - KernBase, Encoding.ASCII.GetBytes(Osrelease + "\0"));
        Memory.WriteUInt64(KPml4PhysAddress - KernBase, Tables.Root);
        Memory.WriteUInt64(TicksAddress - KernBase, 123456);

        // The direct map over RAM.
        for (ulong pa = 0; pa < ramBytes; pa += 0x200000)
        {
            Tables.Map(Amd64MinidumpBuilder.DmapMinAddress + pa, pa, 0x200000);
        }

        // The kernel map: scattered 4 KiB pages with a pattern, a 2 MiB page, a 1 GiB page, a device page.
        for (int i = 0; i < KmemPages; i++)
        {
            ulong pa = 0x800000 + ((ulong)(KmemPages - i) * 0x3000);
            Tables.Map(KmemBase + ((ulong)i * 4096), pa);
            Memory.Write(pa, Pattern(i));
        }

        for (int i = 0; i < HighKmemPages; i++)
        {
            ulong pa = 0x900000 + ((ulong)i * 0x2000);
            Tables.Map(HighKmemBase + ((ulong)i * 4096), pa);
            Memory.Write(pa, Pattern(100 + i));
        }

        Tables.Map(Kmem2M, Kmem2MPhysical, 0x200000);
        Memory.Write(Kmem2MPhysical + 0x1234, Encoding.ASCII.GetBytes("two megabytes"));
        if (withGigabytePage)
        {
            Tables.Map(Kmem1G, 0, 0x40000000);
        }

        Tables.Map(DeviceVa, DevicePhysical);

        // Pages only the direct map reaches (UMA allocates small objects there and adds them to the dump).
        DirectMapOnlyPages = [0x1200000, 0x1201000, 0x1300000];
        foreach (var pa in DirectMapOnlyPages)
        {
            Memory.Write(pa, Encoding.ASCII.GetBytes($"uma page at 0x{pa:x}"));
        }
    }

    public PhysicalMemoryBuilder Memory { get; }

    public X64PageTableBuilder Tables { get; }

    public List<(ulong Start, ulong End)> DumpAvail { get; }

    public List<ulong> DirectMapOnlyPages { get; }

    public static byte[] Pattern(int seed)
    {
        var page = new byte[4096];
        for (int i = 0; i < page.Length; i++)
        {
            page[i] = unchecked((byte)((i * 7) + (seed * 13)));
        }

        return page;
    }

    /// <summary>A minidump of <paramref name="version"/> (the kernel map from <c>VM_MIN_KERNEL_ADDRESS</c> for v2/v3; from <c>KERNBASE</c> for v1, as FreeBSD 7 had it).</summary>
    public byte[] Minidump(uint version = 3, Action<Amd64MinidumpBuilder>? configure = null)
    {
        var builder = new Amd64MinidumpBuilder(Memory, Tables.Root)
        {
            Version = version,
            KernelBase = version == 1 ? KernBase : Amd64MinidumpBuilder.VmMinKernelAddress,
            KernelVmEnd = KernBase + (32UL << 21),
            DumpAvail = DumpAvail,
        };
        builder.ExtraPages.AddRange(DirectMapOnlyPages);
        configure?.Invoke(builder);
        LastDumpSet = null;
        var bytes = builder.Build();
        LastDumpSet = builder.Dumped;
        return bytes;
    }

    /// <summary>The dump set of the last <see cref="Minidump"/>.</summary>
    public DumpSet? LastDumpSet { get; private set; }

    /// <summary>A full dump: every <c>dump_avail</c> chunk.</summary>
    public byte[] FullDump() => FreeBsdFullDump.Amd64(Memory, DumpAvail);

    /// <summary>Where <see cref="AddProcesses"/> puts the process structures: inside the kernel image's 2 MiB pages.</summary>
    public const ulong ProcessArea = KernBase + 0x500000;

    /// <summary>
    /// Writes <c>allproc</c> with four processes — proc0 (kernel, pid 0, two threads), init (1), a shell (42) and a
    /// zombie (43) — and returns the table; the kernel's ELF then carries the CTF describing them.
    /// </summary>
    public FreeBsdProcessTable AddProcesses()
    {
        var table = new FreeBsdProcessTable(Memory, ProcessArea, ProcessArea - KernBase);
        table.AddProcess(0, "kernel", -1, 0, 0, 0, 0, 0, 0, 1, 0x204, 0, (100000, "swapper", 1), (100001, "softclock", 4));
        table.AddProcess(1, "init", ["/sbin/init"], 0, 0, 0, 0, 0, 1, 1, 1, 0x4000, 0, (100002, "init", 1));
        table.AddProcess(42, "sh", ["-sh", "-i"], 1, 1001, 1001, 20, 5, 42, 42, 1, 0x4002, -5, (100042, "sh", 4));
        table.AddProcess(43, "sleep", 2, 1001, 0, 20, 0, 42, 42, 2, 0x4000, 0);
        table.WriteAllproc(AllprocAddress - KernBase);
        Ctf = FreeBsdProcessTable.Ctf();
        ProcessTable = table;
        return table;
    }

    /// <summary>The table of <see cref="AddProcesses"/>, or null.</summary>
    public FreeBsdProcessTable? ProcessTable { get; private set; }

    /// <summary>
    /// Writes the system state of <paramref name="state"/> (the message buffer, load average, CPUs and clocks; the
    /// processes of <see cref="AddProcesses"/> too, whose threads the CPUs run) and gives the kernel's ELF their
    /// symbols and one CTF describing processes and system state alike.
    /// </summary>
    public FreeBsdSystemState AddSystemState(FreeBsdSystemState? state = null)
    {
        state ??= new FreeBsdSystemState();
        var table = ProcessTable ?? AddProcesses();
        state.Write(Memory, table.Threads);
        var c = new CtfBuilder();
        var (_, thread) = FreeBsdProcessTable.AddTypes(c);
        FreeBsdSystemState.AddTypes(c, thread);
        Ctf = c.Build();
        DataSymbols.AddRange(state.Symbols());
        return state;
    }

    /// <summary>More data symbols for the kernel's ELF: name, address, and whether the symbol is local (static).</summary>
    public List<(string Name, ulong Address, bool Local)> DataSymbols { get; } = [];

    /// <summary>The CTF the kernel's ELF carries as .SUNW_ctf, or null.</summary>
    public byte[]? Ctf { get; set; }

    /// <summary>The kernel's ELF: FreeBSD-branded, with the symbols libkvm and the tests use.</summary>
    public byte[] KernelElf(bool brand = true)
    {
        var elf = new ElfExecutableBuilder
        {
            OsAbi = brand ? (byte)9 : (byte)0,
            TextBase = KernBase + KernelLoad,
            RodataBase = KernBase + 0x280000,
            DataBase = KernBase + 0x300000,
            BssBase = KernBase + 0x380000,
        };
        elf.AddSymbol("kernbase", KernBase, ElfExecutableBuilder.ShnAbs, type: ElfExecutableBuilder.SttNotype)
            .AddSymbol("btext", KernBase + KernelLoad, ElfExecutableBuilder.Text)
            .AddSymbol("version", VersionAddress, ElfExecutableBuilder.Rodata, type: ElfExecutableBuilder.SttObject)
            .AddSymbol("osrelease", OsreleaseAddress, ElfExecutableBuilder.Rodata, type: ElfExecutableBuilder.SttObject)
            .AddSymbol("KPML4phys", KPml4PhysAddress, ElfExecutableBuilder.Data, type: ElfExecutableBuilder.SttObject)
            .AddSymbol("allproc", AllprocAddress, ElfExecutableBuilder.Data, type: ElfExecutableBuilder.SttObject)
            .AddSymbol("ticks", TicksAddress, ElfExecutableBuilder.Data, type: ElfExecutableBuilder.SttObject)
            .AddSymbol("vm_page_array", KernBase + 0x380000, ElfExecutableBuilder.Bss, type: ElfExecutableBuilder.SttObject)
            .AddSymbol("static_helper", KernBase + KernelLoad + 0x40, ElfExecutableBuilder.Text, ElfExecutableBuilder.StbLocal);
        foreach (var (name, address, local) in DataSymbols)
        {
            elf.AddSymbol(name, address, ElfExecutableBuilder.Data, local ? ElfExecutableBuilder.StbLocal : ElfExecutableBuilder.StbGlobal, ElfExecutableBuilder.SttObject);
        }

        if (Ctf is not null)
        {
            elf.ExtraSections.Add((".SUNW_ctf", Ctf));
        }

        return elf.Build();
    }
}
