namespace Kvm.Tests.Linux;

/// <summary>dmesg through the façade: the printk ring of <see cref="FakeSystem"/>, its layout described by BTF only.</summary>
public sealed class KernelLogFacadeTests : IClassFixture<FakeSystemFixture>
{
    private readonly FakeSystemFixture _f;

    public KernelLogFacadeTests(FakeSystemFixture fixture) => _f = fixture;

    [Fact]
    public void ReadKernelLog_ReturnsTheRecordsOfThePrbRing()
    {
        var log = _f.Kernel.Image.ReadKernelLog();

        Assert.Empty(log.Warnings);
        Assert.Equal(["Linux version 6.1.0-fake-amd64", "Command line: root=/dev/sda1 ro", "oom-kill: constraint=CONSTRAINT_NONE"], log.Records.Select(r => r.Text));
        Assert.Equal([0UL, 1UL, 2UL], log.Records.Select(r => r.Sequence));
        Assert.Equal([0UL, 1_000UL, 5_123_456_789UL], log.Records.Select(r => r.TimestampNanoseconds));
        Assert.Equal([5, 6, 3], log.Records.Select(r => r.Level!.Value));
        Assert.Equal([1u, 0x8000_0000u, 200u], log.Records.Select(r => r.CallerId));
        Assert.Equal("[    5.123456] oom-kill: constraint=CONSTRAINT_NONE", log.Records[2].Format());
    }
}
