namespace Kvm.Testing;

/// <summary>
/// Builds AArch64 stage-1 page tables (VMSAv8-64) in a <see cref="PhysicalMemoryBuilder"/>: any granule (4, 16,
/// 64 KiB) and virtual-address size, pages and blocks, with output addresses encoded as the hardware reads them
/// (52-bit addresses in bits [15:12] with 64 KiB pages, in bits [49:48] and [9:8] with LPA2). Written independently of
/// the library's walker, from the Arm ARM's descriptor formats, so the two check each other.
/// </summary>
public sealed class Arm64PageTableBuilder : IFakePageTables
{
    /// <summary>Descriptor bits [1:0] of a table, or of a page at the last level.</summary>
    public const ulong Table = 3;

    /// <summary>Descriptor bits [1:0] of a block.</summary>
    public const ulong Block = 1;

    /// <summary>The access flag (bit 10), set on every leaf as Linux does (PTE_AF).</summary>
    public const ulong AccessFlag = 1UL << 10;

    /// <summary>Inner shareable (SH = 0b11, bits [9:8]) as Linux sets it without LPA2.</summary>
    public const ulong InnerShareable = 3UL << 8;

    /// <summary>The contiguous hint (bit 52).</summary>
    public const ulong Contiguous = 1UL << 52;

    /// <summary>Linux's PTE_PROT_NONE (bit 58).</summary>
    public const ulong ProtNone = 1UL << 58;

    private readonly PhysicalMemoryBuilder _memory;

    public Arm64PageTableBuilder(PhysicalMemoryBuilder memory, ulong granule = 4096, int vaBits = 48, bool? lpa2 = null)
    {
        _memory = memory;
        Granule = granule;
        VaBits = vaBits;
        GranuleShift = granule switch { 4096 => 12, 16384 => 14, 65536 => 16, _ => throw new ArgumentOutOfRangeException(nameof(granule)) };
        Lpa2 = lpa2 ?? (GranuleShift != 16 && vaBits == 52);
        int bits = GranuleShift - 3;
        Levels = (int)Math.Ceiling((vaBits - GranuleShift) / (double)bits);
        TopEntries = 1 << (vaBits - GranuleShift - (bits * (Levels - 1)));
        Root = memory.AllocateBlock(granule);
    }

    public ulong Granule { get; }

    public int GranuleShift { get; }

    public int VaBits { get; }

    public bool Lpa2 { get; }

    public int Levels { get; }

    public int TopEntries { get; }

    /// <summary>Physical address of the top-level table.</summary>
    public ulong Root { get; }

    /// <summary>Attribute bits added to every leaf (default: access flag; inner shareable unless LPA2 uses bits [9:8]).</summary>
    public ulong LeafAttributes { get; set; } = AccessFlag;

    /// <summary>The address bits a level-<paramref name="level"/> entry resolves below (0 = top).</summary>
    public int Shift(int level) => GranuleShift + ((GranuleShift - 3) * (Levels - 1 - level));

    public int Index(ulong va, int level) => (int)((va >> Shift(level)) & (ulong)((level == 0 ? TopEntries : 1 << (GranuleShift - 3)) - 1));

    /// <summary>Maps one page (size = granule) or block (size = a level's span).</summary>
    public Arm64PageTableBuilder Map(ulong va, ulong pa, ulong size = 0)
    {
        size = size == 0 ? Granule : size;
        int level = Enumerable.Range(0, Levels).FirstOrDefault(l => 1UL << Shift(l) == size, -1);
        if (level < 0)
        {
            throw new ArgumentOutOfRangeException(nameof(size), size, "no level maps this size");
        }

        ulong type = level == Levels - 1 ? Table : Block;
        ulong shareable = Lpa2 ? 0 : InnerShareable;
        return SetEntry(va, level, Encode(pa & ~(size - 1)) | type | LeafAttributes | shareable);
    }

    /// <summary>Maps a range with granule pages.</summary>
    public Arm64PageTableBuilder MapRange(ulong va, ulong pa, ulong length)
    {
        for (ulong off = 0; off < length; off += Granule)
        {
            Map(va + off, pa + off);
        }

        return this;
    }

    /// <summary>Writes a raw entry at <paramref name="level"/> for <paramref name="va"/>, creating the tables above it.</summary>
    public Arm64PageTableBuilder SetEntry(ulong va, int level, ulong rawEntry)
    {
        _memory.WriteUInt64(TableFor(va, level) + ((ulong)Index(va, level) * 8), rawEntry);
        return this;
    }

    /// <summary>Writes a raw last-level entry.</summary>
    public Arm64PageTableBuilder SetPte(ulong va, ulong rawEntry) => SetEntry(va, Levels - 1, rawEntry);

    /// <summary>The physical address of the level-<paramref name="level"/> table on <paramref name="va"/>'s path.</summary>
    public ulong TableFor(ulong va, int level)
    {
        ulong table = Root;
        for (int l = 0; l < level; l++)
        {
            ulong entryAddress = table + ((ulong)Index(va, l) * 8);
            ulong entry = BitConverter.ToUInt64(_memory.Read(entryAddress, 8));
            if ((entry & 3) == Table)
            {
                table = Decode(entry) & ~(Granule - 1);
                continue;
            }

            ulong next = _memory.AllocateBlock(Granule);
            _memory.WriteUInt64(entryAddress, Encode(next) | Table);
            table = next;
        }

        return table;
    }

    /// <summary>Places a physical address in a descriptor's output-address bits.</summary>
    public ulong Encode(ulong pa)
    {
        if (GranuleShift == 16)
        {
            return (pa & 0x0000_ffff_ffff_0000UL) | ((pa >> 48 & 0xf) << 12);
        }

        if (Lpa2)
        {
            return (pa & 0x0003_ffff_ffff_f000UL) | ((pa >> 50 & 3) << 8);
        }

        return pa & 0x0000_ffff_ffff_f000UL;
    }

    /// <summary>The output address of a descriptor (for following tables this builder wrote).</summary>
    public ulong Decode(ulong entry)
    {
        if (GranuleShift == 16)
        {
            return (entry & 0x0000_ffff_ffff_0000UL) | ((entry >> 12 & 0xf) << 48);
        }

        if (Lpa2)
        {
            return (entry & 0x0003_ffff_ffff_f000UL) | ((entry >> 8 & 3) << 50);
        }

        return entry & 0x0000_ffff_ffff_f000UL;
    }

    /// <summary>
    /// The Linux arm64 swap PTE for (type, offset): type at bit <paramref name="typeShift"/> (3 since 5.19, as in 6.1;
    /// 2 before), offset at bit 8 (arch/arm64/include/asm/pgtable.h).
    /// </summary>
    public static ulong SwapEntry(int type, ulong offset, int typeShift = 3) => ((ulong)type << typeShift) | (offset << 8);

    IFakePageTables IFakePageTables.Map(ulong va, ulong pa, ulong size) => Map(va, pa, size);

    IFakePageTables IFakePageTables.SetPte(ulong va, ulong rawEntry) => SetPte(va, rawEntry);

    ulong IFakePageTables.SwapEntryFor(int type, ulong offset) => SwapEntry(type, offset);
}
