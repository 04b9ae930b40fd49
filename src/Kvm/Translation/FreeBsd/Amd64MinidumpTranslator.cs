using Kvm.Images.FreeBsd;

namespace Kvm.Translation.FreeBsd;

/// <summary>
/// amd64 minidump translation (lib/libkvm kvm_minidump_amd64.c, FreeBSD 13/14): an address at or above
/// <c>kernbase</c> is looked up in the page map — one PTE per 4 KiB page in version 1; one PDE per 2 MiB in versions
/// 2 and 3, where a PDE with PG_PS maps a 2 MiB page and any other valid PDE points at a page-table page that the
/// dump holds (the writer sets the bit of every kernel page-table page, sys/amd64/amd64/minidump_machdep.c) — and an
/// address in [dmapbase, dmapend) is in the direct map. 1 GiB pages appear in the page map as 512 2 MiB PDEs, as
/// the writer expands them. Entries use the x86-64 format (PG_V bit 0, PG_PS bit 7, frame bits 12-51).
/// </summary>
internal sealed class Amd64MinidumpTranslator : MinidumpTranslator
{
    private const ulong Valid = 1;
    private const ulong PageSizeBit = 0x80;
    private const ulong Frame = 0x000ffffffffff000;
    private const ulong Frame2M = 0x000fffffffe00000;
    private const int PdrShift = 21;

    private readonly PageTableReader _tables;

    public Amd64MinidumpTranslator(MinidumpImage image, IPhysicalSource source, int cachedTables)
        : base(image)
    {
        _tables = new PageTableReader(source, cachedTables, "minidump-page-tables");
    }

    public override PagingMode Mode => PagingMode.X64FourLevel;

    public override IReadOnlyList<CacheStatistics> CacheStatistics => [_tables.Statistics];

    public override void FlushCache() => _tables.Clear();

    /// <summary>Reads a page-table page the dump holds; null when it does not.</summary>
    public ulong[]? ReadTable(ulong tableAddress, bool cache = true) => _tables.Read(tableAddress, 512, cache: cache);

    protected override bool Walk(ulong va, List<TranslationStep>? steps, out ulong pa, out ulong pageSize, out TranslationFault? fault)
    {
        pa = 0;
        pageSize = 0;
        if (va >= Header.KernelBase)
        {
            if (Header.Version == 1)
            {
                long pteIndex = (long)((va - Header.KernelBase) >> 12);
                if (!TryEntry(va, pteIndex, "pte", steps, e => (e & Valid) != 0, out ulong pte, out fault))
                {
                    return false;
                }

                if ((pte & Valid) == 0)
                {
                    fault = NotPresent(va, "pte", pteIndex, 0, pte);
                    return false;
                }

                pa = (pte & Frame) | (va & 0xfff);
                pageSize = 4096;
                return true;
            }

            long pdeIndex = (long)((va - Header.KernelBase) >> PdrShift);
            if (!TryEntry(va, pdeIndex, "pde", steps, e => (e & (Valid | PageSizeBit)) == (Valid | PageSizeBit), out ulong pde, out fault))
            {
                return false;
            }

            if ((pde & Valid) == 0)
            {
                fault = NotPresent(va, "pde", pdeIndex, 0, pde);
                return false;
            }

            if ((pde & PageSizeBit) != 0)
            {
                pa = (pde & Frame2M) | (va & ((1UL << PdrShift) - 1));
                pageSize = 1UL << PdrShift;
                return true;
            }

            ulong table = pde & Frame;
            int index = (int)((va >> 12) & 511);
            var entries = ReadTable(table);
            if (entries is null)
            {
                fault = new TranslationFault(va, TranslationFaultKind.TableUnreadable, "pte", index, table, 0);
                return false;
            }

            ulong entry = entries[index];
            steps?.Add(new TranslationStep("pte", table, index, entry, (entry & Valid) != 0));
            if ((entry & Valid) == 0)
            {
                fault = NotPresent(va, "pte", index, table, entry);
                return false;
            }

            pa = (entry & Frame) | (va & 0xfff);
            pageSize = 4096;
            return true;
        }

        if (TryDirectMap(va, out pa))
        {
            pageSize = 4096;
            fault = null;
            return true;
        }

        fault = NotDumped(va);
        return false;
    }
}
