namespace Kvm.Memory;

/// <summary>
/// Addresses taken from the caller's namelist (System.map, vmlinux, kallsyms) that help find the kernel when the
/// image has no VMCOREINFO. They are the namelist's own values: link-time for System.map and vmlinux.
/// </summary>
internal sealed record NamelistHints(ulong? Text, ulong? Stext, ulong? InitTopPgt, ulong? LinuxBanner)
{
    public static NamelistHints None { get; } = new(null, null, null, null);
}
