namespace Kvm.Memory;

/// <summary>
/// Reads kernel virtual memory for the layers above Memory (symbols from kallsyms, BTF, kernel walkers) without
/// tying them to an image: tests pass a dictionary-backed reader, the façade passes its page-table reader.
/// </summary>
/// <param name="address">The kernel virtual address of the first byte.</param>
/// <param name="buffer">Where the bytes go.</param>
/// <returns>The number of bytes read before the first fault (a short count means the rest is unreadable).</returns>
internal delegate int VirtualReader(ulong address, Span<byte> buffer);
