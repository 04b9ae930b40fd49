using System.Buffers.Binary;
using System.Text;
using Kvm.Symbols;

namespace Kvm.Testing;

/// <summary>
/// Builds the kernel's kallsyms tables the way scripts/kallsyms.c lays them out (v6.1 order: offsets or addresses,
/// relative_base, num_syms, names, markers, token_table, token_index), compressed with single-character tokens at their
/// own index plus multi-character tokens made by merging the most frequent adjacent pair, in a sparse fake address
/// space of 4 KiB pages, with the matching VMCOREINFO lines.
/// </summary>
internal sealed class KallsymsBuilder
{
    public const ulong DefaultTablesAddress = 0xffffffff82600000;

    private readonly List<(string Name, char Type, ulong Address)> _symbols = [];

    public KallsymsBuilder(KallsymsAddressEncoding encoding, string release = "6.1.0-test-amd64", ulong tablesAddress = DefaultTablesAddress)
    {
        Encoding = encoding;
        Release = release;
        TablesAddress = tablesAddress;
    }

    internal KallsymsAddressEncoding Encoding { get; }

    public string Release { get; }

    public ulong TablesAddress { get; }

    /// <summary>Whether names use v6.1's 2-byte lengths; by default decided from <see cref="Release"/> as the reader does.</summary>
    public bool? TwoByteLengths { get; set; }

    /// <summary>When false, every character is its own token (no multi-character tokens).</summary>
    public bool Compress { get; set; } = true;

    public KallsymsBuilder Add(string name, char type, ulong address)
    {
        _symbols.Add((name, type, address));
        return this;
    }

    /// <summary>The symbols in table order: sorted by address, ties in insertion order, as scripts/kallsyms.c sorts them.</summary>
    public IReadOnlyList<(string Name, char Type, ulong Address)> Sorted => [.. _symbols.OrderBy(s => s.Address)];

    public KallsymsImage Build()
    {
        var symbols = Sorted;
        bool twoByte = TwoByteLengths ?? KallsymsReader.UsesTwoByteLengths(Release);
        var (tokens, encoded) = Tokenize(symbols.Select(s => s.Type + s.Name).ToList());

        var names = new List<byte>();
        var markers = new List<uint>();
        for (int i = 0; i < encoded.Count; i++)
        {
            if (i % 256 == 0)
            {
                markers.Add((uint)names.Count);
            }

            int len = encoded[i].Count;
            if (twoByte && len >= 0x80)
            {
                if (len >= 0x4000)
                {
                    throw new ArgumentException($"symbol {symbols[i].Name} needs {len} tokens, more than 2-byte lengths hold");
                }

                names.Add((byte)(0x80 | (len & 0x7f)));
                names.Add((byte)(len >> 7));
            }
            else
            {
                if (len > 0xff)
                {
                    throw new ArgumentException($"symbol {symbols[i].Name} needs {len} tokens, more than 1-byte lengths hold");
                }

                names.Add((byte)len);
            }

            names.AddRange(encoded[i]);
        }

        var tokenTable = new List<byte>();
        var tokenIndex = new byte[512];
        for (int t = 0; t < 256; t++)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(tokenIndex.AsSpan(t * 2), (ushort)tokenTable.Count);
            tokenTable.AddRange(System.Text.Encoding.ASCII.GetBytes(tokens[t] ?? string.Empty));
            tokenTable.Add(0);
        }

        var image = new KallsymsImage { Release = Release };
        ulong at = TablesAddress;
        ulong Place(int size)
        {
            ulong here = at;
            at = (at + (ulong)size + 0x107) & ~7UL;
            return here;
        }

        var addresses = symbols.Select(s => s.Address).ToArray();
        if (Encoding == KallsymsAddressEncoding.Absolute)
        {
            image.AddressesAddress = Place(addresses.Length * 8);
            var bytes = new byte[addresses.Length * 8];
            for (int i = 0; i < addresses.Length; i++)
            {
                BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(i * 8), addresses[i]);
            }

            image.Write(image.AddressesAddress, bytes);
        }
        else
        {
            image.OffsetsAddress = Place(addresses.Length * 4);
            var (offsets, relativeBase) = EncodeOffsets(addresses, image.OffsetsAddress);
            var bytes = new byte[offsets.Length * 4];
            for (int i = 0; i < offsets.Length; i++)
            {
                BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(i * 4), offsets[i]);
            }

            image.Write(image.OffsetsAddress, bytes);
            if (Encoding != KallsymsAddressEncoding.PlaceRelative)
            {
                image.RelativeBaseAddress = Place(8);
                image.RelativeBase = relativeBase;
                var b = new byte[8];
                BinaryPrimitives.WriteUInt64LittleEndian(b, relativeBase);
                image.Write(image.RelativeBaseAddress, b);
            }
        }

        image.NumSymsAddress = Place(4);
        var count = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(count, symbols.Count);
        image.Write(image.NumSymsAddress, count);

        image.NamesAddress = Place(names.Count);
        image.NamesLength = names.Count;
        image.Write(image.NamesAddress, [.. names]);

        var markerBytes = new byte[markers.Count * 4];
        for (int i = 0; i < markers.Count; i++)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(markerBytes.AsSpan(i * 4), markers[i]);
        }

        image.Write(Place(markerBytes.Length), markerBytes);

        image.TokenTableAddress = Place(tokenTable.Count);
        image.Write(image.TokenTableAddress, [.. tokenTable]);
        image.TokenIndexAddress = Place(tokenIndex.Length);
        image.Write(image.TokenIndexAddress, tokenIndex);

        image.Tokens = tokens;
        image.EncodedLengths = [.. encoded.Select(e => e.Count)];
        image.VmcoreInfoLines.Add($"OSRELEASE={Release}");
        image.VmcoreInfoLines.Add("PAGESIZE=4096");
        foreach (var (name, _, address) in symbols.Where(s => s.Name is "_stext" or "_text"))
        {
            image.VmcoreInfoLines.Add($"SYMBOL({name})={address:x}");
        }

        image.VmcoreInfoLines.Add($"SYMBOL(kallsyms_names)={image.NamesAddress:x}");
        image.VmcoreInfoLines.Add($"SYMBOL(kallsyms_num_syms)={image.NumSymsAddress:x}");
        image.VmcoreInfoLines.Add($"SYMBOL(kallsyms_token_table)={image.TokenTableAddress:x}");
        image.VmcoreInfoLines.Add($"SYMBOL(kallsyms_token_index)={image.TokenIndexAddress:x}");
        if (Encoding == KallsymsAddressEncoding.Absolute)
        {
            image.VmcoreInfoLines.Add($"SYMBOL(kallsyms_addresses)={image.AddressesAddress:x}");
        }
        else
        {
            image.VmcoreInfoLines.Add($"SYMBOL(kallsyms_offsets)={image.OffsetsAddress:x}");
        }

        if (image.RelativeBaseAddress != 0)
        {
            image.VmcoreInfoLines.Add($"SYMBOL(kallsyms_relative_base)={image.RelativeBaseAddress:x}");
        }

        return image;
    }

    /// <summary>scripts/kallsyms.c <c>write_src</c>'s offset rules for the three offset encodings.</summary>
    private (int[] Offsets, ulong RelativeBase) EncodeOffsets(ulong[] addresses, ulong offsetsAddress)
    {
        var offsets = new int[addresses.Length];
        bool IsPercpu(ulong a) => Encoding == KallsymsAddressEncoding.AbsolutePercpu && a <= int.MaxValue;
        ulong relativeBase = addresses.Where(a => !IsPercpu(a)).DefaultIfEmpty(0UL).Min();
        for (int i = 0; i < addresses.Length; i++)
        {
            ulong a = addresses[i];
            long value = Encoding switch
            {
                KallsymsAddressEncoding.BaseRelative => checked((long)(a - relativeBase)),
                KallsymsAddressEncoding.AbsolutePercpu => IsPercpu(a) ? (long)a : -(long)(a - relativeBase) - 1,
                _ => unchecked((long)(a - (offsetsAddress + (ulong)i * 4))),
            };

            bool fits = Encoding == KallsymsAddressEncoding.BaseRelative ? value is >= 0 and <= uint.MaxValue : value is >= int.MinValue and <= int.MaxValue;
            if (!fits)
            {
                throw new ArgumentException($"address 0x{a:x} does not fit the {Encoding} encoding");
            }

            offsets[i] = unchecked((int)(uint)value);
        }

        return (offsets, relativeBase);
    }

    /// <summary>
    /// Single characters sit at their own index; free indices get the most frequent adjacent token pair, repeatedly
    /// (scripts/kallsyms.c <c>optimize_result</c>, simplified).
    /// </summary>
    private (string?[] Tokens, List<List<byte>> Encoded) Tokenize(List<string> texts)
    {
        var tokens = new string?[256];
        var encoded = texts.Select(t => t.Select(c => c < 256 ? (byte)c : throw new ArgumentException($"non-Latin-1 character in {t}")).ToList()).ToList();
        foreach (var e in encoded)
        {
            foreach (byte b in e)
            {
                tokens[b] = ((char)b).ToString();
            }
        }

        if (!Compress)
        {
            return (tokens, encoded);
        }

        for (int free = 255; free >= 0; free--)
        {
            if (tokens[free] is not null)
            {
                continue;
            }

            var counts = new Dictionary<(byte, byte), int>();
            foreach (var e in encoded)
            {
                for (int i = 0; i + 1 < e.Count; i++)
                {
                    counts[(e[i], e[i + 1])] = counts.GetValueOrDefault((e[i], e[i + 1])) + 1;
                }
            }

            if (counts.Count == 0)
            {
                break;
            }

            var best = counts.MaxBy(kv => kv.Value);
            if (best.Value < 2)
            {
                break;
            }

            var (first, second) = best.Key;
            tokens[free] = tokens[first] + tokens[second];
            foreach (var e in encoded)
            {
                for (int i = 0; i + 1 < e.Count; i++)
                {
                    if (e[i] == first && e[i + 1] == second)
                    {
                        e[i] = (byte)free;
                        e.RemoveAt(i + 1);
                    }
                }
            }
        }

        return (tokens, encoded);
    }
}

/// <summary>The built tables in a sparse address space of 4 KiB pages, with their addresses and VMCOREINFO lines.</summary>
internal sealed class KallsymsImage
{
    private const int PageSize = 4096;

    public Dictionary<ulong, byte[]> Pages { get; } = [];

    public string Release { get; init; } = string.Empty;

    public ulong NamesAddress { get; set; }

    public int NamesLength { get; set; }

    public ulong NumSymsAddress { get; set; }

    public ulong TokenTableAddress { get; set; }

    public ulong TokenIndexAddress { get; set; }

    public ulong OffsetsAddress { get; set; }

    public ulong AddressesAddress { get; set; }

    public ulong RelativeBaseAddress { get; set; }

    public ulong RelativeBase { get; set; }

    /// <summary>The 256 tokens (null where unused).</summary>
    public string?[] Tokens { get; set; } = [];

    /// <summary>Each symbol's length in tokens, in table order.</summary>
    public int[] EncodedLengths { get; set; } = [];

    public List<string> VmcoreInfoLines { get; } = [];

    public VmcoreInfo VmcoreInfo() => Kvm.VmcoreInfo.Parse(System.Text.Encoding.ASCII.GetBytes(string.Join('\n', VmcoreInfoLines) + "\n"), "kallsyms builder");

    /// <summary>Replaces (or adds) a VMCOREINFO line by key.</summary>
    public void SetVmcoreInfo(string key, string? value)
    {
        VmcoreInfoLines.RemoveAll(l => l.StartsWith(key + "=", StringComparison.Ordinal));
        if (value is not null)
        {
            VmcoreInfoLines.Add($"{key}={value}");
        }
    }

    /// <summary>A VirtualReader over the pages: reads up to the first missing page.</summary>
    public int Read(ulong address, Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            ulong a = address + (ulong)done;
            if (!Pages.TryGetValue(a & ~(ulong)(PageSize - 1), out var page))
            {
                break;
            }

            int offset = (int)(a & (PageSize - 1));
            int n = Math.Min(PageSize - offset, buffer.Length - done);
            page.AsSpan(offset, n).CopyTo(buffer[done..]);
            done += n;
        }

        return done;
    }

    public void Write(ulong address, ReadOnlySpan<byte> data)
    {
        int done = 0;
        while (done < data.Length)
        {
            ulong a = address + (ulong)done;
            ulong pageAddress = a & ~(ulong)(PageSize - 1);
            if (!Pages.TryGetValue(pageAddress, out var page))
            {
                page = new byte[PageSize];
                Pages[pageAddress] = page;
            }

            int offset = (int)(a & (PageSize - 1));
            int n = Math.Min(PageSize - offset, data.Length - done);
            data.Slice(done, n).CopyTo(page.AsSpan(offset));
            done += n;
        }
    }

    public void WriteUInt32(ulong address, uint value)
    {
        Span<byte> b = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        Write(address, b);
    }

    public void WriteUInt16(ulong address, ushort value)
    {
        Span<byte> b = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16LittleEndian(b, value);
        Write(address, b);
    }

    /// <summary>Removes the page holding <paramref name="address"/>, so reads stop there.</summary>
    public void Unmap(ulong address) => Pages.Remove(address & ~(ulong)(PageSize - 1));
}
