using System.Text;

namespace Kvm.Testing.FreeBsd;

/// <summary>
/// Writes an amd64 minidump the way sys/amd64/amd64/minidump_machdep.c (<c>cpu_minidumpsys</c>) does, from the
/// kernel page tables in a <see cref="PhysicalMemoryBuilder"/> rooted at <c>KPML4phys</c>:
/// <list type="number">
/// <item>walk [<c>VM_MIN_KERNEL_ADDRESS</c>, <c>kva_end</c>) a GiB at a time, one page of page map per GiB, and add
/// to the dump set every page a 1 GiB or 2 MiB mapping covers, every page-table page, and every page a valid PTE
/// maps (if dumpable);</item>
/// <item>write the header page, the message buffer, <c>dump_avail</c> (v3), the bitmap, the page map — per GiB
/// the page directory, a fake one of 512 2 MiB PDEs for a 1 GiB page, or a page of zeros — and the pages.</item>
/// </list>
/// Version 1 (FreeBSD 6/7) wrote a PTE per 4 KiB page instead (2 MiB pages as fake PTEs), and versions 1 and 2 had
/// no <c>dump_avail</c> and a bitmap indexed by page frame number.
/// </summary>
public sealed class Amd64MinidumpBuilder
{
    /// <summary><c>VM_MIN_KERNEL_ADDRESS</c> with 4-level paging.</summary>
    public const ulong VmMinKernelAddress = 0xfffffe0000000000;

    /// <summary><c>KERNBASE</c>.</summary>
    public const ulong KernBase = 0xffffffff80000000;

    public const ulong DmapMinAddress = 0xfffff80000000000;

    public const ulong DmapMaxAddress = 0xfffffc0000000000;

    private const ulong PgV = 1;
    private const ulong PgRw = 2;
    private const ulong PgPs = 0x80;
    private const ulong PgA = 0x20;
    private const ulong PgM = 0x40;
    private const ulong PgFrame = 0x000ffffffffff000;
    private const ulong PgPsFrame = 0x000fffffffe00000;
    private const ulong Nbpdr = 1UL << 21;
    private const ulong Nbpdp = 1UL << 30;

    private readonly PhysicalMemoryBuilder _memory;
    private readonly ulong _kpml4phys;

    public Amd64MinidumpBuilder(PhysicalMemoryBuilder memory, ulong kpml4phys)
    {
        _memory = memory;
        _kpml4phys = kpml4phys;
    }

    /// <summary>1, 2 or 3 (<c>MINIDUMP_VERSION</c>); any other value is written as is, for the version checks.</summary>
    public uint Version { get; set; } = 3;

    /// <summary>The header's <c>kernbase</c>: where the page map starts (<c>VM_MIN_KERNEL_ADDRESS</c>).</summary>
    public ulong KernelBase { get; set; } = VmMinKernelAddress;

    /// <summary><c>kva_end</c> = MAX(KERNBASE + nkpt * NBPDR, kernel_vm_end).</summary>
    public ulong KernelVmEnd { get; set; } = KernBase + (32 * Nbpdr);

    public ulong DirectMapBase { get; set; } = DmapMinAddress;

    public ulong DirectMapEnd { get; set; } = DmapMaxAddress;

    /// <summary>The <c>dump_avail</c> ranges; by default every page the memory builder holds, as one range from 0.</summary>
    public List<(ulong Start, ulong End)>? DumpAvail { get; set; }

    /// <summary>Pages the kernel added to the dump set itself (UMA's direct-map allocations, <c>dump_add_page</c>).</summary>
    public List<ulong> ExtraPages { get; } = [];

    /// <summary>The kernel message buffer (<c>msgbufp->msg_ptr</c>, <c>msg_size</c> bytes).</summary>
    public byte[] MessageBuffer { get; set; } = Encoding.ASCII.GetBytes("Copyright (c) 1992-2023 The FreeBSD Project.\npanic: test\n");

    /// <summary>The dump set the last <see cref="Build"/> wrote.</summary>
    public DumpSet? Dumped { get; private set; }

    public byte[] Build()
    {
        var avail = DumpAvail ?? [(0, _memory.Size)];
        var set = new DumpSet(avail, 4096, Version >= 3);
        byte[] pmap = Version == 1 ? PteMap(set) : PdeMap(set);
        foreach (var pa in ExtraPages)
        {
            set.Add(pa);
        }

        Dumped = set;
        int bitmapSize = Version >= 3
            ? (int)MinidumpFile.RoundPage((set.BitCount + 63) / 64 * 8, 4096)
            : (int)MinidumpFile.RoundPage((set.BitCount + 7) / 8, 4096);
        var header = MinidumpFile.HeaderPage("minidump FreeBSD/amd64", 4096, w =>
        {
            w.Write(Version);
            w.Write((uint)MessageBuffer.Length);
            w.Write((uint)bitmapSize);
            w.Write((uint)pmap.Length);
            w.Write(KernelBase);
            w.Write(DirectMapBase);
            w.Write(DirectMapEnd);
            w.Write(Version >= 3 ? 4096u : 0u);
        });
        var file = new MinidumpFile(4096).Write(header).Write(MessageBuffer);
        if (Version >= 3)
        {
            file.Write(MinidumpFile.DumpAvailPage(avail, 4096));
        }

        file.Write(set.Bitmap(bitmapSize)).Write(pmap);
        foreach (var pa in set.Pages)
        {
            file.Write(_memory.Read(pa, 4096));
        }

        return file.ToArray();
    }

    /// <summary>v2/v3: the page map of page directories, with the pages the walk adds.</summary>
    private byte[] PdeMap(DumpSet set)
    {
        var pmap = new MemoryStream();
        for (ulong va = KernelBase; va < KernelVmEnd; va += Nbpdp)
        {
            ulong pdpe = Pdpe(va);
            var fake = new byte[4096];
            if ((pdpe & PgV) == 0)
            {
                pmap.Write(fake);
                continue;
            }

            if ((pdpe & PgPs) != 0)
            {
                // 1GB page is represented as 512 2MB pages in a dump.
                ulong pa = pdpe & PgPsFrame & ~(Nbpdp - 1);
                for (ulong n = 0; n < 512 * 512; n++, pa += 4096)
                {
                    AddIfDumpable(set, pa);
                }

                for (int j = 0; j < 512; j++)
                {
                    BitConverter.GetBytes(pdpe + ((ulong)j * Nbpdr)).CopyTo(fake, j * 8);
                }

                pmap.Write(fake);
                continue;
            }

            ulong pd = pdpe & PgFrame;
            for (int n = 0; n < 512; n++)
            {
                ulong pde = _memory.ReadUInt64(pd + ((ulong)n * 8));
                if ((pde & PgV) == 0)
                {
                    continue;
                }

                if ((pde & PgPs) != 0)
                {
                    ulong pa = pde & PgPsFrame;
                    for (int k = 0; k < 512; k++, pa += 4096)
                    {
                        AddIfDumpable(set, pa);
                    }

                    continue;
                }

                ulong pt = pde & PgFrame;
                AddIfDumpable(set, pt);
                for (int k = 0; k < 512; k++)
                {
                    ulong pte = _memory.ReadUInt64(pt + ((ulong)k * 8));
                    if ((pte & PgV) != 0)
                    {
                        AddIfDumpable(set, pte & PgFrame);
                    }
                }
            }

            pmap.Write(set.IsDumpable(pd) ? _memory.Read(pd, 4096) : fake);
        }

        return pmap.ToArray();
    }

    /// <summary>v1: one PTE per 4 KiB page from kernbase; 2 MiB and 1 GiB pages as fake PTEs.</summary>
    private byte[] PteMap(DumpSet set)
    {
        var pmap = new MemoryStream();
        for (ulong va = KernelBase; va < KernelVmEnd; va += Nbpdr)
        {
            var pt = new byte[4096];
            ulong pdpe = Pdpe(va);
            ulong pde = (pdpe & PgV) == 0 ? 0
                : (pdpe & PgPs) != 0 ? ((pdpe & PgPsFrame & ~(Nbpdp - 1)) + (va & (Nbpdp - 1) & ~(Nbpdr - 1))) | PgV | PgRw | PgPs
                : _memory.ReadUInt64((pdpe & PgFrame) + (((va >> 21) & 511) * 8));
            if ((pde & PgV) != 0 && (pde & PgPs) != 0)
            {
                ulong pa = pde & PgPsFrame;
                for (int k = 0; k < 512; k++, pa += 4096)
                {
                    AddIfDumpable(set, pa);
                    BitConverter.GetBytes(pa | PgV | PgRw | PgA | PgM).CopyTo(pt, k * 8);
                }
            }
            else if ((pde & PgV) != 0)
            {
                ulong table = pde & PgFrame;
                for (int k = 0; k < 512; k++)
                {
                    ulong pte = _memory.ReadUInt64(table + ((ulong)k * 8));
                    if ((pte & PgV) != 0)
                    {
                        AddIfDumpable(set, pte & PgFrame);
                    }

                    BitConverter.GetBytes(pte).CopyTo(pt, k * 8);
                }
            }

            pmap.Write(pt);
        }

        return pmap.ToArray();
    }

    private ulong Pdpe(ulong va)
    {
        ulong pml4e = _memory.ReadUInt64(_kpml4phys + (((va >> 39) & 511) * 8));
        return (pml4e & PgV) == 0 ? 0 : _memory.ReadUInt64((pml4e & PgFrame) + (((va >> 30) & 511) * 8));
    }

    private static void AddIfDumpable(DumpSet set, ulong pa)
    {
        if (set.IsDumpable(pa))
        {
            set.Add(pa);
        }
    }
}
