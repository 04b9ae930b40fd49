namespace Kvm.Images.Kdump;

/// <summary>
/// A bounds-checked LZO1X decompressor with the semantics of liblzo2's <c>lzo1x_decompress_safe</c>, which
/// makedumpfile (<c>-l</c>, page flag DUMP_DH_COMPRESSED_LZO) and QEMU (<c>kdump-lzo</c>) pair with
/// <c>lzo1x_1_compress</c>. There is no maintained managed LZO package, so the format is decoded here from its
/// description in the kernel's Documentation/staging/lzo.rst (bitstream version 0; the kernel-only LZO-RLE
/// extension is never written by user-space liblzo2).
/// </summary>
/// <remarks>
/// Every read of the input and every write or look-behind in the output is checked before it happens, and every
/// loop consumes input, so a malformed block ends in <see cref="InvalidDataException"/> rather than an overrun or
/// a hang. The stream must end with the end-of-stream instruction, and all input must be consumed (liblzo2
/// reports trailing bytes as LZO_E_INPUT_NOT_CONSUMED).
/// </remarks>
internal static class Lzo1xDecompressor
{
    /// <summary>
    /// Decompresses one LZO1X block from <paramref name="input"/> into <paramref name="output"/> and returns the
    /// number of bytes written. Throws <see cref="InvalidDataException"/> when the block is malformed, reads past
    /// its end, refers before the start of the output, or would produce more than <paramref name="output"/>.Length bytes.
    /// </summary>
    public static int Decompress(ReadOnlySpan<byte> input, Span<byte> output)
    {
        var d = new Decoder(input, output);
        return d.Run();
    }

    /// <summary>The decoder state: input and output cursors over caller-owned spans.</summary>
    private ref struct Decoder
    {
        // Distances used by the instruction forms (lzo.rst: M1 after a long literal run adds 2048+1,
        // the 0001HLLL form adds 16384, and a 16384 distance with H = 0 marks the end of the stream).
        private const int LongLiteralBias = 2049;
        private const int FarDistanceBase = 16384;

        private readonly ReadOnlySpan<byte> _in;
        private readonly Span<byte> _out;
        private int _ip;
        private int _op;

        public Decoder(ReadOnlySpan<byte> input, Span<byte> output)
        {
            _in = input;
            _out = output;
            _ip = 0;
            _op = 0;
        }

        public int Run()
        {
            if (_in.Length == 0)
            {
                throw Fail("empty input");
            }

            // "state" is how many literals the previous instruction copied: 0, 1..3, or 4 for "four or more".
            // It changes the meaning of instructions 0..15 (lzo.rst, "Instruction encoding").
            int state = 0;
            if (_in[0] > 17)
            {
                // First byte 18..255: a literal run of byte - 17 with no preceding instruction.
                _ip = 1;
                int count = _in[0] - 17;
                CopyLiterals(count);
                state = count < 4 ? count : 4;
            }

            while (true)
            {
                int t = NextByte();
                int length;
                int distance;
                int trailing;
                if (t < 16)
                {
                    if (state == 0)
                    {
                        // 0000LLLL after no literals: a run of 3 + (L or 15 + extension) literals.
                        int count = (t == 0 ? 15 + ReadExtension() : t) + 3;
                        CopyLiterals(count);
                        state = 4;
                        continue;
                    }

                    // 0000DDSS + one byte: a 2-byte match within 1 KiB after 1..3 literals, or a 3-byte match
                    // 2..3 KiB back after a long literal run.
                    int h = NextByte();
                    distance = (h << 2) + ((t >> 2) & 3) + (state == 4 ? LongLiteralBias : 1);
                    length = state == 4 ? 3 : 2;
                    trailing = t & 3;
                }
                else if (t < 32)
                {
                    // 0001HLLL + LE16: a match 16..48 KiB back; distance 16384 exactly ends the stream.
                    length = ((t & 7) == 0 ? 7 + ReadExtension() : t & 7) + 2;
                    int le = ReadLe16();
                    distance = FarDistanceBase + ((t & 8) << 11) + (le >> 2);
                    trailing = le & 3;
                    if (distance == FarDistanceBase)
                    {
                        if (_ip != _in.Length)
                        {
                            throw Fail($"{_in.Length - _ip} bytes after the end-of-stream marker");
                        }

                        return _op;
                    }
                }
                else if (t < 64)
                {
                    // 001LLLLL + LE16: a match within 16 KiB.
                    length = ((t & 31) == 0 ? 31 + ReadExtension() : t & 31) + 2;
                    int le = ReadLe16();
                    distance = (le >> 2) + 1;
                    trailing = le & 3;
                }
                else
                {
                    // 01LDDDSS / 1LLDDDSS + one byte: a 3..8 byte match within 2 KiB.
                    length = (t >> 5) + 1;
                    int h = NextByte();
                    distance = (h << 3) + ((t >> 2) & 7) + 1;
                    trailing = t & 3;
                }

                CopyMatch(distance, length);
                CopyLiterals(trailing);
                state = trailing;
            }
        }

        private int NextByte()
        {
            if (_ip >= _in.Length)
            {
                throw Fail("input overrun");
            }

            return _in[_ip++];
        }

        private int ReadLe16()
        {
            int lo = NextByte();
            return lo | (NextByte() << 8);
        }

        /// <summary>
        /// Reads a length extension: each zero byte adds 255, the first non-zero byte ends it. A length that could
        /// not fit the output is rejected as soon as it exceeds it, so the sum cannot overflow.
        /// </summary>
        private int ReadExtension()
        {
            long sum = 0;
            while (true)
            {
                int b = NextByte();
                if (b != 0)
                {
                    return (int)(sum + b);
                }

                sum += 255;
                if (sum > _out.Length)
                {
                    throw Fail("output overrun (length extension)");
                }
            }
        }

        private void CopyLiterals(int count)
        {
            if (count == 0)
            {
                return;
            }

            if (count > _in.Length - _ip)
            {
                throw Fail("input overrun (literals)");
            }

            if (count > _out.Length - _op)
            {
                throw Fail("output overrun (literals)");
            }

            _in.Slice(_ip, count).CopyTo(_out[_op..]);
            _ip += count;
            _op += count;
        }

        private void CopyMatch(int distance, int length)
        {
            if (distance > _op)
            {
                throw Fail($"look-behind overrun (distance {distance} at output offset {_op})");
            }

            if (length > _out.Length - _op)
            {
                throw Fail("output overrun (match)");
            }

            int from = _op - distance;
            if (distance >= length)
            {
                _out.Slice(from, length).CopyTo(_out[_op..]);
                _op += length;
                return;
            }

            // Overlapping match: the copy repeats the last "distance" bytes, so it must go byte by byte.
            for (int i = 0; i < length; i++)
            {
                _out[_op++] = _out[from + i];
            }
        }

        private readonly InvalidDataException Fail(string what) =>
            new($"lzo1x: {what} at input offset {_ip}");
    }
}
