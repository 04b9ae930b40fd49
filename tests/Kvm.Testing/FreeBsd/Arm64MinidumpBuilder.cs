using System.Text;

namespace Kvm.Testing.FreeBsd;

/// <summary>
/// The arm64 kernel map a minidump describes: L3 tables (in a <see cref="PhysicalMemoryBuilder"/>), L2 blocks and,
/// with 4 KiB pages, L1 blocks, keyed by their address. Descriptors as arm64/include/pte.h defines them.
/// </summary>
public sealed class Arm64KernelMap
{
    /// <summary>ATTR_AF: the access flag.</summary>
    public const ulong AttrAf = 1UL << 10;

    /// <summary>ATTR_SH(ATTR_SH_IS): inner shareable, <c>pmap_sh_attr</c>.</summary>
    public const ulong AttrShIs = 3UL << 8;

    /// <summary>ATTR_S1_AP(ATTR_S1_AP_RO): read-only.</summary>
    public const ulong AttrReadOnly = 1UL << 7;

    /// <summary>ATTR_S1_XN: PXN | UXN.</summary>
    public const ulong AttrExecuteNever = (1UL << 53) | (1UL << 54);

    public const ulong L3Page = 3;

    private readonly PhysicalMemoryBuilder _memory;
    private readonly SortedDictionary<ulong, ulong> _l3Tables = new();
    private readonly SortedDictionary<ulong, ulong> _l2Blocks = new();
    private readonly SortedDictionary<ulong, ulong> _l1Blocks = new();

    public Arm64KernelMap(PhysicalMemoryBuilder memory, int pageSize)
    {
        _memory = memory;
        PageSize = pageSize;
    }

    public int PageSize { get; }

    /// <summary>Entries per table: <c>Ln_ENTRIES</c>.</summary>
    public int Entries => PageSize / 8;

    /// <summary><c>L2_SIZE</c>: 2 MiB with 4 KiB pages, 32 MiB with 16 KiB.</summary>
    public ulong L2Size => (ulong)PageSize * (ulong)Entries;

    /// <summary><c>L1_SIZE</c>: 1 GiB with 4 KiB pages.</summary>
    public ulong L1Size => L2Size * (ulong)Entries;

    /// <summary>Maps one page with an L3 descriptor; <paramref name="attributes"/> beyond AF|SH|L3_PAGE (read-only, XN).</summary>
    public Arm64KernelMap MapPage(ulong va, ulong pa, ulong attributes = 0)
    {
        ulong chunk = va & ~(L2Size - 1);
        if (!_l3Tables.TryGetValue(chunk, out ulong table))
        {
            table = _memory.AllocatePages(PageSize / 4096, (ulong)PageSize);
            _l3Tables[chunk] = table;
        }

        ulong index = (va & (L2Size - 1)) / (ulong)PageSize;
        _memory.WriteUInt64(table + (index * 8), pa | AttrAf | AttrShIs | L3Page | attributes);
        return this;
    }

    public Arm64KernelMap MapL2Block(ulong va, ulong pa)
    {
        _l2Blocks[va & ~(L2Size - 1)] = pa & ~(L2Size - 1);
        return this;
    }

    public Arm64KernelMap MapL1Block(ulong va, ulong pa)
    {
        _l1Blocks[va & ~(L1Size - 1)] = pa & ~(L1Size - 1);
        return this;
    }

    internal bool TryL1Block(ulong va, out ulong pa) => _l1Blocks.TryGetValue(va & ~(L1Size - 1), out pa);

    internal bool TryL2Block(ulong va, out ulong pa) => _l2Blocks.TryGetValue(va & ~(L2Size - 1), out pa);

    internal bool TryL3Table(ulong va, out ulong table) => _l3Tables.TryGetValue(va & ~(L2Size - 1), out table);
}

/// <summary>
/// Writes an arm64 minidump as sys/arm64/arm64/minidump_machdep.c does: one page-map page per <c>L2_SIZE</c> of
/// [<c>VM_MIN_KERNEL_ADDRESS</c>, <c>kernel_vm_end</c>) — the L3 table itself (written from memory), a page of fake
/// L3 descriptors for an L2 block (<c>pa | ATTR_AF | pmap_sh_attr | L3_PAGE</c>), <c>Ln_ENTRIES</c> such pages for
/// an L1 block, or zeros — after the header, message buffer, <c>dump_avail</c> (v2+) and bitmap. v3 adds the page-size
/// flags; v1 has no <c>dump_avail</c> and indexes the bitmap by page frame number.
/// </summary>
public sealed class Arm64MinidumpBuilder
{
    public const ulong VmMinKernelAddress = 0xffff000000000000;

    public const ulong DmapMinAddress = 0xffffa00000000000;

    public const ulong DmapMaxAddress = 0xffffff0000000000;

    private readonly PhysicalMemoryBuilder _memory;
    private readonly Arm64KernelMap _map;

    public Arm64MinidumpBuilder(PhysicalMemoryBuilder memory, Arm64KernelMap map)
    {
        _memory = memory;
        _map = map;
    }

    public uint Version { get; set; } = 3;

    public ulong KernelBase { get; set; } = VmMinKernelAddress;

    /// <summary><c>kernel_vm_end</c>.</summary>
    public ulong KernelVmEnd { get; set; } = VmMinKernelAddress + (64UL << 20);

    /// <summary><c>DMAP_MIN_PHYSADDR</c>: the lowest RAM address.</summary>
    public ulong DirectMapPhysical { get; set; }

    public ulong DirectMapBase { get; set; } = DmapMinAddress;

    public ulong DirectMapEnd { get; set; } = DmapMaxAddress;

    /// <summary>Overrides the flags word (the page-size flag by default).</summary>
    public uint? Flags { get; set; }

    public List<(ulong Start, ulong End)>? DumpAvail { get; set; }

    public List<ulong> ExtraPages { get; } = [];

    public byte[] MessageBuffer { get; set; } = Encoding.ASCII.GetBytes("arm64 test kernel\n");

    public DumpSet? Dumped { get; private set; }

    public byte[] Build()
    {
        int ps = _map.PageSize;
        var avail = DumpAvail ?? [(DirectMapPhysical, _memory.Size)];
        var set = new DumpSet(avail, ps, Version >= 2);
        var pmap = new MemoryStream();
        ulong page = (ulong)ps;
        for (ulong va = KernelBase; va < KernelVmEnd; va += _map.L2Size)
        {
            var buffer = new byte[ps];
            if (_map.TryL1Block(va, out ulong l1))
            {
                for (ulong pa = l1, i = 0; i < (ulong)_map.Entries * (ulong)_map.Entries; i++, pa += page)
                {
                    AddIfDumpable(set, pa);
                }

                for (int i = 0; i < _map.Entries; i++)
                {
                    for (int j = 0; j < _map.Entries; j++)
                    {
                        ulong pa = l1 + ((ulong)i * _map.L2Size) + ((ulong)j * page);
                        BitConverter.GetBytes(pa | Arm64KernelMap.AttrAf | Arm64KernelMap.AttrShIs | Arm64KernelMap.L3Page).CopyTo(buffer, j * 8);
                    }

                    pmap.Write(buffer);
                }

                va += _map.L1Size - _map.L2Size;
                continue;
            }

            if (_map.TryL2Block(va, out ulong l2))
            {
                for (int i = 0; i < _map.Entries; i++)
                {
                    AddIfDumpable(set, l2 + ((ulong)i * page));
                    BitConverter.GetBytes((l2 + ((ulong)i * page)) | Arm64KernelMap.AttrAf | Arm64KernelMap.AttrShIs | Arm64KernelMap.L3Page).CopyTo(buffer, i * 8);
                }

                pmap.Write(buffer);
                continue;
            }

            if (_map.TryL3Table(va, out ulong table))
            {
                for (int i = 0; i < _map.Entries; i++)
                {
                    ulong l3 = _memory.ReadUInt64(table + ((ulong)i * 8));
                    if ((l3 & 3) == Arm64KernelMap.L3Page)
                    {
                        AddIfDumpable(set, l3 & 0x0003fffffffff000 & ~(page - 1));
                    }
                }

                pmap.Write(_memory.Read(table, ps));
                continue;
            }

            pmap.Write(buffer);
        }

        foreach (var pa in ExtraPages)
        {
            set.Add(pa);
        }

        Dumped = set;
        int bitmapSize = (int)MinidumpFile.RoundPage((set.BitCount + 63) / 64 * 8, ps);
        uint flags = Flags ?? (ps == 16384 ? 1u : 0u);
        var header = MinidumpFile.HeaderPage("minidump FreeBSD/arm64", ps, w =>
        {
            w.Write(Version);
            w.Write((uint)MessageBuffer.Length);
            w.Write((uint)bitmapSize);
            w.Write((uint)pmap.Length);
            w.Write(KernelBase);
            w.Write(DirectMapPhysical);
            w.Write(DirectMapBase);
            w.Write(DirectMapEnd);
            w.Write(Version >= 2 ? (uint)ps : 0u);
            w.Write(Version >= 3 ? flags : 0u);
        });
        var file = new MinidumpFile(ps).Write(header).Write(MessageBuffer);
        if (Version >= 2)
        {
            file.Write(MinidumpFile.DumpAvailPage(avail, ps));
        }

        file.Write(set.Bitmap(bitmapSize)).Write(pmap.ToArray());
        foreach (var pa in set.Pages)
        {
            file.Write(_memory.Read(pa, ps));
        }

        return file.ToArray();
    }

    private static void AddIfDumpable(DumpSet set, ulong pa)
    {
        if (set.IsDumpable(pa))
        {
            set.Add(pa);
        }
    }
}
