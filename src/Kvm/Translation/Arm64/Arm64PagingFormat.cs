namespace Kvm.Translation.Arm64;

/// <summary>
/// The geometry of one AArch64 stage-1 translation regime (Arm ARM D8, "The AArch64 Virtual Memory System
/// Architecture"): granule, virtual-address size, number of levels, entries of the top table, where a descriptor keeps
/// its output address and at which levels a block descriptor is allowed. Kernel-agnostic: Linux and FreeBSD arm64
/// build the same descriptors.
/// </summary>
/// <remarks>
/// <para>
/// Each level resolves <c>granule_shift - 3</c> bits (9, 11 or 13); the number of levels is
/// <c>ceil((va_bits - granule_shift) / (granule_shift - 3))</c> and the top table holds only the bits left over
/// (formats.md §5.6). The configurations Linux builds (arch/arm64/Kconfig, ARM64_VA_BITS_*): 4 KiB with 39 (3
/// levels), 48 (4) or 52 (5, LPA2, Linux 6.9+); 16 KiB with 36 (2), 47 (3), 48 (4) or 52 (4, LPA2, 6.9+); 64 KiB with
/// 42 (2), 48 (3) or 52 (3, LVA, 5.4+).
/// </para>
/// <para>
/// The output address is descriptor bits [47:granule_shift]. A 52-bit physical address takes bits [51:48] from
/// elsewhere: with 64 KiB pages (FEAT_LPA, Linux CONFIG_ARM64_PA_BITS_52) from descriptor bits [15:12], which are RES0
/// with 48-bit addresses, so they are always decoded; with 4 and 16 KiB pages (FEAT_LPA2, TCR_EL1.DS = 1) bits [49:48]
/// are in place and [51:50] come from bits [9:8], which otherwise hold the shareability field, so they are decoded only
/// when <see cref="Lpa2"/> is set. VMCOREINFO does not say whether TCR_EL1.DS is set; Linux enables LPA2 exactly when
/// it runs with 52-bit virtual addresses on a 4 or 16 KiB granule (352b0395b505, v6.9), so that is the rule
/// <see cref="Create"/> applies, as drgn does.
/// </para>
/// </remarks>
internal sealed class Arm64PagingFormat
{
    private readonly ulong _lowMask;
    private readonly ulong _highMask;
    private readonly int _highShift;

    private Arm64PagingFormat(int granuleShift, int virtualAddressBits, bool lpa2)
    {
        GranuleShift = granuleShift;
        VirtualAddressBits = virtualAddressBits;
        Lpa2 = lpa2;
        BitsPerLevel = granuleShift - 3;
        Levels = (virtualAddressBits - granuleShift + BitsPerLevel - 1) / BitsPerLevel;
        TopEntries = 1 << (((virtualAddressBits - granuleShift - 1) % BitsPerLevel) + 1);
        _lowMask = 0x0000_ffff_ffff_ffffUL & ~(GranuleSize - 1);
        if (granuleShift == 16)
        {
            _highMask = 0xf000;
            _highShift = 36;
        }
        else if (lpa2)
        {
            _lowMask |= 0x0003_0000_0000_0000UL;
            _highMask = 0x300;
            _highShift = 42;
        }
    }

    /// <summary>12, 14 or 16.</summary>
    public int GranuleShift { get; }

    /// <summary>4096, 16384 or 65536.</summary>
    public ulong GranuleSize => 1UL << GranuleShift;

    /// <summary>Bits of virtual address translated (64 - TnSZ).</summary>
    public int VirtualAddressBits { get; }

    /// <summary>True when descriptors use the FEAT_LPA2 output-address layout (4 or 16 KiB granule, 52-bit).</summary>
    public bool Lpa2 { get; }

    /// <summary>Index bits resolved per level: 9, 11 or 13.</summary>
    public int BitsPerLevel { get; }

    /// <summary>Number of levels, 2 to 5.</summary>
    public int Levels { get; }

    /// <summary>Entries in the top-level table (the bits left over after the full levels).</summary>
    public int TopEntries { get; }

    /// <summary>
    /// Makes the geometry for a granule of <paramref name="granuleSize"/> bytes and <paramref name="virtualAddressBits"/>
    /// address bits; <paramref name="lpa2"/> null applies Linux's rule (LPA2 exactly for 52 bits on 4/16 KiB granules).
    /// </summary>
    public static Arm64PagingFormat Create(ulong granuleSize, int virtualAddressBits, bool? lpa2 = null)
    {
        int shift = granuleSize switch
        {
            4096 => 12,
            16384 => 14,
            65536 => 16,
            _ => throw new ArgumentOutOfRangeException(nameof(granuleSize), granuleSize, "AArch64 granules are 4, 16 or 64 KiB"),
        };

        // VMSAv8-64 allows 64 - TnSZ between 16 and 52 bits; fewer than one full level below the top is meaningless.
        if (virtualAddressBits < shift + (shift - 3) || virtualAddressBits > 52)
        {
            throw new ArgumentOutOfRangeException(nameof(virtualAddressBits), virtualAddressBits, $"a {granuleSize >> 10} KiB granule translates {shift + shift - 3} to 52 virtual-address bits");
        }

        bool lpa2Format = lpa2 ?? (shift != 16 && virtualAddressBits == 52);
        if (lpa2Format && shift == 16)
        {
            throw new ArgumentException("FEAT_LPA2 applies to 4 and 16 KiB granules only (64 KiB uses FEAT_LPA)", nameof(lpa2));
        }

        return new Arm64PagingFormat(shift, virtualAddressBits, lpa2Format);
    }

    /// <summary>Address bits below which a level-<paramref name="level"/> entry resolves (0 = top).</summary>
    public int Shift(int level) => GranuleShift + (BitsPerLevel * (Levels - 1 - level));

    /// <summary>Entries in a level-<paramref name="level"/> table.</summary>
    public int Entries(int level) => level == 0 ? TopEntries : 1 << BitsPerLevel;

    /// <summary>The index of <paramref name="va"/> in a level-<paramref name="level"/> table.</summary>
    public int Index(ulong va, int level) => (int)((va >> Shift(level)) & (ulong)(Entries(level) - 1));

    /// <summary>
    /// True when a block descriptor may sit at <paramref name="level"/> (Arm ARM D8.3, the block descriptors each
    /// granule supports): 4 KiB at 1 GiB and 2 MiB (and 512 GiB with LPA2); 16 KiB at 32 MiB (and 64 GiB with LPA2); 64 KiB at
    /// 512 MiB and 4 TiB (the latter only with FEAT_LPA, which Linux never builds; accepted, as bits [15:12] are).
    /// Never at the last level, where bits [1:0] = 01 is reserved.
    /// </summary>
    public bool BlockAllowed(int level)
    {
        if (level >= Levels - 1)
        {
            return false;
        }

        int shift = Shift(level);
        return GranuleShift switch
        {
            12 => shift is 21 or 30 || (Lpa2 && shift == 39),
            14 => shift == 25 || (Lpa2 && shift == 36),
            _ => shift is 29 or 42,
        };
    }

    /// <summary>The output address of a table, page or block descriptor, aligned to <paramref name="shift"/> bits.</summary>
    public ulong OutputAddress(ulong descriptor, int shift)
    {
        ulong address = (descriptor & _lowMask) | ((descriptor & _highMask) << _highShift);
        return address & ~((1UL << shift) - 1);
    }

    /// <summary>
    /// True when <paramref name="va"/> is in one of the two translated halves: bits [63:va_bits] all zero (TTBR0, user)
    /// or all one (TTBR1, kernel). Top-byte-ignore tags are not stripped: the kernel stores untagged pointers.
    /// </summary>
    public bool IsCanonical(ulong va)
    {
        ulong top = va >> VirtualAddressBits;
        return top == 0 || top == (ulong.MaxValue >> VirtualAddressBits);
    }

    /// <summary>True for an address of the upper (TTBR1, kernel) half.</summary>
    public static bool IsUpperHalf(ulong va) => (va >> 63) != 0;

    /// <summary>"4 KiB granule, 48-bit VA, 4 levels".</summary>
    public override string ToString() => $"{GranuleSize >> 10} KiB granule, {VirtualAddressBits}-bit VA, {Levels} levels{(Lpa2 ? ", LPA2" : string.Empty)}";
}
