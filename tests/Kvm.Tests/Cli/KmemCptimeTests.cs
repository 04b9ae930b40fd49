using System.Text.Json;
using Kvm.Tests.Linux;

namespace Kvm.Tests.Cli;

/// <summary><c>kmem cptime</c> on <see cref="FakeSystem"/>: /proc/stat's lines, cp_time and the JSON keys.</summary>
public sealed class KmemCptimeTests : FakeSystemKmemTests
{
    [Fact]
    public void Text_IsProcStatsLinesForOnlineCpus_ThenCpTime()
    {
        var (exit, output, error) = Run("cptime");

        Assert.Equal(0, exit);
        Assert.Equal(string.Empty, error);
        Assert.Equal(
            [
                "cpu  10850 225 3575 3636150 6875 51 525 12 1000 100",
                "cpu0 10000 200 3000 1200000 550 50 25 12 1000 100",
                "cpu1 700 0 300 1230150 2000 1 0 0 0 0",
                "cpu3 50 25 75 1200000 4025 0 500 0 0 0",
                "cp_time: user 10850 nice 225 sys 3575 intr 576 idle 3643025 (ticks of 1/100 s)",
                "idle and iowait: tick_cpu_sched (NO_HZ), idle periods in progress measured to the monotonic clock at 12345.678900000 s; 1 offline CPU in the total only",
            ],
            output.TrimEnd('\n').Split('\n'));
    }

    [Fact]
    public void Json_HasTheDocumentedKeys()
    {
        var (exit, output, _) = Run("cptime", "--json");

        Assert.Equal(0, exit);
        using var doc = JsonDocument.Parse(output);
        var root = doc.RootElement;
        Assert.Equal(100, root.GetProperty("userHz").GetInt32());
        Assert.Equal("tick_sched", root.GetProperty("idleSource").GetString());
        Assert.Equal(FakeSystem.MonotonicNow, root.GetProperty("monotonicNs").GetInt64());
        Assert.Equal(JsonValueKind.Null, root.GetProperty("note").ValueKind);
        Assert.Equal([10850L, 225, 3575, 576, 3643025], root.GetProperty("cpTime").EnumerateArray().Select(e => e.GetInt64()));
        Assert.False(root.GetProperty("total").TryGetProperty("cpu", out _));
        Assert.Equal(36_361_500_123_000UL, root.GetProperty("total").GetProperty("idle").GetUInt64());
        var cpus = root.GetProperty("cpus").EnumerateArray().ToList();
        Assert.Equal([0, 1, 2, 3], cpus.Select(c => c.GetProperty("cpu").GetInt32()));
        Assert.Equal([true, true, false, true], cpus.Select(c => c.GetProperty("online").GetBoolean()));
        Assert.Equal(40_250_000_000UL, cpus[3].GetProperty("iowait").GetUInt64());
        Assert.Equal([50L, 25, 75, 1200000, 4025, 0, 500, 0, 0, 0], cpus[3].GetProperty("ticks").EnumerateArray().Select(e => e.GetInt64()));
        foreach (var key in new[] { "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guestNice", "ticks" })
        {
            Assert.True(cpus[0].TryGetProperty(key, out _), key);
        }
    }
}
