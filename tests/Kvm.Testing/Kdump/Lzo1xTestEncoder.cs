namespace Kvm.Testing.Kdump;

/// <summary>
/// A small LZO1X encoder for building test dumps. It emits only a subset of the instruction forms (literal runs,
/// the first-byte literal form, literals folded into the previous match's S bits, and 001LLLLL matches within
/// 16 KiB), which liblzo2's <c>lzo1x_decompress_safe</c> accepts. It is not tuned for ratio; what matters is that
/// pages with repetition come out smaller than a page, as makedumpfile requires before it stores a page compressed.
/// </summary>
public static class Lzo1xTestEncoder
{
    private const int MaxDistance = 16384;
    private const int MinMatch = 4;
    private const int HashBits = 14;

    /// <summary>Compresses <paramref name="data"/> with hash-chained greedy matching.</summary>
    public static byte[] Compress(ReadOnlySpan<byte> data)
    {
        var output = new List<byte>(data.Length / 2 + 16);
        var head = new int[1 << HashBits];
        Array.Fill(head, -1);
        int patch = -1;
        int literalStart = 0;
        int ip = 0;
        while (ip + MinMatch <= data.Length)
        {
            int h = Hash(data[ip..]);
            int candidate = head[h];
            head[h] = ip;
            if (candidate >= 0 && ip - candidate <= MaxDistance && data.Slice(candidate, MinMatch).SequenceEqual(data.Slice(ip, MinMatch)))
            {
                int length = MinMatch;
                while (ip + length < data.Length && data[candidate + length] == data[ip + length])
                {
                    length++;
                }

                EmitLiterals(output, data[literalStart..ip], patch);
                patch = EmitMatch(output, ip - candidate, length);
                ip += length;
                literalStart = ip;
            }
            else
            {
                ip++;
            }
        }

        EmitLiterals(output, data[literalStart..], patch);
        EmitEnd(output);
        return [.. output];
    }

    /// <summary>Encodes <paramref name="data"/> as literals only (always slightly larger than the input).</summary>
    public static byte[] CompressLiteralsOnly(ReadOnlySpan<byte> data)
    {
        var output = new List<byte>(data.Length + 32);
        EmitLiterals(output, data, -1);
        EmitEnd(output);
        return [.. output];
    }

    private static int Hash(ReadOnlySpan<byte> s) =>
        (int)(unchecked((uint)(s[0] | (s[1] << 8) | (s[2] << 16) | (s[3] << 24)) * 2654435761u) >> (32 - HashBits));

    private static void EmitLiterals(List<byte> output, ReadOnlySpan<byte> literals, int patch)
    {
        int count = literals.Length;
        if (count == 0)
        {
            return;
        }

        if (output.Count == 0 && count <= 238)
        {
            // First byte 18..255: copy byte - 17 literals.
            output.Add((byte)(17 + count));
        }
        else if (output.Count > 0 && count <= 3)
        {
            // One to three literals ride in the S bits of the previous match.
            output[patch] |= (byte)count;
        }
        else
        {
            // 0000LLLL: 3 + L literals, or with L = 0, 18 + 255 * zero bytes + the final byte.
            int value = count - 3;
            if (value <= 15)
            {
                output.Add((byte)value);
            }
            else
            {
                output.Add(0);
                EmitExtension(output, value - 15);
            }
        }

        foreach (byte b in literals)
        {
            output.Add(b);
        }
    }

    /// <summary>Emits a 001LLLLL match and returns the index of the byte whose low two bits carry S.</summary>
    private static int EmitMatch(List<byte> output, int distance, int length)
    {
        int value = length - 2;
        if (value <= 31)
        {
            output.Add((byte)(0x20 | value));
        }
        else
        {
            output.Add(0x20);
            EmitExtension(output, value - 31);
        }

        // The 14-bit distance field is split little-endian over two bytes; the first cast keeps only the low byte on purpose.
        int d = (distance - 1) << 2;
        output.Add(unchecked((byte)d));
        output.Add((byte)(d >> 8));
        return output.Count - 2;
    }

    private static void EmitExtension(List<byte> output, int value)
    {
        int zeros = (value - 1) / 255;
        for (int i = 0; i < zeros; i++)
        {
            output.Add(0);
        }

        output.Add((byte)(value - (255 * zeros)));
    }

    private static void EmitEnd(List<byte> output)
    {
        // 0001HLLL with H = 0, L = 1 and distance field 0: the end-of-stream marker.
        output.Add(0x11);
        output.Add(0);
        output.Add(0);
    }
}
