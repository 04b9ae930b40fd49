using System.Buffers.Binary;
using System.Numerics;

namespace Kvm.Images.Kdump;

/// <summary>
/// One kdump page bitmap (bit N = pfn N, byte N/8, bit N%8, LSB first, as makedumpfile writes it) with an
/// optional rank index: the cumulative count of set bits before every 512-bit block, so that the number of set
/// bits below any pfn (the page descriptor index, for the dumpable bitmap) is one table read plus at most eight
/// word popcounts. crash's <c>valid_pages</c> samples every 4096 bits and counts the remainder bit by bit; this
/// samples more densely and counts whole words.
/// </summary>
internal sealed class KdumpBitmap
{
    private const int WordsPerRankBlock = 8;
    private const int ChunkWords = 128 << 10;

    private readonly ulong[] _words;
    private long[]? _rank;

    /// <summary>Creates an all-clear bitmap of <paramref name="bitCount"/> bits.</summary>
    public KdumpBitmap(ulong bitCount)
    {
        BitCount = bitCount;
        _words = new ulong[(bitCount + 63) / 64];
    }

    /// <summary>The number of bits (pfns) the bitmap covers.</summary>
    public ulong BitCount { get; }

    /// <summary>True when bit <paramref name="bit"/> is set; false beyond <see cref="BitCount"/>.</summary>
    public bool Get(ulong bit) => bit < BitCount && ((_words[bit >> 6] >> (int)(bit & 63)) & 1) != 0;

    /// <summary>
    /// Copies bits [<paramref name="startBit"/>, <paramref name="endBit"/>) of the on-disk bitmap that starts at
    /// <paramref name="offset"/> in <paramref name="view"/>. Bits outside the range keep their value, so the
    /// parts of a split set can each contribute their own range.
    /// </summary>
    public void Load(IKdumpFileView view, long offset, ulong startBit, ulong endBit, string what)
    {
        if (endBit > BitCount || startBit >= endBit)
        {
            return;
        }

        ulong firstWord = startBit / 64;
        ulong endWord = (endBit + 63) / 64;
        var chunk = new byte[(int)Math.Min((ulong)ChunkWords, endWord - firstWord) * 8];
        for (ulong w = firstWord; w < endWord;)
        {
            int count = (int)Math.Min((ulong)ChunkWords, endWord - w);
            var bytes = chunk.AsSpan(0, count * 8);
            long at = offset + (long)(w * 8);
            int got = view.Read(at, bytes);
            if (got != bytes.Length)
            {
                throw new CorruptImageException($"{view.Path}: truncated {what} at offset 0x{at:x} (need {bytes.Length} bytes, got {got})");
            }

            for (int i = 0; i < count; i++)
            {
                ulong index = w + (ulong)i;
                ulong word = BinaryPrimitives.ReadUInt64LittleEndian(bytes[(i * 8)..]);
                word &= RangeMask(index, startBit, endBit);
                _words[index] |= word;
            }

            w += (ulong)count;
        }
    }

    /// <summary>Builds the rank index; call once after every <see cref="Load"/>.</summary>
    public void BuildRankIndex()
    {
        var rank = new long[(_words.Length / WordsPerRankBlock) + 1];
        long total = 0;
        for (int i = 0; i < _words.Length; i++)
        {
            if (i % WordsPerRankBlock == 0)
            {
                rank[i / WordsPerRankBlock] = total;
            }

            total += BitOperations.PopCount(_words[i]);
        }

        if (_words.Length % WordsPerRankBlock == 0)
        {
            rank[_words.Length / WordsPerRankBlock] = total;
        }

        _rank = rank;
    }

    /// <summary>The number of set bits in [0, <paramref name="bit"/>). Requires <see cref="BuildRankIndex"/>.</summary>
    public long Rank(ulong bit)
    {
        var rank = _rank ?? throw new InvalidOperationException("rank index not built");
        if (bit >= BitCount)
        {
            bit = BitCount;
        }

        ulong word = bit >> 6;
        ulong block = word / WordsPerRankBlock;
        long count = rank[block];
        for (ulong i = block * WordsPerRankBlock; i < word; i++)
        {
            count += BitOperations.PopCount(_words[i]);
        }

        int rest = (int)(bit & 63);
        if (rest != 0)
        {
            count += BitOperations.PopCount(_words[word] & ((1UL << rest) - 1));
        }

        return count;
    }

    /// <summary>The number of bits set here and clear in <paramref name="other"/> (same size).</summary>
    public long CountAndNot(KdumpBitmap other)
    {
        long count = 0;
        for (int i = 0; i < _words.Length; i++)
        {
            count += BitOperations.PopCount(_words[i] & ~other._words[i]);
        }

        return count;
    }

    /// <summary>
    /// The runs of set bits, coalesced, in order. Throws <see cref="CorruptImageException"/> (naming
    /// <paramref name="context"/>) past <paramref name="maxRuns"/>, so a pathological bitmap cannot build an
    /// unbounded list.
    /// </summary>
    public List<(ulong Start, ulong Count)> Runs(int maxRuns, string context)
    {
        var runs = new List<(ulong, ulong)>();
        ulong pos = 0;
        while (pos < BitCount)
        {
            ulong start = Next(pos, set: true);
            if (start >= BitCount)
            {
                break;
            }

            ulong end = Next(start, set: false);
            if (runs.Count >= maxRuns)
            {
                throw new CorruptImageException($"{context}: more than {maxRuns} separate memory ranges");
            }

            runs.Add((start, end - start));
            pos = end;
        }

        return runs;
    }

    /// <summary>
    /// The runs of bits set both here and in <paramref name="other"/> (same size), lazily, in order: the dumpable
    /// pages of a dump without building a list, however fragmented filtering left them.
    /// </summary>
    public IEnumerable<(ulong Start, ulong Count)> EnumerateRuns(KdumpBitmap other)
    {
        ulong pos = 0;
        while (pos < BitCount)
        {
            ulong start = Next(pos, set: true, other);
            if (start >= BitCount)
            {
                yield break;
            }

            ulong end = Next(start, set: false, other);
            yield return (start, end - start);
            pos = end;
        }
    }

    /// <summary>
    /// The first bit at or after <paramref name="from"/> that is set (or clear), or <see cref="BitCount"/>; with
    /// <paramref name="and"/>, in the intersection of both bitmaps.
    /// </summary>
    private ulong Next(ulong from, bool set, KdumpBitmap? and = null)
    {
        ulong index = from >> 6;
        ulong word = Word(index, set, and) & (ulong.MaxValue << (int)(from & 63));
        while (word == 0)
        {
            index++;
            if (index >= (ulong)_words.Length)
            {
                return BitCount;
            }

            word = Word(index, set, and);
        }

        ulong bit = (index * 64) + (ulong)BitOperations.TrailingZeroCount(word);
        return Math.Min(bit, BitCount);
    }

    private ulong Word(ulong index, bool set, KdumpBitmap? and)
    {
        ulong word = and is null ? _words[index] : _words[index] & and._words[index];
        return set ? word : ~word;
    }

    /// <summary>The bits of word <paramref name="index"/> that lie in [<paramref name="start"/>, <paramref name="end"/>).</summary>
    private static ulong RangeMask(ulong index, ulong start, ulong end)
    {
        ulong wordStart = index * 64;
        ulong mask = ulong.MaxValue;
        if (start > wordStart)
        {
            mask &= ulong.MaxValue << (int)(start - wordStart);
        }

        if (end < wordStart + 64)
        {
            mask &= (1UL << (int)(end - wordStart)) - 1;
        }

        return mask;
    }
}
