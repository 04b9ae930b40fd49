namespace Kvm;

public sealed partial class KernelImage
{
    /// <summary>
    /// Looks up a symbol: the caller's resolver first, then the namelists in order, then VMCOREINFO. As in libkvm's
    /// nlist, one leading underscore is optional (<c>_jiffies</c> finds <c>jiffies</c>).
    /// </summary>
    public bool TryGetSymbol(string name, out KernelSymbol symbol)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfDisposed();
        if (TryGetSymbolExact(name, out symbol))
        {
            return true;
        }

        return name.Length > 1 && name[0] == '_' && TryGetSymbolExact(name[1..], out symbol);
    }

    /// <summary>Looks up a symbol or throws <see cref="SymbolNotFoundException"/>.</summary>
    public KernelSymbol GetSymbol(string name) =>
        TryGetSymbol(name, out var symbol) ? symbol : throw new SymbolNotFoundException(name, MissingSymbolHint());

    /// <summary>Finds the symbol at or below <paramref name="address"/>; <paramref name="offset"/> is the distance from it.</summary>
    public bool TryFindSymbol(ulong address, out KernelSymbol symbol, out ulong offset)
    {
        ThrowIfDisposed();
        KernelSymbol best = default;
        bool found = false;
        foreach (var table in _namelists)
        {
            if (table.TryFindByAddress(address, out var s) && (!found || s.Address > best.Address))
            {
                best = s;
                found = true;
            }
        }

        symbol = best;
        offset = found ? address - best.Address : 0;
        return found;
    }

    /// <summary>Every symbol of every namelist, relocated.</summary>
    public IEnumerable<KernelSymbol> EnumerateSymbols()
    {
        ThrowIfDisposed();
        return _namelists.SelectMany(t => t.Enumerate());
    }

    /// <summary>
    /// When the only symbols are the kernel's own kallsyms and they list functions only (built without
    /// CONFIG_KALLSYMS_ALL: <c>avenrun</c>, a variable every kernel has, is not among them), says what would give the
    /// rest: the scan of the image found the exported and per-CPU variables, but static ones need the System.map.
    /// </summary>
    private string? MissingSymbolHint() =>
        _namelists.Find(t => t.Kind == NamelistKind.KernelMemory) is { } kallsyms && !kallsyms.TryLookup("avenrun", out _) &&
        !_namelists.Any(t => t.Kind is NamelistKind.SystemMap or NamelistKind.Vmlinux or NamelistKind.Kallsyms)
            ? "the kernel's kallsyms lists functions only (built without CONFIG_KALLSYMS_ALL) and the symbol is neither exported nor per-CPU: give its System.map with -N"
            : null;

    private bool TryGetSymbolExact(string name, out KernelSymbol symbol)
    {
        if (_resolver?.Invoke(name) is { } resolved)
        {
            symbol = new KernelSymbol(name, resolved, '?', "resolver");
            return true;
        }

        foreach (var table in _namelists)
        {
            if (table.TryLookup(name, out symbol))
            {
                return true;
            }
        }

        symbol = default;
        return false;
    }
}
