namespace Kvm.Translation.X86;

/// <summary>
/// Where 32-bit x86 paging plugs in: the walk i386 full dumps need (FreeBSD's kvm_i386.c reads the kernel's
/// <c>IdlePTD</c> or <c>IdlePDPT</c> and walks two-level or PAE tables from it). The walker is being written
/// separately (the Linux i386 work); until it is merged this build has none and says so.
/// </summary>
internal static class X86Paging
{
    /// <summary>
    /// A translator for 32-bit x86 paging from the table at physical <paramref name="root"/>: the page directory
    /// without PAE, the page-directory-pointer table with it (what CR3 holds).
    /// </summary>
    /// <exception cref="KvmException">Always, in this build (<see cref="KvmErrorCode.NotSupported"/>): the walker is missing.</exception>
    public static IKernelTranslator Create(IPhysicalSource source, ulong root, bool pae, string context)
    {
        ArgumentNullException.ThrowIfNull(source);
        throw new KvmException(KvmErrorCode.NotSupported, $"{context}: i386 full dumps need 32-bit x86 paging ({(pae ? "PAE: three levels of 64-bit entries" : "two levels of 32-bit entries")}), and this build of Kvm has no such page-table walker yet; the kernel's {(pae ? "page-directory-pointer table" : "page directory")} is at physical 0x{root:x}. i386 minidumps are read.");
    }
}
