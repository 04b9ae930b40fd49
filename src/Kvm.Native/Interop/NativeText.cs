using System.Runtime.InteropServices;
using System.Text;

namespace Kvm.Native.Interop;

/// <summary>C strings in and out of the shim: UTF-8, NUL-terminated, always bounded on output.</summary>
internal static unsafe class NativeText
{
    /// <summary>The <c>""</c> that <c>kvm_geterr(NULL)</c> returns: one static NUL byte, never freed.</summary>
    public static readonly nint EmptyString = (nint)NativeMemory.AllocZeroed(1);

    /// <summary>Reads a NUL-terminated UTF-8 string; null for a NULL pointer.</summary>
    public static string? Read(byte* text) => text is null ? null : Marshal.PtrToStringUTF8((nint)text);

    /// <summary>
    /// Copies <paramref name="text"/> into a C buffer of <paramref name="size"/> bytes as <c>strlcpy</c> does:
    /// truncated (at a UTF-8 character boundary) and always NUL-terminated.
    /// </summary>
    public static void Copy(string text, byte* destination, int size)
    {
        if (destination is null || size <= 0)
        {
            return;
        }

        var span = new Span<byte>(destination, size);
        int written = Utf8Prefix(text, span[..(size - 1)]);
        span[written] = 0;
    }

    /// <summary>Copies raw bytes into a fixed C array, truncated and NUL-terminated (the rest zeroed).</summary>
    public static void Copy(ReadOnlySpan<byte> bytes, byte* destination, int size)
    {
        var span = new Span<byte>(destination, size);
        span.Clear();
        bytes[..Math.Min(bytes.Length, size - 1)].CopyTo(span);
    }

    private static int Utf8Prefix(string text, Span<byte> destination)
    {
        var encoder = Encoding.UTF8.GetEncoder();
        encoder.Convert(text.AsSpan(), destination, flush: true, out _, out int bytesUsed, out _);
        return bytesUsed;
    }
}
