using System.Text.RegularExpressions;

namespace Kvm.Tests.Architecture;

/// <summary>
/// The layers of src/Kvm depend one way only: IO → Images → Translation → Memory → Symbols → Types → {Linux, FreeBsd} → façade.
/// A source file in a layer may name its own layer and lower ones (and the public vocabulary in namespace Kvm), never a
/// higher one; the two operating systems' walkers are peers and never name each other.
/// </summary>
public sealed partial class LayeringTests
{
    private static readonly string[] s_order = ["IO", "Images", "Translation", "Memory", "Symbols", "Types", "Linux", "FreeBsd"];

    /// <summary>Layers at the same height: neither may name the other.</summary>
    private static readonly string[][] s_peers = [["Linux", "FreeBsd"]];

    [Fact]
    public void NoLayerReferencesAHigherOne()
    {
        string root = Path.Combine(RepoRoot(), "src", "Kvm");
        var violations = new List<string>();
        for (int i = 0; i < s_order.Length; i++)
        {
            string dir = Path.Combine(root, s_order[i]);
            if (!Directory.Exists(dir))
            {
                continue;
            }

            var higher = s_order.Skip(i + 1).ToList();
            foreach (var peers in s_peers.Where(g => g.Contains(s_order[i])))
            {
                higher.AddRange(peers.Where(p => p != s_order[i] && !higher.Contains(p)));
            }
            foreach (var file in Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories))
            {
                string text = File.ReadAllText(file);
                foreach (var layer in higher)
                {
                    if (Regex.IsMatch(text, $@"\bKvm\.{layer}\b"))
                    {
                        violations.Add($"{Path.GetRelativePath(root, file)} references Kvm.{layer}");
                    }
                }

                if (ReferencesFacade().IsMatch(text))
                {
                    violations.Add($"{Path.GetRelativePath(root, file)} references the façade");
                }
            }
        }

        Assert.Empty(violations);
    }

    private static string RepoRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Kvm.slnx")))
        {
            dir = dir.Parent;
        }

        return dir?.FullName ?? throw new InvalidOperationException("repository root not found");
    }

    [GeneratedRegex(@"\bKernelImage\b(?!Options)")]
    private static partial Regex ReferencesFacade();
}
