using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary>FreeBSD's <c>struct priority</c>.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct priority")]
internal struct Priority
{
    [CName("pri_class")] public byte Class;
    [CName("pri_level")] public byte Level;
    [CName("pri_native")] public byte Native;
    [CName("pri_user")] public byte User;
}
