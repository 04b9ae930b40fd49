using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using Kvm.Memory;

namespace Kvm.Symbols;

/// <summary>
/// Decodes the kernel's own symbol table (kallsyms) from its memory, located through the VMCOREINFO
/// <c>SYMBOL(kallsyms_*)</c> keys that kernels export since v6.0 (5fd8fea935a1, f09bddbd8661). The table layout is the
/// one scripts/kallsyms.c writes and kernel/kallsyms.c reads (formats.md §6.2). Every count and index read from the
/// image is checked before use, so a corrupt table gives an error naming the table and address, never a crash,
/// a hang or an allocation larger than <see cref="KvmLimits"/> allows.
/// </summary>
internal static class KallsymsReader
{
    /// <summary>The <see cref="SymbolTable.Source"/> and <see cref="KernelSymbol.Source"/> of decoded symbols.</summary>
    public const string SourceName = "kallsyms in memory";

    // Offsets into kallsyms_token_table are u16, so the last token starts below 64 KiB; real tables are about 1 KiB.
    // The slack bounds the search for the last token's NUL.
    private const int TokenTableSlack = 4096;

    /// <summary>Decodes every symbol; throws <see cref="KvmException"/> (or <see cref="CorruptImageException"/>) naming what failed and where.</summary>
    public static SymbolTable Read(VirtualReader read, VmcoreInfo info, KvmLimits limits) => Read(read, info, limits, out _);

    /// <summary>As <see cref="Read(VirtualReader, VmcoreInfo, KvmLimits)"/>, also reporting the address encoding chosen.</summary>
    public static SymbolTable Read(VirtualReader read, VmcoreInfo info, KvmLimits limits, out KallsymsAddressEncoding encoding)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(info);
        ArgumentNullException.ThrowIfNull(limits);

        ulong namesAddress = RequireSymbol(info, "kallsyms_names");
        ulong countAddress = RequireSymbol(info, "kallsyms_num_syms");
        ulong tokenTableAddress = RequireSymbol(info, "kallsyms_token_table");
        ulong tokenIndexAddress = RequireSymbol(info, "kallsyms_token_index");
        ulong? offsetsAddress = info.GetSymbol("kallsyms_offsets");
        ulong? addressesAddress = info.GetSymbol("kallsyms_addresses");
        ulong? relativeBaseAddress = info.GetSymbol("kallsyms_relative_base");
        if (offsetsAddress is null && addressesAddress is null)
        {
            throw new KvmException(KvmErrorCode.SymbolNotFound, "kallsyms: vmcoreinfo has neither SYMBOL(kallsyms_offsets) nor SYMBOL(kallsyms_addresses)");
        }

        // VMCOREINFO does not name the word size; a 32-bit kernel's tables sit below 4 GiB.
        int pointerSize = namesAddress <= uint.MaxValue ? 4 : 8;

        // kallsyms_num_syms is an unsigned int (unsigned long before v4.20's 80ffbaa5b1bd, but its low word is
        // the same on little-endian kernels).
        Span<byte> word = stackalloc byte[4];
        ReadExactly(read, countAddress, word, "kallsyms_num_syms");
        uint rawCount = BinaryPrimitives.ReadUInt32LittleEndian(word);
        if (rawCount == 0 || rawCount > (uint)limits.MaxSymbols)
        {
            throw new CorruptImageException($"kallsyms_num_syms at 0x{countAddress:x}: {rawCount} symbols is outside 1..{limits.MaxSymbols} (KvmLimits.MaxSymbols)");
        }

        int count = (int)rawCount;
        var tokens = TokenTable.Read(read, tokenTableAddress, tokenIndexAddress);
        bool longLengths = UsesTwoByteLengths(info.OsRelease);
        var (names, types) = DecodeNames(read, namesAddress, count, longLengths, tokens, limits);

        uint[]? offsets = null;
        ulong[]? absolute = null;
        ulong relativeBase = 0;
        if (offsetsAddress is { } oa)
        {
            offsets = ReadUInt32Array(read, oa, count, "kallsyms_offsets");
        }

        if (addressesAddress is { } aa)
        {
            absolute = ReadPointerArray(read, aa, count, pointerSize, "kallsyms_addresses");
        }

        if (relativeBaseAddress is { } ra)
        {
            Span<byte> pointer = stackalloc byte[pointerSize];
            ReadExactly(read, ra, pointer, "kallsyms_relative_base");
            relativeBase = pointerSize == 8 ? BinaryPrimitives.ReadUInt64LittleEndian(pointer) : BinaryPrimitives.ReadUInt32LittleEndian(pointer);
        }

        var candidates = new List<KallsymsAddressEncoding>(4);
        if (absolute is not null)
        {
            candidates.Add(KallsymsAddressEncoding.Absolute);
        }

        if (offsets is not null)
        {
            if (relativeBaseAddress is not null)
            {
                candidates.Add(KallsymsAddressEncoding.BaseRelative);
                candidates.Add(KallsymsAddressEncoding.AbsolutePercpu);
            }

            candidates.Add(KallsymsAddressEncoding.PlaceRelative);
        }

        var table = new AddressTable(absolute, offsets, offsetsAddress ?? 0, relativeBase, pointerSize);
        encoding = ChooseEncoding(info, names, candidates, table);

        var symbols = new KernelSymbol[count];
        for (int i = 0; i < count; i++)
        {
            symbols[i] = new KernelSymbol(names[i], table.Address(encoding, i), types[i], SourceName);
        }

        return new SymbolTable(SourceName, NamelistKind.KernelMemory, symbols);
    }

    /// <summary>As <see cref="Read(VirtualReader, VmcoreInfo, KvmLimits)"/>, returning false with the error message instead of throwing.</summary>
    public static bool TryRead(VirtualReader read, VmcoreInfo info, KvmLimits limits, out SymbolTable? table, out string? error)
    {
        try
        {
            table = Read(read, info, limits);
            error = null;
            return true;
        }
        catch (KvmException ex)
        {
            table = null;
            error = ex.Message;
            return false;
        }
    }

    /// <summary>
    /// Whether name lengths use the 2-byte ULEB128 form of v6.1 (73bbb94466fd "kallsyms: support big symbols"). The data
    /// cannot tell (a name under 128 tokens is the same either way), so the release decides; an unparsable one is
    /// taken as current, since only v6.0 exports the VMCOREINFO keys with 1-byte lengths.
    /// </summary>
    internal static bool UsesTwoByteLengths(string? release)
    {
        if (release is null)
        {
            return true;
        }

        var span = release.AsSpan();
        int dot = span.IndexOf('.');
        if (dot <= 0 || !int.TryParse(span[..dot], NumberStyles.None, CultureInfo.InvariantCulture, out int major))
        {
            return true;
        }

        var rest = span[(dot + 1)..];
        int digits = 0;
        while (digits < rest.Length && char.IsAsciiDigit(rest[digits]))
        {
            digits++;
        }

        if (digits == 0 || !int.TryParse(rest[..digits], NumberStyles.None, CultureInfo.InvariantCulture, out int minor))
        {
            return true;
        }

        return major > 6 || (major == 6 && minor >= 1);
    }

    private static ulong RequireSymbol(VmcoreInfo info, string name) =>
        info.GetSymbol(name) ?? throw new KvmException(KvmErrorCode.SymbolNotFound, $"kallsyms: vmcoreinfo has no SYMBOL({name}) (kernel older than 6.0, or CONFIG_KALLSYMS off)");

    /// <summary>
    /// Picks the encoding that puts <c>_stext</c> (else <c>_text</c>) where VMCOREINFO says it is, as drgn and makedumpfile
    /// do: the encodings differ for every text symbol, so one match settles it.
    /// </summary>
    private static KallsymsAddressEncoding ChooseEncoding(VmcoreInfo info, string[] names, List<KallsymsAddressEncoding> candidates, AddressTable table)
    {
        string anchor = "_stext";
        ulong? expected = info.GetSymbol(anchor);
        if (expected is null)
        {
            anchor = "_text";
            expected = info.GetSymbol(anchor);
        }

        if (expected is null)
        {
            if (candidates.Count == 1)
            {
                return candidates[0];
            }

            throw new KvmException(KvmErrorCode.SymbolNotFound, "kallsyms: cannot choose the address encoding: vmcoreinfo has neither SYMBOL(_stext) nor SYMBOL(_text)");
        }

        int index = Array.IndexOf(names, anchor);
        if (index < 0)
        {
            throw new CorruptImageException($"kallsyms: no symbol named {anchor} among {names.Length} decoded names (wrong name-length form, or a corrupt table)");
        }

        foreach (var candidate in candidates)
        {
            if (table.Address(candidate, index) == expected.Value)
            {
                return candidate;
            }
        }

        string tried = string.Join(", ", candidates.Select(c => $"{c} 0x{table.Address(c, index):x}"));
        throw new CorruptImageException($"kallsyms: no address encoding puts {anchor} (symbol {index}) at 0x{expected.Value:x} as vmcoreinfo says; got {tried}");
    }

    private static (string[] Names, char[] Types) DecodeNames(VirtualReader read, ulong address, int count, bool longLengths, TokenTable tokens, KvmLimits limits)
    {
        var window = new ReadWindow(read, address, limits.MaxKallsymsNamesBytes, "kallsyms_names", Math.Min(limits.MaxKallsymsNamesBytes, (long)count * 16));
        var names = new string[count];
        var types = new char[count];
        var scratch = new char[1024];
        char[] tokenChars = tokens.Chars;
        int[] tokenStart = tokens.Start;
        int[] tokenLength = tokens.Length;
        int pos = 0;
        for (int i = 0; i < count; i++)
        {
            int entry = pos;
            window.Ensure(pos + 1, i);
            int length = window.Buffer[pos++];
            if (longLengths && (length & 0x80) != 0)
            {
                window.Ensure(pos + 1, i);
                length = (length & 0x7f) | (window.Buffer[pos++] << 7);
            }

            if (length == 0)
            {
                throw new CorruptImageException($"kallsyms_names at 0x{address:x}: symbol {i} at 0x{unchecked(address + (ulong)entry):x} has length 0");
            }

            window.Ensure(pos + length, i);
            byte[] buffer = window.Buffer;
            int produced = 0;
            for (int k = pos; k < pos + length; k++)
            {
                int token = buffer[k];
                int n = tokenLength[token];
                if (produced + n > scratch.Length)
                {
                    Array.Resize(ref scratch, Math.Max(scratch.Length * 2, produced + n));
                }

                tokenChars.AsSpan(tokenStart[token], n).CopyTo(scratch.AsSpan(produced));
                produced += n;
            }

            pos += length;

            // The first decoded character is the nm type letter (scripts/kallsyms.c stores "<type><name>").
            if (produced < 2 || !char.IsAsciiLetter(scratch[0]))
            {
                string shown = new(scratch, 0, Math.Min(produced, 32));
                throw new CorruptImageException($"kallsyms_names at 0x{address:x}: symbol {i} at 0x{unchecked(address + (ulong)entry):x} decodes to \"{shown}\", not a type letter and a name");
            }

            types[i] = scratch[0];
            names[i] = new string(scratch, 1, produced - 1);
        }

        return (names, types);
    }

    private static uint[] ReadUInt32Array(VirtualReader read, ulong address, int count, string what)
    {
        var bytes = new byte[checked(count * 4)];
        ReadExactly(read, address, bytes, what);
        var values = new uint[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
        }

        return values;
    }

    private static ulong[] ReadPointerArray(VirtualReader read, ulong address, int count, int pointerSize, string what)
    {
        var bytes = new byte[checked(count * pointerSize)];
        ReadExactly(read, address, bytes, what);
        var values = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            values[i] = pointerSize == 8
                ? BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(i * 8))
                : BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(i * 4));
        }

        return values;
    }

    private static void ReadExactly(VirtualReader read, ulong address, Span<byte> buffer, string what)
    {
        int got = read(address, buffer);
        if (got < buffer.Length)
        {
            throw Unreadable(what, address, unchecked(address + (ulong)Math.Max(got, 0)), buffer.Length);
        }
    }

    private static KvmException Unreadable(string what, ulong start, ulong fault, long wanted) =>
        new(KvmErrorCode.MemoryFault, $"{what} at 0x{start:x}: cannot read 0x{fault:x} ({unchecked(fault - start)} of {wanted} bytes readable)");

    /// <summary>The symbol addresses in each encoding, computed on demand.</summary>
    private sealed class AddressTable(ulong[]? absolute, uint[]? offsets, ulong offsetsAddress, ulong relativeBase, int pointerSize)
    {
        private readonly ulong _mask = pointerSize == 8 ? ulong.MaxValue : uint.MaxValue;

        public ulong Address(KallsymsAddressEncoding encoding, int i) => unchecked(encoding switch
        {
            KallsymsAddressEncoding.Absolute => absolute![i],
            KallsymsAddressEncoding.BaseRelative => relativeBase + offsets![i],
            KallsymsAddressEncoding.AbsolutePercpu => (int)offsets![i] >= 0 ? offsets[i] : relativeBase - 1 - (ulong)(long)(int)offsets[i],
            KallsymsAddressEncoding.PlaceRelative => offsetsAddress + (ulong)i * 4 + (ulong)(long)(int)offsets![i],
            _ => throw new ArgumentOutOfRangeException(nameof(encoding)),
        } & _mask);
    }

    /// <summary>
    /// The 256 tokens: <c>kallsyms_token_index</c> (u16[256]) gives each token's offset in <c>kallsyms_token_table</c>,
    /// where it runs to a NUL (kernel/kallsyms.c <c>kallsyms_expand_symbol</c>).
    /// </summary>
    private sealed class TokenTable
    {
        private TokenTable(char[] chars, int[] start, int[] length)
        {
            Chars = chars;
            Start = start;
            Length = length;
        }

        /// <summary>The table as characters: one per byte (Latin-1), since symbol names are ASCII and this keeps decoding a plain copy.</summary>
        public char[] Chars { get; }

        public int[] Start { get; }

        public int[] Length { get; }

        public static TokenTable Read(VirtualReader read, ulong tableAddress, ulong indexAddress)
        {
            var indexBytes = new byte[512];
            ReadExactly(read, indexAddress, indexBytes, "kallsyms_token_index");
            var start = new int[256];
            int highest = 0;
            for (int i = 0; i < 256; i++)
            {
                start[i] = BinaryPrimitives.ReadUInt16LittleEndian(indexBytes.AsSpan(i * 2));
                highest = Math.Max(highest, start[i]);
            }

            // The table's length is not stored: read past the highest offset and require every token's NUL in it.
            var bytes = new byte[highest + TokenTableSlack];
            int got = Math.Max(read(tableAddress, bytes), 0);
            var length = new int[256];
            for (int i = 0; i < 256; i++)
            {
                if (start[i] >= got)
                {
                    throw Unreadable("kallsyms_token_table", tableAddress, unchecked(tableAddress + (ulong)got), (long)start[i] + 1);
                }

                int nul = bytes.AsSpan(start[i], got - start[i]).IndexOf((byte)0);
                if (nul < 0)
                {
                    throw got < bytes.Length
                        ? Unreadable("kallsyms_token_table", tableAddress, unchecked(tableAddress + (ulong)got), bytes.Length)
                        : new CorruptImageException($"kallsyms_token_table at 0x{tableAddress:x}: token 0x{i:x2} at offset {start[i]} has no NUL within {got - start[i]} bytes");
                }

                length[i] = nul;
            }

            var chars = new char[got];
            Encoding.Latin1.GetChars(bytes.AsSpan(0, got), chars);
            return new TokenTable(chars, start, length);
        }
    }

    /// <summary>A growing copy of a table whose end is unknown, read in large chunks as decoding reaches them.</summary>
    private sealed class ReadWindow(VirtualReader read, ulong address, int limit, string what, long firstRead)
    {
        private int _filled;
        private bool _faulted;

        public byte[] Buffer { get; private set; } = [];

        /// <summary>Makes bytes [0, <paramref name="end"/>) available, for symbol <paramref name="symbol"/>.</summary>
        public void Ensure(int end, int symbol)
        {
            if (end <= _filled)
            {
                return;
            }

            if (end > limit)
            {
                throw new CorruptImageException($"{what} at 0x{address:x}: symbol {symbol} runs past {limit} bytes (KvmLimits.MaxKallsymsNamesBytes)");
            }

            if (!_faulted)
            {
                int want = (int)Math.Min(limit, Math.Max(end, Math.Max((long)_filled * 2, firstRead)));
                if (want > Buffer.Length)
                {
                    var grown = new byte[want];
                    Buffer.AsSpan(0, _filled).CopyTo(grown);
                    Buffer = grown;
                }

                int got = Math.Max(read(unchecked(address + (ulong)_filled), Buffer.AsSpan(_filled, want - _filled)), 0);
                _faulted = got < want - _filled;
                _filled += got;
            }

            if (end > _filled)
            {
                throw new KvmException(KvmErrorCode.MemoryFault, $"{what} at 0x{address:x}: symbol {symbol} needs 0x{unchecked(address + (ulong)end - 1):x}, but reading stops at 0x{unchecked(address + (ulong)_filled):x}");
            }
        }
    }
}
