using System.Runtime.InteropServices;
using System.Text;
using Kvm.Native.Exports;
using Kvm.Native.Mirrors;

namespace Kvm.Tests.Native;

/// <summary>
/// Calls the C exports in-process through unmanaged function pointers, as a C caller would: every call crosses the
/// native boundary, so ExportGuard's catch-all and the errno it sets are exercised for real.
/// </summary>
internal static unsafe class NativeShim
{
    public const int ORdOnly = 0, OWrOnly = 1, ORdWr = 2, OCreat = 0x40;

    public static nint OpenFiles(string? exec, string? core, out string error, int flags = ORdOnly)
    {
        delegate* unmanaged<byte*, byte*, byte*, int, byte*, nint> f = &KvmOpen.OpenFiles;
        byte* buffer = stackalloc byte[2048];
        buffer[0] = 0;
        fixed (byte* e = Utf8(exec), c = Utf8(core))
        {
            nint kd = f(exec is null ? null : e, core is null ? null : c, null, flags, buffer);
            error = Marshal.PtrToStringUTF8((nint)buffer)!;
            return kd;
        }
    }

    public static nint Open2(string? exec, string? core, out string error, delegate* unmanaged<byte*, ulong*, int> resolver, bool withBuffer = true)
    {
        delegate* unmanaged<byte*, byte*, int, byte*, delegate* unmanaged<byte*, ulong*, int>, nint> f = &KvmOpen.Open2;
        byte* buffer = stackalloc byte[2048];
        buffer[0] = 0;
        fixed (byte* e = Utf8(exec), c = Utf8(core))
        {
            nint kd = f(exec is null ? null : e, core is null ? null : c, ORdOnly, withBuffer ? buffer : null, resolver);
            error = Marshal.PtrToStringUTF8((nint)buffer)!;
            return kd;
        }
    }

    public static int Close(nint kd)
    {
        delegate* unmanaged<nint, int> f = &KvmOpen.Close;
        return f(kd);
    }

    public static string? GetError(nint kd)
    {
        delegate* unmanaged<nint, nint> f = &KvmOpen.GetError;
        nint p = f(kd);
        return p == 0 ? null : Marshal.PtrToStringUTF8(p);
    }

    public static long Read(nint kd, ulong address, byte[] buffer)
    {
        delegate* unmanaged<nint, nuint, byte*, nuint, nint> f = &KvmMemory.Read;
        fixed (byte* b = buffer)
        {
            return f(kd, (nuint)address, b, (nuint)buffer.Length);
        }
    }

    public static long KernelRead(nint kd, ulong address, byte[] buffer)
    {
        delegate* unmanaged<nint, nuint, byte*, nuint, nint> f = &KvmMemory.KernelRead;
        fixed (byte* b = buffer)
        {
            return f(kd, (nuint)address, b, (nuint)buffer.Length);
        }
    }

    public static long Write(nint kd, ulong address, byte[] buffer)
    {
        delegate* unmanaged<nint, nuint, byte*, nuint, nint> f = &KvmMemory.Write;
        fixed (byte* b = buffer)
        {
            return f(kd, (nuint)address, b, (nuint)buffer.Length);
        }
    }

    /// <summary>kvm_nlist over <paramref name="names"/>: the return value and each entry's (type, value).</summary>
    public static (int Result, (byte Type, ulong Value)[] Entries) Nlist(nint kd, params string[] names)
    {
        delegate* unmanaged<nint, Nlist*, int> f = &KvmSymbols.Nlist;
        var texts = names.Select(n => GCHandle.Alloc(Utf8(n), GCHandleType.Pinned)).ToList();
        try
        {
            var list = new Nlist[names.Length + 1];
            for (int i = 0; i < names.Length; i++)
            {
                list[i].Name = texts[i].AddrOfPinnedObject();
                list[i].Type = 0xee;
                list[i].Value = unchecked((nuint)0xdeadbeef);
            }

            fixed (Nlist* l = list)
            {
                int result = f(kd, l);
                return (result, list.Take(names.Length).Select(e => (e.Type, (ulong)e.Value)).ToArray());
            }
        }
        finally
        {
            texts.ForEach(t => t.Free());
        }
    }

    public static KinfoProc[]? GetProcs(nint kd, int op, int arg, out int count, out int errno)
    {
        delegate* unmanaged<nint, int, int, int*, KinfoProc*> f = &KvmProcs.GetProcs;
        int n = -1;
        Marshal.SetLastSystemError(0);
        KinfoProc* entries = f(kd, op, arg, &n);
        errno = Marshal.GetLastSystemError();
        count = n;
        return entries is null ? null : new Span<KinfoProc>(entries, n).ToArray();
    }

    /// <summary>kvm_getprocs, then kvm_getargv or kvm_getenvv on the entry for <paramref name="pid"/> inside the returned array.</summary>
    public static string[]? Strings(nint kd, int pid, bool environment, int maxBytes = 0)
    {
        delegate* unmanaged<nint, int, int, int*, KinfoProc*> procs = &KvmProcs.GetProcs;
        delegate* unmanaged<nint, KinfoProc*, int, nint> argv = &KvmProcs.GetArgv;
        delegate* unmanaged<nint, KinfoProc*, int, nint> envv = &KvmProcs.GetEnvv;
        int n;
        KinfoProc* entries = procs(kd, 8, 0, &n);
        for (int i = 0; i < n; i++)
        {
            if (entries[i].Pid == pid)
            {
                return Vector(environment ? envv(kd, &entries[i], maxBytes) : argv(kd, &entries[i], maxBytes));
            }
        }

        throw new InvalidOperationException($"pid {pid} not listed");
    }

    public static string[]? Vector(nint vector)
    {
        if (vector == 0)
        {
            return null;
        }

        var list = new List<string>();
        for (var p = (nint*)vector; *p != 0; p++)
        {
            list.Add(Marshal.PtrToStringUTF8(*p)!);
        }

        return [.. list];
    }

    public static string Text(byte* fixedBuffer) => Marshal.PtrToStringUTF8((nint)fixedBuffer)!;

    public static byte[] Utf8(string? text) => text is null ? [0] : [.. Encoding.UTF8.GetBytes(text), 0];
}
