namespace Kvm.IntegrationTests;

/// <summary>
/// Opens lab dumps the way the tests need them: with the variant's System.map unless told otherwise, and with
/// pahole's BTF for a kernel built without BTF (as a user of such a kernel passes --btf).
/// </summary>
public static class LabImages
{
    public static KernelImage Open(LabDump dump, bool withSystemMap = true, bool writable = false, bool withSwapImage = false)
    {
        var files = dump.SplitSet is null ? [dump.Path] : dump.Variant.Dumps.Where(d => d.SplitSet == dump.SplitSet).OrderBy(d => d.SplitIndex).Select(d => d.Path).ToList();
        return KernelImage.Open(files, new KernelImageOptions
        {
            Namelists = withSystemMap ? [dump.Variant.SystemMap] : [],
            Btf = dump.Variant.Btf,
            SwapFiles = withSwapImage ? [dump.Variant.SwapImage] : [],
            Writable = writable,
        });
    }

    public static KernelImage Open(string variant, string name, bool withSystemMap = true) =>
        Open(DumpLab.Variant(variant).Dump(name), withSystemMap);
}
