using System.Buffers.Binary;
using System.Text;
using Kvm.Memory;

namespace Kvm.Linux;

/// <summary>
/// What the kernel walkers share: the kernel's memory, its symbols and its structure layouts, plus typed reads
/// that fail with the address and what was being read. Layer 5 (kernel walkers) sits on this and nothing above.
/// </summary>
internal sealed class LinuxKernel
{
    private readonly Func<string, ulong?> _symbol;

    /// <summary>Creates the context.</summary>
    /// <param name="memory">Kernel memory (page tables, image).</param>
    /// <param name="symbol">Symbol lookup: runtime address or null.</param>
    /// <param name="types">Structure layouts.</param>
    /// <param name="limits">Caps on counts read from the image.</param>
    /// <param name="swap">The swap devices given by the caller, or null.</param>
    public LinuxKernel(KernelMemory memory, Func<string, ulong?> symbol, IKernelTypes types, KvmLimits limits, ISwapPageSource? swap)
    {
        Memory = memory;
        _symbol = symbol;
        Types = types;
        Limits = limits;
        Swap = swap;
    }

    /// <summary>Kernel memory.</summary>
    public KernelMemory Memory { get; }

    /// <summary>Structure layouts.</summary>
    public IKernelTypes Types { get; }

    /// <summary>Caps on counts read from the image.</summary>
    public KvmLimits Limits { get; }

    /// <summary>Swap devices, when given.</summary>
    public ISwapPageSource? Swap { get; }

    /// <summary>The page size of the kernel (4 KiB on x86).</summary>
    public int PageSize { get; init; } = 4096;

    /// <summary>The size of the kernel's pointers and <c>long</c>: 8 on x86-64, 4 on i386.</summary>
    public int PointerSize { get; init; } = 8;

    /// <summary>
    /// Alignment of a 64-bit member inside a structure: 4 on i386 (the i386 System V psABI aligns <c>long long</c>
    /// at 4 bytes in aggregates), 8 on x86-64 and arm64. BTF records offsets but not alignments, so a layout that
    /// BTF does not describe (an anonymous wrapper such as <c>tk_core</c>) needs it.
    /// </summary>
    public int Int64Alignment => PointerSize == 4 ? 4 : 8;

    /// <summary>How the kernel encodes swap entries in PTEs (x86-64's unless told otherwise).</summary>
    public SwapEntryFormat SwapEntries { get; init; } = SwapEntryFormat.X64;

    /// <summary>Looks up a symbol's runtime address.</summary>
    public ulong? Symbol(string name) => _symbol(name);

    /// <summary>Looks up a symbol or throws <see cref="SymbolNotFoundException"/>.</summary>
    public ulong RequireSymbol(string name) => _symbol(name) ?? throw new SymbolNotFoundException(name, MissingSymbolHint);

    /// <summary>Appended to a missing symbol's error: what would provide it (a System.map when kallsyms lists functions only), or null.</summary>
    public string? MissingSymbolHint { get; init; }

    /// <summary>Reads bytes or throws a fault that names <paramref name="what"/>.</summary>
    public void ReadExactly(ulong address, Span<byte> buffer, string what)
    {
        Memory.ReadVirtual(address, buffer, out var fault);
        if (fault is not null)
        {
            throw new MemoryFaultException(fault.Address, fault.Space, fault.Reason, $"cannot read {what} at 0x{address:x}: {fault.Message}", fault.Fault);
        }
    }

    /// <summary>Reads a whole structure or array into a new buffer.</summary>
    public byte[] ReadBytes(ulong address, long length, string what)
    {
        if (length < 0 || length > Limits.MaxKernelObjectBytes)
        {
            throw new CorruptImageException($"{what} at 0x{address:x}: size {length} is beyond the limit of {Limits.MaxKernelObjectBytes} bytes");
        }

        var buffer = new byte[length];
        ReadExactly(address, buffer, what);
        return buffer;
    }

    /// <summary>Reads a little-endian unsigned 64-bit value (<c>u64</c>, <c>long long</c>: 8 bytes on every architecture).</summary>
    public ulong ReadU64(ulong address, string what)
    {
        Span<byte> b = stackalloc byte[8];
        ReadExactly(address, b, what);
        return BinaryPrimitives.ReadUInt64LittleEndian(b);
    }

    /// <summary>Reads a little-endian unsigned 32-bit value.</summary>
    public uint ReadU32(ulong address, string what)
    {
        Span<byte> b = stackalloc byte[4];
        ReadExactly(address, b, what);
        return BinaryPrimitives.ReadUInt32LittleEndian(b);
    }

    /// <summary>Reads a little-endian signed 32-bit value.</summary>
    public int ReadI32(ulong address, string what) => unchecked((int)ReadU32(address, what));

    /// <summary>Reads a pointer or an <c>unsigned long</c> (<see cref="PointerSize"/> bytes), zero-extended.</summary>
    public ulong ReadPointer(ulong address, string what) => PointerSize == 4 ? ReadU32(address, what) : ReadU64(address, what);

    /// <summary>Adds to an address as the kernel's pointer arithmetic does: wrapping at 2^32 on a 32-bit kernel, 2^64 else.</summary>
    public ulong AddressAdd(ulong address, ulong offset) => PointerSize == 4 ? unchecked(address + offset) & uint.MaxValue : unchecked(address + offset);

    /// <summary>Reads an <c>unsigned long</c>: the kernel's word, as wide as a pointer.</summary>
    public ulong ReadULong(ulong address, string what) => ReadPointer(address, what);

    /// <summary>Reads an array of <paramref name="count"/> <c>unsigned long</c>s (or pointers), zero-extended.</summary>
    public ulong[] ReadULongs(ulong address, int count, string what)
    {
        var raw = ReadBytes(address, (long)count * PointerSize, what);
        var result = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            result[i] = Word(raw, i * PointerSize);
        }

        return result;
    }

    /// <summary>The <c>unsigned long</c> at <paramref name="offset"/> of a buffer, zero-extended.</summary>
    public ulong Word(ReadOnlySpan<byte> data, int offset) => PointerSize == 4
        ? BinaryPrimitives.ReadUInt32LittleEndian(data[offset..])
        : BinaryPrimitives.ReadUInt64LittleEndian(data[offset..]);

    /// <summary>Reads a NUL-terminated string of at most <paramref name="max"/> bytes; stops quietly at a fault.</summary>
    public byte[] ReadCStringBytes(ulong address, int max)
    {
        var buffer = new byte[max];
        int n = Memory.ReadVirtual(address, buffer, out _);
        int nul = Array.IndexOf(buffer, (byte)0, 0, n);
        return buffer.AsSpan(0, nul < 0 ? n : nul).ToArray();
    }

    /// <summary>Reads a NUL-terminated string and decodes it as UTF-8 (invalid bytes become U+FFFD).</summary>
    public string ReadCString(ulong address, int max) => Encoding.UTF8.GetString(ReadCStringBytes(address, max));

    /// <summary>Reads a field of <paramref name="size"/> bytes (1, 2, 4 or 8) from a buffer holding a structure, zero-extended.</summary>
    public static ulong Field(ReadOnlySpan<byte> data, FieldLayout field, int size = 0)
    {
        int width = size > 0 ? size : (int)(field.Size is 1 or 2 or 4 or 8 ? field.Size : 8);
        if (field.BitSize > 0)
        {
            // A bitfield is read from its first byte, wide enough to hold its bits.
            int bits = field.BitOffset + field.BitSize;
            width = bits <= 8 ? 1 : bits <= 16 ? 2 : bits <= 32 ? 4 : 8;
        }

        long off = field.Offset;
        if (off < 0 || off + width > data.Length)
        {
            throw new CorruptImageException($"{field.Path}: offset {off} + {width} is outside the {data.Length}-byte structure read");
        }

        var s = data.Slice((int)off, width);
        ulong v = width switch
        {
            1 => s[0],
            2 => BinaryPrimitives.ReadUInt16LittleEndian(s),
            4 => BinaryPrimitives.ReadUInt32LittleEndian(s),
            _ => BinaryPrimitives.ReadUInt64LittleEndian(s),
        };
        if (field.BitSize > 0)
        {
            v = (v >> field.BitOffset) & ((1UL << field.BitSize) - 1);
        }

        return v;
    }

    /// <summary>Reads a signed 32-bit field from a structure buffer.</summary>
    public static int FieldI32(ReadOnlySpan<byte> data, FieldLayout field) => unchecked((int)Field(data, field, 4));

    /// <summary>Reads a pointer-sized field (a pointer, <c>long</c> or <c>unsigned long</c>) from a structure buffer.</summary>
    public ulong FieldPointer(ReadOnlySpan<byte> data, FieldLayout field) => Field(data, field, PointerSize);

    /// <summary>Reads an <c>unsigned long</c> field from a structure buffer: as wide as a pointer.</summary>
    public ulong FieldULong(ReadOnlySpan<byte> data, FieldLayout field) => Field(data, field, PointerSize);

    /// <summary>Reads a signed <c>long</c> field, sign-extended from the kernel's word.</summary>
    public long FieldLong(ReadOnlySpan<byte> data, FieldLayout field) => PointerSize == 4
        ? unchecked((int)Field(data, field, 4))
        : unchecked((long)Field(data, field, 8));

    /// <summary>
    /// Walks a kernel <c>list_head</c> ring from <paramref name="head"/> and yields the address of each containing
    /// object (entry minus <paramref name="memberOffset"/>). Bounded by <paramref name="max"/> and cycle-safe: a
    /// repeated entry or an unreadable pointer ends the walk with <paramref name="onError"/> told why.
    /// </summary>
    public IEnumerable<ulong> WalkList(ulong head, long memberOffset, int max, string what, Action<string> onError)
    {
        var seen = new HashSet<ulong>();
        ulong next;
        if (!TryReadPointer(head, out next))
        {
            onError($"{what}: cannot read the list head at 0x{head:x}");
            yield break;
        }

        while (next != head)
        {
            if (next == 0 || !seen.Add(next))
            {
                onError(next == 0 ? $"{what}: NULL next pointer after {seen.Count} entries" : $"{what}: the list loops back to 0x{next:x} after {seen.Count} entries");
                yield break;
            }

            if (seen.Count > max)
            {
                onError($"{what}: more than {max} entries; stopped (corrupt list?)");
                yield break;
            }

            yield return next - (ulong)memberOffset;
            ulong entry = next;
            if (!TryReadPointer(entry, out next))
            {
                onError($"{what}: cannot read the next pointer at 0x{entry:x}");
                yield break;
            }
        }
    }

    /// <summary>Reads a pointer without throwing.</summary>
    public bool TryReadPointer(ulong address, out ulong value)
    {
        Span<byte> b = stackalloc byte[8];
        b = b[..PointerSize];
        int n = Memory.ReadVirtual(address, b, out _);
        value = n == b.Length ? Word(b, 0) : 0;
        return n == b.Length;
    }
}
