using System.Globalization;
using Kvm.Images;

namespace Kvm.IntegrationTests;

/// <summary>
/// Each lab variant's swap.img: the header matches what the guest's mkswap was given, and every page the guest saw
/// swapped out (pagemap swap entries) holds, at its swap offset, the bytes of that process's argv/environment.
/// </summary>
public sealed class SwapImageTests
{
    public static IEnumerable<object[]> Variants() => DumpLab.AllVariants.Select(v => new object[] { v.Name });

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void Header_MatchesGuestMkswap(string variant)
    {
        var v = DumpLab.Variant(variant);
        using var swap = SwapImage.Open(v.SwapImage);

        Assert.Equal(v.Truth.GetProperty("swapUuid").GetString(), swap.Uuid.ToString());
        Assert.Equal(v.Truth.GetProperty("swapLabel").GetString(), swap.Label);
        Assert.Equal(4096, swap.PageSize);
        Assert.False(swap.IsBigEndian);
        Assert.Equal((new FileInfo(v.SwapImage).Length / 4096) - 1, swap.LastPage);
    }

    [LabTheory]
    [MemberData(nameof(Variants))]
    public void SwappedPages_HoldTheProcessArgumentsAndEnvironment(string variant)
    {
        var v = DumpLab.Variant(variant);
        using var swap = SwapImage.Open(v.SwapImage);
        var processes = v.Truth.GetProperty("processes").EnumerateArray().ToDictionary(p => p.GetProperty("pid").GetInt32());
        var pages = v.Truth.GetProperty("swappedPages").EnumerateArray().ToList();
        Assert.NotEmpty(pages);
        var page = new byte[swap.PageSize];
        foreach (var entry in pages)
        {
            Assert.Equal(0, entry.GetProperty("swapType").GetInt32());
            ulong va = Hex(entry.GetProperty("va").GetString()!);
            var process = processes[entry.GetProperty("pid").GetInt32()];
            swap.ReadPage(entry.GetProperty("swapOffset").GetUInt64(), page);

            int compared = Compare(page, va, Hex(process.GetProperty("argStart").GetString()!), process.GetProperty("cmdlineHex").GetString()!)
                + Compare(page, va, Hex(process.GetProperty("envStart").GetString()!), process.GetProperty("environHex").GetString()!);
            Assert.True(compared > 0, $"{variant}: swapped page 0x{va:x} of pid {process.GetProperty("pid")} overlaps neither argv nor environ");
        }
    }

    /// <summary>Compares the part of <paramref name="hex"/> (bytes starting at <paramref name="start"/>) that falls on the page at <paramref name="va"/>.</summary>
    private static int Compare(byte[] page, ulong va, ulong start, string hex)
    {
        byte[] bytes = Convert.FromHexString(hex);
        ulong from = Math.Max(va, start);
        ulong to = Math.Min(va + (ulong)page.Length, start + (ulong)bytes.Length);
        if (from >= to)
        {
            return 0;
        }

        Assert.Equal(bytes.AsSpan((int)(from - start), (int)(to - from)).ToArray(), page.AsSpan((int)(from - va), (int)(to - from)).ToArray());
        return (int)(to - from);
    }

    private static ulong Hex(string text) => ulong.Parse(text.AsSpan(2), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}
