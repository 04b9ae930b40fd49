namespace Kvm.Translation.X64;

/// <summary>
/// One leaf of an x86-64 page table: a present 4 KiB PTE, or a 2 MiB PDE or 1 GiB PDPTE with PS set (Intel SDM
/// vol. 3A §4.5, tables 4-15 to 4-20). The access rights combine every entry on the path, as the MMU does (§4.6.1):
/// a page is writable only if R/W is set at every level, and executable only if XD (bit 63) is clear at every level.
/// </summary>
/// <param name="VirtualAddress">The first virtual address the leaf maps (sign-extended, canonical).</param>
/// <param name="PhysicalAddress">The physical address of the first byte (the entry's frame, SME C-bit cleared).</param>
/// <param name="Size">4096, 2 MiB or 1 GiB.</param>
/// <param name="Writable">R/W (bit 1) set in every entry on the path.</param>
/// <param name="Executable">XD (bit 63) clear in every entry on the path.</param>
/// <param name="User">U/S (bit 2) set in every entry on the path.</param>
/// <param name="Entry">The raw leaf entry as stored.</param>
internal readonly record struct X64Mapping(ulong VirtualAddress, ulong PhysicalAddress, ulong Size, bool Writable, bool Executable, bool User, ulong Entry);
