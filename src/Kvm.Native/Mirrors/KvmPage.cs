using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>struct kvm_page</c>: one record of <c>kvm_walk_pages</c> (version 2).</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct kvm_page")]
internal struct KvmPage
{
    /// <summary><c>LIBKVM_WALK_PAGES_VERSION</c>.</summary>
    public const uint CurrentVersion = 2;

    [CName("kp_version")] public uint Version;
    [CName("kp_paddr")] public ulong PhysicalAddress;
    [CName("kp_kmap_vaddr")] public ulong KernelMapAddress;
    [CName("kp_dmap_vaddr")] public ulong DirectMapAddress;
    [CName("kp_prot")] public byte Protection;
    [CName("kp_offset")] public long Offset;
    [CName("kp_len")] public nuint Length;
}
