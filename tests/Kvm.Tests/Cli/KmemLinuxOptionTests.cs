using Kvm.Cli;
using Kvm.Cli.Commands;

namespace Kvm.Tests.Cli;

/// <summary>Option parsing of the Linux walker commands: usage errors exit 2 with a kmem message, before any image is opened.</summary>
public sealed class KmemLinuxOptionTests
{
    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [Theory]
    [InlineData("ps", "-p", "12x", "bad process id '12x' for -p")]
    [InlineData("ps", "-p", "1,-2", "bad process id '-2' for -p")]
    [InlineData("ps", "-U", "root", "bad user id 'root' for -U")]
    [InlineData("ps", "-o", "pid,bogus", "unknown column 'bogus' for -o")]
    [InlineData("ps", "-o", ",", "-o needs at least one column")]
    [InlineData("fstat", "-p", "abc", "bad process id 'abc' for -p")]
    [InlineData("pcpu", "-c", "one", "bad CPU 'one' for -c")]
    [InlineData("dmesg", "-n", "-3", "bad record count '-3' for --tail")]
    public void BadOptions_AreUsageErrors(string command, string option, string value, string message)
    {
        // The dump does not exist: the usage error must be found first.
        var (exit, output, error) = Run("-M", "/nonexistent/vmcore", command, option, value);
        Assert.Equal(2, exit);
        Assert.Equal(string.Empty, output);
        Assert.StartsWith($"kmem: {message}", error, StringComparison.Ordinal);
    }

    [Fact]
    public void PcpuSize_NeedsASymbol() =>
        Assert.Equal(2, Run("-M", "/nonexistent/vmcore", "pcpu", "-x", "8").Exit);

    [Fact]
    public void GlobalSwapAndBtf_AreAcceptedAfterTheCommand()
    {
        // Recursive like -M: parsed anywhere; the missing dump then fails with status 1, not a usage error.
        var (exit, _, error) = Run("ps", "-M", "/nonexistent/vmcore", "-S", "/tmp/a.img", "--swap", "/tmp/b.img", "--btf", "/tmp/vmlinux");
        Assert.Equal(1, exit);
        Assert.Contains("/nonexistent/vmcore", error, StringComparison.Ordinal);
    }

    [Fact]
    public void Columns_AcceptAliasesAndRepeats()
    {
        var columns = PsCommand.ParseColumns(["pid,lwp", "command", "NI"]);
        Assert.Equal(["PID", "LWP", "COMMAND", "NI"], columns.Select(c => c.Header));
        Assert.Equal(["PID", "PPID", "UID", "STAT", "TIME", "COMMAND"], PsCommand.ParseColumns(null).Select(c => c.Header));
    }

    [Fact]
    public void Ids_AcceptCommaListsAndRepeats() =>
        Assert.Equal([1L, 2L, 30L], PsCommand.ParseIds(["1,2", "30"], "-p", "process id")!.Order());

    [Theory]
    [InlineData(0.0, "0.00")]
    [InlineData(0.48828125, "0.49")]        // avenrun 1000: (1000+10)*100>>11 = 49
    [InlineData(0.126953125, "0.13")]
    [InlineData(0.04296875, "0.04")]
    [InlineData(0.9951171875, "1.00")]      // 2038+10 = 2048: rounds up across the integer
    [InlineData(0.994140625, "0.99")]       // 2036+10 = 2046
    [InlineData(12.5, "12.50")]
    public void LoadAverage_RoundsAsProcLoadavg(double value, string text) =>
        Assert.Equal(text, UptimeCommand.LoadAverage(value));

    [Theory]
    [InlineData(39.9, "39 secs")]
    [InlineData(60, "1 min")]
    [InlineData(2340, "39 mins")]
    [InlineData(3600, "1 hr")]
    [InlineData(3600 + 39 * 60, "1:39")]
    [InlineData(86400 * 2 + 3600 * 3 + 60 * 4, "2 days, 3:04")]
    [InlineData(86400, "1 day")]
    public void Uptime_IsWordedAsUptime1(double seconds, string text) =>
        Assert.Equal(text, UptimeCommand.FormatUptime(TimeSpan.FromSeconds(seconds)));

    [Theory]
    [InlineData(0, "00:00:00")]
    [InlineData(34.7, "00:00:34")]
    [InlineData(3 * 3600 + 62, "03:01:02")]
    [InlineData(86400 * 3 + 5, "3-00:00:05")]
    public void CpuTime_IsPsStyle(double seconds, string text) =>
        Assert.Equal(text, PsCommand.CpuTime(TimeSpan.FromSeconds(seconds)));

    [Fact]
    public void FileFlags_PrintAsFdinfo()
    {
        Assert.Equal("0100002", FstatCommand.Octal(0x8002));
        Assert.Equal("00", FstatCommand.Octal(0));
        Assert.Equal("rw", FstatCommand.Access(0x8002));
    }

    [Theory]
    [InlineData(0u, null)]
    [InlineData(101u, "T101")]
    [InlineData(0x8000_0001u, "C1")]
    public void Caller_IsPrintkStyle(uint id, string? text) => Assert.Equal(text, DmesgCommand.Caller(id));
}
