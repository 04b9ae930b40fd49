using Kvm.Images.Kdump;
using Kvm.Testing.Kdump;

namespace Kvm.Tests.Images.Kdump;

public sealed class Lzo1xDecompressorTests
{
    public static TheoryData<string, int> Vectors()
    {
        var data = new TheoryData<string, int>();
        foreach (var v in Lzo1xVectors.All)
        {
            data.Add(v.Name, 1);
            data.Add(v.Name, 9);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Decompress_LiblzoVector_ReproducesPlainText(string name, int level)
    {
        var (plain, packed) = Vector(name, level);
        var output = new byte[plain.Length];

        int n = Lzo1xDecompressor.Decompress(packed, output);

        Assert.Equal(plain.Length, n);
        Assert.Equal(plain, output);
    }

    [Fact]
    public void Vectors_CoverEveryInstructionForm()
    {
        // The vectors are only a good oracle if liblzo2 used every instruction form in them.
        var seen = new HashSet<string>();
        foreach (var v in Lzo1xVectors.All)
        {
            foreach (var packed in new[] { v.Level1, v.Level9 })
            {
                Classify(Convert.FromBase64String(packed), Convert.FromBase64String(v.Plain).Length, seen);
            }
        }

        Assert.Superset(new HashSet<string> { "first-literals", "literal-run", "long-literal-run", "m1-short", "m1-after-run", "m2", "m3", "m3-long", "m4", "trailing-literals" }, seen);
    }

    [Theory]
    [MemberData(nameof(Vectors))]
    public void Decompress_OutputTooSmall_ThrowsOutputOverrun(string name, int level)
    {
        var (plain, packed) = Vector(name, level);
        var output = new byte[plain.Length - 1];

        var e = Assert.Throws<InvalidDataException>(() => Lzo1xDecompressor.Decompress(packed, output));

        Assert.Contains("output overrun", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decompress_EveryTruncation_ThrowsInputOverrun()
    {
        foreach (var v in Lzo1xVectors.All.Where(v => v.Plain.Length < 8000))
        {
            var packed = Convert.FromBase64String(v.Level9);
            var output = new byte[Convert.FromBase64String(v.Plain).Length];
            for (int cut = 0; cut < packed.Length; cut++)
            {
                var e = Assert.Throws<InvalidDataException>(() => Lzo1xDecompressor.Decompress(packed.AsSpan(0, cut), output));
                Assert.Contains(cut == 0 ? "empty input" : "input overrun", e.Message, StringComparison.Ordinal);
            }
        }
    }

    [Fact]
    public void Decompress_TrailingBytes_ThrowsLikeInputNotConsumed()
    {
        var (plain, packed) = Vector("text-page", 1);

        var e = Assert.Throws<InvalidDataException>(() => Lzo1xDecompressor.Decompress([.. packed, 0x00], new byte[plain.Length]));

        Assert.Contains("after the end-of-stream marker", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decompress_EmptyStream_ProducesNothing()
    {
        // liblzo2 compresses empty input to the bare end-of-stream marker.
        Assert.Equal(0, Lzo1xDecompressor.Decompress([0x11, 0x00, 0x00], new byte[16]));
    }

    [Fact]
    public void Decompress_MatchBeforeStartOfOutput_ThrowsLookBehindOverrun()
    {
        // One literal 'A', then 010 001 00 + 0x00: a 3-byte match at distance 2, one byte before the output starts.
        byte[] stream = [0x12, (byte)'A', 0x44, 0x00, 0x11, 0x00, 0x00];

        var e = Assert.Throws<InvalidDataException>(() => Lzo1xDecompressor.Decompress(stream, new byte[64]));

        Assert.Contains("look-behind overrun", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decompress_MatchAtStartOfStream_ThrowsLookBehindOverrun()
    {
        // 0001 0 001 with distance field 1 as the very first instruction: nothing to copy from yet.
        byte[] stream = [0x11, 0x04, 0x00, 0x11, 0x00, 0x00];

        var e = Assert.Throws<InvalidDataException>(() => Lzo1xDecompressor.Decompress(stream, new byte[64]));

        Assert.Contains("look-behind overrun", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decompress_FarMatchWithHighDistanceBit_CopiesFromBeyond32KiB()
    {
        // A literal run of 33000 bytes, then 0001 1 001 (H = 1, length 3) with D = 32: distance 16384 + 16384 + 32.
        var literals = new byte[33000];
        new Random(3).NextBytes(literals);
        var stream = new List<byte> { 0x00 };
        int value = literals.Length - 3 - 15;
        for (; value > 255; value -= 255)
        {
            stream.Add(0);
        }

        stream.Add((byte)value);
        stream.AddRange(literals);
        stream.AddRange([0x19, 32 << 2, 0x00, 0x11, 0x00, 0x00]);
        var output = new byte[literals.Length + 3];

        int n = Lzo1xDecompressor.Decompress([.. stream], output);

        Assert.Equal(output.Length, n);
        Assert.Equal(literals.AsSpan(literals.Length - 32800, 3).ToArray(), output[^3..]);
    }

    [Fact]
    public void Decompress_HugeLengthExtension_ThrowsWithoutOverflow()
    {
        var stream = new byte[100_000];
        stream[0] = 0x10;

        var e = Assert.Throws<InvalidDataException>(() => Lzo1xDecompressor.Decompress(stream, new byte[4096]));

        Assert.Contains("output overrun", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Decompress_RandomGarbage_OnlyEverThrowsInvalidData()
    {
        var rng = new Random(12345);
        var output = new byte[4096];
        for (int i = 0; i < 20000; i++)
        {
            var input = new byte[rng.Next(1, 600)];
            rng.NextBytes(input);
            if (rng.Next(2) == 0)
            {
                input[0] = (byte)rng.Next(0, 32);
            }

            try
            {
                int n = Lzo1xDecompressor.Decompress(input, output);
                Assert.InRange(n, 0, output.Length);
            }
            catch (InvalidDataException)
            {
            }
        }
    }

    [Fact]
    public void Decompress_MutatedRealStreams_OnlyEverThrowsInvalidData()
    {
        var rng = new Random(777);
        var vectors = Lzo1xVectors.All.Select(v => (Plain: Convert.FromBase64String(v.Plain), Packed: Convert.FromBase64String(v.Level9))).ToArray();
        for (int i = 0; i < 5000; i++)
        {
            var (plain, packed) = vectors[i % vectors.Length];
            var mutated = (byte[])packed.Clone();
            for (int k = 0; k < 1 + rng.Next(4); k++)
            {
                mutated[rng.Next(mutated.Length)] = (byte)rng.Next(256);
            }

            var output = new byte[plain.Length];
            try
            {
                Lzo1xDecompressor.Decompress(mutated, output);
            }
            catch (InvalidDataException)
            {
            }
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void TestEncoder_RoundTripsThroughDecompressor(int kind)
    {
        var rng = new Random(kind);
        for (int i = 0; i < 50; i++)
        {
            int size = kind == 3 ? rng.Next(1, 300) : 4096;
            var data = kind switch
            {
                0 => KdumpBuilder.PatternPage(i, size),
                // Long runs of one value that wrap past 255, so the low byte is kept on purpose.
                1 => Enumerable.Range(0, size).Select(j => unchecked((byte)(j / (1 + (i * 37))))).ToArray(),
                _ => RandomWithRuns(rng, size),
            };

            foreach (var packed in new[] { Lzo1xTestEncoder.Compress(data), Lzo1xTestEncoder.CompressLiteralsOnly(data) })
            {
                var output = new byte[size];
                Assert.Equal(size, Lzo1xDecompressor.Decompress(packed, output));
                Assert.Equal(data, output);
            }
        }
    }

    private static byte[] RandomWithRuns(Random rng, int size)
    {
        var data = new byte[size];
        rng.NextBytes(data);
        for (int k = 0; k < 5; k++)
        {
            int at = rng.Next(size);
            int len = Math.Min(size - at, rng.Next(1, 1000));
            data.AsSpan(at, len).Fill((byte)rng.Next(256));
        }

        return data;
    }

    private static (byte[] Plain, byte[] Packed) Vector(string name, int level)
    {
        var v = Lzo1xVectors.All.Single(v => v.Name == name);
        return (Convert.FromBase64String(v.Plain), Convert.FromBase64String(level == 1 ? v.Level1 : v.Level9));
    }

    /// <summary>Walks a valid stream and records which instruction forms it uses (mirrors lzo.rst).</summary>
    private static void Classify(byte[] s, int plainLength, HashSet<string> seen)
    {
        int ip = 0;
        int state = 0;
        if (s[0] > 17)
        {
            seen.Add("first-literals");
            int n = s[0] - 17;
            ip = 1 + n;
            state = n < 4 ? n : 4;
        }

        while (ip < s.Length)
        {
            int t = s[ip++];
            int trailing;
            if (t < 16 && state == 0)
            {
                int n = t;
                if (t == 0)
                {
                    n = 15;
                    while (s[ip] == 0)
                    {
                        n += 255;
                        ip++;
                    }

                    n += s[ip++];
                    seen.Add("long-literal-run");
                }

                seen.Add("literal-run");
                ip += n + 3;
                state = 4;
                continue;
            }

            if (t < 16)
            {
                seen.Add(state == 4 ? "m1-after-run" : "m1-short");
                ip++;
                trailing = t & 3;
            }
            else if (t < 32)
            {
                if ((t & 7) == 0)
                {
                    while (s[ip] == 0)
                    {
                        ip++;
                    }

                    ip++;
                }

                int le = s[ip] | (s[ip + 1] << 8);
                ip += 2;
                if ((t & 8) == 0 && le >> 2 == 0)
                {
                    Assert.Equal(s.Length, ip);
                    return;
                }

                seen.Add("m4");
                trailing = le & 3;
            }
            else if (t < 64)
            {
                if ((t & 31) == 0)
                {
                    seen.Add("m3-long");
                    while (s[ip] == 0)
                    {
                        ip++;
                    }

                    ip++;
                }

                seen.Add("m3");
                trailing = s[ip] & 3;
                ip += 2;
            }
            else
            {
                seen.Add("m2");
                ip++;
                trailing = t & 3;
            }

            if (trailing > 0)
            {
                seen.Add("trailing-literals");
            }

            ip += trailing;
            state = trailing;
        }

        Assert.Fail($"no end-of-stream marker in a {plainLength}-byte vector");
    }
}
