namespace Kvm;

/// <summary>The operating system whose kernel an image holds.</summary>
public enum KernelOperatingSystem
{
    /// <summary>Linux: every dump format but the FreeBSD ones, and the live kernel.</summary>
    Linux,

    /// <summary>
    /// FreeBSD: a minidump or a full (ELF) dump, possibly inside the dump device's framing or compressed, or any
    /// image opened with a FreeBSD kernel as the namelist.
    /// </summary>
    FreeBsd,
}
