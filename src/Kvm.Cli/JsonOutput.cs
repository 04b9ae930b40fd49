using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Kvm.Cli;

/// <summary>Writes JSON with <see cref="Utf8JsonWriter"/>: no reflection, so the tool stays NativeAOT-safe.</summary>
internal static class JsonOutput
{
    public static void Write(TextWriter output, Action<Utf8JsonWriter> body)
    {
        using var stream = new MemoryStream();
        using (var writer = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            body(writer);
        }

        output.WriteLine(Encoding.UTF8.GetString(stream.ToArray()));
    }

    public static string Hex(ulong value) => $"0x{value:x}";

    /// <summary>Writes a property holding an array of strings (the <c>errors</c> and <c>warnings</c> lists).</summary>
    public static void WriteStrings(Utf8JsonWriter writer, string name, IEnumerable<string> values)
    {
        writer.WriteStartArray(name);
        foreach (var v in values)
        {
            writer.WriteStringValue(v);
        }

        writer.WriteEndArray();
    }
}
