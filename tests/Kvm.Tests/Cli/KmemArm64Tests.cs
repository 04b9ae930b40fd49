using System.Text.Json;
using Kvm.Cli;
using Kvm.Testing;

namespace Kvm.Tests.Cli;

/// <summary>kmem on a builder-made arm64 kernel: info names the OS, architecture and paging; vtop walks the arm64 tables.</summary>
public sealed class KmemArm64Tests : IDisposable
{
    private readonly FakeArm64Kernel _kernel = new(granule: 16384, vaBits: 47);
    private readonly TempFile _elf;

    public KmemArm64Tests() => _elf = new TempFile(_kernel.ToElf());

    public void Dispose() => _elf.Dispose();

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Info_NamesOsArchitectureAndPaging()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "info");

        Assert.Equal(0, exit);
        Assert.Contains("os              Linux\n", output, StringComparison.Ordinal);
        Assert.Contains("arch            aarch64\n", output, StringComparison.Ordinal);
        Assert.Contains("paging          aarch64, 16 KiB granule, 47-bit VA, 3 levels\n", output, StringComparison.Ordinal);
        Assert.Contains($"kimage_voffset  0x{_kernel.KimageVoffset:x}\n", output, StringComparison.Ordinal);
    }

    [Fact]
    public void Info_Json_HasThePagingDescription()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "info", "--json");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        Assert.Equal("aarch64", doc.RootElement.GetProperty("arch").GetString());
        Assert.Equal("aarch64, 16 KiB granule, 47-bit VA, 3 levels", doc.RootElement.GetProperty("paging").GetString());
        Assert.Equal(3, doc.RootElement.GetProperty("pagingLevels").GetInt32());
        Assert.Equal(16384, doc.RootElement.GetProperty("pageSize").GetInt32());
    }

    [Fact]
    public void Vtop_LinearMapBlock_Is32MiB()
    {
        var (exit, output, _) = Run("-M", _elf.Path, "vtop", $"0x{_kernel.PageOffset + 0x2345678:x}");

        Assert.Equal(0, exit);
        Assert.Contains("(32 MiB page, pgtable)", output, StringComparison.Ordinal);
        Assert.Contains("pgd", output, StringComparison.Ordinal);
        Assert.Contains("pmd", output, StringComparison.Ordinal);
    }
}
