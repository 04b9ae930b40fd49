using System.Text;

namespace Kvm.FreeBsd;

/// <summary>
/// A FreeBSD kernel's swap devices as lib/libkvm/kvm_getswapinfo.c <c>kvm_getswapinfo_kvm</c> reads them from a core:
/// the list <c>swtailq</c> (sys/vm/swap_pager.c, a <c>TAILQ_HEAD</c> of <c>struct swdevt</c> linked by
/// <c>sw_list</c>; sys/vm/swap_pager.h), each device's size in pages less <c>dmmax</c> (libkvm's
/// <c>ttl = sw_nblks − dmmax</c>), <c>sw_used</c> and <c>sw_flags</c>, with layouts from the kernel's CTF.
/// </summary>
/// <remarks>
/// <para>
/// FreeBSD 13 removed the global <c>dmmax</c>; its <c>vm.dmmax</c> sysctl, which libkvm's live path reads, shows
/// <c>nsw_cluster_max</c>. On such a kernel libkvm's core path fails ("unable to find dmmax"); here
/// <c>nsw_cluster_max</c> stands in, so that a core gives what <c>swapinfo</c> printed on the running system.
/// </para>
/// <para>
/// Names: libkvm names a device with <c>devname(sw_dev, S_IFCHR)</c>, which asks the host it runs on, and
/// <c>[NFS swap]</c> for <c>sw_dev == NODEV</c>. A core read elsewhere can only ask the kernel: the device's vnode
/// (<c>sw_vp</c>), its <c>v_rdev</c> (<c>v_un.vu_cdev</c>) and the <c>struct cdev</c>'s <c>si_name</c> — what
/// <c>devtoname</c> returns and what the running kernel's <c>devname</c> would have answered. When that chain cannot be
/// read the name is <c>devname</c>'s form for an unknown device, <c>#C:0x…</c>.
/// </para>
/// </remarks>
internal static class FreeBsdSwapWalker
{
    /// <summary>sys/vm/swap_pager.h <c>SW_CLOSING</c>: the device is being removed (<c>swapoff</c>).</summary>
    private const ulong SwClosing = 0x04;

    /// <summary>The most swap devices followed: FreeBSD has no fixed limit, but nobody configures thousands.</summary>
    private const int MaxDevices = 4096;

    public static SwapSummary Read(FreeBsdKernelReader k, int pageSize)
    {
        ulong head = k.RequireSymbol("swtailq");
        long dmmax = DmMax(k);
        var next = k.Types.GetMember("swdevt.sw_list.tqe_next");
        int devSize = k.IntegerSize("dev_t", (int)k.Types.GetMember("swdevt.sw_dev").Size);
        ulong nodev = devSize >= 8 ? ulong.MaxValue : (1UL << (devSize * 8)) - 1;
        var areas = new List<SwapArea>();
        var seen = new HashSet<ulong>();

        // TAILQ_HEAD's first member is tqh_first (sys/sys/queue.h), whatever the anonymous head's CTF says.
        ulong sp = k.ReadPointer(head);
        while (sp != 0)
        {
            if (!seen.Add(sp))
            {
                throw new CorruptImageException($"swtailq: the list of swap devices loops back to struct swdevt 0x{sp:x} after {areas.Count} entries");
            }

            if (areas.Count >= MaxDevices)
            {
                throw new CorruptImageException($"swtailq: more than {MaxDevices} swap devices: the list is corrupt");
            }

            byte[] sw;
            try
            {
                sw = k.ReadStruct("swdevt", sp);
            }
            catch (MemoryFaultException e)
            {
                throw new MemoryFaultException(e.Address, e.Space, e.Reason, $"swtailq: swap device {areas.Count} (struct swdevt 0x{sp:x}): {e.Message}", e.Fault);
            }

            long nblks = k.Int(sw, "swdevt.sw_nblks");
            long flags = k.Int(sw, "swdevt.sw_flags");
            ulong dev = unchecked((ulong)k.Int(sw, "swdevt.sw_dev")) & nodev;
            bool nfs = dev == nodev;
            string name = nfs ? "[NFS swap]" : "/dev/" + DeviceName(k, k.Pointer(sw, "swdevt.sw_vp"), dev);
            areas.Add(new SwapArea(
                areas.Count,
                name,
                nfs,
                nblks - dmmax,
                k.Int(sw, "swdevt.sw_used"),
                0,
                nblks,
                unchecked((ulong)flags) & 0xffffffff,
                (flags & (long)SwClosing) == 0));
            sp = k.PointerAt(sw, next);
        }

        return new SwapSummary(areas, pageSize);
    }

    /// <summary><c>dmmax</c> (FreeBSD 12 and before), else <c>nsw_cluster_max</c>, what <c>vm.dmmax</c> shows since FreeBSD 13.</summary>
    private static long DmMax(FreeBsdKernelReader k)
    {
        ulong address = k.Symbol("dmmax") ?? k.Symbol("nsw_cluster_max")
            ?? throw new SymbolNotFoundException("dmmax", "nor nsw_cluster_max, which vm.dmmax shows since FreeBSD 13 (sys/vm/swap_pager.c)");
        return k.ReadInteger(address, 4, signed: true);
    }

    /// <summary>The device's name without <c>/dev/</c>: <c>sw_vp->v_rdev->si_name</c>, else <c>#C:0x…</c>.</summary>
    private static string DeviceName(FreeBsdKernelReader k, ulong vnode, ulong dev)
    {
        string unknown = $"#C:0x{dev:x}";
        if (vnode == 0)
        {
            return unknown;
        }

        try
        {
            // sys/sys/vnode.h: #define v_rdev v_un.vu_cdev (a member of its own in old kernels).
            var vp = k.ReadStruct("vnode", vnode);
            ulong cdev = k.Types.TryGetMember("vnode.v_un.vu_cdev", out var rdev) ? k.PointerAt(vp, rdev) : k.Pointer(vp, "vnode.v_rdev");
            if (cdev == 0)
            {
                return unknown;
            }

            byte[] name = k.Text(k.ReadStruct("cdev", cdev), "cdev.si_name");
            return name.Length == 0 ? unknown : Encoding.UTF8.GetString(name);
        }
        catch (KvmException)
        {
            // The name is a courtesy: a device whose vnode or cdev cannot be read is still listed, as devname lists it.
            return unknown;
        }
    }
}
