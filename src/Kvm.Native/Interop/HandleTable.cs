using System.Collections.Concurrent;

namespace Kvm.Native.Interop;

/// <summary>
/// The open descriptors. Every <c>kvm_t *</c> from C is looked up here before use, so a NULL, closed or stray
/// pointer gets <c>EINVAL</c> instead of a crash.
/// </summary>
internal static class HandleTable
{
    private static readonly ConcurrentDictionary<nint, NativeKvm> s_open = new();

    /// <summary>Registers a new descriptor and returns its <c>kvm_t *</c>.</summary>
    public static nint Add(NativeKvm kvm)
    {
        s_open[kvm.Handle] = kvm;
        return kvm.Handle;
    }

    /// <summary>Finds an open descriptor.</summary>
    public static bool TryGet(nint handle, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out NativeKvm? kvm) =>
        s_open.TryGetValue(handle, out kvm);

    /// <summary>Removes a descriptor; false if it was not open.</summary>
    public static bool TryRemove(nint handle, [System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out NativeKvm? kvm) =>
        s_open.TryRemove(handle, out kvm);
}
