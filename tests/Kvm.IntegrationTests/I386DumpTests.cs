namespace Kvm.IntegrationTests;

/// <summary>
/// The lab's i386 dumps (Debian 12's 686 and 686-pae kernels under qemu-system-i386), read against the truth the
/// guest recorded: what is particular to i386 (the layout, 32-bit PAE and 2-level translation, the link-time map,
/// the low-memory direct map of the page walk). Debian builds these kernels without BTF and without KALLSYMS_ALL:
/// the lab gives pahole's BTF of the -dbg vmlinux (manifest "btf"), and the suites of every architecture
/// (ProcessTests, SystemStateTests, CliLinuxTests, the C consumers…) check processes, argv, swap, load, CPUs, files
/// and the log on these dumps with it.
/// </summary>
public sealed class I386DumpTests
{
    /// <summary>The lab's i386 variants (i386-pae, i386).</summary>
    public static IReadOnlyList<LabVariant> Variants => DumpLab.VariantsFor("i386");

    /// <summary>Every single-file dump of every i386 variant: (variant, file name).</summary>
    public static IEnumerable<object[]> Dumps() => DumpLab.AllDumpsFor("i386");

    [I386Theory]
    [MemberData(nameof(Dumps))]
    public void Open_LayoutMatchesTruth(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
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
        var v = DumpLab.Variant(variant);
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
        var v = DumpLab.Variant(variant);
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
        var v = DumpLab.Variant(variant);
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
    public void Pages_DirectMapIsLowMemoryAndKernelMapIsAboveIt(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
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
