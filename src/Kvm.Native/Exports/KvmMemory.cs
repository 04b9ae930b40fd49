using System.Runtime.InteropServices;
using Kvm.Native.Interop;
using Kvm.Native.Mirrors;

namespace Kvm.Native.Exports;

/// <summary>Kernel memory: <c>kvm_read</c>, <c>kvm_read2</c>, <c>kvm_write</c>, and SunOS's <c>kvm_kread</c>, <c>kvm_kwrite</c>.</summary>
internal static unsafe class KvmMemory
{
    /// <summary>
    /// <c>kvm_read(kd, addr, buf, nbytes)</c> with FreeBSD's rules: all of it, or −1 when any byte's address cannot
    /// be translated (partial progress is discarded; <c>kvm_geterr</c> says <c>invalid address (0x…)</c>), or a short
    /// count when the core file ends early.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_read")]
    public static nint Read(nint kd, nuint address, byte* buffer, nuint length) => ReadFreeBsd(kd, address, buffer, length);

    /// <summary><c>kvm_read2</c>: <c>kvm_read</c> with a 64-bit address whatever the host.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_read2")]
    public static nint Read2(nint kd, ulong address, byte* buffer, nuint length) => ReadFreeBsd(kd, address, buffer, length);

    /// <summary>
    /// <c>kvm_kread(kd, addr, buf, nbytes)</c> with illumos's rules: the bytes transferred before the first
    /// unreadable page, or −1 if none were.
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_kread")]
    public static nint KernelRead(nint kd, nuint address, byte* buffer, nuint length) =>
        ExportGuard.Run(kd, (nint)(-1), k =>
        {
            if (length == 0)
            {
                return 0;
            }

            CheckBuffer(buffer, length);
            k.Image.TryRead(address, new Span<byte>(buffer, (int)length), out int done, out var fault);
            if (fault is not null && done == 0)
            {
                ExportGuard.Fail(k, fault);
                return -1;
            }

            return done;
        });

    /// <summary><c>kvm_write(kd, addr, buf, nbytes)</c>: <paramref name="length"/>, or −1 (read-only image, unmapped address…).</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_write")]
    public static nint Write(nint kd, nuint address, byte* buffer, nuint length) => WriteKernel(kd, address, buffer, length);

    /// <summary><c>kvm_kwrite</c>: SunOS's name for <c>kvm_write</c>.</summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_kwrite")]
    public static nint KernelWrite(nint kd, nuint address, byte* buffer, nuint length) => WriteKernel(kd, address, buffer, length);

    /// <summary>
    /// <c>kvm_walk_pages(kd, cb, closure)</c>: one <c>struct kvm_page</c> per page, kernel-map mappings first, then
    /// the pages the image holds that no mapping reached (see docs/libkvm-c.md). The callback returns non-zero to go
    /// on. 1 when the walk completed; 0 when the callback stopped it, or on error (<c>kvm_geterr</c> says why).
    /// </summary>
    [UnmanagedCallersOnly(EntryPoint = "kvm_walk_pages")]
    public static int WalkPages(nint kd, delegate* unmanaged<KvmPage*, void*, int> callback, void* closure) => ExportGuard.Run(kd, 0, k =>
    {
        if (callback is null)
        {
            throw new ArgumentException("kvm_walk_pages: NULL callback");
        }

        bool completed = k.Image.WalkPages(page =>
        {
            var record = new KvmPage
            {
                Version = KvmPage.CurrentVersion,
                PhysicalAddress = page.PhysicalAddress,
                KernelMapAddress = page.KernelMapAddress,
                DirectMapAddress = page.DirectMapAddress,
                Protection = (byte)page.Protection,
                Offset = page.FileOffset,
                Length = (nuint)page.Length,
            };
            return callback(&record, closure) != 0;
        });
        return completed ? 1 : 0;
    });

    /// <summary>The FreeBSD read loop, shared with <c>kvm_read_zpcpu</c>.</summary>
    internal static nint ReadFreeBsd(nint kd, ulong address, byte* buffer, nuint length) =>
        ExportGuard.Run(kd, (nint)(-1), k => ReadFreeBsd(k, address, buffer, length));

    /// <summary>The FreeBSD read loop on an open descriptor.</summary>
    internal static nint ReadFreeBsd(NativeKvm k, ulong address, byte* buffer, nuint length)
    {
        if (length == 0)
        {
            return 0;
        }

        CheckBuffer(buffer, length);
        if (k.Image.TryRead(address, new Span<byte>(buffer, (int)length), out int done, out var fault))
        {
            return done;
        }

        // A core file that ends early gives a short count; an address that cannot be translated fails the call.
        if (fault!.Reason == MemoryFaultReason.Truncated)
        {
            k.SetError($"short read: {fault.Message}", hard: false);
            return done;
        }

        ExportGuard.Fail(k, fault);
        return -1;
    }

    // As FreeBSD, whether the image may be written is checked first: even a 0-byte write to a read-only
    // descriptor fails and sets the error text (FreeBSD's kvm_geterr test relies on it).
    private static nint WriteKernel(nint kd, nuint address, byte* buffer, nuint length) =>
        ExportGuard.Run(kd, (nint)(-1), k =>
        {
            if (length != 0)
            {
                CheckBuffer(buffer, length);
            }

            k.Image.Write(address, length == 0 ? [] : new ReadOnlySpan<byte>(buffer, (int)length));
            return (nint)length;
        });

    /// <summary>Refuses a NULL buffer and sizes a span cannot hold.</summary>
    internal static void CheckBuffer(void* buffer, nuint length)
    {
        if (buffer is null)
        {
            throw new ArgumentException("NULL buffer");
        }

        if (length > int.MaxValue)
        {
            throw new ArgumentException($"size {length} is larger than {int.MaxValue} bytes");
        }
    }
}
