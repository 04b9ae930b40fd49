using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Kvm.IntegrationTests;

/// <summary>The lab itself: every file the manifests list is there and intact, and the truth holds the workload.</summary>
public sealed class HarnessTests
{
    [LabFact]
    public void Lab_HasTheDefaultVariants()
    {
        Assert.Null(DumpLab.MissingReason);
        var names = DumpLab.Variants.Select(v => v.Name).ToList();
        foreach (var expected in new[] { "default", "la57", "nokaslr", "novmcoreinfo" })
        {
            Assert.Contains(expected, names);
        }
    }

    [LabFact]
    public void Manifest_EveryFileExistsWithItsSizeAndSha256()
    {
        foreach (var variant in DumpLab.Variants)
        {
            Assert.NotEmpty(variant.Dumps);
            foreach (var dump in variant.Dumps)
            {
                var info = new FileInfo(dump.Path);
                Assert.True(info.Exists, $"{dump}: missing");
                Assert.Equal(dump.Size, info.Length);
                using var stream = File.OpenRead(dump.Path);
                Assert.Equal(dump.Sha256, Convert.ToHexStringLower(SHA256.HashData(stream)));
            }

            Assert.True(File.Exists(variant.SystemMap));
            Assert.True(File.Exists(variant.SwapImage));
        }
    }

    [LabFact]
    public void Truth_ContainsTheWorkload()
    {
        foreach (var variant in DumpLab.Variants)
        {
            var truth = variant.Truth;
            var processes = truth.GetProperty("processes").EnumerateArray().ToList();
            Assert.Contains(processes, p => p.GetProperty("pid").GetInt32() == 1);
            var roles = truth.GetProperty("roles");
            foreach (var role in new[] { "argv", "longArgv", "bigEnv", "nonRoot", "parent", "child", "files", "spinner" })
            {
                Assert.True(roles.TryGetProperty(role, out var pid) && pid.ValueKind == System.Text.Json.JsonValueKind.Number, $"{variant}: role {role} missing");
                Assert.Contains(processes, p => p.GetProperty("pid").GetInt32() == pid.GetInt32());
            }

            int longPid = roles.GetProperty("longArgv").GetInt32();
            var longArgv = processes.First(p => p.GetProperty("pid").GetInt32() == longPid);
            Assert.True(Convert.FromHexString(longArgv.GetProperty("cmdlineHex").GetString()!).Length > 4096);
            Assert.StartsWith("Linux version ", variant.ProcVersion, StringComparison.Ordinal);
            Assert.Contains("KVMTEST-MARKER", truth.GetProperty("dmesg").GetString()!, StringComparison.Ordinal);
            Assert.Equal(variant.Name == "la57" ? 5 : 4, variant.PagingLevels);
        }
    }

    [LabFact]
    public void Truth_HasTheLoadAverageAtStop()
    {
        foreach (var variant in DumpLab.Variants)
        {
            var truth = variant.Truth;
            Assert.True(truth.TryGetProperty("loadavgAtStop", out var atStop) && atStop.ValueKind == JsonValueKind.Object, $"{variant.Name}: loadavgAtStop missing or null");
            var values = atStop.GetProperty("values");
            Assert.Equal(JsonValueKind.Array, values.ValueKind);
            Assert.Equal(3, values.GetArrayLength());
            Assert.All(values.EnumerateArray(), v => Assert.Equal(JsonValueKind.Number, v.ValueKind));
            Assert.True(values[0].GetDouble() > 0, $"{variant.Name}: 1-minute load average at stop is 0");
            Assert.StartsWith("KVMTEST-LOADAVG ", atStop.GetProperty("line").GetString()!, StringComparison.Ordinal);
            Assert.True(atStop.GetProperty("uptimeSeconds").GetDouble() >= truth.GetProperty("uptimeSeconds").GetDouble(), $"{variant.Name}: loadavgAtStop is older than the truth");
        }
    }
}
