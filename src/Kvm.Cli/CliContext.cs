using System.CommandLine;

namespace Kvm.Cli;

/// <summary>The global options every command shares (BSD style: <c>-M core -N namelist</c>), read from one parse.</summary>
internal sealed class CliContext
{
    public static readonly Option<string[]> Core = new("-M", "--core") { Description = "Crash dump to examine (repeat for the files of a split kdump set); the live kernel when absent", Recursive = true, AllowMultipleArgumentsPerToken = false };
    public static readonly Option<string[]> Namelist = new("-N", "--namelist") { Description = "System.map, vmlinux or kallsyms listing (repeatable)", Recursive = true };
    public static readonly Option<bool> Writable = new("-w", "--write") { Description = "Open the image for writing", Recursive = true };
    public static readonly Option<bool> Json = new("--json") { Description = "Print JSON instead of text", Recursive = true };
    public static readonly Option<string[]> Swap = new("-S", "--swap") { Description = "Image of a swap device or swap file, to read swapped-out user pages (repeatable)", Recursive = true, AllowMultipleArgumentsPerToken = false };
    public static readonly Option<string> Btf = new("--btf") { Description = "BTF file (raw BTF or a vmlinux with .BTF) describing the kernel's structures", Recursive = true };

    private CliContext(ParseResult parse, TextWriter output, TextWriter error)
    {
        Parse = parse;
        Out = output;
        Error = error;
        CoreFiles = parse.GetValue(Core) ?? [];
        Namelists = parse.GetValue(Namelist) ?? [];
        IsWritable = parse.GetValue(Writable);
        IsJson = parse.GetValue(Json);
        SwapFiles = parse.GetValue(Swap) ?? [];
        BtfFile = parse.GetValue(Btf);
    }

    public ParseResult Parse { get; }

    public TextWriter Out { get; }

    public TextWriter Error { get; }

    public IReadOnlyList<string> CoreFiles { get; }

    public IReadOnlyList<string> Namelists { get; }

    public bool IsWritable { get; }

    public bool IsJson { get; }

    public IReadOnlyList<string> SwapFiles { get; }

    public string? BtfFile { get; }

    public static CliContext From(ParseResult parse, TextWriter output, TextWriter error) => new(parse, output, error);

    /// <summary>Opens the image the options name.</summary>
    public KernelImage OpenImage()
    {
        var options = new KernelImageOptions { Namelists = Namelists, Writable = IsWritable, SwapFiles = SwapFiles, Btf = BtfFile };
        return CoreFiles.Count == 0 ? KernelImage.OpenLive(options) : KernelImage.Open(CoreFiles, options);
    }
}
