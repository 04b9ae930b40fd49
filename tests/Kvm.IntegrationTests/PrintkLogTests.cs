using Kvm.Linux;

namespace Kvm.IntegrationTests;

/// <summary>
/// The kernel log read from real dumps equals what the guest's <c>dmesg</c> printed at dump time: every truth line
/// appears, in order, in the formatted records (records logged after the guest captured dmesg may follow), and the
/// marker line written to /dev/kmsg is there with facility user.
/// </summary>
public sealed class PrintkLogTests
{
    /// <summary>qemu.elf and one kdump per variant: makedumpfile -c -d31 where the variant has it, else QEMU's kdump-zlib.</summary>
    public static IEnumerable<object[]> Dumps() =>
        DumpLab.AllVariants.SelectMany(v => new[] { "qemu.elf", v.Dumps.Any(d => d.Name == "mdf-c-d31.kdump") ? "mdf-c-d31.kdump" : "qemu-kdump-zlib.kdump" }
            .Select(name => new object[] { v.Name, name }));

    [LabTheory]
    [MemberData(nameof(Dumps))]
    public void Records_ContainGuestDmesgInOrder(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
        var log = Read(v.Dump(name).Path);
        Assert.Equal(PrintkLog.LocklessLayout, log.Layout);
        Assert.Empty(log.Warnings);

        var ours = log.Records.SelectMany(r => r.Format().Split('\n')).ToList();
        var truth = v.Truth.GetProperty("dmesg").GetString()!.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(truth);
        int at = 0;
        foreach (var line in truth)
        {
            int found = ours.IndexOf(line, at);
            Assert.True(found >= 0, $"{variant}/{name}: dmesg line not found (in order) after our line {at}: {line}");
            at = found + 1;
        }

        for (int i = 1; i < log.Records.Count; i++)
        {
            Assert.True(log.Records[i].Sequence == log.Records[i - 1].Sequence + 1, $"sequence gap after {log.Records[i - 1].Sequence}");
        }
    }

    [LabTheory]
    [MemberData(nameof(Dumps))]
    public void KmsgMarker_IsAUserFacilityRecord(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
        string marker = v.Truth.GetProperty("kmsgMarker").GetString()!;
        var log = Read(v.Dump(name).Path);
        var record = Assert.Single(log.Records, r => r.Text.Contains(marker, StringComparison.Ordinal));
        Assert.Equal(1, record.Facility);
        Assert.NotNull(record.Level);
        Assert.Equal(0u, record.CallerId & 0x8000_0000u);
    }

    [LabTheory]
    [MemberData(nameof(Dumps))]
    public void KernelRecords_HaveKernelFacilityAndBootFirst(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
        var log = Read(v.Dump(name).Path);
        var first = log.Records[0];
        Assert.Equal(v.FirstKernelLogText, first.Text);
        Assert.Equal(0UL, first.Sequence);

        // start_kernel prints the banner with pr_notice (init/main.c): facility kern, level 5. On arm64 setup_arch's
        // "Booting Linux on physical CPU" (pr_info) comes first.
        var banner = Assert.Single(log.Records.Take(3), r => r.Text.StartsWith("Linux version ", StringComparison.Ordinal));
        Assert.Equal(0, banner.Facility);
        Assert.Equal(5, banner.Level);
        Assert.Contains(log.Records, r => r.Subsystem is not null && r.Device is not null);
    }

    private static KernelLog Read(string path)
    {
        using var image = KernelImage.Open(path);
        var info = image.VmcoreInfo;
        Assert.NotNull(info);
        return PrintkLog.Read(
            (a, s) => image.Read(a, s),
            n => image.TryGetSymbol(n, out var sym) ? sym.Address : null,
            info.GetOffset,
            info.GetSize,
            info.GetLength,
            KvmLimits.Default);
    }
}
