using System.Runtime.InteropServices;
using System.Text.Json;
using Kvm.Cli;
using Kvm.Native.Exports;
using Kvm.Native.Mirrors;
using Kvm.Testing;
using Kvm.Testing.FreeBsd;
using Kvm.Tests.Native;

namespace Kvm.Tests.FreeBsd;

/// <summary>A FreeBSD minidump and its kernel, written once, for the C exports and kmem.</summary>
public sealed class FreeBsdFilesFixture : IDisposable
{
    public FreeBsdFilesFixture()
    {
        var kernel = new FreeBsdAmd64Kernel();
        Minidump = new TempFile(kernel.Minidump(), "vmcore.0");
        Kernel = new TempFile(kernel.KernelElf(), "kernel");
    }

    public TempFile Minidump { get; }

    public TempFile Kernel { get; }

    public void Dispose()
    {
        Minidump.Dispose();
        Kernel.Dispose();
    }
}

/// <summary>libkvm's C interface and kmem on a FreeBSD minidump.</summary>
public sealed unsafe class FreeBsdNativeAndCliTests : IClassFixture<FreeBsdFilesFixture>
{
    private readonly FreeBsdFilesFixture _f;

    public FreeBsdNativeAndCliTests(FreeBsdFilesFixture fixture) => _f = fixture;

    [Fact]
    public void KvmNative_IsZero_KerndispIsZero_AndNlistWorksWithoutAResolver()
    {
        nint kd = NativeShim.OpenFiles(_f.Kernel.Path, _f.Minidump.Path, out string error);
        Assert.True(kd != 0, error);
        try
        {
            delegate* unmanaged<nint, int> native = &KvmOpen.Native;
            delegate* unmanaged<nint, long> kerndisp = &KvmOpen.KernelDisplacement;
            Assert.Equal(0, native(kd));
            Assert.Equal(0, kerndisp(kd));

            // kvm_nlist on a non-native image: FreeBSD refuses ("kvm_nlist of non-native vmcore") because its
            // unsigned long may be narrower than the kernel's addresses; on this LP64 host it is not.
            var (missing, entries) = NativeShim.Nlist(kd, "_kernbase", "version", "KPML4phys", "vm_page_array", "static_helper", "nowhere");
            Assert.Equal(1, missing);
            Assert.Equal(((byte)(0x02 | 0x01), FreeBsdAmd64Kernel.KernBase), entries[0]);                   // N_ABS | N_EXT
            Assert.Equal(((byte)(0x04 | 0x01), FreeBsdAmd64Kernel.VersionAddress), entries[1]);            // N_TEXT: read-only data
            Assert.Equal(((byte)(0x06 | 0x01), FreeBsdAmd64Kernel.KPml4PhysAddress), entries[2]);          // N_DATA
            Assert.Equal((byte)(0x08 | 0x01), entries[3].Type);                                            // N_BSS
            Assert.Equal((byte)0x04, entries[4].Type);                                                     // local text
            Assert.Equal(((byte)0, 0UL), entries[5]);

            var page = new byte[4096];
            Assert.Equal(4096, NativeShim.Read(kd, FreeBsdAmd64Kernel.KmemBase, page));
            Assert.Equal(FreeBsdAmd64Kernel.Pattern(0), page);
            Assert.Equal(-1, NativeShim.Read(kd, 0x400000, new byte[8]));
            Assert.StartsWith("invalid address (0x400000)", NativeShim.GetError(kd), StringComparison.Ordinal);

            Assert.Null(NativeShim.GetProcs(kd, 0, 0, out _, out _));
            Assert.Contains("CTF", NativeShim.GetError(kd), StringComparison.Ordinal);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void KvmWalkPages_OnAMinidump_GivesVersion2RecordsWithSparseOffsets()
    {
        nint kd = NativeShim.OpenFiles(null, _f.Minidump.Path, out string error);
        Assert.True(kd != 0, error);
        try
        {
            delegate* unmanaged<nint, delegate* unmanaged<KvmPage*, void*, int>, void*, int> walk = &KvmMemory.WalkPages;
            var pages = new List<KvmPage>();
            var handle = GCHandle.Alloc(pages);
            try
            {
                Assert.Equal(1, walk(kd, &Collect, (void*)GCHandle.ToIntPtr(handle)));
            }
            finally
            {
                handle.Free();
            }

            Assert.All(pages, p => Assert.Equal(KvmPage.CurrentVersion, p.Version));
            var bytes = File.ReadAllBytes(_f.Minidump.Path);
            var physical = new byte[4096];
            using var image = KernelImage.Open(_f.Minidump.Path);
            foreach (var p in pages.Where(p => p.Offset >= 0 && p.Length == 4096))
            {
                image.ReadPhysical(p.PhysicalAddress, physical);
                Assert.Equal(physical, bytes.AsSpan((int)p.Offset, 4096).ToArray());
            }

            Assert.Contains(pages, p => p.KernelMapAddress == 0 && p.DirectMapAddress == Amd64MinidumpBuilder.DmapMinAddress + 0x1200000);
        }
        finally
        {
            NativeShim.Close(kd);
        }
    }

    [Fact]
    public void KmemInfo_NamesTheOsTheArchitectureAndThePaging()
    {
        var (exit, output, error) = Run("-M", _f.Minidump.Path, "-N", _f.Kernel.Path, "info");
        Assert.True(exit == 0, error);
        Assert.Contains("os              FreeBSD", output, StringComparison.Ordinal);
        Assert.Contains("format          minidump (FreeBSD amd64 minidump v3)", output, StringComparison.Ordinal);
        Assert.Contains("arch            amd64", output, StringComparison.Ordinal);
        Assert.Contains("release         14.0-RELEASE", output, StringComparison.Ordinal);
        Assert.Contains("paging          x86-64 4-level, through the minidump's page map", output, StringComparison.Ordinal);

        var (_, json, _) = Run("-M", _f.Minidump.Path, "--json", "info");
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("FreeBSD", doc.RootElement.GetProperty("os").GetString());
        Assert.Equal("minidump", doc.RootElement.GetProperty("format").GetString());
        Assert.Equal("amd64", doc.RootElement.GetProperty("arch").GetString());
        Assert.Equal("x86-64 4-level", doc.RootElement.GetProperty("pagingMode").GetString());
    }

    [Fact]
    public void KmemReadNlistVtopAndPages_WorkOnAMinidump()
    {
        var (exit, output, error) = Run("-M", _f.Minidump.Path, "-N", _f.Kernel.Path, "--json", "read", "osrelease", "12");
        Assert.True(exit == 0, error);
        using (var doc = JsonDocument.Parse(output))
        {
            Assert.Equal(Convert.ToHexStringLower("14.0-RELEASE"u8), doc.RootElement.GetProperty("bytes").GetString());
        }

        (exit, output, _) = Run("-M", _f.Minidump.Path, "-N", _f.Kernel.Path, "nlist", "KPML4phys", "nowhere");
        Assert.Equal(1, exit);
        Assert.Contains("KPML4phys", output, StringComparison.Ordinal);

        (exit, output, error) = Run("-M", _f.Minidump.Path, "vtop", $"0x{FreeBsdAmd64Kernel.KmemBase:x}");
        Assert.True(exit == 0, error);
        Assert.Contains("pmap entry [", output, StringComparison.Ordinal);
        Assert.Contains("minidump pmap", output, StringComparison.Ordinal);

        (exit, output, error) = Run("-M", _f.Minidump.Path, "pages", "--limit", "3");
        Assert.True(exit == 0, error);
        Assert.Contains("3 records", output, StringComparison.Ordinal);

        (exit, _, error) = Run("-M", _f.Minidump.Path, "ps");
        Assert.Equal(1, exit);
        Assert.Contains("FreeBSD process listing", error, StringComparison.Ordinal);
    }

    private static (int Exit, string Out, string Err) Run(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.Run(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    [UnmanagedCallersOnly]
    private static int Collect(KvmPage* page, void* closure)
    {
        ((List<KvmPage>)GCHandle.FromIntPtr((nint)closure).Target!).Add(*page);
        return 1;
    }
}
