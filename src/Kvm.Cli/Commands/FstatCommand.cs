using System.CommandLine;
using System.Globalization;

namespace Kvm.Cli.Commands;

/// <summary><c>kmem fstat [-p PID]</c>: open files of processes, as BSD fstat lists them.</summary>
internal static class FstatCommand
{
    /// <summary><c>O_ACCMODE</c>: the access-mode bits of the open flags.</summary>
    private const uint AccessMode = 3;

    public static Command Create(CliIo io)
    {
        var pid = new Option<string>("-p") { Description = "Only this process id" };
        var command = new Command("fstat", "List open files (descriptor, type, access, position, path)");
        command.Options.Add(pid);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, ParsePid(parse.GetValue(pid)))));
        return command;
    }

    private static int? ParsePid(string? text)
    {
        if (text is null)
        {
            return null;
        }

        return int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : throw new ArgumentException($"bad process id '{text}' for -p");
    }

    private static int Run(CliContext ctx, int? pid)
    {
        using var image = ctx.OpenImage();
        var list = image.GetOpenFiles(pid);
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteStartArray("files");
                foreach (var f in list.Files)
                {
                    w.WriteStartObject();
                    w.WriteNumber("pid", f.Pid);
                    w.WriteString("comm", f.Command);
                    w.WriteNumber("fd", f.Fd);
                    w.WriteString("path", f.Path);
                    w.WriteNumber("flags", f.Flags);
                    w.WriteString("flagsOctal", Octal(f.Flags));
                    w.WriteNumber("pos", f.Position);
                    w.WriteString("type", TypeName(f.Type));
                    w.WriteNumber("inode", f.Inode);
                    w.WriteString("file", JsonOutput.Hex(f.FileAddress));
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                JsonOutput.WriteStrings(w, "errors", list.Errors);
                w.WriteEndObject();
            });
            return 0;
        }

        // The user column needs the owners; one process walk, not one per file.
        var owners = image.GetProcesses().Processes.GroupBy(p => p.Tgid).ToDictionary(g => g.Key, g => g.First().Uid);
        var rows = list.Files.Select(f => new[]
        {
            owners.TryGetValue(f.Pid, out uint uid) ? uid.ToString(CultureInfo.InvariantCulture) : "?",
            f.Command,
            f.Pid.ToString(CultureInfo.InvariantCulture),
            f.Fd.ToString(CultureInfo.InvariantCulture),
            TypeName(f.Type),
            Access(f.Flags),
            f.Position.ToString(CultureInfo.InvariantCulture),
            f.Path,
        }).ToList();
        string[] header = ["USER", "CMD", "PID", "FD", "MODE/TYPE", "R/W", "POS", "PATH"];
        bool[] numeric = [true, false, true, true, false, false, true, false];
        var widths = header.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
        foreach (var row in rows.Prepend(header))
        {
            var cells = row.Select((v, i) => i == row.Length - 1 ? v : numeric[i] ? v.PadLeft(widths[i]) : v.PadRight(widths[i]));
            ctx.Out.WriteLine(string.Join(' ', cells).TrimEnd());
        }

        foreach (var e in list.Errors)
        {
            ctx.Error.WriteLine($"kmem: {e}");
        }

        return 0;
    }

    /// <summary>The flags as <c>/proc/PID/fdinfo</c> prints them: octal with a leading 0.</summary>
    public static string Octal(uint flags) => "0" + Convert.ToString(flags, 8);

    public static string Access(uint flags) => (flags & AccessMode) switch
    {
        0 => "r",
        1 => "w",
        2 => "rw",
        _ => "?",
    };

    public static string TypeName(OpenFileType type) => type switch
    {
        OpenFileType.Regular => "reg",
        OpenFileType.Directory => "dir",
        OpenFileType.CharacterDevice => "chr",
        OpenFileType.BlockDevice => "blk",
        OpenFileType.Fifo => "fifo",
        OpenFileType.Socket => "sock",
        OpenFileType.SymbolicLink => "link",
        _ => "unknown",
    };
}
