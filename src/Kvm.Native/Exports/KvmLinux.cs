using System.Runtime.InteropServices;
using System.Text;
using Kvm.Native.Interop;

namespace Kvm.Native.Exports;

/// <summary>Linux extras: <c>kvm_linux_dmesg</c>.</summary>
internal static unsafe class KvmLinux
{
    /// <summary>
    /// <c>kvm_linux_dmesg(kd, lenp)</c>: the kernel log as dmesg(1) prints it, NUL-terminated, owned by the descriptor
    /// until the next call or <c>kvm_close</c>; <c>*lenp</c> gets its length. NULL on error. On a FreeBSD image, the
    /// message buffer's lines as dmesg(8) prints them without <c>-a</c> (prefixes stripped, no vis(3) encoding).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_linux_dmesg")]
    public static nint Dmesg(nint kd, nuint* length)
    {
        if (length is not null)
        {
            *length = 0;
        }

        return ExportGuard.Run(kd, 0, k =>
        {
            var log = k.Image.ReadKernelLog();
            if (log.Warnings.Count > 0)
            {
                k.SetError($"kvm_linux_dmesg: {log.Warnings[0]}", hard: false);
            }

            var text = new StringBuilder();
            foreach (var record in log.Records.Where(r => r.IsShownByDefault))
            {
                text.Append(record.Format()).Append('\n');
            }

            byte[] bytes = Encoding.UTF8.GetBytes(text.ToString());
            lock (k.Sync)
            {
                var block = (byte*)k.KernelLog.Replace((nuint)bytes.Length + 1);
                bytes.CopyTo(new Span<byte>(block, bytes.Length));
                block[bytes.Length] = 0;
                if (length is not null)
                {
                    *length = (nuint)bytes.Length;
                }

                return (nint)block;
            }
        });
    }
}
