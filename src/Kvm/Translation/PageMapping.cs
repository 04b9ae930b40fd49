namespace Kvm.Translation;

/// <summary>
/// One leaf of a page table: a present 4 KiB PTE, or a large page (x86-64 2 MiB PDE or 1 GiB PDPTE with PS set,
/// Intel SDM vol. 3A §4.5, tables 4-15 to 4-20; i386 4 MiB PDE with PSE or PAE 2 MiB PDE, §4.3 and §4.4). The access
/// rights combine every entry on the path, as the MMU does (§4.6.1): a page is writable only if R/W is set at every
/// level, and executable only if XD (bit 63) is clear at every level that has one.
/// </summary>
/// <param name="VirtualAddress">The first virtual address the leaf maps (sign-extended, canonical, on x86-64).</param>
/// <param name="PhysicalAddress">The physical address of the first byte (the entry's frame, SME C-bit cleared).</param>
/// <param name="Size">4 KiB, 2 MiB, 4 MiB or 1 GiB.</param>
/// <param name="Writable">R/W (bit 1) set in every entry on the path.</param>
/// <param name="Executable">XD (bit 63) clear in every entry on the path (always true without PAE: 32-bit entries have no XD bit).</param>
/// <param name="User">U/S (bit 2) set in every entry on the path.</param>
/// <param name="Entry">The raw leaf entry as stored.</param>
internal readonly record struct PageMapping(ulong VirtualAddress, ulong PhysicalAddress, ulong Size, bool Writable, bool Executable, bool User, ulong Entry);
