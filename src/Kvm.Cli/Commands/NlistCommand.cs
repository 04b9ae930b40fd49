using System.Globalization;
using System.CommandLine;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem nlist SYM… [-c CPU] [--vnet-pid PID]</c>: look symbols up as <c>kvm_nlist</c> does; the exit status is the
/// number not found, as kvm_nlist returns. Addresses are the symbols' own, as nm prints them; on FreeBSD a name found
/// only as <c>pcpu_entry_NAME</c> or <c>vnet_entry_NAME</c> (a DPCPU or VNET variable) is shown at the address of the
/// copy libkvm returns — CPU <c>-c</c>'s (default 0), or the vnet of <c>--vnet-pid</c> (default proc0's).
/// </summary>
internal static class NlistCommand
{
    public static Command Create(CliIo io)
    {
        var names = new Argument<string[]>("symbol") { Description = "Symbol names (a leading underscore is optional)", Arity = ArgumentArity.OneOrMore };
        var cpu = new Option<string>("-c", "--cpu") { Description = "FreeBSD: the CPU whose copy of DPCPU variables is shown (kvm_dpcpu_setcpu; default 0)" };
        var vnetPid = new Option<string>("--vnet-pid") { Description = "FreeBSD: the process whose vnet's copy of VNET variables is shown (default proc0, vnet0)" };
        var command = new Command("nlist", "Look up kernel symbols; exit status is the number not found");
        command.Arguments.Add(names);
        command.Options.Add(cpu);
        command.Options.Add(vnetPid);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(names)!, parse.GetValue(cpu), parse.GetValue(vnetPid))));
        return command;
    }

    private static int Run(CliContext ctx, string[] names, string? cpuText, string? vnetPidText)
    {
        int cpu = cpuText is null ? 0 : int.TryParse(cpuText, NumberStyles.None, CultureInfo.InvariantCulture, out int c) ? c : throw new ArgumentException($"bad CPU '{cpuText}' for -c");
        int? vnetPid = vnetPidText is null ? null : int.TryParse(vnetPidText, NumberStyles.None, CultureInfo.InvariantCulture, out int p) ? p : throw new ArgumentException($"bad pid '{vnetPidText}' for --vnet-pid");
        using var image = ctx.OpenImage();
        var results = names.Select(n => Lookup(image, n, cpu, vnetPid)).ToList();
        int missing = results.Count(r => !r.IsFound);
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartArray();
                foreach (var r in results)
                {
                    w.WriteStartObject();
                    w.WriteString("name", r.Name);
                    w.WriteBoolean("found", r.IsFound);
                    if (r.Symbol is { } s)
                    {
                        w.WriteString("address", JsonOutput.Hex(Shown(r)));
                        w.WriteString("type", s.Type.ToString());
                        w.WriteString("source", s.Source);
                        if (IsCopy(r))
                        {
                            w.WriteString("symbol", s.Name);
                            w.WriteString("value", JsonOutput.Hex(s.Address));
                            w.WriteString("relocation", r.Relocation == NamelistRelocation.DynamicPerCpu ? "dpcpu" : "vnet");
                        }
                    }

                    if (r.Note is { } note)
                    {
                        w.WriteString("note", note);
                    }

                    w.WriteEndObject();
                }

                w.WriteEndArray();
            });
        }
        else
        {
            // As nm prints them: as many hex digits as the kernel's pointers have (8 on i386).
            int digits = image.PointerSize * 2;
            foreach (var r in results)
            {
                string where = r.Relocation switch
                {
                    NamelistRelocation.DynamicPerCpu => string.Create(CultureInfo.InvariantCulture, $" ({r.Symbol!.Value.Name} of CPU {cpu})"),
                    NamelistRelocation.VirtualNetwork => $" ({r.Symbol!.Value.Name} of the vnet of {(vnetPid is { } pid and not 0 ? $"pid {pid}" : "proc0")})",
                    _ => r.Symbol is { } s && s.Name != r.Name && !(r.Name.StartsWith('_') && s.Name == r.Name[1..]) ? $" ({s.Name})" : string.Empty,
                };
                ctx.Out.WriteLine(r.Symbol is { } sym ? $"{Shown(r).ToString($"x{digits}", CultureInfo.InvariantCulture)} {sym.Type} {r.Name}{where}" : $"{new string(' ', digits)} ? {r.Name} (not found)");
            }

            foreach (var r in results.Where(r => r.Note is not null))
            {
                ctx.Error.WriteLine($"kmem: {r.Note}");
            }
        }

        return Math.Min(missing, 125);
    }

    /// <summary>
    /// FreeBSD: <c>kvm_nlist</c>'s look-up with its DPCPU and VNET prefixes. Linux: the symbol as the namelists give
    /// it (a per-CPU variable's offset, as nm shows it).
    /// </summary>
    private static NamelistEntry Lookup(KernelImage image, string name, int cpu, int? vnetPid)
    {
        if (image.OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            return image.LookupNamelist(name, cpu, vnetPid);
        }

        return image.TryGetSymbol(name, out var symbol)
            ? new NamelistEntry(name, symbol, symbol.Address, NamelistRelocation.None, null)
            : new NamelistEntry(name, null, 0, NamelistRelocation.None, null);
    }

    /// <summary>A FreeBSD DPCPU or VNET variable found under its prefix: its value is an offset, shown relocated.</summary>
    private static bool IsCopy(NamelistEntry r) => r.Relocation is NamelistRelocation.DynamicPerCpu or NamelistRelocation.VirtualNetwork;

    private static ulong Shown(NamelistEntry r) => IsCopy(r) ? r.Value : r.Symbol!.Value.Address;
}
