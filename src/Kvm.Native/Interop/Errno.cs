using System.Runtime.InteropServices;

namespace Kvm.Native.Interop;

/// <summary>The Linux errno values the shim sets (asm-generic/errno-base.h).</summary>
internal static class Errno
{
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EINVAL = 22;
    public const int EROFS = 30;
    public const int ENOSYS = 38;

    /// <summary>Sets the calling thread's errno.</summary>
    public static void Set(int value) => Marshal.SetLastSystemError(value);

    /// <summary>The errno that best describes <paramref name="exception"/>.</summary>
    public static int For(Exception exception) => exception switch
    {
        FileNotFoundException or DirectoryNotFoundException => ENOENT,
        UnauthorizedAccessException => EACCES,
        OutOfMemoryException => ENOMEM,
        ArgumentException => EINVAL,
        MemoryFaultException => EFAULT,
        KvmException { Code: KvmErrorCode.ReadOnly } => EBADF,
        KvmException { Code: KvmErrorCode.NotSupported } => ENOSYS,
        KvmException { Code: KvmErrorCode.SymbolNotFound } => ENOENT,
        _ => EIO,
    };
}
