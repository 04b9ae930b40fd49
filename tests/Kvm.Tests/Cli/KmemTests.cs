using System.Text.Json;
using Kvm.Cli;
using Kvm.Testing;

namespace Kvm.Tests.Cli;

/// <summary>kmem run in-process on a builder-made kernel: output, JSON keys, exit statuses and error style.</summary>
public sealed class KmemTests : IDisposable
{
    private readonly FakeLinuxKernel _kernel = new();
    private readonly TempFile _elf;
    private readonly TempFile _map;

    public KmemTests()
    {
        _elf = new TempFile(_kernel.ToElf());
        _map = new TempFile(_kernel.SystemMap);
    }

    public void Dispose()
    {
        _elf.Dispose();
        _map.Dispose();
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Info_Json_HasTheDocumentedKeysAndValues()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "info", "--json");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal("elf", root.GetProperty("format").GetString());
        Assert.Equal("x86_64", root.GetProperty("arch").GetString());
        Assert.Equal(FakeLinuxKernel.Release, root.GetProperty("release").GetString());
        Assert.Equal(4096, root.GetProperty("pageSize").GetInt32());
        Assert.Equal(4, root.GetProperty("pagingLevels").GetInt32());
        Assert.Equal($"0x{_kernel.KaslrOffset:x}", root.GetProperty("kaslrOffset").GetString());
        Assert.Equal(_kernel.PhysBase < 0 ? $"-0x{-_kernel.PhysBase:x}" : $"0x{_kernel.PhysBase:x}", root.GetProperty("physBase").GetString());
        Assert.True(root.GetProperty("vmcoreinfo").GetBoolean());
    }

    [Fact]
    public void Nlist_ExitStatusIsTheNumberMissing()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "-N", _map.Path, "nlist", "jiffies", "_linux_banner", "missing_one", "missing_two");
        Assert.Equal(2, exit);
        Assert.Contains($"{_kernel.TextVa + FakeLinuxKernel.JiffiesOffset:x16} D jiffies", output, StringComparison.Ordinal);
        Assert.Contains("missing_one (not found)", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_SymbolPlusOffset_PrintsHexdump()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "-N", _map.Path, "read", "linux_banner+6", "16");
        Assert.Equal(0, exit);
        ulong address = _kernel.TextVa + FakeLinuxKernel.BannerOffset + 6;
        Assert.StartsWith($"{address:x16}:  76 65 72 73 69 6f 6e 20  36 2e 31 2e 30 2d 66 61  |version 6.1.0-fa|", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Read_Unmapped_PrintsKmemErrorAndFails()
    {
        var (exit, _, error) = Run("-M", _elf.Path, "read", "0xffffc90000000000", "8");
        Assert.Equal(1, exit);
        Assert.StartsWith("kmem: cannot translate 0xffffc90000000000: ", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Vtop_Json_ListsEveryLevel()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "--json", "vtop", $"0x{_kernel.TextVa + 0x1234:x}");
        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal($"0x{_kernel.PhysicalLoad + 0x1234:x}", doc.RootElement.GetProperty("physical").GetString());
        Assert.Equal(["pgd", "pud", "pmd"], doc.RootElement.GetProperty("steps").EnumerateArray().Select(s => s.GetProperty("level").GetString()));
    }

    [Fact]
    public void Write_WithoutW_IsRefusedAndTheFileIsUntouched()
    {
        byte[] before = File.ReadAllBytes(_elf.Path);
        var (exit, _, error) = Run("-M", _elf.Path, "-N", _map.Path, "write", "jiffies", "01020304");
        Assert.Equal(2, exit);
        Assert.Contains("-w", error, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(_elf.Path));

        var (ok, _, _) = Run("-M", _elf.Path, "-N", _map.Path, "-w", "write", "jiffies", "01020304");
        Assert.Equal(0, ok);
        var (_, output, _) = Run("-M", _elf.Path, "-N", _map.Path, "--json", "read", "jiffies", "4");
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("01020304", doc.RootElement.GetProperty("bytes").GetString());
    }

    [Fact]
    public void BadInput_GivesKmemErrors()
    {
        Assert.Equal(2, Run("frobnicate").Exit);
        var (exit, _, error) = Run("-M", "/nonexistent/vmcore", "info");
        Assert.Equal(1, exit);
        Assert.Contains("kmem: ", error, StringComparison.Ordinal);
        Assert.Contains("/nonexistent/vmcore", error, StringComparison.Ordinal);
        var (lenExit, _, lenError) = Run("-M", _elf.Path, "read", "0xffffffff81000000", "lots");
        Assert.Equal(2, lenExit);
        Assert.Contains("bad length", lenError, StringComparison.Ordinal);
    }
}
