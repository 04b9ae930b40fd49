using System.Text;

namespace Kvm.IntegrationTests;

/// <summary>
/// Issue 3 on real dumps: every format of every variant (x86-64, arm64, i386) opens, finds the kernel, and reads what the guest
/// recorded about itself (uname, /proc/version, its KASLR offset from kallsyms).
/// </summary>
public sealed class OpenDumpTests
{
    [LabTheory]
    [MemberData(nameof(DumpLab.AllArchitectureDumps), MemberType = typeof(DumpLab))]
    public void Release_FromInitUtsNs_EqualsGuestUname(string variant, string name)
    {
        using var image = LabImages.Open(variant, name);
        Assert.True(image.TryReadUtsname(out var uts), $"{variant}/{name}: init_uts_ns unreadable");
        var truth = DumpLab.Variant(variant).Truth.GetProperty("uname");
        Assert.Equal(truth.GetProperty("release").GetString(), uts!.Release);
        Assert.Equal(truth.GetProperty("machine").GetString(), uts.Machine);
    }

    [LabTheory]
    [MemberData(nameof(DumpLab.AllArchitectureDumps), MemberType = typeof(DumpLab))]
    public void Banner_EqualsGuestProcVersion(string variant, string name)
    {
        using var image = LabImages.Open(variant, name);
        Assert.Equal(DumpLab.Variant(variant).ProcVersion.TrimEnd('\n'), image.ReadBanner().TrimEnd('\n'));
    }

    [LabTheory]
    [MemberData(nameof(DumpLab.AllArchitectureDumps), MemberType = typeof(DumpLab))]
    public void KaslrOffsetAndPaging_EqualGuestTruth(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name);
        Assert.Equal(v.KaslrOffset, image.KaslrOffset);
        Assert.Equal(v.PagingLevels, image.Layout.PagingLevels);
        Assert.Equal(v.SymbolAddress("_text"), image.GetSymbol("_text").Address);
        Assert.Equal(v.SymbolAddress("init_task"), image.GetSymbol("init_task").Address);
    }

    [LabTheory]
    [MemberData(nameof(DumpLab.AllArchitectureDumps), MemberType = typeof(DumpLab))]
    public void WithoutAnyNamelist_FindsKernelAndRelease(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
        using var image = LabImages.Open(variant, name, withSystemMap: false);
        Assert.NotNull(image.VmcoreInfo);
        Assert.Equal(v.Release, image.Release);
        Assert.Equal(v.KaslrOffset, image.KaslrOffset);
        Assert.Equal(v.PagingLevels, image.Layout.PagingLevels);
        Assert.True(image.TryReadUtsname(out var uts));
        Assert.Equal(v.Release, uts!.Release);
    }

    [LabFact]
    public void StextBytes_AreIdenticalAcrossEveryFormatOfOneGuest()
    {
        foreach (var variant in DumpLab.AllVariants)
        {
            byte[]? reference = null;
            string? referenceName = null;
            foreach (var dump in variant.Dumps.Where(d => d.SplitIndex is null or 0))
            {
                using var image = LabImages.Open(dump);
                var bytes = new byte[8192];
                image.ReadExactly(image.GetSymbol("_stext").Address, bytes);
                if (reference is null)
                {
                    reference = bytes;
                    referenceName = dump.Name;
                }
                else
                {
                    Assert.True(reference.AsSpan().SequenceEqual(bytes), $"{variant.Name}: _stext differs between {referenceName} and {dump.Name}");
                }
            }
        }
    }

    [LabFact]
    public void FiveLevelVariant_ReadsWhatFourLevelReads()
    {
        var four = DumpLab.Variant("default");
        var five = DumpLab.Variant("la57");
        using var a = LabImages.Open(four.Dump("qemu.elf"));
        using var b = LabImages.Open(five.Dump("qemu.elf"));
        Assert.Equal(4, a.Layout.PagingLevels);
        Assert.Equal(5, b.Layout.PagingLevels);
        Assert.Equal(PagingMode.X64FiveLevel, b.Layout.PagingMode);

        // Same kernel build: the banner is byte-identical. (Text bytes are not: KASLR relocation and
        // boot-time alternatives patching differ between the two boots.)
        Assert.Equal(a.ReadBanner(), b.ReadBanner());
        Assert.True(a.TryReadUtsname(out var ua));
        Assert.True(b.TryReadUtsname(out var ub));
        Assert.Equal(ua.Release, ub.Release);

        // 5-level direct-map addresses are above the 4-level canonical range.
        Assert.True(b.Layout.PageOffsetBase >= 0xff00000000000000UL, $"page_offset_base 0x{b.Layout.PageOffsetBase:x}");
        var walk = b.Translate(b.GetSymbol("_stext").Address);
        Assert.Equal(["pgd", "p4d", "pud", "pmd"], walk.Steps.Select(s => s.Level).Take(4));
    }

    [LabFact]
    public void NoVmcoreInfoVariant_WorksWithSystemMapAlone()
    {
        var v = DumpLab.Variant("novmcoreinfo");
        Assert.False(v.HasVmcoreInfo);
        foreach (var dump in v.Dumps.Where(d => d.SplitSet is null))
        {
            using var image = KernelImage.Open([dump.Path], new KernelImageOptions { Namelists = [v.SystemMap] });
            Assert.Equal(v.KaslrOffset, image.KaslrOffset);
            Assert.Equal(v.ProcVersion.TrimEnd('\n'), image.ReadBanner().TrimEnd('\n'));
            Assert.Equal(v.TruthSymbol("jiffies"), image.GetSymbol("jiffies").Address);
        }
    }

    [LabFact]
    public void NokaslrVariant_HasZeroOffset()
    {
        var v = DumpLab.Variant("nokaslr");
        Assert.Equal(0, v.KaslrOffset);
        using var image = LabImages.Open(v.Dump("qemu.elf"), withSystemMap: false);
        Assert.Equal(0, image.KaslrOffset);
        Assert.Equal(0xffffffff81000000UL, image.VmcoreInfo!.GetSymbol("_stext") & ~0xfffffUL);
    }

    [LabFact]
    public void SplitSet_ReadsLikeTheWholeDump()
    {
        var v = DumpLab.Variant("default");
        var first = v.Dumps.First(d => d.SplitIndex == 0);
        using var split = LabImages.Open(first);
        using var whole = LabImages.Open(v.Dump("mdf-c-d31.kdump"));
        Assert.Equal(whole.ReadBanner(), split.ReadBanner());

        // Read a stretch of the direct map that spans both files' pfn ranges.
        var ranges = whole.PhysicalRanges;
        ulong top = ranges[^1].End;
        foreach (ulong pa in new[] { 0x100000UL, top / 2, top - 0x100000 })
        {
            var a = new byte[4096];
            var b = new byte[4096];
            bool okA = whole.TryReadPhysical(pa, a, out int na, out var fa);
            bool okB = split.TryReadPhysical(pa, b, out int nb, out var fb);
            Assert.Equal(okA, okB);
            Assert.Equal(na, nb);
            Assert.Equal(fa?.Reason, fb?.Reason);
            Assert.Equal(a, b);
        }
    }

    [LabFact]
    public void DumpLevel31_ExcludedPagesGiveExcludedErrorNotZeros()
    {
        var v = DumpLab.Variant("default");
        using var filtered = LabImages.Open(v.Dump("mdf-c-d31.kdump"));
        using var full = LabImages.Open(v.Dump("qemu.elf"));
        Assert.Equal(31, filtered.DumpLevel);
        Assert.True(filtered.ExcludedPages > 0);

        // Find an excluded page that is not all zeros in the full dump (a user or page-cache page).
        var page = new byte[4096];
        int checkedPages = 0;
        foreach (var range in filtered.PhysicalRanges)
        {
            for (ulong pa = range.Start; pa < range.End && checkedPages < 64; pa += 4096)
            {
                if (filtered.TryReadPhysical(pa, page, out _, out var fault) || fault!.Reason != MemoryFaultReason.Excluded)
                {
                    continue;
                }

                if (full.ReadPhysical(pa, page) != 4096 || page.All(b => b == 0))
                {
                    continue;
                }

                checkedPages++;
                ulong va = filtered.Layout.PageOffsetBase!.Value + pa;
                Assert.False(filtered.TryRead(va, page, out int n, out var vfault));
                Assert.Equal(0, n);
                Assert.Equal(MemoryFaultReason.Excluded, vfault!.Reason);
                Assert.Contains("excluded", vfault.Message, StringComparison.Ordinal);
                Assert.Equal(4096, full.Read(va, page));
            }
        }

        Assert.True(checkedPages > 0, "no excluded non-zero page found");
    }

    [LabFact]
    public void Write_RoundTripsOnACopyOfAnElfDump_AndIsRefusedElsewhere()
    {
        var v = DumpLab.Variant("default");
        string copy = Path.Combine(Path.GetTempPath(), $"kvm-write-{Guid.NewGuid():N}.elf");
        File.Copy(v.Dump("qemu.elf").Path, copy);
        try
        {
            ulong address;
            var marker = Encoding.ASCII.GetBytes("KVMTEST!");
            using (var rw = KernelImage.Open([copy], new KernelImageOptions { Namelists = [v.SystemMap], Writable = true }))
            {
                address = rw.GetSymbol("linux_banner").Address;
                rw.Write(address, marker);
            }

            using (var again = KernelImage.Open([copy], new KernelImageOptions { Namelists = [v.SystemMap] }))
            {
                var back = new byte[marker.Length];
                again.ReadExactly(address, back);
                Assert.Equal(marker, back);
                Assert.Throws<KvmException>(() => again.Write(address, marker));
            }
        }
        finally
        {
            File.Delete(copy);
        }

        using var kdump = LabImages.Open(v.Dump("mdf-c-d31.kdump"));
        var e = Assert.Throws<KvmException>(() => kdump.Write(kdump.GetSymbol("linux_banner").Address, [0]));
        Assert.Equal(KvmErrorCode.ReadOnly, e.Code);

        // Opened for writing, a compressed dump still refuses: pages cannot be rewritten in place.
        string before = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(v.Dump("mdf-c-d31.kdump").Path)));
        using (var writable = LabImages.Open(v.Dump("mdf-c-d31.kdump"), writable: true))
        {
            var ns = Assert.Throws<KvmException>(() => writable.Write(writable.GetSymbol("linux_banner").Address, [0]));
            Assert.Equal(KvmErrorCode.NotSupported, ns.Code);
        }

        Assert.Equal(before, Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(v.Dump("mdf-c-d31.kdump").Path))));
    }
}
