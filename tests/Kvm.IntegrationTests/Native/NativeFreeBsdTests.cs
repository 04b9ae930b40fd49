using Kvm.Testing;
using Kvm.Testing.FreeBsd;

namespace Kvm.IntegrationTests.Native;

/// <summary>
/// tests/native/kvm_freebsd.c on a FreeBSD/amd64 minidump and kernel made by the test builders (no lab dump needed):
/// libkvm.so used from C on a FreeBSD image, as a FreeBSD program ported to Linux would.
/// </summary>
public sealed class NativeFreeBsdTests
{
    [NativeFact(needsDumps: false)]
    public void FreeBsdMinidump_ThroughTheCInterface()
    {
        var kernel = new FreeBsdAmd64Kernel();
        kernel.AddProcesses();
        using var dump = new TempFile(kernel.Minidump(), "vmcore.0");
        using var elf = new TempFile(kernel.KernelElf(), "kernel");
        string exe = NativeToolchain.Program("kvm_freebsd");
        var result = NativeToolchain.Run(exe, ["-M", dump.Path, "-N", elf.Path]);
        string what = $"kvm_freebsd -M {dump.Path} -N {elf.Path}";
        Assert.True(result.ExitCode == 0 && !result.TimedOut, result.Describe(what));
        Assert.Contains("# 16 checks, 0 failed", result.Stdout, StringComparison.Ordinal);
    }
}
