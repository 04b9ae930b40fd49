using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Text;

namespace Kvm.IntegrationTests.Native;

/// <summary>
/// What the C tests of libkvm.so need, made once per test run: the installed library (scripts/install-libkvm.sh into
/// artifacts/libkvm-tests/prefix, or the prefix named by <c>KVM_LIBKVM_PREFIX</c>), the C compiler, and each program of
/// tests/native compiled against the installed kvm.h and libkvm.so exactly as a user would:
/// <c>cc -std=c11 -Wall -Wextra -Werror -I PREFIX/include ... -L PREFIX/lib -Wl,-rpath,PREFIX/lib -lkvm</c>.
/// </summary>
public static class NativeToolchain
{
    /// <summary>How long one C test program may run.</summary>
    public static readonly TimeSpan RunTimeout = TimeSpan.FromSeconds(90);

    private static readonly Lazy<string> s_repoRoot = new(FindRepoRoot);
    private static readonly Lazy<string?> s_compiler = new(FindCompiler);
    private static readonly Lazy<string> s_prefix = new(InstallOrFind, LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly ConcurrentDictionary<string, Lazy<string>> s_programs = new();
    private static readonly ConcurrentDictionary<string, Lazy<string>> s_expectations = new();
    private static readonly Lazy<string> s_truncatedCore = new(MakeTruncatedCore, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The repository: the directory holding Kvm.slnx.</summary>
    public static string RepoRoot => s_repoRoot.Value;

    /// <summary>tests/native: the C sources.</summary>
    public static string SourceDirectory => Path.Combine(RepoRoot, "tests", "native");

    /// <summary>Where the run keeps its prefix, binaries and expectation files (under the git-ignored artifacts/).</summary>
    public static string WorkDirectory => Path.Combine(RepoRoot, "artifacts", "libkvm-tests");

    /// <summary>The C compiler (<c>cc</c> on PATH), or null.</summary>
    public static string? Compiler => s_compiler.Value;

    /// <summary>Why the C tests cannot run here, or null. In CI nothing is a reason: the tests run and fail.</summary>
    public static string? SkipReason(bool needsDumps)
    {
        if (DumpLab.IsCi)
        {
            return null;
        }

        if (Compiler is null)
        {
            return "no C compiler (cc) on PATH: scripts/test.sh installs gcc; in CI this is a failure";
        }

        return needsDumps ? DumpLab.MissingReason : null;
    }

    /// <summary>The installation prefix (lib/libkvm.so, include/kvm.h, lib/pkgconfig/libkvm.pc).</summary>
    public static string Prefix => s_prefix.Value;

    /// <summary>The installed kvm.h.</summary>
    public static string InstalledHeader => Path.Combine(Prefix, "include", "kvm.h");

    /// <summary>The installed library (the unversioned link).</summary>
    public static string InstalledLibrary => Path.Combine(Prefix, "lib", "libkvm.so");

    /// <summary>
    /// Compiles tests/native/<paramref name="name"/>.c once per run and returns the executable's path. A program that does
    /// not compile or link fails the calling test with the compiler's output.
    /// </summary>
    public static string Program(string name) =>
        s_programs.GetOrAdd(name, n => new Lazy<string>(() => Compile(n), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    /// <summary>Compiles a C source file against the installed kvm.h and libkvm.so; returns the executable.</summary>
    public static string CompileFile(string source, string output, params string[] extra)
    {
        string compiler = Compiler ?? throw new InvalidOperationException("no C compiler (cc) on PATH: install gcc (scripts/test.sh does)");
        string prefix = Prefix;
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        string[] args =
        [
            "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", Path.Combine(prefix, "include"), "-o", output, source,
            "-L", Path.Combine(prefix, "lib"), $"-Wl,-rpath,{Path.Combine(prefix, "lib")}", "-lkvm", .. extra,
        ];
        var result = Run(compiler, args, TimeSpan.FromMinutes(2));
        if (result.ExitCode != 0 || !File.Exists(output))
        {
            throw new InvalidOperationException($"{Path.GetFileName(source)} does not compile against the installed kvm.h/libkvm.so:\n$ {compiler} {string.Join(' ', args)}\n{result.Stdout}{result.Stderr}");
        }

        return output;
    }

    /// <summary>
    /// The expectation file a C test reads (-E): facts of the guest's truth.json and of the dump, one per line (see
    /// tests/native/ktest.h).
    /// </summary>
    public static string Expectations(LabDump dump) =>
        s_expectations.GetOrAdd($"{dump.Variant.Name}/{dump.Name}", _ => new Lazy<string>(() => WriteExpectations(dump), LazyThreadSafetyMode.ExecutionAndPublication)).Value;

    /// <summary>
    /// A copy of the first 92 % of the default variant's qemu-kdump-zlib.kdump: its page table and header are intact, the
    /// data of the last pages lies beyond the end of the file (libkvm-api.md 5.5-9).
    /// </summary>
    public static string TruncatedCore => s_truncatedCore.Value;

    /// <summary>Runs a program; the result has its exit code and output, and says if it timed out.</summary>
    /// <param name="file">The program.</param>
    /// <param name="args">Its arguments.</param>
    /// <param name="timeout">How long it may run (<see cref="RunTimeout"/> by default); then it is killed.</param>
    /// <param name="environment">Variables to set, or to remove (a null value).</param>
    public static ProcessResult Run(string file, IEnumerable<string> args, TimeSpan? timeout = null, IDictionary<string, string?>? environment = null)
    {
        var start = new ProcessStartInfo(file)
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
            StandardErrorEncoding = Encoding.UTF8,
        };
        foreach (string a in args)
        {
            start.ArgumentList.Add(a);
        }

        foreach (var (key, value) in environment ?? new Dictionary<string, string?>())
        {
            if (value is null)
            {
                start.Environment.Remove(key);
            }
            else
            {
                start.Environment[key] = value;
            }
        }

        var watch = Stopwatch.StartNew();
        using var process = Process.Start(start) ?? throw new InvalidOperationException($"cannot start {file}");
        process.StandardInput.Close();
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        bool exited = process.WaitForExit(timeout ?? RunTimeout);
        if (!exited)
        {
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }

        return new ProcessResult(exited ? process.ExitCode : -1, stdout.Result, stderr.Result, !exited, watch.Elapsed);
    }

    private static string FindRepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kvm.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException($"Kvm.slnx not found above {AppContext.BaseDirectory}");
    }

    private static string? FindCompiler()
    {
        foreach (string dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':', StringSplitOptions.RemoveEmptyEntries))
        {
            string candidate = Path.Combine(dir, "cc");
            if (File.Exists(candidate))
            {
                return candidate;
            }
        }

        return null;
    }

    /// <summary>KVM_LIBKVM_PREFIX when set (scripts/test.sh installs there first), else a fresh install for this run.</summary>
    private static string InstallOrFind()
    {
        if (Environment.GetEnvironmentVariable("KVM_LIBKVM_PREFIX") is { Length: > 0 } given)
        {
            string full = Path.GetFullPath(given);
            foreach (string file in new[] { "lib/libkvm.so", "lib/libkvm.so.1", "include/kvm.h", "lib/pkgconfig/libkvm.pc" })
            {
                if (!File.Exists(Path.Combine(full, file)))
                {
                    throw new InvalidOperationException($"KVM_LIBKVM_PREFIX={given} has no {file}: run scripts/install-libkvm.sh --prefix {given}");
                }
            }

            return full;
        }

        string prefix = Path.Combine(WorkDirectory, "prefix");
        if (Directory.Exists(prefix))
        {
            Directory.Delete(prefix, recursive: true);
        }

        Directory.CreateDirectory(prefix);
        string script = Path.Combine(RepoRoot, "scripts", "install-libkvm.sh");

        // The test host's MSBuild variables would point the nested dotnet publish at this build's MSBuild.
        var environment = Environment.GetEnvironmentVariables().Keys.Cast<string>()
            .Where(k => k.StartsWith("MSBUILD", StringComparison.OrdinalIgnoreCase) || k is "DOTNET_HOST_PATH")
            .ToDictionary(k => k, _ => (string?)null);
        var result = Run("bash", [script, "--prefix", prefix], TimeSpan.FromMinutes(10), environment);
        if (result.ExitCode != 0 || !File.Exists(Path.Combine(prefix, "lib", "libkvm.so")))
        {
            throw new InvalidOperationException($"scripts/install-libkvm.sh --prefix {prefix} failed (exit {result.ExitCode}{(result.TimedOut ? ", timed out" : "")}):\n{result.Stdout}{result.Stderr}");
        }

        return prefix;
    }

    private static string Compile(string name)
    {
        string source = Path.Combine(SourceDirectory, name + ".c");
        string output = Path.Combine(WorkDirectory, "bin", name);
        return CompileFile(source, output, "-pthread");
    }

    private static string MakeTruncatedCore()
    {
        var source = DumpLab.Variant("default").Dump("qemu-kdump-zlib.kdump");
        string path = Path.Combine(WorkDirectory, "truncated-qemu-kdump-zlib.kdump");
        Directory.CreateDirectory(WorkDirectory);
        long keep = source.Size * 92 / 100;
        using (var input = File.OpenRead(source.Path))
        using (var output = File.Create(path))
        {
            var buffer = new byte[1 << 20];
            long left = keep;
            while (left > 0)
            {
                int n = input.Read(buffer, 0, (int)Math.Min(buffer.Length, left));
                if (n <= 0)
                {
                    break;
                }

                output.Write(buffer, 0, n);
                left -= n;
            }
        }

        return path;
    }

    private static string WriteExpectations(LabDump dump)
    {
        var v = dump.Variant;
        var truth = v.Truth;
        var lines = new List<string>
        {
            $"# {v.Name}/{dump.Name}: written by the C tests' driver from truth.json and manifest.json",
            $"variant {v.Name}",
            $"dump {dump.Name}",
            $"user_pages {(dump.KeepsUserPages ? 1 : 0)}",
            $"cpus {v.Manifest.GetProperty("qemu").GetProperty("smp").GetInt32()}",
            $"page_offset_base {truth.GetProperty("pageOffsetBase").GetString()}",
            $"kaslr_offset {truth.GetProperty("kaslrOffset").GetString()}",
            $"uptime {truth.GetProperty("uptimeSeconds").GetDouble().ToString(CultureInfo.InvariantCulture)}",
            "loadavg " + string.Join(' ', truth.GetProperty("loadavgAtStop").GetProperty("values").EnumerateArray().Select(x => x.GetDouble().ToString(CultureInfo.InvariantCulture))),
            $"banner {v.ProcVersion}",
            $"marker {truth.GetProperty("kmsgMarker").GetString()}",
        };
        // /proc/stat's cpu line as FreeBSD's CPUSTATES: user, nice, system, irq + softirq, idle + iowait.
        if (TruthProcStat.AtStop(v) is { } stat)
        {
            long[] t = stat.Total;
            lines.Add($"cptime_at_stop {t[0]} {t[1]} {t[2]} {t[5] + t[6]} {t[3] + t[4]}");
        }

        foreach (var s in truth.GetProperty("kallsyms").EnumerateObject())
        {
            lines.Add($"sym {s.Name} 0x{s.Value.GetString()}");
        }

        // Per-CPU variables: System.map has their offsets in the per-CPU area (KASLR does not move them).
        string[] perCpu = ["runqueues", "current_task", "cpu_number"];
        foreach (string line in File.ReadLines(v.SystemMap))
        {
            string[] f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length == 3 && perCpu.Contains(f[2]))
            {
                lines.Add($"percpu {f[2]} 0x{f[0]}");
            }
        }

        foreach (var s in truth.GetProperty("swaps").EnumerateArray())
        {
            lines.Add($"swap {s.GetProperty("filename").GetString()} {s.GetProperty("sizeKiB").GetInt64()} {s.GetProperty("usedKiB").GetInt64()}");
        }

        foreach (var r in truth.GetProperty("roles").EnumerateObject())
        {
            lines.Add($"role {r.Name} {r.Value.GetInt32()}");
        }

        foreach (int pid in TruthSwappedPage.All(v).Select(s => s.Pid).Distinct().Order())
        {
            lines.Add($"swapped {pid}");
        }

        static string Hex(byte[] b) => b.Length == 0 ? "-" : Convert.ToHexStringLower(b);
        foreach (var p in truth.GetProperty("processes").EnumerateArray())
        {
            var uid = p.GetProperty("uid");
            lines.Add(string.Join(' ', "proc", p.GetProperty("pid").GetInt32(), p.GetProperty("ppid").GetInt32(), uid[0].GetUInt32(), uid[1].GetUInt32(),
                p.GetProperty("kernelThread").GetBoolean() ? 1 : 0, Hex(Encoding.UTF8.GetBytes(p.GetProperty("comm").GetString()!)),
                Hex(Convert.FromHexString(p.GetProperty("cmdlineHex").GetString()!)), Hex(Convert.FromHexString(p.GetProperty("environHex").GetString()!))));
            // kinfo_proc's tty group, dispositions and fault counts, for the user processes asleep at the guest's
            // snapshot (not the collector, which was reading /proc): they sleep on to the dump, so /proc's values hold
            // (ProcessDetailTests says why). tsid is the session of a process with a tty, whose session it is.
            if (TruthDetail.All(v).FirstOrDefault(d => d.Pid == p.GetProperty("pid").GetInt32()) is { State: 'S', KernelThread: false } detail &&
                detail.Pid != truth.GetProperty("roles").GetProperty("collector").GetInt32())
            {
                lines.Add(string.Join(' ', "kinfo", detail.Pid, detail.Tpgid, detail.TtyNr != 0 ? detail.Sid : 0, $"0x{detail.SigIgn:x}", $"0x{detail.SigCgt:x}",
                    detail.MinFlt, detail.CminFlt));
            }

            if (p.GetProperty("numThreads").GetInt32() > 1)
            {
                lines.Add($"threads {p.GetProperty("pid").GetInt32()} {p.GetProperty("numThreads").GetInt32()}");
            }

            if (p.GetProperty("argStart").ValueKind == System.Text.Json.JsonValueKind.String)
            {
                lines.Add(string.Join(' ', "area", p.GetProperty("pid").GetInt32(), p.GetProperty("argStart").GetString(), p.GetProperty("argEnd").GetString(),
                    p.GetProperty("envStart").GetString(), p.GetProperty("envEnd").GetString()));
            }
        }

        string path = Path.Combine(WorkDirectory, "expect", $"{v.Name}-{dump.Name}.txt");
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllLines(path, lines);
        return path;
    }
}

/// <summary>The outcome of one program run.</summary>
public sealed record ProcessResult(int ExitCode, string Stdout, string Stderr, bool TimedOut, TimeSpan Elapsed)
{
    /// <summary>The "not ok" lines of a C test's output.</summary>
    public IEnumerable<string> FailedChecks => Stdout.Split('\n').Where(l => l.StartsWith("not ok", StringComparison.Ordinal));

    /// <summary>A message naming what went wrong: the failing checks first, then the end of the output and stderr.</summary>
    public string Describe(string what)
    {
        var text = new StringBuilder();
        text.Append(CultureInfo.InvariantCulture, $"{what}: exit {ExitCode}{(TimedOut ? " (timed out)" : "")} after {Elapsed.TotalSeconds:F1} s\n");
        foreach (string line in FailedChecks)
        {
            text.Append(line).Append('\n');
        }

        string[] tail = Stdout.Split('\n').Where(l => l.Length > 0).TakeLast(3).ToArray();
        text.Append("--- last lines of stdout:\n").Append(string.Join('\n', tail)).Append('\n');
        if (Stderr.Length > 0)
        {
            text.Append("--- stderr:\n").Append(Stderr.Length > 4000 ? Stderr[..4000] + "…" : Stderr);
        }

        return text.ToString();
    }
}

/// <summary>A fact that needs the C compiler (and, unless told otherwise, the lab's dumps): skipped when they are missing, failed in CI.</summary>
public sealed class NativeFactAttribute : FactAttribute
{
    public NativeFactAttribute(bool needsDumps = true)
    {
        if (NativeToolchain.SkipReason(needsDumps) is { } reason)
        {
            Skip = reason;
        }
    }
}

/// <summary>A theory with the skip rule of <see cref="NativeFactAttribute"/>.</summary>
public sealed class NativeTheoryAttribute : TheoryAttribute
{
    public NativeTheoryAttribute(bool needsDumps = true)
    {
        if (NativeToolchain.SkipReason(needsDumps) is { } reason)
        {
            Skip = reason;
        }
    }
}
