namespace Kvm.Symbols;

/// <summary>
/// An immutable table of symbols from one namelist, indexed by name and sorted by address. Addresses are as the
/// source holds them; <see cref="Displacement"/> is added on look-up (per-CPU offsets and absolute symbols below the
/// kernel text map are never displaced).
/// </summary>
internal sealed class SymbolTable
{
    private readonly Dictionary<string, int> _byName;
    private readonly KernelSymbol[] _byAddress;

    public SymbolTable(string source, NamelistKind kind, IEnumerable<KernelSymbol> symbols)
    {
        Source = source;
        Kind = kind;
        _byAddress = [.. symbols.OrderBy(s => s.Address)];
        _byName = new Dictionary<string, int>(_byAddress.Length, StringComparer.Ordinal);
        for (int i = 0; i < _byAddress.Length; i++)
        {
            var s = _byAddress[i];

            // Static symbols repeat across files; a global definition wins, else the first one seen.
            if (!_byName.TryGetValue(s.Name, out int existing) || (!_byAddress[existing].IsGlobal && s.IsGlobal))
            {
                _byName[s.Name] = i;
            }
        }
    }

    public string Source { get; }

    public NamelistKind Kind { get; }

    /// <summary>The ELF machine (EM_*) of an ELF namelist, 0 for text listings.</summary>
    public ushort Machine { get; init; }

    public int Count => _byAddress.Length;

    /// <summary>Added to text-map addresses on look-up: the KASLR offset for link-time namelists, 0 for runtime ones.</summary>
    public long Displacement { get; set; }

    /// <summary>
    /// The lowest address <see cref="Displacement"/> applies to: the x86-64 text map by default (per-CPU offsets and
    /// absolute symbols below it stay put); an i386 kernel's PAGE_OFFSET (the whole image moves there); the kernel half
    /// on arm64, where per-CPU symbols are ordinary image addresses.
    /// </summary>
    public ulong RelocationBase { get; set; } = KernelLayout.StartKernelMap;

    /// <summary>The raw (undisplaced) value of <paramref name="name"/>, or null.</summary>
    public ulong? RawValue(string name) => _byName.TryGetValue(name, out int i) ? _byAddress[i].Address : null;

    public bool TryLookup(string name, out KernelSymbol symbol)
    {
        if (_byName.TryGetValue(name, out int i))
        {
            var s = _byAddress[i];
            symbol = s with { Address = Relocate(s.Address) };
            return true;
        }

        symbol = default;
        return false;
    }

    /// <summary>The symbol at or below <paramref name="address"/> (a runtime address).</summary>
    public bool TryFindByAddress(ulong address, out KernelSymbol symbol)
    {
        ulong raw = address >= RelocationBase ? unchecked(address - (ulong)Displacement) : address;
        int lo = 0;
        int hi = _byAddress.Length - 1;
        int found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (_byAddress[mid].Address <= raw)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }

        if (found < 0)
        {
            symbol = default;
            return false;
        }

        var s = _byAddress[found];
        symbol = s with { Address = Relocate(s.Address) };
        return true;
    }

    public IEnumerable<KernelSymbol> Enumerate() => _byAddress.Select(s => s with { Address = Relocate(s.Address) });

    private ulong Relocate(ulong address) => address >= RelocationBase ? unchecked(address + (ulong)Displacement) : address;
}
