using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using Kvm.Native.Mirrors;

namespace Kvm.IntegrationTests.Native;

/// <summary>
/// The ABI of the installed libkvm.so: every structure of kvm.h (and the glibc ones it embeds) has the size and member
/// offsets of its C# mirror in src/Kvm.Native/Mirrors, as the C compiler lays them out; the library exports exactly the
/// functions kvm.h declares; its soname is libkvm.so.1; libkvm.pc builds a program. Nothing here is a hand-kept list:
/// the structures and functions come from parsing kvm.h, the mirrors from their [CName] attributes.
/// </summary>
public sealed class NativeAbiTests
{
    private static readonly Lazy<IReadOnlyDictionary<string, CLayout>> s_layouts = new(MeasureLayouts, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>Every structure of kvm.h, then glibc's, by the name C code uses.</summary>
    public static IEnumerable<object[]> Structures() =>
        AllStructs(File.ReadAllText(KvmHeader.SourcePath)).Select(s => new object[] { s.CType });

    [NativeTheory(needsDumps: false)]
    [MemberData(nameof(Structures))]
    public void Layout_EqualsTheManagedMirror(string cType)
    {
        var header = AllStructs(File.ReadAllText(NativeToolchain.InstalledHeader)).SingleOrDefault(s => s.CType == cType);
        Assert.True(header is not null, $"the installed kvm.h has no {cType}");
        var mirror = Mirrors().Where(m => header.Names.Contains(m.CName)).ToList();
        Assert.True(mirror.Count == 1, $"{header}: {mirror.Count} mirror structs carry [CName] {string.Join(" or ", header.Names.Select(n => $"\"{n}\""))} (expected exactly one in src/Kvm.Native/Mirrors)");
        var type = mirror[0].Type;
        var c = s_layouts.Value[cType];

        var problems = new List<string>();
        int managedSize = Marshal.SizeOf(type);
        if (managedSize != c.Size)
        {
            problems.Add($"sizeof({cType}) is {c.Size}, Marshal.SizeOf({type.Name}) is {managedSize}");
        }

        var fields = type.GetFields(BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic);
        var named = new Dictionary<string, FieldInfo>();
        foreach (var f in fields)
        {
            string? name = f.GetCustomAttribute<CNameAttribute>()?.Name;
            if (name is null)
            {
                problems.Add($"mirror field {type.Name}.{f.Name} has no [CName]: it stands for no member of {cType}");
            }
            else if (!named.TryAdd(name, f))
            {
                problems.Add($"two mirror fields of {type.Name} say [CName(\"{name}\")]");
            }
        }

        foreach (string member in header.Members)
        {
            var (offset, size) = c.Members[member];
            if (!named.TryGetValue(member, out var f))
            {
                problems.Add($"{cType}.{member} (offset {offset}, size {size}) has no mirror field with [CName(\"{member}\")] in {type.Name}");
                continue;
            }

            long managedOffset = Marshal.OffsetOf(type, f.Name).ToInt64();
            int managedFieldSize = FieldSize(f);
            if (managedOffset != offset || managedFieldSize != size)
            {
                problems.Add($"{cType}.{member}: C offset {offset} size {size}, mirror {type.Name}.{f.Name} offset {managedOffset} size {managedFieldSize}");
            }
        }

        foreach (string name in named.Keys.Where(n => !header.Members.Contains(n)))
        {
            problems.Add($"mirror field {type.Name}.{named[name].Name} says [CName(\"{name}\")], which is no member of {cType}");
        }

        Assert.True(problems.Count == 0, $"{header} vs {type.FullName}:\n{string.Join('\n', problems)}");
    }

    [NativeFact(needsDumps: false)]
    public void EveryMirror_StandsForAHeaderStructure()
    {
        var names = AllStructs(File.ReadAllText(NativeToolchain.InstalledHeader)).SelectMany(s => s.Names).ToHashSet();
        var orphans = Mirrors().Where(m => !names.Contains(m.CName)).Select(m => $"{m.Type.Name} [CName(\"{m.CName}\")]").ToList();
        Assert.True(orphans.Count == 0, $"mirrors of no structure of kvm.h: {string.Join(", ", orphans)}");
        Assert.True(Mirrors().Count >= 10, "the mirrors were not found in Kvm.Native");
    }

    [NativeFact(needsDumps: false)]
    public void InstalledHeader_IsTheSourceHeader() =>
        Assert.True(File.ReadAllBytes(KvmHeader.SourcePath).AsSpan().SequenceEqual(File.ReadAllBytes(NativeToolchain.InstalledHeader)),
            $"{NativeToolchain.InstalledHeader} differs from {KvmHeader.SourcePath}: reinstall (scripts/install-libkvm.sh --prefix {NativeToolchain.Prefix})");

    [NativeFact(needsDumps: false)]
    public void Exports_AreExactlyTheHeaderFunctions()
    {
        var declared = KvmHeader.Functions(File.ReadAllText(NativeToolchain.InstalledHeader)).ToHashSet();
        Assert.True(declared.Count >= 30, $"only {declared.Count} functions parsed from kvm.h");

        var defined = Nm("--defined-only").Where(s => s.Type != 'A').ToList();
        var names = defined.Select(s => s.Name).ToHashSet();
        var problems = new List<string>();
        problems.AddRange(declared.Where(d => !names.Contains(d)).Order().Select(d => $"declared in kvm.h but not defined by libkvm.so: {d}"));
        problems.AddRange(defined.Where(s => !declared.Contains(s.Name)).OrderBy(s => s.Name).Select(s => $"exported by libkvm.so but not declared in kvm.h: {s.Name} ({s.Type})"));
        problems.AddRange(defined.Where(s => declared.Contains(s.Name) && s.Type != 'T').Select(s => $"{s.Name} is exported as '{s.Type}', not as a function (T)"));
        problems.AddRange(Nm("--undefined-only").Where(s => s.Name.StartsWith("kvm_", StringComparison.Ordinal)).Select(s => $"libkvm.so needs an undefined {s.Name}"));
        Assert.True(problems.Count == 0, $"nm -D {NativeToolchain.InstalledLibrary}:\n{string.Join('\n', problems)}");
    }

    /// <summary>exports.map (the version script the library is linked with) names exactly kvm.h's functions.</summary>
    [Fact]
    public void ExportsMap_NamesExactlyTheHeaderFunctions()
    {
        var declared = KvmHeader.Functions(File.ReadAllText(KvmHeader.SourcePath)).ToHashSet();
        string map = File.ReadAllText(Path.Combine(NativeToolchain.RepoRoot, "src", "Kvm.Native", "exports.map"));
        int global = map.IndexOf("global:", StringComparison.Ordinal), local = map.IndexOf("local:", StringComparison.Ordinal);
        Assert.True(global >= 0 && local > global, "exports.map has no global: ... local: sections");
        var listed = map[(global + 7)..local].Split(';').Select(s => s.Trim()).Where(s => s.Length > 0).ToHashSet();
        Assert.Equal(declared.Order(), listed.Order());
    }

    [NativeFact(needsDumps: false)]
    public void Library_HasTheSonameLibkvmSo1()
    {
        var result = NativeToolchain.Run("readelf", ["-d", NativeToolchain.InstalledLibrary]);
        Assert.True(result.ExitCode == 0, result.Describe("readelf -d"));
        Assert.Contains("Library soname: [libkvm.so.1]", result.Stdout, StringComparison.Ordinal);

        // The link the linker uses (-lkvm) leads to the soname the loader looks for.
        string lib = Path.Combine(NativeToolchain.Prefix, "lib");
        Assert.Equal("libkvm.so.1", new FileInfo(Path.Combine(lib, "libkvm.so")).LinkTarget);
        Assert.True(File.Exists(Path.Combine(lib, "libkvm.so.1")), $"{lib}/libkvm.so.1 is missing or dangling");
    }

    [NativeFact(needsDumps: false)]
    public void PkgConfig_BuildsAProgram()
    {
        string prefix = NativeToolchain.Prefix;
        var environment = new Dictionary<string, string?> { ["PKG_CONFIG_PATH"] = Path.Combine(prefix, "lib", "pkgconfig") };
        var flags = NativeToolchain.Run("pkg-config", ["--cflags", "--libs", "libkvm"], environment: environment);
        Assert.True(flags.ExitCode == 0, flags.Describe("pkg-config --cflags --libs libkvm"));
        Assert.Contains($"-I{Path.Combine(prefix, "include")}", flags.Stdout, StringComparison.Ordinal);
        Assert.Contains("-lkvm", flags.Stdout, StringComparison.Ordinal);

        var version = NativeToolchain.Run("pkg-config", ["--modversion", "libkvm"], environment: environment);
        Assert.True(File.Exists(Path.Combine(prefix, "lib", $"libkvm.so.{version.Stdout.Trim()}")), $"pkg-config --modversion says {version.Stdout.Trim()}, but there is no libkvm.so.{version.Stdout.Trim()}");

        // This test may run before any other has compiled a program into bin/ (a fresh clone): make it here.
        string output = Path.Combine(NativeToolchain.WorkDirectory, "bin", "pkgconfig_hello");
        Directory.CreateDirectory(Path.GetDirectoryName(output)!);
        string source = Path.Combine(NativeToolchain.SourceDirectory, "pkgconfig_hello.c");
        string[] args = ["-std=c11", "-Wall", "-Wextra", "-Werror", "-o", output, source, .. flags.Stdout.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)];
        var cc = NativeToolchain.Run(NativeToolchain.Compiler!, args);
        Assert.True(cc.ExitCode == 0, cc.Describe($"cc {string.Join(' ', args)}"));

        // libkvm.pc gives -L, not an rpath: the loader finds the library through LD_LIBRARY_PATH, as for any prefix.
        var run = NativeToolchain.Run(output, [], environment: new Dictionary<string, string?> { ["LD_LIBRARY_PATH"] = Path.Combine(prefix, "lib") });
        Assert.True(run.ExitCode == 0, run.Describe("pkgconfig_hello"));
        Assert.Equal("libkvm 100\n", run.Stdout);
    }

    private static IEnumerable<CStruct> AllStructs(string header) => KvmHeader.Structs(header).Concat(KvmHeader.GlibcStructs);

    private static List<(string CName, Type Type)> Mirrors() =>
        typeof(CNameAttribute).Assembly.GetTypes()
            .Where(t => t.IsValueType && t.GetCustomAttribute<CNameAttribute>() is not null)
            .Select(t => (t.GetCustomAttribute<CNameAttribute>()!.Name, t))
            .ToList();

    private static int FieldSize(FieldInfo f) =>
        f.GetCustomAttribute<FixedBufferAttribute>() is { } fixedBuffer
            ? fixedBuffer.Length * Marshal.SizeOf(fixedBuffer.ElementType)
            : Marshal.SizeOf(f.FieldType);

    private static List<(char Type, string Name)> Nm(string which)
    {
        var result = NativeToolchain.Run("nm", ["-D", which, NativeToolchain.InstalledLibrary]);
        Assert.True(result.ExitCode == 0, result.Describe($"nm -D {which}"));
        return result.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(f => (f[^2][0], f[^1].Split('@')[0]))
            .ToList();
    }

    /// <summary>
    /// Compiles and runs a C program, generated from the installed kvm.h, that prints sizeof of every structure and
    /// offsetof and sizeof of every member.
    /// </summary>
    private static IReadOnlyDictionary<string, CLayout> MeasureLayouts()
    {
        var structs = AllStructs(File.ReadAllText(NativeToolchain.InstalledHeader)).ToList();
        var c = new StringBuilder();
        c.Append("/* Generated by NativeAbiTests from kvm.h: the layout of every structure, one line per member. */\n");
        c.Append("#include <stddef.h>\n#include <stdio.h>\n#include <kvm.h>\n\nint main(void)\n{\n");
        foreach (var s in structs)
        {
            c.Append(CultureInfo.InvariantCulture, $"\tprintf(\"{s.CType}|%zu\\n\", sizeof({s.CType}));\n");
            foreach (string m in s.Members)
            {
                c.Append(CultureInfo.InvariantCulture, $"\tprintf(\"{s.CType}|{m}|%zu|%zu\\n\", offsetof({s.CType}, {m}), sizeof((({s.CType} *)0)->{m}));\n");
            }
        }

        c.Append("\treturn 0;\n}\n");
        string dir = Path.Combine(NativeToolchain.WorkDirectory, "abi");
        Directory.CreateDirectory(dir);
        string source = Path.Combine(dir, "kvm_layouts.c");
        File.WriteAllText(source, c.ToString());
        string exe = NativeToolchain.CompileFile(source, Path.Combine(dir, "kvm_layouts"));
        var run = NativeToolchain.Run(exe, []);
        Assert.True(run.ExitCode == 0, run.Describe("kvm_layouts"));

        var layouts = new Dictionary<string, CLayout>();
        foreach (string line in run.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries))
        {
            string[] f = line.Split('|');
            if (f.Length == 2)
            {
                layouts[f[0]] = new CLayout(int.Parse(f[1], CultureInfo.InvariantCulture), []);
            }
            else
            {
                layouts[f[0]].Members[f[1]] = (long.Parse(f[2], CultureInfo.InvariantCulture), int.Parse(f[3], CultureInfo.InvariantCulture));
            }
        }

        return layouts;
    }

    private sealed record CLayout(int Size, Dictionary<string, (long Offset, int Size)> Members);
}
