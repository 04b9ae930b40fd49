using System.Runtime.InteropServices;
using Kvm.Native.Interop;
using Kvm.Native.Mirrors;

namespace Kvm.Native.Exports;

/// <summary>Symbols: <c>kvm_nlist</c> and <c>kvm_nlist2</c>.</summary>
internal static unsafe class KvmSymbols
{
    /// <summary>A list this long without its terminating entry is taken for a caller's bug.</summary>
    private const int MaxEntries = 1 << 20;

    /// <summary>
    /// <c>kvm_nlist(kd, nl)</c>: fills <c>n_type</c> and <c>n_value</c> of every entry up to the one whose
    /// <c>n_name</c> is NULL or <c>""</c>; returns how many were not found (their type and value are 0), or −1.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_nlist")]
    public static int Nlist(nint kd, Nlist* list) => ExportGuard.Run(kd, -1, k => Fill(k, list));

    /// <summary><c>kvm_nlist2(kd, nl)</c>: <c>kvm_nlist</c> with 64-bit values.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_nlist2")]
    public static int Nlist2(nint kd, KvmNlist* list) => ExportGuard.Run(kd, -1, k => Fill(k, list));

    private static int Fill<T>(NativeKvm k, T* list)
        where T : unmanaged, INlistEntry
    {
        if (list is null)
        {
            throw new ArgumentException("kvm_nlist: NULL list");
        }

        int missing = 0;
        for (int i = 0; list[i].NameAddress != 0 && *(byte*)list[i].NameAddress != 0; i++)
        {
            if (i >= MaxEntries)
            {
                throw new ArgumentException($"kvm_nlist: no terminating entry within {MaxEntries} entries");
            }

            var (type, value) = Lookup(k, (byte*)list[i].NameAddress);
            list[i].Set(type, value);
            missing += type == 0 ? 1 : 0;
        }

        return missing;
    }

    /// <summary>
    /// One look-up, as <see cref="KernelImage.LookupNamelist"/> makes it with the CPU chosen by
    /// <c>kvm_dpcpu_setcpu</c> (CPU 0 by default). Linux: per-CPU variables come back as that CPU's copy, as FreeBSD's
    /// DPCPU symbols do (their raw value is only an offset). FreeBSD: a name not found is retried as
    /// <c>vnet_entry_NAME</c> (relocated to vnet0's copy) and <c>pcpu_entry_NAME</c> (relocated with
    /// <c>dpcpu_off</c>), as lib/libkvm's <c>_kvm_nlist</c>. Why a relocation could not be made is a soft error.
    /// </summary>
    private static (byte Type, ulong Value) Lookup(NativeKvm k, byte* name)
    {
        var entry = k.Image.LookupNamelist(NativeText.Read(name)!, k.DpcpuCpu);
        if (entry.Note is { } note)
        {
            k.SetError(note, hard: false);
        }

        return entry.Symbol is { } symbol ? (TypeOf(symbol), entry.Value) : ((byte)0, 0UL);
    }

    /// <summary>
    /// The a.out <c>N_*</c> type of a symbol from its nm letter, as FreeBSD's ELF nlist derives it from the section:
    /// text and read-only data are <c>N_TEXT</c>, writable data <c>N_DATA</c>, bss <c>N_BSS</c>, absolute <c>N_ABS</c>,
    /// with <c>N_EXT</c> for global symbols. A resolver's symbols are <c>N_DATA | N_EXT</c>, as in libkvm.
    /// </summary>
    internal static byte TypeOf(KernelSymbol symbol)
    {
        const byte NExt = 0x01, NAbs = 0x02, NText = 0x04, NData = 0x06, NBss = 0x08;
        if (symbol.Source == "resolver")
        {
            return NData | NExt;
        }

        byte type = char.ToUpperInvariant(symbol.Type) switch
        {
            'T' or 'R' or 'W' => NText,
            'B' or 'S' => NBss,
            'A' => NAbs,
            _ => NData,
        };
        return (byte)(type | (char.IsUpper(symbol.Type) ? NExt : 0));
    }
}
