using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem ps</c>: the processes of the image, procps style (<c>PID PPID UID STAT TIME COMMAND</c>), kernel
/// threads and the idle task (pid 0) included, with arguments read through each process's page tables.
/// </summary>
internal static class PsCommand
{
    private const string DefaultColumns = "pid,ppid,uid,stat,time,args";

    /// <summary>The columns <c>-o</c> knows: names (first is canonical), header, and whether the values are numbers (right-aligned).</summary>
    private static readonly Column[] s_columns =
    [
        new(["pid"], "PID", true, r => Num(r.P.Tgid)),
        new(["tid", "lwp", "spid"], "LWP", true, r => Num(r.P.Pid)),
        new(["ppid"], "PPID", true, r => Num(r.P.ParentPid)),
        new(["pgid", "pgrp"], "PGID", true, r => Num(r.P.ProcessGroupId)),
        new(["sid", "sess"], "SID", true, r => Num(r.P.SessionId)),
        new(["tgid"], "TGID", true, r => Num(r.P.Tgid)),
        new(["uid", "ruid"], "UID", true, r => Num(r.P.Uid)),
        new(["euid"], "EUID", true, r => Num(r.P.EffectiveUid)),
        new(["gid", "rgid"], "GID", true, r => Num(r.P.Gid)),
        new(["egid"], "EGID", true, r => Num(r.P.EffectiveGid)),

        // The guest's passwd is not in the dump: the user is the numeric real uid.
        new(["user", "ruser"], "USER", false, r => Num(r.P.Uid)),
        new(["stat"], "STAT", false, r => Stat(r.P)),
        new(["state", "s"], "S", false, r => r.P.State.ToString()),
        new(["ni", "nice"], "NI", true, r => Num(r.P.Nice)),
        new(["pri"], "PRI", true, r => Num(r.P.Priority)),
        new(["psr", "cpu"], "PSR", true, r => Num(r.P.LastCpu)),
        new(["nlwp", "threads", "thcount"], "NLWP", true, r => Num(r.P.ThreadCount)),
        new(["rss", "rssize"], "RSS", true, r => Num(r.P.ResidentPages * r.PageSize / 1024)),
        new(["vsz", "vsize"], "VSZ", true, r => Num(r.P.VirtualSize / 1024)),
        new(["tty", "tt", "tname"], "TT", false, r => r.P.TtyName ?? "?"),
        new(["tpgid"], "TPGID", true, r => Num(r.P.TtyProcessGroupId)),
        new(["min_flt", "minflt"], "MINFL", true, r => Num(r.P.MinorFaults)),
        new(["maj_flt", "majflt"], "MAJFL", true, r => Num(r.P.MajorFaults)),
        new(["cmin_flt", "cminflt"], "CMINFL", true, r => Num(r.P.ChildMinorFaults)),
        new(["cmaj_flt", "cmajflt"], "CMAJFL", true, r => Num(r.P.ChildMajorFaults)),

        // procps prints signal sets as 16 hex digits, bit n − 1 for signal n; pending is the thread's and the process's.
        new(["pending", "sig"], "PENDING", false, r => Mask(r.P.PendingSignals | r.P.SharedPendingSignals)),
        new(["blocked", "sigmask"], "BLOCKED", false, r => Mask(r.P.BlockedSignals)),
        new(["ignored", "sigignore"], "IGNORED", false, r => Mask(r.P.IgnoredSignals)),
        new(["caught", "sigcatch"], "CAUGHT", false, r => Mask(r.P.CaughtSignals)),
        new(["start", "start_time"], "START", true, r => Num((long)r.P.StartTime.TotalSeconds)),
        new(["time", "cputime"], "TIME", true, r => CpuTime(r.P.UserTime + r.P.SystemTime)),
        new(["comm", "ucomm", "ucmd"], "COMMAND", false, r => SurrogateEscape.ForDisplay(r.P.CommandBytes)),
        new(["args", "command", "cmd"], "COMMAND", false, Args),
        new(["addr", "task"], "ADDR", false, r => r.P.TaskAddress.ToString("x16", CultureInfo.InvariantCulture)),
    ];

    public static Command Create(CliIo io)
    {
        var columns = new Option<string[]>("-o") { Description = "Columns, comma-separated (pid, ppid, pgid, sid, tgid, tid, uid, euid, gid, egid, user, stat, state, ni, pri, psr, nlwp, rss, vsz, tty, tpgid, min_flt, maj_flt, cmin_flt, cmaj_flt, pending, blocked, ignored, caught, start, time, comm, args, addr)" };
        var pids = new Option<string[]>("-p") { Description = "Only these process ids (repeatable, or a comma list)" };
        var users = new Option<string[]>("-U") { Description = "Only processes with these real user ids (numeric; repeatable, or a comma list)" };
        var threads = new Option<bool>("-H") { Description = "One line per thread" };
        var environment = new Option<bool>("-e") { Description = "Show the environment after the command (BSD ps -e)" };
        var command = new Command("ps", "List processes and kernel threads, with their arguments");
        command.Options.Add(columns);
        command.Options.Add(pids);
        command.Options.Add(users);
        command.Options.Add(threads);
        command.Options.Add(environment);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(
            ctx,
            ParseColumns(parse.GetValue(columns)),
            ParseIds(parse.GetValue(pids), "-p", "process id"),
            ParseIds(parse.GetValue(users), "-U", "user id"),
            parse.GetValue(threads),
            parse.GetValue(environment))));
        return command;
    }

    /// <summary>Resolves <c>-o</c> lists (repeatable, comma-separated) into columns.</summary>
    /// <exception cref="ArgumentException">A column name is unknown (a usage error).</exception>
    public static IReadOnlyList<Column> ParseColumns(string[]? lists)
    {
        var names = (lists is { Length: > 0 } ? lists : [DefaultColumns])
            .SelectMany(l => l.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        var result = new List<Column>();
        foreach (var name in names)
        {
            var column = s_columns.FirstOrDefault(c => c.Names.Contains(name.ToLowerInvariant()))
                ?? throw new ArgumentException($"unknown column '{name}' for -o (known: {string.Join(", ", s_columns.Select(c => c.Names[0]))})");
            result.Add(column);
        }

        if (result.Count == 0)
        {
            throw new ArgumentException("-o needs at least one column");
        }

        return result;
    }

    /// <summary>Parses repeatable, comma-separated numeric ids.</summary>
    /// <exception cref="ArgumentException">An id is not a non-negative decimal number.</exception>
    public static IReadOnlySet<long>? ParseIds(string[]? lists, string option, string what)
    {
        if (lists is not { Length: > 0 })
        {
            return null;
        }

        var ids = new HashSet<long>();
        foreach (var item in lists.SelectMany(l => l.Split(',', StringSplitOptions.TrimEntries)))
        {
            if (!long.TryParse(item, NumberStyles.None, CultureInfo.InvariantCulture, out long id) || id > uint.MaxValue)
            {
                throw new ArgumentException($"bad {what} '{item}' for {option}");
            }

            ids.Add(id);
        }

        return ids;
    }

    private static int Run(CliContext ctx, IReadOnlyList<Column> columns, IReadOnlySet<long>? pids, IReadOnlySet<long>? uids, bool threads, bool withEnvironment)
    {
        using var image = ctx.OpenImage();
        var list = image.GetProcesses(new ProcessQuery(IncludeThreads: threads, IncludeIdle: true));
        var processes = list.Processes
            .Where(p => (pids is null || pids.Contains(p.Tgid)) && (uids is null || uids.Contains(p.Uid)))
            .OrderBy(p => p.Tgid).ThenBy(p => p.Pid)
            .ToList();
        bool needArgs = ctx.IsJson || columns.Any(c => c.Names[0] == "args");
        var rows = processes.Select(p => new Row(
            p,
            image.PageSize,
            needArgs && !p.IsKernelThread ? image.GetArguments(p) : null,
            (ctx.IsJson || withEnvironment) && !p.IsKernelThread ? image.GetEnvironment(p) : null,
            withEnvironment)).ToList();

        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteStartArray("processes");
                foreach (var row in rows)
                {
                    WriteJson(w, row);
                }

                w.WriteEndArray();
                JsonOutput.WriteStrings(w, "errors", list.Errors);
                w.WriteEndObject();
            });
        }
        else
        {
            WriteTable(ctx.Out, columns, rows);
            foreach (var e in list.Errors)
            {
                ctx.Error.WriteLine($"kmem: {e}");
            }
        }

        // A process list cut short by a corrupt or unreadable task is a failure even though what was read is printed.
        return list.Errors.Count > 0 ? 1 : 0;
    }

    private static void WriteJson(Utf8JsonWriter w, Row row)
    {
        var p = row.P;
        w.WriteStartObject();
        w.WriteNumber("pid", p.Pid);
        w.WriteNumber("ppid", p.ParentPid);
        w.WriteNumber("tgid", p.Tgid);
        w.WriteNumber("pgid", p.ProcessGroupId);
        w.WriteNumber("sid", p.SessionId);
        w.WriteNumber("uid", p.Uid);
        w.WriteNumber("euid", p.EffectiveUid);
        w.WriteNumber("gid", p.Gid);
        w.WriteNumber("egid", p.EffectiveGid);
        SurrogateEscape.WriteString(w, "comm", p.CommandBytes);
        w.WriteString("state", p.State.ToString());
        w.WriteBoolean("kernelThread", p.IsKernelThread);
        w.WriteNumber("threads", p.ThreadCount);
        w.WriteNumber("nice", p.Nice);
        w.WriteNumber("priority", p.Priority);
        w.WriteNumber("cpu", p.LastCpu);
        w.WriteNumber("rssPages", p.ResidentPages);
        w.WriteNumber("vsizeBytes", p.VirtualSize);
        w.WriteNumber("startTimeSeconds", Seconds(p.StartTime));
        w.WriteNumber("userTimeSeconds", Seconds(p.UserTime));
        w.WriteNumber("systemTimeSeconds", Seconds(p.SystemTime));
        w.WriteString("tty", p.TtyName);
        w.WriteNumber("ttyNr", p.TtyNumber);
        w.WriteNumber("tpgid", p.TtyProcessGroupId);
        w.WriteNumber("tsid", p.TtySessionId);
        w.WriteNumber("minFlt", p.MinorFaults);
        w.WriteNumber("majFlt", p.MajorFaults);
        w.WriteNumber("cminFlt", p.ChildMinorFaults);
        w.WriteNumber("cmajFlt", p.ChildMajorFaults);
        w.WriteString("sigPending", JsonOutput.Hex(p.PendingSignals));
        w.WriteString("sigSharedPending", JsonOutput.Hex(p.SharedPendingSignals));
        w.WriteString("sigBlocked", JsonOutput.Hex(p.BlockedSignals));
        w.WriteString("sigIgnored", JsonOutput.Hex(p.IgnoredSignals));
        w.WriteString("sigCaught", JsonOutput.Hex(p.CaughtSignals));
        w.WriteString("files", JsonOutput.Hex(p.FilesAddress));
        w.WriteString("kernelStack", JsonOutput.Hex(p.KernelStackAddress));
        w.WriteString("task", JsonOutput.Hex(p.TaskAddress));
        WriteStrings(w, "argv", "argvError", row.Args);
        WriteStrings(w, "env", "envError", row.Env);
        w.WriteEndObject();
    }

    private static void WriteStrings(Utf8JsonWriter w, string name, string errorName, ProcessStrings? strings)
    {
        SurrogateEscape.WriteStringArray(w, name, strings?.Values ?? []);
        w.WriteString(errorName, strings?.Reason);
    }

    private static void WriteTable(TextWriter output, IReadOnlyList<Column> columns, IReadOnlyList<Row> rows)
    {
        var cells = rows.Select(r => columns.Select(c => c.Value(r)).ToArray()).ToList();
        var widths = columns.Select((c, i) => cells.Select(row => row[i].Length).Append(c.Header.Length).Max()).ToArray();
        var line = new StringBuilder();
        void Emit(IReadOnlyList<string> values)
        {
            line.Clear();
            for (int i = 0; i < columns.Count; i++)
            {
                if (i > 0)
                {
                    line.Append(' ');
                }

                bool last = i == columns.Count - 1;
                line.Append(columns[i].Numeric ? values[i].PadLeft(widths[i]) : last ? values[i] : values[i].PadRight(widths[i]));
            }

            output.WriteLine(line.ToString().TrimEnd());
        }

        Emit(columns.Select(c => c.Header).ToList());
        foreach (var row in cells)
        {
            Emit(row);
        }
    }

    /// <summary>The command with its arguments: <c>[comm]</c> for kernel threads (as procps), bare comm when argv is unreadable or empty.</summary>
    private static string Args(Row r)
    {
        var p = r.P;
        string text;
        if (p.IsKernelThread)
        {
            text = $"[{SurrogateEscape.ForDisplay(p.CommandBytes)}]";
        }
        else if (r.Args is null || r.Args.Reason is not null || r.Args.Values.Count == 0)
        {
            // The reason is in --json (argvError); the text column stays a plain command name as ps would show it.
            text = SurrogateEscape.ForDisplay(p.CommandBytes);
        }
        else
        {
            text = string.Join(' ', r.Args.Values.Select(v => SurrogateEscape.ForDisplay(v)));
        }

        if (r.WithEnvironment && r.Env is { Values.Count: > 0 } env)
        {
            text += " " + string.Join(' ', env.Values.Select(v => SurrogateEscape.ForDisplay(v)));
        }

        return text;
    }

    /// <summary>procps's STAT: the state letter, then &lt; (high priority), N (low), s (session leader), l (multi-threaded).</summary>
    private static string Stat(KernelProcess p)
    {
        var s = new StringBuilder(4).Append(p.State);
        if (p.Nice < 0)
        {
            s.Append('<');
        }
        else if (p.Nice > 0)
        {
            s.Append('N');
        }

        if (p.SessionId == p.Tgid && p.Tgid != 0)
        {
            s.Append('s');
        }

        if (p.ThreadCount > 1)
        {
            s.Append('l');
        }

        return s.ToString();
    }

    /// <summary>Cumulative CPU time as ps prints it: <c>[DD-]HH:MM:SS</c>.</summary>
    public static string CpuTime(TimeSpan time)
    {
        long total = (long)time.TotalSeconds;
        long days = total / 86400;
        string clock = string.Create(CultureInfo.InvariantCulture, $"{total / 3600 % 24:D2}:{total / 60 % 60:D2}:{total % 60:D2}");
        return days > 0 ? string.Create(CultureInfo.InvariantCulture, $"{days}-{clock}") : clock;
    }

    private static double Seconds(TimeSpan t) => t.Ticks / (double)TimeSpan.TicksPerSecond;

    private static string Num(long value) => value.ToString(CultureInfo.InvariantCulture);

    private static string Mask(ulong signals) => signals.ToString("x16", CultureInfo.InvariantCulture);

    private static string Num(ulong value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>One <c>-o</c> column.</summary>
    internal sealed record Column(string[] Names, string Header, bool Numeric, Func<Row, string> Value);

    /// <summary>A process with the strings read for it.</summary>
    internal sealed record Row(KernelProcess P, int PageSize, ProcessStrings? Args, ProcessStrings? Env, bool WithEnvironment);
}
