using System.CommandLine;
using System.Globalization;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem pcpu [SYMBOL] [-c CPU] [-x N]</c>: where a per-CPU variable lives on each CPU (and its bytes); with no
/// symbol, the CPUs themselves and the task current on each. On FreeBSD the variable is a DPCPU one (<c>SYMBOL</c> or
/// <c>pcpu_entry_SYMBOL</c>), placed with <c>dpcpu_off</c>; CPU ids with no CPU behind them are left out.
/// </summary>
internal static class PcpuCommand
{
    private const int MaxSize = 1 << 20;

    public static Command Create(CliIo io)
    {
        var symbol = new Argument<string?>("symbol") { Description = "Per-CPU variable (e.g. runqueues, current_task)", Arity = ArgumentArity.ZeroOrOne };
        var cpu = new Option<string>("-c", "--cpu") { Description = "Only this CPU" };
        var size = new Option<string>("-x", "--size") { Description = "Also dump N bytes of the variable on each CPU" };
        var command = new Command("pcpu", "Per-CPU variable addresses, or the CPUs and their current tasks");
        command.Arguments.Add(symbol);
        command.Options.Add(cpu);
        command.Options.Add(size);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(symbol), parse.GetValue(cpu), parse.GetValue(size))));
        return command;
    }

    private static int Run(CliContext ctx, string? symbol, string? cpuText, string? sizeText)
    {
        int? only = null;
        if (cpuText is not null)
        {
            only = int.TryParse(cpuText, NumberStyles.None, CultureInfo.InvariantCulture, out int c) ? c : throw new ArgumentException($"bad CPU '{cpuText}' for -c");
        }

        int size = sizeText is null ? 0 : AddressExpression.ParseLength(sizeText, MaxSize);
        if (symbol is null && size > 0)
        {
            throw new ArgumentException("-x needs a symbol");
        }

        using var image = ctx.OpenImage();
        var summary = image.GetCpus();
        var cpus = summary.Cpus.Where(c => only is null || c.Cpu == only).ToList();
        if (only is { } wanted && cpus.Count == 0)
        {
            throw new ArgumentException($"no CPU {wanted} (possible CPUs: 0-{summary.MaxCpus - 1})");
        }

        return symbol is null ? ListCpus(ctx, summary, cpus) : ShowVariable(ctx, image, symbol, cpus, size, skipAbsent: only is null);
    }

    private static int ListCpus(CliContext ctx, CpuSummary summary, IReadOnlyList<CpuInfo> cpus)
    {
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteNumber("maxCpus", summary.MaxCpus);
                w.WriteNumber("onlineCpus", summary.OnlineCpus);
                w.WriteStartArray("cpus");
                foreach (var c in cpus)
                {
                    w.WriteStartObject();
                    w.WriteNumber("cpu", c.Cpu);
                    w.WriteBoolean("online", c.IsOnline);
                    w.WriteString("offset", JsonOutput.Hex(c.PerCpuOffset));
                    w.WriteString("currentTask", c.CurrentTask == 0 ? null : JsonOutput.Hex(c.CurrentTask));
                    if (c.CurrentPid is { } pid)
                    {
                        w.WriteNumber("pid", pid);
                    }
                    else
                    {
                        w.WriteNull("pid");
                    }

                    w.WriteString("comm", c.CurrentCommand);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            });
            return 0;
        }

        ctx.Out.WriteLine($"{"CPU",3} {"ONLINE",-6} {"OFFSET",-18} {"CURRENT",-18} {"PID",7} COMM");
        foreach (var c in cpus)
        {
            string task = c.CurrentTask == 0 ? "-" : c.CurrentTask.ToString("x16", CultureInfo.InvariantCulture);
            string pid = c.CurrentPid?.ToString(CultureInfo.InvariantCulture) ?? "-";
            ctx.Out.WriteLine($"{c.Cpu,3} {(c.IsOnline ? "yes" : "no"),-6} {c.PerCpuOffset:x16}   {task,-18} {pid,7} {c.CurrentCommand ?? "-"}".TrimEnd());
        }

        return 0;
    }

    private static int ShowVariable(CliContext ctx, KernelImage image, string symbol, IReadOnlyList<CpuInfo> cpus, int size, bool skipAbsent)
    {
        var rows = new List<(CpuInfo Cpu, ulong Address, byte[] Bytes, string? Error)>();
        foreach (var c in cpus)
        {
            ulong address;
            try
            {
                address = image.GetPerCpuAddress(symbol, c.Cpu);
            }
            catch (ArgumentException) when (skipAbsent && !c.IsOnline && image.OperatingSystem == KernelOperatingSystem.FreeBsd)
            {
                // A FreeBSD CPU id with no CPU behind it has no copy of DPCPU variables (its dpcpu_off is 0).
                continue;
            }

            var buffer = new byte[size];
            string? error = null;
            if (size > 0 && !image.TryRead(address, buffer, out int n, out var fault))
            {
                error = fault?.Message;
                buffer = buffer[..n];
            }

            rows.Add((c, address, buffer, error));
        }

        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteString("symbol", symbol);
                w.WriteNumber("size", size);
                w.WriteStartArray("cpus");
                foreach (var r in rows)
                {
                    w.WriteStartObject();
                    w.WriteNumber("cpu", r.Cpu.Cpu);
                    w.WriteBoolean("online", r.Cpu.IsOnline);
                    w.WriteString("offset", JsonOutput.Hex(r.Cpu.PerCpuOffset));
                    w.WriteString("address", JsonOutput.Hex(r.Address));
                    if (size > 0)
                    {
                        w.WriteString("bytes", Convert.ToHexStringLower(r.Bytes));
                        w.WriteString("error", r.Error);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            });
        }
        else
        {
            ctx.Out.WriteLine($"{"CPU",3} {"ONLINE",-6} {"OFFSET",-18} ADDRESS");
            foreach (var r in rows)
            {
                ctx.Out.WriteLine($"{r.Cpu.Cpu,3} {(r.Cpu.IsOnline ? "yes" : "no"),-6} {r.Cpu.PerCpuOffset:x16}   {r.Address:x16}");
                if (size > 0)
                {
                    ReadCommand.HexDump(ctx.Out, r.Address, r.Bytes);
                }
            }

            foreach (var r in rows.Where(r => r.Error is not null))
            {
                ctx.Error.WriteLine($"kmem: cpu {r.Cpu.Cpu}: {r.Error}");
            }
        }

        return rows.Any(r => r.Error is not null) ? 1 : 0;
    }
}
