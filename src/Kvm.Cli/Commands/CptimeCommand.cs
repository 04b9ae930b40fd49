using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem cptime</c>: the CPU time counters, as the cpu lines of <c>/proc/stat</c> and as FreeBSD's
/// <c>cp_time[CPUSTATES]</c> (<c>kvm_getcptime</c>).
/// </summary>
internal static class CptimeCommand
{
    public static Command Create(CliIo io)
    {
        var command = new Command("cptime", "CPU time counters: the cpu lines of /proc/stat and FreeBSD's cp_time");
        command.SetAction(parse => Program.Guard(parse, io, Run));
        return command;
    }

    private static int Run(CliContext ctx)
    {
        using var image = ctx.OpenImage();
        var times = image.GetCpuTimes();
        string source = times.IdleSource == CpuIdleSource.TickSched ? "tick_sched" : "cpustat";
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("userHz", CpuTimes.UserHz);
                w.WriteString("idleSource", source);
                if (times.MonotonicNanoseconds is { } now)
                {
                    w.WriteNumber("monotonicNs", now);
                }
                else
                {
                    w.WriteNull("monotonicNs");
                }

                w.WriteString("note", times.Note);
                w.WriteStartArray("cpTime");
                foreach (long ticks in times.GetCpuStates())
                {
                    w.WriteNumberValue(ticks);
                }

                w.WriteEndArray();
                w.WritePropertyName("total");
                WriteRow(w, times.Total);
                w.WriteStartArray("cpus");
                foreach (var c in times.Cpus)
                {
                    WriteRow(w, c);
                }

                w.WriteEndArray();
                w.WriteEndObject();
            });
            return 0;
        }

        // /proc/stat's own lines: the total over every possible CPU, then one line per online CPU.
        ctx.Out.WriteLine(times.Total.ToProcStatLine());
        foreach (var c in times.Cpus.Where(c => c.IsOnline))
        {
            ctx.Out.WriteLine(c.ToProcStatLine());
        }

        var cp = times.GetCpuStates();
        ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cp_time: user {cp[(int)CpuState.User]} nice {cp[(int)CpuState.Nice]} sys {cp[(int)CpuState.System]} intr {cp[(int)CpuState.Interrupt]} idle {cp[(int)CpuState.Idle]} (ticks of 1/{CpuTimes.UserHz} s)"));
        string clock = times.MonotonicNanoseconds is { } ns ? string.Create(CultureInfo.InvariantCulture, $", idle periods in progress measured to the monotonic clock at {ns / 1e9:F9} s") : string.Empty;
        int offline = times.Cpus.Count(c => !c.IsOnline);
        string offlineText = offline == 0 ? string.Empty : string.Create(CultureInfo.InvariantCulture, $"; {offline} offline CPU{(offline == 1 ? string.Empty : "s")} in the total only");
        ctx.Out.WriteLine($"idle and iowait: {(times.IdleSource == CpuIdleSource.TickSched ? "tick_cpu_sched (NO_HZ)" : "cpustat")}{clock}{offlineText}");
        if (times.Note is { } note)
        {
            ctx.Error.WriteLine($"kmem: warning: {note}");
        }

        return 0;
    }

    private static void WriteRow(Utf8JsonWriter w, CpuTimes t)
    {
        w.WriteStartObject();
        if (t.Cpu >= 0)
        {
            w.WriteNumber("cpu", t.Cpu);
            w.WriteBoolean("online", t.IsOnline);
        }

        w.WriteNumber("user", t.User);
        w.WriteNumber("nice", t.Nice);
        w.WriteNumber("system", t.System);
        w.WriteNumber("idle", t.Idle);
        w.WriteNumber("iowait", t.IoWait);
        w.WriteNumber("irq", t.Irq);
        w.WriteNumber("softirq", t.SoftIrq);
        w.WriteNumber("steal", t.Steal);
        w.WriteNumber("guest", t.Guest);
        w.WriteNumber("guestNice", t.GuestNice);
        w.WriteStartArray("ticks");
        foreach (long ticks in t.ToProcStatTicks())
        {
            w.WriteNumberValue(ticks);
        }

        w.WriteEndArray();
        w.WriteEndObject();
    }
}
