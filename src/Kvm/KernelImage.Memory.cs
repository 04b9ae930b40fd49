using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;
using System.Text;

namespace Kvm;

public sealed partial class KernelImage
{
    /// <summary>
    /// Reads kernel virtual memory with libkvm's partial-read semantics: returns the number of bytes read before the
    /// first unreadable byte (0 when the first byte is unreadable). Never throws for an unmapped or missing address;
    /// use <see cref="TryRead(ulong, Span{byte}, out int, out MemoryFaultException?)"/> to learn why it stopped.
    /// </summary>
    public int Read(ulong address, Span<byte> buffer)
    {
        ThrowIfDisposed();
        return _memory.ReadVirtual(address, buffer, out _);
    }

    /// <summary>Reads kernel virtual memory; on a short read, <paramref name="fault"/> says where and why.</summary>
    public bool TryRead(ulong address, Span<byte> buffer, out int bytesRead, out MemoryFaultException? fault)
    {
        ThrowIfDisposed();
        bytesRead = _memory.ReadVirtual(address, buffer, out fault);
        return fault is null;
    }

    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes or throws <see cref="MemoryFaultException"/>.</summary>
    public void ReadExactly(ulong address, Span<byte> buffer)
    {
        if (!TryRead(address, buffer, out _, out var fault))
        {
            throw fault!;
        }
    }

    /// <summary>Reads an unmanaged value (little-endian, as the kernel stores it) or throws <see cref="MemoryFaultException"/>.</summary>
    public T Read<T>(ulong address)
        where T : unmanaged
    {
        T value = default;
        ReadExactly(address, MemoryMarshal.AsBytes(new Span<T>(ref value)));
        return value;
    }

    /// <summary>Reads an unmanaged value; false when any byte is unreadable.</summary>
    public bool TryRead<T>(ulong address, out T value)
        where T : unmanaged
    {
        value = default;
        return TryRead(address, MemoryMarshal.AsBytes(new Span<T>(ref value)), out _, out _);
    }

    /// <summary>Reads a kernel pointer (<see cref="PointerSize"/> bytes: 4 on i386, 8 on x86-64), zero-extended.</summary>
    public ulong ReadPointer(ulong address) => PointerSize == 4 ? Read<uint>(address) : Read<ulong>(address);

    /// <summary>Reads a NUL-terminated string of at most <paramref name="maxLength"/> bytes, decoded as UTF-8.</summary>
    public string ReadCString(ulong address, int maxLength = 4096)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxLength);
        var buffer = new byte[maxLength];
        TryRead(address, buffer, out int n, out var fault);
        int nul = Array.IndexOf(buffer, (byte)0, 0, n);
        if (nul < 0)
        {
            if (n == 0 && fault is not null)
            {
                throw fault;
            }

            nul = n;
        }

        return Encoding.UTF8.GetString(buffer, 0, nul);
    }

    /// <summary>Reads physical memory; returns the bytes read before the first unavailable byte.</summary>
    public int ReadPhysical(ulong physicalAddress, Span<byte> buffer)
    {
        ThrowIfDisposed();
        return _memory.ReadPhysical(physicalAddress, buffer, out _);
    }

    /// <summary>Reads physical memory; on a short read, <paramref name="fault"/> says why.</summary>
    public bool TryReadPhysical(ulong physicalAddress, Span<byte> buffer, out int bytesRead, out MemoryFaultException? fault)
    {
        ThrowIfDisposed();
        bytesRead = _memory.ReadPhysical(physicalAddress, buffer, out fault);
        return fault is null;
    }

    /// <summary>Writes kernel virtual memory in place. Throws when the image is not writable or an address is unmapped.</summary>
    public void Write(ulong address, ReadOnlySpan<byte> data)
    {
        ThrowIfNotWritable();
        _memory.WriteVirtual(address, data, out var fault);
        if (fault is not null)
        {
            throw fault;
        }
    }

    /// <summary>Writes physical memory in place.</summary>
    public void WritePhysical(ulong physicalAddress, ReadOnlySpan<byte> data)
    {
        ThrowIfNotWritable();
        _memory.WritePhysical(physicalAddress, data, out var fault);
        if (fault is not null)
        {
            throw fault;
        }
    }

    /// <summary>Describes the translation of a kernel virtual address, level by level; never throws for a failed walk.</summary>
    public TranslationWalk Translate(ulong address)
    {
        ThrowIfDisposed();
        return _memory.Describe(address);
    }

    /// <summary>Describes the translation of a user virtual address through the page tables at <paramref name="pageTableRoot"/> (a physical address).</summary>
    public TranslationWalk Translate(ulong address, ulong pageTableRoot)
    {
        ThrowIfDisposed();
        return _memory.Describe(address, pageTableRoot);
    }

    /// <summary>Translates a kernel virtual address to a physical one.</summary>
    public bool TryTranslate(ulong address, out ulong physicalAddress)
    {
        ThrowIfDisposed();
        return _memory.TryTranslate(address, out physicalAddress, out _);
    }

    /// <summary>Reads the kernel's <c>init_uts_ns.name</c> (Linux; false for FreeBSD, whose kernel has no such structure).</summary>
    public bool TryReadUtsname([NotNullWhen(true)] out Utsname? utsname)
    {
        utsname = null;
        if (OperatingSystem != KernelOperatingSystem.Linux || !TryGetSymbol("init_uts_ns", out var ns))
        {
            return false;
        }

        // struct uts_namespace starts with the name on 5.11+ and after a 4-byte kref before; VMCOREINFO says which.
        long[] offsets = VmcoreInfo?.GetOffset("uts_namespace.name") is { } known ? [known] : [0, 4, 8];
        const int Field = 65;
        var buffer = new byte[Field * 6];
        foreach (long off in offsets)
        {
            if (!TryRead(ns.Address + (ulong)off, buffer, out _, out _) || !buffer.AsSpan(0, 6).SequenceEqual("Linux\0"u8))
            {
                continue;
            }

            string F(int i)
            {
                var s = buffer.AsSpan(i * Field, Field);
                int nul = s.IndexOf((byte)0);
                return Encoding.UTF8.GetString(nul < 0 ? s : s[..nul]);
            }

            utsname = new Utsname(F(0), F(1), F(2), F(3), F(4), F(5));
            return true;
        }

        return false;
    }

    /// <summary>
    /// Reads <c>linux_banner</c>, the text /proc/version prints; for FreeBSD the kernel's <c>version</c> string, as
    /// <c>uname -v</c> and the boot messages print it.
    /// </summary>
    public string ReadBanner() => ReadCString(GetSymbol(OperatingSystem == KernelOperatingSystem.FreeBsd ? "version" : "linux_banner").Address, 1024);

    private void ThrowIfNotWritable()
    {
        ThrowIfDisposed();
        if (!_options.Writable)
        {
            throw new KvmException(KvmErrorCode.ReadOnly, $"{_image.Files[0]}: not opened for writing");
        }

        if (!_image.CanWrite)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{_image.Files[0]}: writing is not supported for {_image.Description} images");
        }
    }
}
