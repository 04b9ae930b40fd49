using System.Globalization;

namespace Kvm.Cli;

/// <summary>
/// Parses <c>ADDR|SYM[+OFF]</c>: <c>0x</c>-prefixed hex, or a bare hex word of at least 8 digits, is an address;
/// anything else is a symbol with an optional <c>+offset</c> or <c>-offset</c> (decimal, or hex with <c>0x</c>).
/// </summary>
internal static class AddressExpression
{
    public static ulong Resolve(string text, KernelImage? image)
    {
        if (TryParseNumber(text, out ulong value))
        {
            return value;
        }

        int split = text.IndexOfAny(['+', '-'], 1);
        string name = split < 0 ? text : text[..split];
        ulong offset = 0;
        bool negative = false;
        if (split >= 0)
        {
            negative = text[split] == '-';
            if (!TryParseNumber(text[(split + 1)..], out offset, allowBareHex: false))
            {
                throw new ArgumentException($"bad offset in '{text}'");
            }
        }

        if (image is null)
        {
            throw new ArgumentException($"'{text}' is not an address");
        }

        ulong baseAddress = image.GetSymbol(name).Address;
        return negative ? baseAddress - offset : baseAddress + offset;
    }

    public static bool TryParseNumber(string text, out ulong value, bool allowBareHex = true)
    {
        if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            return ulong.TryParse(text.AsSpan(2), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value);
        }

        if (allowBareHex && text.Length >= 8 && ulong.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out value))
        {
            return true;
        }

        return ulong.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>A length: decimal, or hex with 0x.</summary>
    public static int ParseLength(string text, int max)
    {
        if (!TryParseNumber(text, out ulong v, allowBareHex: false) || v > (ulong)max)
        {
            throw new ArgumentException($"bad length '{text}' (0 to {max})");
        }

        return (int)v;
    }

    /// <summary>Formats a signed displacement as hex with a sign (<c>0x2a000000</c>, <c>-0x1000000</c>).</summary>
    public static string SignedHex(long value) => value < 0 ? $"-0x{unchecked((ulong)-value):x}" : $"0x{value:x}";
}
