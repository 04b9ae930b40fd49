namespace Kvm.Testing.FreeBsd;

/// <summary>
/// The swap devices of a test FreeBSD/amd64 kernel: <c>swtailq</c> (sys/vm/swap_pager.c, a static
/// <c>TAILQ_HEAD(, swdevt)</c>) with one <c>struct swdevt</c> per device (sys/vm/swap_pager.h), a disk's vnode pointing
/// at its <c>struct cdev</c> (<c>v_rdev</c>, sys/sys/vnode.h; <c>si_name</c>, sys/sys/conf.h), an NFS swap file
/// (<c>sw_dev</c> = <c>NODEV</c>), and <c>dmmax</c> — or, as since FreeBSD 13, <c>nsw_cluster_max</c>, which
/// <c>vm.dmmax</c> shows. These values are the tests' specification.
/// </summary>
public sealed class FreeBsdSwap
{
    private const ulong KernBase = FreeBsdAmd64Kernel.KernBase;

    public const ulong SwtailqAddress = KernBase + 0x300b00;
    public const ulong DmmaxAddress = KernBase + 0x300b10;
    public const ulong SwapArea = KernBase + 0x5d8000;

    /// <summary>sys/sys/types.h <c>NODEV</c> for a 64-bit <c>dev_t</c>.</summary>
    public const ulong NoDev = ulong.MaxValue;

    /// <summary>sys/vm/swap_pager.h <c>SW_UNMAPPED</c>, <c>SW_CLOSING</c>.</summary>
    public const int SwUnmapped = 0x01, SwClosing = 0x04;

    /// <summary>FreeBSD 14 amd64 <c>struct swdevt</c>, and this builder's <c>struct vnode</c> and <c>struct cdev</c>.</summary>
    public const int SwdevtSize = 88, VnodeSize = 0x40, CdevSize = 0x140;

    /// <summary>The devices, in <c>swtailq</c> order: the cdev's name (null: NFS swap), <c>sw_dev</c>, <c>sw_nblks</c>, <c>sw_used</c>, <c>sw_flags</c>.</summary>
    public (string? Name, ulong Dev, int Blocks, int Used, int Flags)[] Devices { get; init; } =
    [
        ("ada0p3", 0x5a, 262144, 1000, SwUnmapped),
        (null, NoDev, 65536, 10, 0),
        ("md0", 0x8c, 8192, 0, SwClosing),
    ];

    /// <summary>The value of <c>dmmax</c> (or <c>nsw_cluster_max</c>).</summary>
    public int DmMax { get; init; } = 32;

    /// <summary>Names it <c>dmmax</c>, as FreeBSD 12 and before did, instead of <c>nsw_cluster_max</c>.</summary>
    public bool OldDmMax { get; init; }

    /// <summary>Points the last device's <c>sw_list.tqe_next</c> back at the first: a corrupt list.</summary>
    public bool LoopBack { get; init; }

    /// <summary>Points the first device's <c>sw_vp</c> at an unmapped address.</summary>
    public bool UnreadableVnode { get; init; }

    /// <summary>Symbols to leave out of the kernel's symbol table.</summary>
    public string[] OmitSymbols { get; init; } = [];

    /// <summary>The address of device <paramref name="index"/>'s <c>struct swdevt</c>.</summary>
    public static ulong Swdevt(int index) => SwapArea + ((ulong)index * 0x400);

    /// <summary>
    /// Adds <c>struct swdevt</c> as FreeBSD 14 lays it out on amd64 (sys/vm/swap_pager.h: <c>sw_flags</c>,
    /// <c>sw_nblks</c>, <c>sw_used</c>, <c>sw_dev</c> at 16, <c>sw_vp</c> at 24, <c>sw_id</c>, <c>sw_first</c>,
    /// <c>sw_end</c>, <c>sw_blist</c> at 48, <c>sw_list</c> at 56, <c>sw_strategy</c>, <c>sw_close</c>; 88 bytes),
    /// <c>dev_t</c> (64 bits since FreeBSD 12), and <c>struct vnode</c> (<c>v_type</c>, the union <c>v_un</c> with
    /// <c>vu_cdev</c>) and <c>struct cdev</c> (<c>si_name[SPECNAMELEN + 1]</c>) with their FreeBSD member names in
    /// this builder's own layout.
    /// </summary>
    public static void AddTypes(CtfBuilder c)
    {
        int i32 = c.Int("int", 4);
        int u32 = c.Int("unsigned int", 4, signed: false);
        int ch = c.Int("char", 1, isChar: true);
        int lng = c.Int("long", 8);
        int ulng = c.Int("unsigned long", 8, signed: false);
        int dev = c.TypedefOf("dev_t", c.TypedefOf("__dev_t", c.TypedefOf("__uint64_t", ulng)));
        int swblk = c.TypedefOf("swblk_t", c.TypedefOf("__int32_t", i32));
        int voidPtr = c.PointerTo(0);
        int cdev = c.StructOf("cdev");
        c.SetMembers(cdev, CdevSize, ("si_flags", u32, 0), ("si_name", c.ArrayOf(ch, lng, 256), 0x40 * 8));
        int vnode = c.StructOf("vnode");
        int vun = c.StructOf(string.Empty, union: true);
        c.SetMembers(vun, 8, ("vu_mount", voidPtr, 0), ("vu_socket", voidPtr, 0), ("vu_cdev", c.PointerTo(cdev), 0), ("vu_fifoinfo", voidPtr, 0));
        int vtype = c.EnumOf("vtype", ("VNON", 0), ("VREG", 1), ("VDIR", 2), ("VBLK", 3), ("VCHR", 4));
        c.SetMembers(vnode, VnodeSize, ("v_type", vtype, 0), ("v_un", vun, 0x20 * 8));
        int swdevt = c.StructOf("swdevt");
        int swdevtPtr = c.PointerTo(swdevt);
        int entry = c.StructOf(string.Empty);
        c.SetMembers(entry, 16, ("tqe_next", swdevtPtr, 0), ("tqe_prev", c.PointerTo(swdevtPtr), 64));
        c.SetMembers(swdevt, SwdevtSize,
            ("sw_flags", i32, 0),
            ("sw_nblks", i32, 4 * 8),
            ("sw_used", i32, 8 * 8),
            ("sw_dev", dev, 16 * 8),
            ("sw_vp", c.PointerTo(vnode), 24 * 8),
            ("sw_id", voidPtr, 32 * 8),
            ("sw_first", swblk, 40 * 8),
            ("sw_end", swblk, 44 * 8),
            ("sw_blist", voidPtr, 48 * 8),
            ("sw_list", entry, 56 * 8),
            ("sw_strategy", voidPtr, 72 * 8),
            ("sw_close", voidPtr, 80 * 8));
    }

    /// <summary>Writes the devices into <paramref name="kernel"/>'s memory and adds the symbols to its ELF.</summary>
    public void Write(FreeBsdAmd64Kernel kernel)
    {
        var memory = kernel.Memory;
        void U32(ulong va, uint value) => memory.WriteUInt32(va - KernBase, value);
        void U64(ulong va, ulong value) => memory.WriteUInt64(va - KernBase, value);

        ulong previous = 0;
        for (int i = 0; i < Devices.Length; i++)
        {
            var (name, dev, blocks, used, flags) = Devices[i];
            ulong sw = Swdevt(i);
            ulong vnode = sw + 0x100;
            ulong cdev = sw + 0x200;
            U32(sw, (uint)flags);
            U32(sw + 4, (uint)blocks);
            U32(sw + 8, (uint)used);
            U64(sw + 16, dev);
            U64(sw + 24, UnreadableVnode && i == 0 ? 0xffffffffbad00000UL : vnode);
            U64(sw + 64, previous == 0 ? SwtailqAddress : previous + 56);
            U32(vnode, name is null ? 1u : 4u);
            if (name is not null)
            {
                U64(vnode + 0x20, cdev);
                memory.Write(cdev + 0x40 - KernBase, [.. System.Text.Encoding.ASCII.GetBytes(name), 0]);
            }

            U64(previous == 0 ? SwtailqAddress : previous + 56, sw);
            previous = sw;
        }

        if (previous != 0)
        {
            U64(previous + 56, LoopBack ? Swdevt(0) : 0);
            U64(SwtailqAddress + 8, previous + 56);
        }

        U32(DmmaxAddress, (uint)DmMax);

        // Both are static in sys/vm/swap_pager.c: local symbols.
        var symbols = new List<(string Name, ulong Address, bool Local)>
        {
            ("swtailq", SwtailqAddress, true),
            (OldDmMax ? "dmmax" : "nsw_cluster_max", DmmaxAddress, true),
        };
        kernel.DataSymbols.AddRange(symbols.Where(s => !OmitSymbols.Contains(s.Name)));
    }
}
