using System.Buffers.Binary;
using System.Text;
using Kvm.Memory;

namespace Kvm.Linux;

/// <summary>
/// Bounded reads of the printk structures through a <see cref="VirtualReader"/>. Values are little-endian, as on the
/// architectures the library translates (x86-64); the word size is that of the kernel's <c>long</c>.
/// </summary>
internal sealed class PrintkMemory(VirtualReader read, int wordSize, KvmLimits limits)
{
    /// <summary>The size of the kernel's <c>long</c> and pointers, 4 or 8.</summary>
    public int WordSize { get; } = wordSize;

    /// <summary>The caps on what may be read.</summary>
    public KvmLimits Limits { get; } = limits;

    /// <summary>Reads <paramref name="length"/> bytes at <paramref name="address"/> or throws naming <paramref name="what"/> and the first unreadable address.</summary>
    public byte[] ReadBlock(ulong address, long length, string what)
    {
        if (length < 0 || length > Limits.MaxKernelLogBytes)
        {
            throw new CorruptImageException($"printk: {what} at 0x{address:x} is {length} bytes, more than the {Limits.MaxKernelLogBytes}-byte cap (KvmLimits.MaxKernelLogBytes)");
        }

        var buffer = new byte[length];
        int done = read(address, buffer);
        if (done < length)
        {
            throw new KvmException(KvmErrorCode.MemoryFault, $"printk: cannot read {what} at 0x{address + (ulong)Math.Max(done, 0):x} ({done} of {length} bytes from 0x{address:x})");
        }

        return buffer;
    }

    /// <summary>Reads a <c>long</c> or pointer.</summary>
    public ulong ReadWord(ulong address, string what) => Word(ReadBlock(address, WordSize, what), 0, WordSize);

    /// <summary>Reads a <c>u32</c>.</summary>
    public uint ReadUInt32(ulong address, string what) => BinaryPrimitives.ReadUInt32LittleEndian(ReadBlock(address, 4, what));

    /// <summary>Reads a <c>u64</c>.</summary>
    public ulong ReadUInt64(ulong address, string what) => BinaryPrimitives.ReadUInt64LittleEndian(ReadBlock(address, 8, what));

    /// <summary>A word of <paramref name="size"/> bytes at <paramref name="offset"/> in <paramref name="data"/>.</summary>
    public static ulong Word(ReadOnlySpan<byte> data, long offset, int size) =>
        size == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(data.Slice(checked((int)offset), 8)) : BinaryPrimitives.ReadUInt32LittleEndian(data.Slice(checked((int)offset), 4));

    /// <summary>A NUL-terminated string inside a fixed-size char array, or null when it is empty.</summary>
    public static string? FixedString(ReadOnlySpan<byte> field)
    {
        int end = field.IndexOf((byte)0);
        var bytes = end < 0 ? field : field[..end];
        return bytes.IsEmpty ? null : Encoding.UTF8.GetString(bytes);
    }

    /// <summary>A required layout value, or a <see cref="KvmErrorCode.KernelType"/> error naming the VMCOREINFO key.</summary>
    public static long Require(Func<string, long?> lookup, string kind, string key)
    {
        long? value = lookup(key);
        if (value is not { } v || v < 0 || v > 1 << 20)
        {
            throw new KvmException(KvmErrorCode.KernelType, value is null ? $"printk: {kind}({key}) is unknown" : $"printk: {kind}({key}) = {value} is implausible");
        }

        return v;
    }

    /// <summary>The record built from stored text bytes.</summary>
    public static KernelLogRecord Record(ulong sequence, ulong timestamp, int? level, int? facility, uint caller, byte[] text, string? subsystem, string? device) =>
        new(sequence, timestamp, level, facility, caller, Encoding.UTF8.GetString(text), text, subsystem, device);
}
