using System.Text.Json;

namespace Kvm.IntegrationTests;

/// <summary>
/// The lab's i386 dumps (Debian 12's 686 and 686-pae kernels under qemu-system-i386), read against the truth the
/// guest recorded. They live beside the amd64 lab, each variant under its own kernel's directory, so they are found
/// here by their manifest's architecture rather than through <see cref="DumpLab.Variants"/>. Debian builds these
/// kernels without BTF and without KALLSYMS_ALL, so what needs structure layouts (processes, swap areas, clocks) is
/// not checked here; the layout, kallsyms, translation, the kernel log and the page walk are.
/// </summary>
public sealed class I386DumpTests
{
    private static readonly Lazy<IReadOnlyList<LabVariant>> s_variants = new(FindVariants);

    public static IReadOnlyList<LabVariant> Variants => s_variants.Value;

    /// <summary>Every single-file dump of every i386 variant: (variant directory, file name).</summary>
    public static IEnumerable<object[]> Dumps() =>
        Variants.SelectMany(v => v.Dumps.Where(d => d.SplitSet is null).Select(d => new object[] { v.Directory, d.Name }));

    [I386Theory]
    [MemberData(nameof(Dumps))]
    public void Open_LayoutMatchesTruth(string variant, string name)
    {
        var v = LabVariant.Load(variant);
        using var image = KernelImage.Open(v.Dump(name).Path);
        bool pae = v.Truth.GetProperty("paging").GetProperty("pae").GetBoolean();

        Assert.Equal("i386", image.Architecture);
        Assert.Equal(4, image.PointerSize);
        Assert.Equal(pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel, image.Layout.PagingMode);
        Assert.Equal(v.PagingLevels, image.Layout.PagingLevels);
        Assert.Equal(v.KaslrOffset, image.KaslrOffset);
        Assert.Equal(v.Release, image.Release);
        Assert.Equal(0xC0000000UL, image.Layout.PageOffsetBase);
        Assert.Null(image.KallsymsError);
    }

    [I386Theory]
    [MemberData(nameof(Dumps))]
    public void Symbols_FromKallsymsInMemory_MatchTheGuest(string variant, string name)
    {
        var v = LabVariant.Load(variant);
        using var image = KernelImage.Open(v.Dump(name).Path);

        // What the guest's /proc/kallsyms listed (text only: no KALLSYMS_ALL); the rest may come from VMCOREINFO.
        foreach (var symbol in v.Truth.GetProperty("kallsyms").EnumerateObject())
        {
            Assert.True(image.TryGetSymbol(symbol.Name, out var found), $"{symbol.Name} not found");
            Assert.Equal(Convert.ToUInt64(symbol.Value.GetString()!, 16), found.Address);
        }

        foreach (var symbol in v.Truth.GetProperty("symbols").EnumerateObject())
        {
            if (image.TryGetSymbol(symbol.Name, out var found))
            {
                Assert.Equal(Convert.ToUInt64(symbol.Value.GetString()!, 16), found.Address);
            }
        }
    }

    [I386Theory]
    [MemberData(nameof(Dumps))]
    public void Namelist_LinkTimeSystemMap_IsDisplacedByTheKaslrOffset(string variant, string name)
    {
        var v = LabVariant.Load(variant);
        using var image = KernelImage.Open(v.Dump(name).Path, new KernelImageOptions { Namelists = [v.SystemMap] });

        Assert.Equal(v.KaslrOffset, image.KaslrOffset);
        Assert.True(image.Layout.KaslrOffsetKnown);
        foreach (var symbol in v.Truth.GetProperty("symbols").EnumerateObject())
        {
            Assert.Equal(Convert.ToUInt64(symbol.Value.GetString()!, 16), image.GetSymbol(symbol.Name).Address);
        }

        Assert.Equal(v.ProcVersion.TrimEnd('\n'), image.ReadBanner().TrimEnd('\n'));
    }

    [I386Theory]
    [MemberData(nameof(Dumps))]
    public void Translation_DirectMapAndKernelText(string variant, string name)
    {
        var v = LabVariant.Load(variant);
        using var image = KernelImage.Open(v.Dump(name).Path);

        // The guest read its VMCOREINFO page through /proc/kcore at PAGE_OFFSET + its physical address.
        var read = v.Truth.GetProperty("vmcoreinfoRead");
        ulong pa = Convert.ToUInt64(read.GetProperty("paddr").GetString()!, 16);
        ulong va = Convert.ToUInt64(read.GetProperty("kcoreVaddr").GetString()!, 16);
        var walk = image.Translate(va);
        Assert.True(walk.Succeeded, walk.Fault?.Message);
        Assert.Equal(pa, walk.PhysicalAddress);
        Assert.All(walk.Steps, s => Assert.Equal(image.Layout.PagingMode == PagingMode.X86Pae ? 8 : 4, s.EntrySize));

        // Kernel text is in the direct map on i386: _text translates to _text - PAGE_OFFSET.
        ulong text = image.GetSymbol("_text").Address;
        Assert.True(image.TryTranslate(text, out ulong textPa));
        Assert.Equal(text - 0xC0000000UL, textPa);
    }

    [I386Theory]
    [MemberData(nameof(Dumps))]
    public void KernelLog_ContainsGuestDmesgInOrder(string variant, string name)
    {
        var v = LabVariant.Load(variant);
        using var image = KernelImage.Open(v.Dump(name).Path);
        var log = image.ReadKernelLog();
        Assert.Empty(log.Warnings);

        var ours = log.Records.SelectMany(r => r.Format().Split('\n')).ToList();
        var truth = v.Truth.GetProperty("dmesg").GetString()!.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.NotEmpty(truth);
        int at = 0;
        foreach (var line in truth)
        {
            int found = ours.IndexOf(line, at);
            Assert.True(found >= 0, $"{name}: dmesg line not found (in order) after our line {at}: {line}");
            at = found + 1;
        }

        string marker = v.Truth.GetProperty("kmsgMarker").GetString()!;
        Assert.Single(log.Records, r => r.Text.Contains(marker, StringComparison.Ordinal));
    }

    [I386Theory]
    [MemberData(nameof(Dumps))]
    public void Pages_DirectMapIsLowMemoryAndKernelMapIsAboveIt(string variant, string name)
    {
        var v = LabVariant.Load(variant);
        using var image = KernelImage.Open(v.Dump(name).Path, new KernelImageOptions { Namelists = [v.SystemMap] });
        ulong highMemory = (ulong)image.Read<uint>(image.GetSymbol("high_memory").Address);
        long kernelMap = 0, directOnly = 0;
        foreach (var page in image.EnumeratePages())
        {
            if (page.DirectMapAddress != 0)
            {
                Assert.Equal(page.PhysicalAddress + 0xC0000000UL, page.DirectMapAddress);
                Assert.True(page.DirectMapAddress < highMemory);
            }

            if (page.KernelMapAddress != 0)
            {
                Assert.InRange(page.KernelMapAddress, highMemory, uint.MaxValue);
                kernelMap++;
            }
            else
            {
                directOnly++;
            }
        }

        Assert.True(kernelMap > 0);
        Assert.True(directOnly > 0);
    }

    private static IReadOnlyList<LabVariant> FindVariants()
    {
        if (!Directory.Exists(DumpLab.BaseDirectory))
        {
            return [];
        }

        var found = new List<LabVariant>();
        foreach (var kernel in Directory.EnumerateDirectories(DumpLab.BaseDirectory).Order(StringComparer.Ordinal))
        {
            foreach (var dir in Directory.EnumerateDirectories(kernel).Order(StringComparer.Ordinal))
            {
                string manifest = Path.Combine(dir, "manifest.json");
                if (!File.Exists(manifest))
                {
                    continue;
                }

                using var doc = JsonDocument.Parse(File.ReadAllText(manifest));
                if (doc.RootElement.TryGetProperty("architecture", out var arch) && arch.GetString() == "i386")
                {
                    found.Add(LabVariant.Load(dir));
                }
            }
        }

        return found;
    }
}

/// <summary>A theory on the lab's i386 dumps: skipped, in CI too, when the lab has made none (the variant is optional).</summary>
public sealed class I386TheoryAttribute : TheoryAttribute
{
    public I386TheoryAttribute()
    {
        if (I386DumpTests.Variants.Count == 0)
        {
            Skip = $"no i386 dumps under {DumpLab.BaseDirectory} (a variant whose manifest.json says \"architecture\": \"i386\")";
        }
    }
}
