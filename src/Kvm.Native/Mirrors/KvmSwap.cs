using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>struct kvm_swap</c>: one row of <c>kvm_getswapinfo</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct kvm_swap")]
internal unsafe struct KvmSwap
{
    /// <summary>The size of <c>ksw_devname</c>.</summary>
    public const int DevNameLength = 32;

    [CName("ksw_devname")] public fixed byte DevName[DevNameLength];
    [CName("ksw_used")] public uint Used;
    [CName("ksw_total")] public uint Total;
    [CName("ksw_flags")] public int Flags;
    [CName("ksw_reserved1")] public uint Reserved1;
    [CName("ksw_reserved2")] public uint Reserved2;
}
