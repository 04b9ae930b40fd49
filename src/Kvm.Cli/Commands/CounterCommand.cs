using System.CommandLine;
using System.Globalization;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem counter ADDR|SYM[+OFF] [-p]</c>: a 64-bit per-CPU counter — FreeBSD's <c>counter(9)</c>, a Linux
/// <c>u64 __percpu</c> — as <c>kvm_counter_u64_fetch</c> sums it, with each CPU's copy (<c>kvm_read_zpcpu</c>).
/// With <c>-p</c> the expression is where the counter's pointer is stored (a <c>counter_u64_t</c> variable).
/// </summary>
internal static class CounterCommand
{
    public static Command Create(CliIo io)
    {
        var address = new Argument<string>("address") { Description = "The counter's per-CPU allocation: ADDR or SYM[+OFF]" };
        var pointer = new Option<bool>("-p", "--pointer") { Description = "ADDR holds the counter (a counter_u64_t variable): read the pointer there first" };
        var command = new Command("counter", "A 64-bit per-CPU counter (counter(9)): each CPU's copy and the sum");
        command.Arguments.Add(address);
        command.Options.Add(pointer);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(address)!, parse.GetValue(pointer))));
        return command;
    }

    private static int Run(CliContext ctx, string expression, bool pointer)
    {
        using var image = ctx.OpenImage();
        ulong where = AddressExpression.Resolve(expression, image);
        ulong counter = pointer ? image.ReadPointer(where) : where;
        ulong total = image.ReadPerCpuCounter(counter);
        var copies = new List<(int Cpu, ulong Address, ulong Value)>();
        foreach (var c in image.GetCpus().Cpus.Where(c => c.IsOnline))
        {
            ulong copy = image.GetPerCpuAllocationAddress(counter, c.Cpu);
            copies.Add((c.Cpu, copy, image.Read<ulong>(copy)));
        }

        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteString("counter", JsonOutput.Hex(counter));
                w.WriteNumber("value", total);
                w.WriteStartArray("cpus");
                foreach (var (cpu, address, value) in copies)
                {
                    w.WriteStartObject();
                    w.WriteNumber("cpu", cpu);
                    w.WriteString("address", JsonOutput.Hex(address));
                    w.WriteNumber("value", value);
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteEndObject();
            });
            return 0;
        }

        ctx.Out.WriteLine($"{"CPU",3} {"ADDRESS",-16} VALUE");
        foreach (var (cpu, address, value) in copies)
        {
            ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{cpu,3} {address:x16} {value}"));
        }

        ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"total {total}"));
        return 0;
    }
}
