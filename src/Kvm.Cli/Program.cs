using System.CommandLine;
using Kvm.Cli.Commands;

namespace Kvm.Cli;

/// <summary>Entry point of <c>kmem</c>. Errors print as <c>kmem: &lt;message&gt;</c> on standard error.</summary>
internal static class Program
{
    /// <summary>Exit status for bad usage.</summary>
    public const int UsageError = 2;

    public static int Main(string[] args) => Run(args, Console.Out, Console.Error);

    /// <summary>Runs the tool with the given writers (tests call this in-process).</summary>
    public static int Run(string[] args, TextWriter output, TextWriter error)
    {
        var io = new CliIo(output, error);
        var root = new RootCommand("kmem: examine Linux kernel crash dumps and the live kernel (libkvm)");
        root.Options.Add(CliContext.Core);
        root.Options.Add(CliContext.Namelist);
        root.Options.Add(CliContext.Writable);
        root.Options.Add(CliContext.Json);
        root.Options.Add(CliContext.Swap);
        root.Options.Add(CliContext.Btf);
        root.Subcommands.Add(InfoCommand.Create(io));
        root.Subcommands.Add(NlistCommand.Create(io));
        root.Subcommands.Add(ReadCommand.Create(io));
        root.Subcommands.Add(VtopCommand.Create(io));
        root.Subcommands.Add(WriteCommand.Create(io));
        root.Subcommands.Add(PsCommand.Create(io));
        root.Subcommands.Add(DmesgCommand.Create(io));
        root.Subcommands.Add(UptimeCommand.Create(io));
        root.Subcommands.Add(SwapinfoCommand.Create(io));
        root.Subcommands.Add(FstatCommand.Create(io));
        root.Subcommands.Add(PcpuCommand.Create(io));
        root.Subcommands.Add(CptimeCommand.Create(io));
        root.Subcommands.Add(CounterCommand.Create(io));
        root.Subcommands.Add(PagesCommand.Create(io));

        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors)
            {
                error.WriteLine($"kmem: {e.Message}");
            }

            error.WriteLine("kmem: try 'kmem --help'");
            return UsageError;
        }

        return parse.Invoke(new InvocationConfiguration { Output = output, Error = error });
    }

    /// <summary>Runs a command body, turning every expected failure into <c>kmem: message</c> and exit status 1 (2 for usage).</summary>
    public static int Guard(ParseResult parse, CliIo io, Func<CliContext, int> body)
    {
        var error = io.Error;
        try
        {
            return body(CliContext.From(parse, io.Out, error));
        }
        catch (ArgumentException e)
        {
            error.WriteLine($"kmem: {e.Message}");
            return UsageError;
        }
        catch (Exception e) when (e is KvmException or IOException or UnauthorizedAccessException or InvalidDataException)
        {
            error.WriteLine($"kmem: {e.Message}");
            return 1;
        }
    }
}
