using System.Diagnostics;
using System.Globalization;

namespace Kvm.Tests.Types;

/// <summary>
/// The independent oracle for the real-kernel tests: <c>bpftool btf dump file /sys/kernel/btf/vmlinux format raw</c>
/// (Debian package bpftool), parsed into one entry per type id.
/// </summary>
internal static class BpftoolOracle
{
    public const string VmlinuxBtf = "/sys/kernel/btf/vmlinux";

    private static readonly Lazy<Dictionary<int, OracleType>> s_types = new(Load);

    public static string? Bpftool { get; } = FindBpftool();

    /// <summary>Why the oracle tests cannot run here, or null when they can.</summary>
    public static string? MissingReason =>
        !File.Exists(VmlinuxBtf) ? $"{VmlinuxBtf} is absent (kernel without CONFIG_DEBUG_INFO_BTF)"
        : Bpftool is null ? "bpftool is not installed (apt-get install -y bpftool)"
        : null;

    public static Dictionary<int, OracleType> Types => s_types.Value;

    private static string? FindBpftool()
    {
        var dirs = (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Concat(["/usr/sbin", "/sbin", "/usr/local/sbin"]);
        return dirs.Select(d => Path.Combine(d, "bpftool")).FirstOrDefault(File.Exists);
    }

    private static Dictionary<int, OracleType> Load()
    {
        var psi = new ProcessStartInfo(Bpftool!, ["btf", "dump", "file", VmlinuxBtf, "format", "raw"])
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        using var process = Process.Start(psi)!;
        var stderr = process.StandardError.ReadToEndAsync();
        var types = new Dictionary<int, OracleType>();
        OracleType? current = null;
        while (process.StandardOutput.ReadLine() is { } line)
        {
            if (line.StartsWith('['))
            {
                int close = line.IndexOf(']', StringComparison.Ordinal);
                int id = int.Parse(line.AsSpan(1, close - 1), CultureInfo.InvariantCulture);
                string rest = line[(close + 2)..];
                int space = rest.IndexOf(' ', StringComparison.Ordinal);
                string kind = rest[..space];
                var (name, attrs) = NameAndAttributes(rest[(space + 1)..]);
                current = new OracleType(id, kind, name, attrs, []);
                types.Add(id, current);
            }
            else if (line.StartsWith('\t') && current is not null)
            {
                current.Items.Add(NameAndAttributes(line.Trim()));
            }
        }

        process.WaitForExit();
        if (process.ExitCode != 0)
        {
            throw new InvalidOperationException($"bpftool failed: {stderr.Result}");
        }

        return types;
    }

    /// <summary>Splits <c>'name' k=v k=v</c> (or <c>k=v ... (VAR 'name')</c> for DATASEC entries).</summary>
    private static (string Name, Dictionary<string, string> Attributes) NameAndAttributes(string text)
    {
        string name = "";
        string rest = text;
        if (text.StartsWith('\''))
        {
            int end = text.IndexOf('\'', 1);
            name = text[1..end];
            rest = text[(end + 1)..];
        }
        else if (text.IndexOf("(VAR '", StringComparison.Ordinal) is var v and >= 0)
        {
            int end = text.IndexOf('\'', v + 6);
            name = text[(v + 6)..end];
            rest = text[..v];
        }

        var attrs = new Dictionary<string, string>();
        foreach (var token in rest.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = token.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0)
            {
                attrs[token[..eq]] = token[(eq + 1)..].TrimEnd(',');
            }
        }

        return (name == "(anon)" ? "" : name, attrs);
    }
}

internal sealed record OracleType(int Id, string Kind, string Name, Dictionary<string, string> Attributes, List<(string Name, Dictionary<string, string> Attributes)> Items)
{
    public long Long(string key) => long.Parse(Attributes[key], CultureInfo.InvariantCulture);
}

/// <summary>A fact that needs the real kernel BTF and bpftool; skipped with the reason when either is missing.</summary>
public sealed class BpftoolFactAttribute : FactAttribute
{
    public BpftoolFactAttribute()
    {
        if (BpftoolOracle.MissingReason is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A fact that needs only the real kernel BTF file.</summary>
public sealed class VmlinuxBtfFactAttribute : FactAttribute
{
    public VmlinuxBtfFactAttribute()
    {
        if (!File.Exists(BpftoolOracle.VmlinuxBtf))
        {
            Skip = $"{BpftoolOracle.VmlinuxBtf} is absent (kernel without CONFIG_DEBUG_INFO_BTF)";
        }
    }
}
