using System.Text.Json;
using Kvm.Cli;
using Kvm.Testing;

namespace Kvm.Tests.Cli;

/// <summary><c>kmem pages</c> on the fake kernel: the table, the summary line, <c>--limit</c> and the JSON schema.</summary>
public sealed class KmemPagesTests : IDisposable
{
    private readonly FakeLinuxKernel _kernel = new();
    private readonly TempFile _elf;

    public KmemPagesTests()
    {
        _kernel.Tables.Map(0xffffc90000000000, 0x100000);
        _kernel.Memory.Write(0x100000, [1, 2, 3]);
        _elf = new TempFile(_kernel.ToElf());
    }

    public void Dispose() => _elf.Dispose();

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Text_ListsKernelMapThenDirectMapPages_AndEndsWithASummary()
    {
        var (exit, output, error) = Run("-M", _elf.Path, "pages");

        Assert.Equal(0, exit);
        Assert.Empty(error);
        var lines = output.TrimEnd('\n').Split('\n');
        Assert.StartsWith("PADDR", lines[0], StringComparison.Ordinal);
        Assert.StartsWith($"0000000000100000 ffffc90000000000 {_kernel.PageOffsetBase + 0x100000:x16} rwx  0x", lines[1], StringComparison.Ordinal);
        Assert.EndsWith(" 4K", lines[1], StringComparison.Ordinal);
        Assert.StartsWith($"{_kernel.PhysicalLoad:x16} {_kernel.TextVa:x16} ", lines[2], StringComparison.Ordinal);
        Assert.EndsWith(" 2M", lines[2], StringComparison.Ordinal);
        Assert.Matches(@"^\d+ records: 9 kernel-map mappings \(4K 1, 2M 8, 1G 0\), \d+ direct-map-only pages$", lines[^1]);
        Assert.Contains(lines, l => l.StartsWith($"0000000000007000 -                {_kernel.PageOffsetBase + 0x7000:x16} rw-", StringComparison.Ordinal));
    }

    [Fact]
    public void Limit_StopsEarlyAndSaysSo()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "walk", "--limit", "2");

        Assert.Equal(0, exit);
        var lines = output.TrimEnd('\n').Split('\n');
        Assert.Equal(4, lines.Length);
        Assert.Equal("2 records: 2 kernel-map mappings (4K 1, 2M 1, 1G 0), 0 direct-map-only pages (stopped at --limit 2)", lines[^1]);
    }

    [Fact]
    public void Json_HasTheDocumentedKeys()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "--json", "pages");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var pages = doc.RootElement.GetProperty("pages").EnumerateArray().ToList();
        var first = pages[0];
        Assert.Equal("0x100000", first.GetProperty("physical").GetString());
        Assert.Equal("0xffffc90000000000", first.GetProperty("kernelMap").GetString());
        Assert.Equal($"0x{_kernel.PageOffsetBase + 0x100000:x}", first.GetProperty("directMap").GetString());
        Assert.Equal(7, first.GetProperty("prot").GetInt32());
        Assert.True(first.GetProperty("fileOffset").GetInt64() > 0);
        Assert.Equal(4096, first.GetProperty("length").GetInt64());
        var last = pages[^1];
        Assert.Equal(JsonValueKind.Null, last.GetProperty("kernelMap").ValueKind);
        Assert.Equal(3, last.GetProperty("prot").GetInt32());

        var summary = doc.RootElement.GetProperty("summary");
        Assert.Equal(pages.Count, summary.GetProperty("records").GetInt32());
        Assert.Equal(9, summary.GetProperty("kernelMap").GetInt32());
        Assert.Equal(1, summary.GetProperty("kernelMap4K").GetInt32());
        Assert.Equal(8, summary.GetProperty("kernelMap2M").GetInt32());
        Assert.Equal(0, summary.GetProperty("kernelMap1G").GetInt32());
        Assert.Equal(pages.Count - 9, summary.GetProperty("directMapOnly").GetInt32());
        Assert.False(summary.GetProperty("limited").GetBoolean());
    }

    [Fact]
    public void Json_ManyRecords_StreamIntoOneValidDocument()
    {
        // More records than one flush of the writer holds.
        var kernel = new FakeLinuxKernel();
        for (ulong pa = 0x100000; pa < 0x100000 + (5000 * 4096UL); pa += 4096)
        {
            kernel.Memory.Write(pa, [0xaa]);
        }

        using var elf = new TempFile(kernel.ToElf());
        var (exit, output, _) = Run("-M", elf.Path, "--json", "pages", "-n", "4500");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal(4500, doc.RootElement.GetProperty("pages").GetArrayLength());
        Assert.True(doc.RootElement.GetProperty("summary").GetProperty("limited").GetBoolean());
    }

    [Fact]
    public void NegativeLimit_IsAUsageError()
    {
        var (exit, _, error) = Run("-M", _elf.Path, "pages", "--limit", "-1");

        Assert.Equal(Program.UsageError, exit);
        Assert.StartsWith("kmem: bad record count", error, StringComparison.Ordinal);
    }
}
