using System.Text.Json;
using Kvm.Tests.Linux;

namespace Kvm.Tests.Cli;

/// <summary><c>kmem ps</c> on <see cref="FakeSystem"/>: the tty group, fault and signal-set columns and JSON keys.</summary>
public sealed class KmemPsDetailTests : FakeSystemKmemTests
{
    [Fact]
    public void Columns_AreProcpsNamesAndFormats()
    {
        var (exit, output, error) = Run("ps", "-p", "1,200", "-o", "pid,tpgid,min_flt,maj_flt,cmin_flt,cmaj_flt,pending,blocked,ignored,caught");

        Assert.Equal((0, string.Empty), (exit, error));
        Assert.Equal(
            [
                "PID TPGID MINFL MAJFL CMINFL CMAJFL PENDING          BLOCKED          IGNORED          CAUGHT",
                "  1    -1   187     4    715      2 0000000000000000 0000000000000000 0000000000000004 0000000000010002",
                "200   200  1123    13      5      6 0000000000004000 8000000000000200 8000000000001000 0000000100004000",
            ],
            output.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void Json_HasTheNewKeys()
    {
        var (exit, output, _) = Run("ps", "-p", "100", "--json");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var bash = doc.RootElement.GetProperty("processes")[0];
        Assert.Equal((200, 100), (bash.GetProperty("tpgid").GetInt32(), bash.GetProperty("tsid").GetInt32()));
        Assert.Equal((0UL, 0UL, 0UL, 0UL), (bash.GetProperty("minFlt").GetUInt64(), bash.GetProperty("majFlt").GetUInt64(), bash.GetProperty("cminFlt").GetUInt64(),
            bash.GetProperty("cmajFlt").GetUInt64()));
        Assert.Equal(["0x0", "0x0", "0x0", "0x80004", "0x100010002"],
            new[] { "sigPending", "sigSharedPending", "sigBlocked", "sigIgnored", "sigCaught" }.Select(k => bash.GetProperty(k).GetString()));
        Assert.Equal($"0x{FakeSystem.BashStack:x}", bash.GetProperty("kernelStack").GetString());
        Assert.StartsWith("0x", bash.GetProperty("files").GetString(), StringComparison.Ordinal);
    }
}
