namespace Kvm.Linux;

/// <summary>
/// Kernel bitmaps (<c>unsigned long bits[]</c>: cpumasks, fd sets). On a little-endian kernel bit n is in byte n / 8
/// whatever the word size, so only the length read depends on it: whole words of 4 or 8 bytes.
/// </summary>
internal static class Bitmap
{
    /// <summary>The bytes of a bitmap of <paramref name="bits"/> bits in words of <paramref name="wordSize"/> bytes.</summary>
    public static long Bytes(long bits, int wordSize) => (bits + (8L * wordSize) - 1) / (8L * wordSize) * wordSize;
}
