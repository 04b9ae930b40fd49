using System.Text.RegularExpressions;

namespace Kvm.IntegrationTests.Native;

/// <summary>
/// A small parser for kvm.h's own style: the structure definitions (tag, typedef name, member names) and the function
/// prototypes. It reads the header as written, not through a C preprocessor, so it needs the header's conventions:
/// one member per declaration or comma-separated declarators, no nested structure bodies, no function-like macros in
/// declarations, and the <c>extern "C"</c> braces inside <c>#ifdef __cplusplus</c>.
/// </summary>
public static partial class KvmHeader
{
    /// <summary>The source tree's header (the one installed as PREFIX/include/kvm.h).</summary>
    public static string SourcePath => Path.Combine(NativeToolchain.RepoRoot, "src", "Kvm.Native", "include", "kvm.h");

    /// <summary>The structures the header uses from glibc, with their members in declaration order (POSIX and glibc's bits/types).</summary>
    public static IReadOnlyList<CStruct> GlibcStructs { get; } =
    [
        new("timeval", null, ["tv_sec", "tv_usec"], FromGlibc: true),
        new("rusage", null,
        [
            "ru_utime", "ru_stime", "ru_maxrss", "ru_ixrss", "ru_idrss", "ru_isrss", "ru_minflt", "ru_majflt", "ru_nswap",
            "ru_inblock", "ru_oublock", "ru_msgsnd", "ru_msgrcv", "ru_nsignals", "ru_nvcsw", "ru_nivcsw",
        ], FromGlibc: true),
    ];

    /// <summary>The structures kvm.h defines, in order.</summary>
    public static IReadOnlyList<CStruct> Structs(string text)
    {
        text = Clean(text);
        var list = new List<CStruct>();
        foreach (Match m in StructStart().Matches(text))
        {
            int open = m.Index + m.Length - 1;
            int close = MatchingBrace(text, open);
            string body = text[(open + 1)..close];
            var after = TypedefName().Match(text, close + 1);
            string? typedef = m.Groups["typedef"].Success && after.Success ? after.Groups[1].Value : null;
            string? tag = m.Groups["tag"].Success ? m.Groups["tag"].Value : null;
            list.Add(new CStruct(tag, typedef, Members(body)));
        }

        return list;
    }

    /// <summary>The names of the functions kvm.h declares, in order.</summary>
    public static IReadOnlyList<string> Functions(string text)
    {
        text = Clean(text);

        // Drop every brace block (the structure bodies): what is left are declarations ending in ';'.
        var flat = new System.Text.StringBuilder();
        for (int i = 0; i < text.Length; i++)
        {
            if (text[i] == '{')
            {
                i = MatchingBrace(text, i);
                continue;
            }

            flat.Append(text[i]);
        }

        var names = new List<string>();
        foreach (string statement in flat.ToString().Split(';').Select(s => s.Trim()))
        {
            if (statement.StartsWith("typedef", StringComparison.Ordinal))
            {
                continue;
            }

            var f = FunctionName().Match(statement);
            if (f.Success)
            {
                names.Add(f.Groups[1].Value);
            }
        }

        return names;
    }

    /// <summary>Comments, the C++ guards and preprocessor lines removed.</summary>
    private static string Clean(string text)
    {
        text = BlockComment().Replace(text, " ");
        text = LineComment().Replace(text, "");
        text = CplusplusBlock().Replace(text, "");
        return PreprocessorLine().Replace(text, "");
    }

    private static int MatchingBrace(string text, int open)
    {
        int depth = 0;
        for (int i = open; i < text.Length; i++)
        {
            depth += text[i] switch { '{' => 1, '}' => -1, _ => 0 };
            if (depth == 0)
            {
                return i;
            }
        }

        throw new FormatException($"kvm.h: unbalanced '{{' at offset {open}");
    }

    private static List<string> Members(string body)
    {
        var members = new List<string>();
        foreach (string declaration in body.Split(';').Select(s => s.Trim()).Where(s => s.Length > 0))
        {
            foreach (string declarator in SplitDeclarators(declaration))
            {
                string d = ArraySuffix().Replace(declarator, "").Trim();
                var name = LastIdentifier().Match(d);
                if (!name.Success)
                {
                    throw new FormatException($"kvm.h: cannot find the member name in \"{declaration}\"");
                }

                members.Add(name.Groups[1].Value);
            }
        }

        return members;
    }

    /// <summary>"int a, b[2]" gives "int a" and "b[2]": commas outside brackets and parentheses separate declarators.</summary>
    private static IEnumerable<string> SplitDeclarators(string declaration)
    {
        int depth = 0, start = 0;
        for (int i = 0; i < declaration.Length; i++)
        {
            depth += declaration[i] switch { '[' or '(' => 1, ']' or ')' => -1, _ => 0 };
            if (declaration[i] == ',' && depth == 0)
            {
                yield return declaration[start..i];
                start = i + 1;
            }
        }

        yield return declaration[start..];
    }

    [GeneratedRegex(@"/\*.*?\*/", RegexOptions.Singleline)]
    private static partial Regex BlockComment();

    [GeneratedRegex(@"//[^\n]*")]
    private static partial Regex LineComment();

    [GeneratedRegex(@"#\s*ifdef\s+__cplusplus.*?#\s*endif", RegexOptions.Singleline)]
    private static partial Regex CplusplusBlock();

    [GeneratedRegex(@"^\s*#[^\n]*$", RegexOptions.Multiline)]
    private static partial Regex PreprocessorLine();

    [GeneratedRegex(@"(?<typedef>typedef\s+)?\bstruct\s+(?<tag>\w+)?\s*\{")]
    private static partial Regex StructStart();

    [GeneratedRegex(@"\G\s*(\w+)\s*;")]
    private static partial Regex TypedefName();

    [GeneratedRegex(@"\b(kvm_\w+)\s*\(")]
    private static partial Regex FunctionName();

    [GeneratedRegex(@"(\s*\[[^\]]*\])+\s*$")]
    private static partial Regex ArraySuffix();

    [GeneratedRegex(@"(\w+)\s*$")]
    private static partial Regex LastIdentifier();
}

/// <summary>One C structure: its tag and/or typedef name, and its members in order.</summary>
public sealed record CStruct(string? Tag, string? Typedef, IReadOnlyList<string> Members, bool FromGlibc = false)
{
    /// <summary>How C code names the type: <c>struct tag</c>, else the typedef name.</summary>
    public string CType => Tag is not null ? $"struct {Tag}" : Typedef!;

    /// <summary>Every name a mirror's [CName] may use for it.</summary>
    public IEnumerable<string> Names => new[] { Tag is null ? null : $"struct {Tag}", Typedef }.OfType<string>();

    public override string ToString() => Typedef is not null && Tag is not null ? $"{CType} ({Typedef})" : CType;
}
