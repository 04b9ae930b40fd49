using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary><c>struct kvm_nlist</c>: the 64-bit-address variant of <see cref="Nlist"/>.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct kvm_nlist")]
internal struct KvmNlist : INlistEntry
{
    [CName("n_name")] public nint Name;
    [CName("n_type")] public byte Type;
    [CName("n_value")] public ulong Value;

    /// <inheritdoc/>
    public readonly nint NameAddress => Name;

    /// <inheritdoc/>
    public void Set(byte type, ulong value)
    {
        Type = type;
        Value = value;
    }
}
