namespace Kvm;

/// <summary>How <see cref="KernelImage.LookupNamelist"/> turned a symbol's value into the value <c>kvm_nlist</c> returns.</summary>
public enum NamelistRelocation
{
    /// <summary>The symbol's own value.</summary>
    None,

    /// <summary>
    /// Linux: a per-CPU variable (its value lies in <c>[__per_cpu_start, __per_cpu_end)</c>), relocated to the chosen
    /// CPU's copy with <c>__per_cpu_offset</c>.
    /// </summary>
    PerCpu,

    /// <summary>
    /// FreeBSD: found only as <c>pcpu_entry_NAME</c> and lying in <c>[__start_set_pcpu, __stop_set_pcpu)</c>, relocated
    /// to the chosen CPU's copy with <c>dpcpu_off</c> (lib/libkvm/kvm_pcpu.c <c>_kvm_dpcpu_validaddr</c>).
    /// </summary>
    DynamicPerCpu,

    /// <summary>
    /// FreeBSD: found only as <c>vnet_entry_NAME</c> and lying in <c>[__start_set_vnet, __stop_set_vnet)</c>, relocated
    /// to the selected virtual network stack's copy with its <c>vnet_data_base</c> (lib/libkvm/kvm_vnet.c
    /// <c>_kvm_vnet_validaddr</c>).
    /// </summary>
    VirtualNetwork,
}

/// <summary>One name looked up as <c>kvm_nlist</c> looks it up (<see cref="KernelImage.LookupNamelist"/>).</summary>
/// <param name="Name">The name asked for.</param>
/// <param name="Symbol">
/// The symbol found, or null: the name itself (one leading underscore optional), or on FreeBSD the name with the
/// <c>vnet_entry_</c> or <c>pcpu_entry_</c> prefix (<see cref="KernelSymbol.Name"/> says which).
/// </param>
/// <param name="Value">What <c>kvm_nlist</c> puts in <c>n_value</c>: the symbol's value, relocated as <see cref="Relocation"/> says; 0 when not found.</param>
/// <param name="Relocation">How <see cref="Value"/> was derived.</param>
/// <param name="Note">
/// Why a relocation could not be made (the value is then the symbol's own), or why a name that exists under a prefix is
/// not returned (the DPCPU or VNET data it needs cannot be read); null otherwise.
/// </param>
public sealed record NamelistEntry(string Name, KernelSymbol? Symbol, ulong Value, NamelistRelocation Relocation, string? Note)
{
    /// <summary>True when a symbol was found.</summary>
    public bool IsFound => Symbol is not null;
}
