namespace Kvm.Linux;

/// <summary>
/// Pages of swap areas, for user pages that the page tables show as swapped out: the seeds' <c>swapfile</c>
/// argument of <c>kvm_open</c>.
/// </summary>
internal interface ISwapPageSource
{
    /// <summary>
    /// Reads slot <paramref name="offset"/> of swap area <paramref name="type"/> (the kernel's <c>swap_info[]</c>
    /// index) into <paramref name="page"/>. Returns false with a reason when no image covers that area or the slot.
    /// </summary>
    bool TryReadPage(int type, ulong offset, Span<byte> page, out string? error);
}
