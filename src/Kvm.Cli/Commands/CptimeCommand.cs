using System.CommandLine;
using System.Globalization;
using System.Text.Json;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem cptime</c>: the CPU time counters, as the cpu lines of <c>/proc/stat</c> and as FreeBSD's
/// <c>cp_time[CPUSTATES]</c> (<c>kvm_getcptime</c>). From a FreeBSD kernel, the <c>/proc/stat</c> lines are its
/// <c>pc_cp_time</c> converted to USER_HZ ticks (through <c>stathz</c>), and <c>cp_time</c> is the kernel's own.
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
        string source = times.IdleSource switch
        {
            CpuIdleSource.TickSched => "tick_sched",
            CpuIdleSource.StatClock => "pc_cp_time",
            _ => "cpustat",
        };
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("userHz", CpuTimes.UserHz);
                w.WriteString("idleSource", source);
                if (times.StatClockHz is { } stathz)
                {
                    w.WriteNumber("statHz", stathz);
                }
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
        string unit = times.IdleSource != CpuIdleSource.StatClock
            ? string.Create(CultureInfo.InvariantCulture, $"ticks of 1/{CpuTimes.UserHz} s")
            : times.StatClockHz is { } hz ? string.Create(CultureInfo.InvariantCulture, $"statclock ticks of 1/{hz} s") : "statclock ticks";
        ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"cp_time: user {cp[(int)CpuState.User]} nice {cp[(int)CpuState.Nice]} sys {cp[(int)CpuState.System]} intr {cp[(int)CpuState.Interrupt]} idle {cp[(int)CpuState.Idle]} ({unit})"));
        if (times.IdleSource == CpuIdleSource.StatClock)
        {
            // FreeBSD keeps no idle accounting of its own to describe: every figure is pc_cp_time.
            int absent = times.Cpus.Count(c => !c.IsOnline);
            string absentText = absent == 0 ? string.Empty : string.Create(CultureInfo.InvariantCulture, $"; {absent} CPU id{(absent == 1 ? string.Empty : "s")} with no CPU");
            ctx.Out.WriteLine($"FreeBSD pc_cp_time of each CPU{absentText}");
            if (times.Note is { } freeBsdNote)
            {
                ctx.Error.WriteLine($"kmem: warning: {freeBsdNote}");
            }

            return 0;
        }

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
