using System.Text;

namespace Kvm.Testing.FreeBsd;

/// <summary>
/// i386 kernel page tables as FreeBSD lays them out: <c>IdlePTD</c> is one page directory of 1024 32-bit entries
/// without PAE (4 MiB per entry), or four contiguous pages of 512 64-bit entries with PAE (2 MiB per entry) that
/// <c>IdlePDPT</c>'s four entries point at (sys/i386/i386/pmap.c, locore.s).
/// </summary>
public sealed class I386PageTableBuilder
{
    public const ulong PgV = 1;
    public const ulong PgRw = 2;
    public const ulong PgPs = 0x80;
    public const ulong PgNx = 1UL << 63;

    private readonly PhysicalMemoryBuilder _memory;

    public I386PageTableBuilder(PhysicalMemoryBuilder memory, bool pae)
    {
        _memory = memory;
        Pae = pae;
        PageDirectory = memory.AllocatePages(pae ? 4 : 1);
        if (pae)
        {
            Pdpt = memory.AllocatePage();
            for (int i = 0; i < 4; i++)
            {
                memory.WriteUInt64(Pdpt + ((ulong)i * 8), (PageDirectory + ((ulong)i * 4096)) | PgV);
            }
        }
    }

    public bool Pae { get; }

    /// <summary>The physical address <c>IdlePTD</c> holds.</summary>
    public ulong PageDirectory { get; }

    /// <summary>The physical address <c>IdlePDPT</c> holds (PAE).</summary>
    public ulong Pdpt { get; }

    /// <summary><c>NBPDR</c>: what one directory entry maps.</summary>
    public ulong LargePageSize => Pae ? 1UL << 21 : 1UL << 22;

    /// <summary><c>NPTEPG</c>.</summary>
    public int PtesPerPage => Pae ? 512 : 1024;

    public int EntrySize => Pae ? 8 : 4;

    /// <summary>Maps a 4 KiB page, or a large page (<see cref="LargePageSize"/>) when <paramref name="large"/>.</summary>
    public I386PageTableBuilder Map(ulong va, ulong pa, bool large = false, ulong flags = PgRw)
    {
        ulong pdeAddress = PageDirectory + (va / LargePageSize * (ulong)EntrySize);
        if (large)
        {
            Write(pdeAddress, (pa & ~(LargePageSize - 1)) | PgV | PgPs | flags);
            return this;
        }

        ulong pde = ReadPde(va);
        if ((pde & PgV) == 0)
        {
            ulong pt = _memory.AllocatePage();
            pde = pt | PgV | PgRw;
            Write(pdeAddress, pde);
        }

        ulong pteAddress = (pde & 0x000ffffffffff000) + ((va % LargePageSize) / 4096 * (ulong)EntrySize);
        Write(pteAddress, pa | PgV | flags);
        return this;
    }

    public ulong ReadPde(ulong va) => Read(PageDirectory + (va / LargePageSize * (ulong)EntrySize));

    public ulong Read(ulong pa) => Pae ? _memory.ReadUInt64(pa) : _memory.ReadUInt32(pa);

    private void Write(ulong pa, ulong value)
    {
        if (Pae)
        {
            _memory.WriteUInt64(pa, value);
        }
        else
        {
            _memory.WriteUInt32(pa, unchecked((uint)value));
        }
    }
}

/// <summary>
/// Writes an i386 minidump as sys/i386/i386/minidump_machdep_base.c does: one page of PTEs per <c>NBPDR</c> of
/// [<c>KERNBASE</c>, <c>kernel_vm_end</c>) — the page-table page (from memory), a fake one for a large page
/// (<c>pa | PG_V | PG_RW | PG_A | PG_M</c>), or zeros — after the header (<c>ptesize</c>, 32-bit <c>kernbase</c>,
/// <c>paemode</c>, <c>dumpavailsize</c> in v2), message buffer, <c>dump_avail</c> (v2) and bitmap.
/// </summary>
public sealed class I386MinidumpBuilder
{
    public const uint KernBase = 0xc0000000;

    private readonly PhysicalMemoryBuilder _memory;
    private readonly I386PageTableBuilder _tables;

    public I386MinidumpBuilder(PhysicalMemoryBuilder memory, I386PageTableBuilder tables)
    {
        _memory = memory;
        _tables = tables;
    }

    public uint Version { get; set; } = 2;

    public uint KernelBase { get; set; } = KernBase;

    public ulong KernelVmEnd { get; set; } = KernBase + (32UL << 20);

    public List<(ulong Start, ulong End)>? DumpAvail { get; set; }

    public List<ulong> ExtraPages { get; } = [];

    public byte[] MessageBuffer { get; set; } = Encoding.ASCII.GetBytes("i386 test kernel\n");

    public DumpSet? Dumped { get; private set; }

    public byte[] Build()
    {
        var avail = DumpAvail ?? [(0, _memory.Size)];
        var set = new DumpSet(avail, 4096, Version >= 2);
        var ptes = new MemoryStream();
        const ulong A = 0x20, M = 0x40;
        for (ulong va = KernelBase; va < KernelVmEnd; va += _tables.LargePageSize)
        {
            ulong pde = _tables.ReadPde(va);
            var pt = new byte[4096];
            if ((pde & (I386PageTableBuilder.PgPs | I386PageTableBuilder.PgV)) == (I386PageTableBuilder.PgPs | I386PageTableBuilder.PgV))
            {
                ulong pa = pde & ~(_tables.LargePageSize - 1) & 0x000fffffffffffff;
                for (int k = 0; k < _tables.PtesPerPage; k++, pa += 4096)
                {
                    AddIfDumpable(set, pa);
                    ulong fake = pa | I386PageTableBuilder.PgV | I386PageTableBuilder.PgRw | A | M;
                    (_tables.Pae ? BitConverter.GetBytes(fake) : BitConverter.GetBytes((uint)fake)).CopyTo(pt, k * _tables.EntrySize);
                }

                ptes.Write(pt);
                continue;
            }

            if ((pde & I386PageTableBuilder.PgV) != 0)
            {
                ulong table = pde & 0x000ffffffffff000;
                for (int k = 0; k < _tables.PtesPerPage; k++)
                {
                    ulong pte = _tables.Read(table + ((ulong)k * (ulong)_tables.EntrySize));
                    if ((pte & I386PageTableBuilder.PgV) != 0)
                    {
                        AddIfDumpable(set, pte & (_tables.Pae ? 0x000ffffffffff000UL : 0xfffff000UL));
                    }
                }

                ptes.Write(_memory.Read(table, 4096));
                continue;
            }

            ptes.Write(pt);
        }

        foreach (var pa in ExtraPages)
        {
            set.Add(pa);
        }

        Dumped = set;
        int bitmapSize = (int)MinidumpFile.RoundPage((set.BitCount + 63) / 64 * 8, 4096);
        var header = MinidumpFile.HeaderPage("minidump FreeBSD/i386", 4096, w =>
        {
            w.Write(Version);
            w.Write((uint)MessageBuffer.Length);
            w.Write((uint)bitmapSize);
            w.Write((uint)ptes.Length);
            w.Write(KernelBase);
            w.Write(_tables.Pae ? 1u : 0u);
            w.Write(Version >= 2 ? 4096u : 0u);
        });
        var file = new MinidumpFile(4096).Write(header).Write(MessageBuffer);
        if (Version >= 2)
        {
            file.Write(MinidumpFile.DumpAvailPage(avail, 4096));
        }

        file.Write(set.Bitmap(bitmapSize)).Write(ptes.ToArray());
        foreach (var pa in set.Pages)
        {
            file.Write(_memory.Read(pa, 4096));
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
