namespace Kvm.Native.Interop;

/// <summary>
/// The one shape of every export: find the descriptor, run one façade call, and turn any exception into libkvm's
/// failure value, the error text and errno. No exception ever crosses into C.
/// </summary>
internal static class ExportGuard
{
    /// <summary>
    /// Runs <paramref name="body"/> on descriptor <paramref name="handle"/>. An unknown descriptor gives
    /// <paramref name="failure"/> with errno <c>EINVAL</c>; an exception gives <paramref name="failure"/> with its
    /// message in the descriptor's error text.
    /// </summary>
    public static T Run<T>(nint handle, T failure, Func<NativeKvm, T> body)
    {
        if (!HandleTable.TryGet(handle, out var kvm))
        {
            Errno.Set(Errno.EINVAL);
            return failure;
        }

        try
        {
            return body(kvm);
        }
        catch (Exception e)
        {
            Fail(kvm, e);
            return failure;
        }
    }

    /// <summary>Records <paramref name="exception"/> on <paramref name="kvm"/> and sets errno.</summary>
    public static void Fail(NativeKvm kvm, Exception exception)
    {
        // Faults reading memory are libkvm's "soft" errors: they always land in kvm_geterr.
        kvm.SetError(Describe(exception), hard: exception is not MemoryFaultException);
        Errno.Set(Errno.For(exception));
    }

    /// <summary>The text an exception leaves in the error buffer.</summary>
    public static string Describe(Exception exception) => exception switch
    {
        MemoryFaultException fault => $"invalid address (0x{fault.Address:x}): {fault.Message}",
        KvmException or IOException or UnauthorizedAccessException or ArgumentException => exception.Message,
        _ => $"internal error: {exception.GetType().Name}: {exception.Message}",
    };
}
