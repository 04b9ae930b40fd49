using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kvm.Cli;

/// <summary>
/// Byte strings from the guest (argv, environment, comm, log text) in JSON, reversibly. The bytes are decoded as
/// UTF-8; each byte that is not part of a valid UTF-8 sequence becomes the lone surrogate U+DC80+byte (Python's
/// "surrogateescape", PEP 383) and is written as a <c>\udcXX</c> escape. Strict UTF-8 never encodes surrogates
/// (the bytes <c>ED B2 80</c> are invalid UTF-8, not U+DC80), so an escaped byte can never be confused with a
/// character of the text: the mapping is injective and <see cref="Encode"/> recovers the exact bytes.
/// </summary>
internal static class SurrogateEscape
{
    private const int EscapeBase = 0xDC00;

    /// <summary>Decodes <paramref name="bytes"/> with invalid bytes as U+DC80..U+DCFF.</summary>
    public static string Decode(ReadOnlySpan<byte> bytes)
    {
        var builder = new StringBuilder(bytes.Length);
        Span<char> pair = stackalloc char[2];
        while (!bytes.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(bytes, out var rune, out int consumed) == OperationStatus.Done)
            {
                builder.Append(pair[..rune.EncodeToUtf16(pair)]);
                bytes = bytes[consumed..];
            }
            else
            {
                // One byte at a time: restarting after the first byte of an invalid or truncated sequence escapes
                // its remaining continuation bytes too, exactly as Python escapes the whole maximal invalid subpart.
                builder.Append((char)(EscapeBase + bytes[0]));
                bytes = bytes[1..];
            }
        }

        return builder.ToString();
    }

    /// <summary>The inverse of <see cref="Decode"/>: lone U+DC80..U+DCFF become the byte they escape.</summary>
    /// <exception cref="ArgumentException">The text has a lone surrogate that is not an escaped byte.</exception>
    public static byte[] Encode(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var output = new List<byte>(text.Length);
        Span<byte> utf8 = stackalloc byte[4];
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                int n = new Rune(c, text[i + 1]).EncodeToUtf8(utf8);
                output.AddRange(utf8[..n]);
                i++;
            }
            else if (c is >= (char)0xDC80 and <= (char)0xDCFF)
            {
                output.Add((byte)(c - EscapeBase));
            }
            else if (char.IsSurrogate(c))
            {
                throw new ArgumentException($"lone surrogate U+{(int)c:X4} at {i} is not an escaped byte");
            }
            else
            {
                int n = new Rune(c).EncodeToUtf8(utf8);
                output.AddRange(utf8[..n]);
            }
        }

        return [.. output];
    }

    /// <summary>Writes property <paramref name="name"/> with the escaped string of <paramref name="bytes"/>.</summary>
    public static void WriteString(Utf8JsonWriter writer, string name, ReadOnlySpan<byte> bytes)
    {
        writer.WritePropertyName(name);
        WriteStringValue(writer, bytes);
    }

    /// <summary>
    /// Writes property <paramref name="name"/> as an array of escaped strings, on one line: an indenting writer does
    /// not indent raw values, so one raw array reads better than raw elements at odd places.
    /// </summary>
    public static void WriteStringArray(Utf8JsonWriter writer, string name, IEnumerable<byte[]> values)
    {
        var output = new ArrayBufferWriter<byte>();
        output.Write("["u8);
        bool first = true;
        foreach (var value in values)
        {
            output.Write(first ? ""u8 : ", "u8);
            output.Write(ToJsonLiteral(value));
            first = false;
        }

        output.Write("]"u8);
        writer.WritePropertyName(name);
        writer.WriteRawValue(output.WrittenSpan, skipInputValidation: true);
    }

    /// <summary>Writes the escaped string of <paramref name="bytes"/> as a value.</summary>
    /// <remarks>
    /// Utf8JsonWriter refuses (or replaces) lone surrogates in strings, so the literal is built here and written
    /// raw; <see cref="ToJsonLiteral"/> escapes everything JSON requires, so the output stays valid JSON.
    /// </remarks>
    public static void WriteStringValue(Utf8JsonWriter writer, ReadOnlySpan<byte> bytes) =>
        writer.WriteRawValue(ToJsonLiteral(bytes), skipInputValidation: true);

    /// <summary>The JSON string literal (quotes included, UTF-8) of <paramref name="bytes"/>.</summary>
    public static byte[] ToJsonLiteral(ReadOnlySpan<byte> bytes)
    {
        var output = new ArrayBufferWriter<byte>(bytes.Length + 16);
        output.Write("\""u8);
        while (!bytes.IsEmpty)
        {
            if (Rune.DecodeFromUtf8(bytes, out var rune, out int consumed) != OperationStatus.Done)
            {
                WriteEscape(output, EscapeBase + bytes[0]);
                bytes = bytes[1..];
                continue;
            }

            switch (rune.Value)
            {
                case '"':
                    output.Write("\\\""u8);
                    break;
                case '\\':
                    output.Write("\\\\"u8);
                    break;
                case '\n':
                    output.Write("\\n"u8);
                    break;
                case '\r':
                    output.Write("\\r"u8);
                    break;
                case '\t':
                    output.Write("\\t"u8);
                    break;
                case '\b':
                    output.Write("\\b"u8);
                    break;
                case '\f':
                    output.Write("\\f"u8);
                    break;
                case < 0x20 or 0x7f or 0x2028 or 0x2029:
                    // Control characters must (below 0x20) or should be escaped; U+2028/9 break JavaScript parsers.
                    WriteEscape(output, rune.Value);
                    break;
                default:
                    output.Write(bytes[..consumed]);
                    break;
            }

            bytes = bytes[consumed..];
        }

        output.Write("\""u8);
        return output.WrittenSpan.ToArray();
    }

    /// <summary>
    /// Reads a JSON string literal (quotes included, as <see cref="JsonElement.GetRawText"/> returns it) keeping
    /// lone surrogates, which System.Text.Json's <c>GetString</c> rejects; for consumers and tests.
    /// </summary>
    public static string ParseJsonLiteral(string literal)
    {
        ArgumentNullException.ThrowIfNull(literal);
        if (literal.Length < 2 || literal[0] != '"' || literal[^1] != '"')
        {
            throw new ArgumentException("not a JSON string literal");
        }

        var builder = new StringBuilder(literal.Length);
        for (int i = 1; i < literal.Length - 1; i++)
        {
            char c = literal[i];
            if (c != '\\')
            {
                builder.Append(c);
                continue;
            }

            char e = literal[++i];
            switch (e)
            {
                case 'u':
                    builder.Append((char)int.Parse(literal.AsSpan(i + 1, 4), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture));
                    i += 4;
                    break;
                case 'n':
                    builder.Append('\n');
                    break;
                case 'r':
                    builder.Append('\r');
                    break;
                case 't':
                    builder.Append('\t');
                    break;
                case 'b':
                    builder.Append('\b');
                    break;
                case 'f':
                    builder.Append('\f');
                    break;
                default:
                    builder.Append(e);
                    break;
            }
        }

        return builder.ToString();
    }

    /// <summary>The bytes for a terminal: UTF-8 with invalid sequences as U+FFFD and control characters as '?', as procps does.</summary>
    public static string ForDisplay(ReadOnlySpan<byte> bytes)
    {
        var text = Encoding.UTF8.GetString(bytes);
        return string.Create(text.Length, text, (span, s) =>
        {
            for (int i = 0; i < s.Length; i++)
            {
                span[i] = char.IsControl(s[i]) ? '?' : s[i];
            }
        });
    }

    private static void WriteEscape(ArrayBufferWriter<byte> output, int value)
    {
        Span<byte> buffer = stackalloc byte[6];
        "\\u"u8.CopyTo(buffer);
        value.TryFormat(buffer[2..], out _, "x4", CultureInfo.InvariantCulture);
        output.Write(buffer);
    }
}
