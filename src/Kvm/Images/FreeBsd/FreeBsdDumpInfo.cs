namespace Kvm.Images.FreeBsd;

/// <summary>
/// What makes an image a FreeBSD dump, for the layers above: the architecture, the minidump (null for a full ELF
/// dump, whose page tables are read from memory), and the dump device's header when the file held it.
/// </summary>
/// <param name="Architecture">The dumped kernel's architecture.</param>
/// <param name="Minidump">The minidump, or null for a full dump.</param>
/// <param name="DeviceHeader">The <c>kerneldumpheader</c> framing the dump on the device, or null for a dump savecore(8) saved.</param>
internal sealed record FreeBsdDumpInfo(FreeBsdArchitecture Architecture, MinidumpImage? Minidump, KernelDumpHeader? DeviceHeader)
{
    /// <summary>The ELF machine of a FreeBSD architecture (EM_X86_64, EM_AARCH64, EM_386).</summary>
    public static ushort ElfMachineOf(FreeBsdArchitecture architecture) => architecture switch
    {
        FreeBsdArchitecture.Amd64 => 62,
        FreeBsdArchitecture.Arm64 => 183,
        _ => 3,
    };

    /// <summary>The FreeBSD architecture of an ELF machine, or null for one Kvm does not read.</summary>
    public static FreeBsdArchitecture? FromElfMachine(ushort machine) => machine switch
    {
        62 => FreeBsdArchitecture.Amd64,
        183 => FreeBsdArchitecture.Arm64,
        3 => FreeBsdArchitecture.I386,
        _ => null,
    };
}
