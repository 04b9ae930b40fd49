namespace Kvm.Native.Mirrors;

/// <summary>An entry of a <c>kvm_nlist</c> or <c>kvm_nlist2</c> list: the two differ only in the width of <c>n_value</c>.</summary>
internal interface INlistEntry
{
    /// <summary>The address of <c>n_name</c>, 0 for NULL.</summary>
    nint NameAddress { get; }

    /// <summary>Stores a result: type and value, 0 and 0 when the symbol was not found.</summary>
    void Set(byte type, ulong value);
}
