using System.Runtime.InteropServices;

namespace Kvm.Native.Mirrors;

/// <summary>FreeBSD's <c>struct nlist</c> as <c>kvm.h</c> declares it.</summary>
[StructLayout(LayoutKind.Sequential)]
[CName("struct nlist")]
internal struct Nlist : INlistEntry
{
    [CName("n_name")] public nint Name;
    [CName("n_type")] public byte Type;
    [CName("n_other")] public sbyte Other;
    [CName("n_desc")] public short Desc;
    [CName("n_value")] public nuint Value;

    /// <inheritdoc/>
    public readonly nint NameAddress => Name;

    /// <inheritdoc/>
    public void Set(byte type, ulong value)
    {
        Type = type;
        Value = (nuint)value;
        Other = 0;
        Desc = 0;
    }
}
