namespace Kvm.Testing;

/// <summary>
/// Builds 32-bit x86 page tables in a <see cref="PhysicalMemoryBuilder"/>: 2-level (1024 4-byte entries per table;
/// 4 KiB and 4 MiB pages) or PAE (a 4-entry PDPT of 8-byte entries, then 512-entry tables; 4 KiB and 2 MiB pages),
/// written as Linux writes them (a PAE PDPTE holds only the present bit and the frame, arch/x86/include/asm/pgalloc.h).
/// </summary>
public sealed class X86PageTableBuilder
{
    public const ulong Present = 1;
    public const ulong Writable = 2;
    public const ulong User = 4;
    public const ulong PageSizeFlag = 0x80;
    public const ulong NoExecute = 1UL << 63;

    private readonly PhysicalMemoryBuilder _memory;

    /// <summary>Creates the top-level table: a page directory, or a page whose first 32 bytes are the PDPT.</summary>
    /// <param name="memory">Where tables are allocated.</param>
    /// <param name="pae">PAE paging.</param>
    /// <param name="root">Where the top-level table goes (allocated when null); a PAE PDPT may be 32-byte aligned.</param>
    public X86PageTableBuilder(PhysicalMemoryBuilder memory, bool pae, ulong? root = null)
    {
        _memory = memory;
        Pae = pae;
        Root = root ?? memory.AllocatePage();
        if (root is { } r)
        {
            memory.Write(r, new byte[pae ? 32 : 4096]);
        }
    }

    public bool Pae { get; }

    /// <summary>Physical address of the top-level table (the CR3 value).</summary>
    public ulong Root { get; }

    public int Levels => Pae ? 3 : 2;

    public int EntrySize => Pae ? 8 : 4;

    /// <summary>Extra bits set in every leaf (e.g. <see cref="User"/>, <see cref="NoExecute"/>); R/W and P are always set.</summary>
    public ulong LeafFlags { get; set; }

    /// <summary>Maps one page of <paramref name="pageSize"/> (4 KiB; 4 MiB without PAE, 2 MiB with it).</summary>
    public X86PageTableBuilder Map(ulong va, ulong pa, ulong pageSize = 4096)
    {
        int leafLevel = pageSize == 4096 ? Levels - 1
            : (Pae && pageSize == 0x200000) || (!Pae && pageSize == 0x400000) ? Levels - 2
            : throw new ArgumentOutOfRangeException(nameof(pageSize));
        ulong table = Root;
        for (int level = 0; level < leafLevel; level++)
        {
            table = NextTable(table, level, Index(va, level));
        }

        ulong frame = pageSize == 0x400000 ? (pa & 0xffc00000) | (((pa >> 32) & 0xff) << 13) : pa & ~(pageSize - 1);
        WriteEntry(table, Index(va, leafLevel), frame | Present | Writable | LeafFlags | (pageSize > 4096 ? PageSizeFlag : 0));
        return this;
    }

    /// <summary>Maps a range with 4 KiB pages.</summary>
    public X86PageTableBuilder MapRange(ulong va, ulong pa, ulong length)
    {
        for (ulong off = 0; off < length; off += 4096)
        {
            Map(va + off, pa + off);
        }

        return this;
    }

    /// <summary>Writes a raw leaf PTE (swap entries, PROT_NONE).</summary>
    public X86PageTableBuilder SetPte(ulong va, ulong rawEntry)
    {
        ulong table = Root;
        for (int level = 0; level < Levels - 1; level++)
        {
            table = NextTable(table, level, Index(va, level));
        }

        WriteEntry(table, Index(va, Levels - 1), rawEntry);
        return this;
    }

    /// <summary>Writes a raw entry at <paramref name="level"/> of <paramref name="va"/>'s path (creating tables above it).</summary>
    public X86PageTableBuilder SetEntry(ulong va, int level, ulong rawEntry)
    {
        ulong table = Root;
        for (int l = 0; l < level; l++)
        {
            table = NextTable(table, l, Index(va, l));
        }

        WriteEntry(table, Index(va, level), rawEntry);
        return this;
    }

    /// <summary>The physical address of the table at <paramref name="level"/> on <paramref name="va"/>'s path (creating it).</summary>
    public ulong TableAt(ulong va, int level)
    {
        ulong table = Root;
        for (int l = 0; l < level; l++)
        {
            table = NextTable(table, l, Index(va, l));
        }

        return table;
    }

    /// <summary>Linux 6.1's swap PTE for (type, offset): pgtable-2level.h without PAE, pgtable-3level.h with it.</summary>
    public static ulong SwapEntry(int type, ulong offset, bool pae) => pae
        ? ((ulong)type << 59) | ((~offset << 14) >> 5 & 0x07fffffffffffe00UL)
        : ((ulong)(type & 31) << 1) | ((offset << 9) & 0xffffffff);

    public int Index(ulong va, int level) => Pae
        ? level switch { 0 => (int)((va >> 30) & 3), 1 => (int)((va >> 21) & 511), _ => (int)((va >> 12) & 511) }
        : level == 0 ? (int)((va >> 22) & 1023) : (int)((va >> 12) & 1023);

    private ulong NextTable(ulong table, int level, int index)
    {
        ulong entry = ReadEntry(table, index);
        if ((entry & Present) != 0)
        {
            return entry & (Pae ? 0x000ffffffffff000UL : 0xfffff000UL);
        }

        ulong page = _memory.AllocatePage();

        // Linux's PAE pgd entries carry only _PAGE_PRESENT (pud_populate in pgalloc.h); directory entries R/W and U/S.
        ulong flags = Pae && level == 0 ? Present : Present | Writable | User;
        WriteEntry(table, index, page | flags);
        return page;
    }

    private ulong ReadEntry(ulong table, int index)
    {
        var bytes = _memory.Read(table + ((ulong)index * (ulong)EntrySize), EntrySize);
        return EntrySize == 8 ? BitConverter.ToUInt64(bytes) : BitConverter.ToUInt32(bytes);
    }

    private void WriteEntry(ulong table, int index, ulong entry)
    {
        ulong at = table + ((ulong)index * (ulong)EntrySize);
        if (EntrySize == 8)
        {
            _memory.WriteUInt64(at, entry);
        }
        else
        {
            // A 2-level entry is 32 bits: the high bits a test sets (NX, to show they are ignored) are dropped on purpose.
            _memory.Write(at, BitConverter.GetBytes(unchecked((uint)entry)));
        }
    }
}
