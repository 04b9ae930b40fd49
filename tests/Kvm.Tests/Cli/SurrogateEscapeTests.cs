using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Kvm.Cli;

namespace Kvm.Tests.Cli;

/// <summary>The reversible escaping of guest bytes in kmem's JSON (surrogateescape, PEP 383).</summary>
public sealed class SurrogateEscapeTests
{
    public static TheoryData<string> Samples() => new()
    {
        string.Empty,
        "68656c6c6f",                       // ASCII
        "c3bc6ec3af63c3b664c3a92de29c93",   // valid multi-byte UTF-8
        "f09f9880",                         // a 4-byte sequence (a surrogate pair in UTF-16)
        "ff",                               // a byte that never occurs in UTF-8
        "80",                               // a lone continuation byte
        "c3",                               // a truncated sequence at the end
        "e282" + "41",                      // a truncated sequence before ASCII
        "c0af",                             // an overlong '/'
        "edb280",                           // U+DC80 encoded as UTF-8: invalid (UTF-8 has no surrogates)
        "eda080edb080",                     // a CESU-8 surrogate pair: invalid
        "f4908080",                         // above U+10FFFF
        "22" + "5c" + "0a" + "00" + "1f" + "7f" + "e280a8", // characters JSON must or should escape
        "6261642d757466383affFEc328802d656e64",
    };

    [Theory]
    [MemberData(nameof(Samples))]
    public void Decode_ThenEncode_GivesTheBytesBack(string hex)
    {
        byte[] bytes = Convert.FromHexString(hex);
        Assert.Equal(bytes, SurrogateEscape.Encode(SurrogateEscape.Decode(bytes)));
    }

    [Theory]
    [MemberData(nameof(Samples))]
    public void JsonLiteral_IsValidJson_AndParsesBackToTheBytes(string hex)
    {
        byte[] bytes = Convert.FromHexString(hex);
        byte[] literal = SurrogateEscape.ToJsonLiteral(bytes);
        using var doc = JsonDocument.Parse(literal);
        Assert.Equal(JsonValueKind.String, doc.RootElement.ValueKind);
        Assert.Equal(bytes, SurrogateEscape.Encode(SurrogateEscape.ParseJsonLiteral(doc.RootElement.GetRawText())));
    }

    [Fact]
    public void RandomBytes_RoundTrip()
    {
        var random = new Random(1234);
        for (int i = 0; i < 2000; i++)
        {
            var bytes = new byte[random.Next(0, 40)];
            random.NextBytes(bytes);

            // Bias towards UTF-8 lead and continuation bytes so that valid and broken sequences both occur often.
            for (int j = 0; j < bytes.Length; j++)
            {
                if (random.Next(3) == 0)
                {
                    bytes[j] = (byte)(0x80 | (bytes[j] & 0x3f));
                }
            }

            Assert.Equal(bytes, SurrogateEscape.Encode(SurrogateEscape.Decode(bytes)));
            Assert.Equal(bytes, SurrogateEscape.Encode(SurrogateEscape.ParseJsonLiteral(Encoding.UTF8.GetString(SurrogateEscape.ToJsonLiteral(bytes)))));
        }
    }

    [Fact]
    public void InvalidBytes_BecomeDcEscapes_AsPython()
    {
        // Python: b'bad-utf8:\xff\xfe\xc3(\x80-end'.decode('utf-8', 'surrogateescape')
        byte[] bytes = [.. "bad-utf8:"u8, 0xff, 0xfe, 0xc3, (byte)'(', 0x80, .. "-end"u8];
        Assert.Equal("bad-utf8:\udcff\udcfe\udcc3(\udc80-end", SurrogateEscape.Decode(bytes));
        Assert.Equal("\"bad-utf8:\\udcff\\udcfe\\udcc3(\\udc80-end\"", Encoding.UTF8.GetString(SurrogateEscape.ToJsonLiteral(bytes)));
    }

    [Fact]
    public void EncodedSurrogate_IsEscapedBytewise_SoNoAmbiguity()
    {
        // ED B2 80 would be U+DC80 in a lax decoder; strict UTF-8 rejects it, so each byte is escaped and the
        // string U+DC80 can only ever mean the single byte 0x80.
        Assert.Equal("\udced\udcb2\udc80", SurrogateEscape.Decode([0xed, 0xb2, 0x80]));
        Assert.Equal([0x80], SurrogateEscape.Encode("\udc80"));
    }

    [Fact]
    public void Encode_RejectsSurrogatesThatAreNotEscapedBytes()
    {
        Assert.Throws<ArgumentException>(() => SurrogateEscape.Encode("\udc41"));
        Assert.Throws<ArgumentException>(() => SurrogateEscape.Encode("\ud800x"));
    }

    [Fact]
    public void Writer_EmitsLoneSurrogatesAsEscapes_InObjectsAndArrays()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            SurrogateEscape.WriteString(w, "comm", [0x61, 0xff]);
            SurrogateEscape.WriteStringArray(w, "argv", [[0x80], [], "x\"y"u8.ToArray()]);
            w.WriteNumber("after", 1);
            w.WriteEndObject();
        }

        string json = Encoding.UTF8.GetString(stream.ToArray());
        Assert.Contains("\"comm\": \"a\\udcff\"", json, StringComparison.Ordinal);
        Assert.Contains("\"argv\": [\"\\udc80\", \"\", \"x\\\"y\"]", json, StringComparison.Ordinal);
        using var doc = JsonDocument.Parse(json);
        Assert.Equal(1, doc.RootElement.GetProperty("after").GetInt32());
        Assert.Equal([0x61, 0xff], SurrogateEscape.Encode(SurrogateEscape.ParseJsonLiteral(doc.RootElement.GetProperty("comm").GetRawText())));
    }

    [Fact]
    public void PlainWriter_CannotCarryLoneSurrogates_WhichIsWhyLiteralsAreWrittenRaw()
    {
        // Documents the library behaviour the raw path works around: either an exception or a lossy replacement.
        using var stream = new MemoryStream();
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        try
        {
            w.WriteStringValue("\udc80");
            w.Flush();
            Assert.DoesNotContain("\\udc80", Encoding.UTF8.GetString(stream.ToArray()), StringComparison.OrdinalIgnoreCase);
        }
        catch (ArgumentException)
        {
        }
        catch (InvalidOperationException)
        {
        }
    }
}
