namespace Kvm.Testing;

/// <summary>Builds x86-64 page tables (4- or 5-level) in a <see cref="PhysicalMemoryBuilder"/>.</summary>
public sealed class X64PageTableBuilder : IFakePageTables
{
    public const ulong Present = 1;
    public const ulong Writable = 2;
    public const ulong PageSizeFlag = 0x80;

    private readonly PhysicalMemoryBuilder _memory;

    public X64PageTableBuilder(PhysicalMemoryBuilder memory, bool fiveLevel = false, ulong smeMask = 0)
    {
        _memory = memory;
        FiveLevel = fiveLevel;
        SmeMask = smeMask;
        Root = memory.AllocatePage();
    }

    public bool FiveLevel { get; }

    public ulong SmeMask { get; }

    /// <summary>Physical address of the top-level table.</summary>
    public ulong Root { get; }

    public int Levels => FiveLevel ? 5 : 4;

    /// <summary>Maps one page of <paramref name="pageSize"/> (4 KiB, 2 MiB or 1 GiB).</summary>
    public X64PageTableBuilder Map(ulong va, ulong pa, ulong pageSize = 4096)
    {
        int leafLevel = pageSize switch
        {
            4096 => Levels - 1,
            0x200000 => Levels - 2,
            0x40000000 => Levels - 3,
            _ => throw new ArgumentOutOfRangeException(nameof(pageSize)),
        };
        ulong table = Root;
        for (int level = 0; level < leafLevel; level++)
        {
            table = NextTable(table, Index(va, level));
        }

        ulong entry = (pa & ~(pageSize - 1)) | Present | Writable | (pageSize > 4096 ? PageSizeFlag : 0) | SmeMask;
        _memory.WriteUInt64(table + ((ulong)Index(va, leafLevel) * 8), entry);
        return this;
    }

    /// <summary>Maps a range with 4 KiB pages.</summary>
    public X64PageTableBuilder MapRange(ulong va, ulong pa, ulong length)
    {
        for (ulong off = 0; off < length; off += 4096)
        {
            Map(va + off, pa + off);
        }

        return this;
    }

    /// <summary>Writes a raw leaf PTE (for swap entries and PROT_NONE tests).</summary>
    public X64PageTableBuilder SetPte(ulong va, ulong rawEntry)
    {
        ulong table = Root;
        for (int level = 0; level < Levels - 1; level++)
        {
            table = NextTable(table, Index(va, level));
        }

        _memory.WriteUInt64(table + ((ulong)Index(va, Levels - 1) * 8), rawEntry);
        return this;
    }

    /// <summary>The x86-64 swap PTE for (type, offset), as Linux 4.20+ encodes it.</summary>
    public static ulong SwapEntry(int type, ulong offset) => ((ulong)type << 59) | ((~offset << 14) >> 5 & 0x07fffffffffffe00UL);

    IFakePageTables IFakePageTables.Map(ulong va, ulong pa, ulong size) => Map(va, pa, size);

    IFakePageTables IFakePageTables.SetPte(ulong va, ulong rawEntry) => SetPte(va, rawEntry);

    ulong IFakePageTables.SwapEntryFor(int type, ulong offset) => SwapEntry(type, offset);

    private int Index(ulong va, int level) => (int)((va >> (12 + (9 * (Levels - 1 - level)))) & 511);

    private ulong NextTable(ulong table, int index)
    {
        ulong entryAddress = table + ((ulong)index * 8);
        ulong entry = BitConverter.ToUInt64(_memory.Read(entryAddress, 8));
        if ((entry & Present) != 0)
        {
            return entry & 0x000ffffffffff000UL & ~SmeMask;
        }

        ulong next = _memory.AllocatePage();
        _memory.WriteUInt64(entryAddress, next | Present | Writable | SmeMask);
        return next;
    }
}
