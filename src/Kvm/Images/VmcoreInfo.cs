using System.Globalization;
using System.Text;

namespace Kvm;

/// <summary>
/// The kernel's VMCOREINFO text (<c>KEY=VALUE</c> lines), from an ELF note, a kdump header, /sys/kernel/vmcoreinfo,
/// or a scan of physical memory. Parsing follows include/linux/vmcore_info.h: unknown keys are kept, the last
/// occurrence of a key wins, and numbers are read with C's <c>strtoull(…, 0)</c> rules so that hand-formatted
/// <c>NUMBER(X)=0x…</c> lines and signed decimals (a negative <c>phys_base</c>) both parse.
/// </summary>
public sealed class VmcoreInfo
{
    private readonly Dictionary<string, string> _values;

    private VmcoreInfo(string text, Dictionary<string, string> values, string source)
    {
        Text = text;
        _values = values;
        Source = source;
    }

    /// <summary>The raw text.</summary>
    public string Text { get; }

    /// <summary>Where the text came from (for example <c>ELF note</c>, <c>kdump header</c>, <c>memory scan at 0x…</c>).</summary>
    public string Source { get; }

    /// <summary>All keys and their (last) values.</summary>
    public IReadOnlyDictionary<string, string> Values => _values;

    /// <summary><c>OSRELEASE</c>, the kernel release.</summary>
    public string? OsRelease => Get("OSRELEASE");

    /// <summary><c>PAGESIZE</c>, or null.</summary>
    public int? PageSize => TryParseNumber(Get("PAGESIZE"), out long v) && v > 0 && v <= 1 << 20 ? (int)v : null;

    /// <summary><c>KERNELOFFSET</c> (hex, no prefix), the KASLR displacement, or null.</summary>
    public ulong? KernelOffset => Get("KERNELOFFSET") is { } s && ulong.TryParse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong v) ? v : null;

    /// <summary>Parses VMCOREINFO text. Bytes after the first NUL are ignored.</summary>
    public static VmcoreInfo Parse(ReadOnlySpan<byte> bytes, string source)
    {
        int nul = bytes.IndexOf((byte)0);
        string text = Encoding.ASCII.GetString(nul < 0 ? bytes : bytes[..nul]);
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var rawLine in text.Split('\n'))
        {
            string line = rawLine.TrimEnd('\r');
            int eq = line.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0)
            {
                continue;
            }

            values[line[..eq]] = line[(eq + 1)..];
        }

        return new VmcoreInfo(text, values, source);
    }

    /// <summary>The raw value of <paramref name="key"/>, or null.</summary>
    public string? Get(string key) => _values.TryGetValue(key, out var v) ? v : null;

    /// <summary><c>SYMBOL(name)</c>: a runtime (already relocated) address, hex without prefix.</summary>
    public ulong? GetSymbol(string name) =>
        Get($"SYMBOL({name})") is { } s && ulong.TryParse(s, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out ulong v) ? v : null;

    /// <summary><c>NUMBER(name)</c>: signed decimal or <c>0x</c> hex.</summary>
    public long? GetNumber(string name) => TryParseNumber(Get($"NUMBER({name})"), out long v) ? v : null;

    /// <summary><c>OFFSET(struct.member)</c>.</summary>
    public long? GetOffset(string structAndMember) => TryParseNumber(Get($"OFFSET({structAndMember})"), out long v) ? v : null;

    /// <summary><c>SIZE(name)</c>.</summary>
    public long? GetSize(string name) => TryParseNumber(Get($"SIZE({name})"), out long v) ? v : null;

    /// <summary><c>LENGTH(name)</c>.</summary>
    public long? GetLength(string name) => TryParseNumber(Get($"LENGTH({name})"), out long v) ? v : null;

    /// <summary>
    /// Parses a number with <c>strtoull</c> base-0 rules: optional sign, <c>0x</c> for hex, a leading 0 for octal,
    /// decimal otherwise. Values above <see cref="long.MaxValue"/> wrap, as in C.
    /// </summary>
    public static bool TryParseNumber(string? text, out long value)
    {
        value = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        var s = text.Trim().AsSpan();
        bool negative = false;
        if (s[0] is '-' or '+')
        {
            negative = s[0] == '-';
            s = s[1..];
        }

        ulong magnitude;
        bool ok;
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            ok = ulong.TryParse(s[2..], NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out magnitude);
        }
        else if (s.Length > 1 && s[0] == '0')
        {
            ok = TryParseOctal(s[1..], out magnitude);
        }
        else
        {
            ok = ulong.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out magnitude);
        }

        if (!ok)
        {
            return false;
        }

        value = unchecked(negative ? -(long)magnitude : (long)magnitude);
        return true;
    }

    private static bool TryParseOctal(ReadOnlySpan<char> s, out ulong value)
    {
        value = 0;
        foreach (char c in s)
        {
            if (c is < '0' or > '7')
            {
                return false;
            }

            value = unchecked((value << 3) | (uint)(c - '0'));
        }

        return true;
    }
}
