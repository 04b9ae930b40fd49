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

    /// <summary>
    /// Looks <paramref name="name"/> up as <c>kvm_nlist</c> does, giving the value it puts in <c>n_value</c>.
    /// Linux: <see cref="TryGetSymbol"/>; a per-CPU variable (<see cref="IsPerCpuSymbol"/>) comes back as the address
    /// of CPU <paramref name="cpu"/>'s copy, as FreeBSD's DPCPU symbols do (when that copy cannot be placed, the
    /// offset, with a <see cref="NamelistEntry.Note"/>). FreeBSD (lib/libkvm/kvm_private.c <c>_kvm_nlist</c> on a
    /// core): the name itself, with its own value; if it is not there, <c>vnet_entry_NAME</c> (net/vnet.h
    /// <c>VNET_SYMPREFIX</c>), relocated to the copy of the vnet of process <paramref name="vnetPid"/> (null: that of
    /// <c>proc0</c>, vnet0, which is the one libkvm selects on a crash dump) when it lies in <c>set_vnet</c>; if not
    /// there either, <c>pcpu_entry_NAME</c> (sys/sys/pcpu.h <c>DPCPU_SYMPREFIX</c>), relocated to CPU
    /// <paramref name="cpu"/>'s copy with <c>dpcpu_off</c> when it lies in <c>set_pcpu</c>. One leading underscore of
    /// <paramref name="name"/> is optional, and dropped before a prefix is added.
    /// </summary>
    /// <param name="name">The name, as given to <c>kvm_nlist</c>.</param>
    /// <param name="cpu">The CPU whose copy per-CPU variables resolve to (<c>kvm_dpcpu_setcpu</c>; libkvm starts at 0).</param>
    /// <param name="vnetPid">FreeBSD: the process whose virtual network stack VNET variables resolve to; null for <c>proc0</c>'s.</param>
    /// <exception cref="ArgumentOutOfRangeException">A per-CPU variable was found and <paramref name="cpu"/> is not below <c>nr_cpu_ids</c> (FreeBSD: <c>mp_maxcpus</c>).</exception>
    /// <exception cref="ArgumentException">FreeBSD: a VNET variable was found and no process has pid <paramref name="vnetPid"/>.</exception>
    public NamelistEntry LookupNamelist(string name, int cpu = 0, int? vnetPid = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        ThrowIfDisposed();
        if (OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return LookupFreeBsdNamelist(name, cpu, vnetPid);
        }

        if (!TryGetSymbol(name, out var symbol))
        {
            return new NamelistEntry(name, null, 0, NamelistRelocation.None, null);
        }

        if (!IsPerCpuSymbol(symbol))
        {
            return new NamelistEntry(name, symbol, symbol.Address, NamelistRelocation.None, null);
        }

        try
        {
            return new NamelistEntry(name, symbol, GetPerCpuAddress(symbol.Address, cpu), NamelistRelocation.PerCpu, null);
        }
        catch (KvmException e)
        {
            return new NamelistEntry(name, symbol, symbol.Address, NamelistRelocation.None, $"{symbol.Name}: per-CPU copy of CPU {cpu} unknown ({e.Message}); its offset is returned");
        }
    }

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
