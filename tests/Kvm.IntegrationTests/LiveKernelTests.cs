using System.Globalization;

namespace Kvm.IntegrationTests;

/// <summary>A fact on the running kernel: skipped with the reason when /proc/kcore cannot be read here.</summary>
public sealed class LiveKernelFactAttribute : FactAttribute
{
    public LiveKernelFactAttribute()
    {
        if (!File.Exists("/proc/kcore"))
        {
            Skip = "/proc/kcore is absent on this machine (a kernel without CONFIG_PROC_KCORE, a container, or a microVM): the live kernel cannot be read";
        }
        else if (Environment.UserName != "root")
        {
            Skip = "/proc/kcore needs root";
        }
    }
}

/// <summary>Issue 4 on the running kernel, compared with /proc.</summary>
public sealed class LiveKernelTests
{
    [LiveKernelFact]
    public void OwnProcess_MatchesProcSelf()
    {
        using var image = KernelImage.OpenLive();
        int pid = Environment.ProcessId;
        var me = image.FindProcess(pid);
        Assert.NotNull(me);
        var stat = File.ReadAllText("/proc/self/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        Assert.Equal(int.Parse(fields[1], CultureInfo.InvariantCulture), me!.ParentPid);
        Assert.Equal(File.ReadAllText("/proc/self/comm").TrimEnd('\n'), me.Command);
        var cmdline = File.ReadAllBytes("/proc/self/cmdline");
        var argv = image.GetArguments(me);
        Assert.True(argv.IsComplete, argv.Reason);
        Assert.Equal(TruthProcess.Split(cmdline).Select(Convert.ToHexString), argv.Values.Select(Convert.ToHexString));
    }

    [LiveKernelFact]
    public void Processes_CoverProc()
    {
        using var image = KernelImage.OpenLive();
        var before = Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)).Select(n => int.Parse(n!, CultureInfo.InvariantCulture)).ToHashSet();
        var ours = image.GetProcesses().Processes.Select(p => p.Pid).ToHashSet();
        var after = Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(n => n!.All(char.IsAsciiDigit)).Select(n => int.Parse(n!, CultureInfo.InvariantCulture)).ToHashSet();

        // Processes that lived through both listings of /proc must be in the kernel's list.
        before.IntersectWith(after);
        Assert.Empty(before.Except(ours));
    }

    [LiveKernelFact]
    public void LoadAverageAndSwap_MatchProc()
    {
        using var image = KernelImage.OpenLive();
        var swaps = File.ReadAllLines("/proc/swaps").Skip(1).Select(l => l.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)).ToList();
        var ours = image.GetSwapInfo();
        Assert.Equal(swaps.Select(s => s[0]), ours.Areas.Select(a => a.Name));
        Assert.Equal(swaps.Select(s => long.Parse(s[2], CultureInfo.InvariantCulture)), ours.Areas.Select(a => a.TotalPages * ours.PageSize / 1024));
        var load = File.ReadAllText("/proc/loadavg").Split(' ');
        Assert.True(Math.Abs(image.GetLoadAverage().Fifteen - double.Parse(load[2], CultureInfo.InvariantCulture)) < 0.05);
    }
}
