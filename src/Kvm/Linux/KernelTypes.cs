using Kvm.Images;
using Kvm.Types;

namespace Kvm.Linux;

/// <summary>
/// Structure layouts from the kernel's BTF, with VMCOREINFO's <c>OFFSET()</c>/<c>SIZE()</c>/<c>NUMBER()</c> lines
/// filling in where BTF is absent or lacks a name. Either source may be missing.
/// </summary>
internal sealed class KernelTypes : IKernelTypes
{
    private readonly TypeCatalog? _btf;
    private readonly VmcoreInfo? _info;

    /// <summary>Combines the sources; <paramref name="whyNoBtf"/> says why there is no BTF, for the error messages.</summary>
    public KernelTypes(TypeCatalog? btf, VmcoreInfo? info, string? whyNoBtf = null)
    {
        _btf = btf;
        _info = info;
        string noBtf = whyNoBtf is null ? "no BTF" : whyNoBtf;
        Source = (btf, info) switch
        {
            (not null, not null) => $"BTF from {btf.Source}, then VMCOREINFO",
            (not null, null) => $"BTF from {btf.Source}",
            (null, not null) => $"VMCOREINFO only; {noBtf}",
            _ => $"none; {noBtf}",
        };
    }

    /// <inheritdoc/>
    public string Source { get; }

    /// <summary>The BTF catalog, when there is one.</summary>
    public TypeCatalog? Btf => _btf;

    /// <inheritdoc/>
    public bool TryGetField(string path, out FieldLayout field)
    {
        if (_btf is not null && _btf.TryGetMember(path, out var m))
        {
            int bitInByte = m.BitSize > 0 ? (int)(m.BitOffset & 7) : 0;
            long offset = m.BitSize > 0 ? m.BitOffset >> 3 : m.Offset;
            field = new FieldLayout(path, offset, m.Size, bitInByte, m.BitSize);
            return true;
        }

        if (_info?.GetOffset(path) is { } off)
        {
            field = new FieldLayout(path, off, 0, 0, 0);
            return true;
        }

        field = default;
        return false;
    }

    /// <inheritdoc/>
    public bool TryGetSize(string typeName, out long size)
    {
        if (_btf is not null && _btf.TryGetSize(typeName, out size))
        {
            return true;
        }

        if (_info?.GetSize(typeName) is { } s)
        {
            size = s;
            return true;
        }

        size = 0;
        return false;
    }

    /// <inheritdoc/>
    public bool TryGetEnumValue(string enumerator, out long value)
    {
        if (_btf is not null && _btf.TryGetEnumValue(enumerator, out value))
        {
            return true;
        }

        if (_info?.GetNumber(enumerator) is { } n)
        {
            value = n;
            return true;
        }

        value = 0;
        return false;
    }
}
