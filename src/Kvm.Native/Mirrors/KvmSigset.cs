using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>kvm_sigset_t</c>: FreeBSD's 128-bit <c>sigset_t</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("kvm_sigset_t")]
internal unsafe struct KvmSigset
{
    [CName("__bits")] public fixed uint Bits[4];
}
