namespace Kvm.Translation;

/// <summary>
/// One leaf of a page table, with the access rights that combine every entry on the path, as the MMU does.
/// </summary>
/// <remarks>
/// <para>
/// x86: a present 4 KiB PTE, or a large page (x86-64 2 MiB PDE or 1 GiB PDPTE with PS set, Intel SDM vol. 3A §4.5,
/// tables 4-15 to 4-20; i386 4 MiB PDE with PSE or PAE 2 MiB PDE, §4.3 and §4.4). A page is writable only if R/W is set
/// at every level, executable only if XD (bit 63) is clear at every level that has one, and user only if U/S is set at
/// every level (§4.6.1).
/// </para>
/// <para>
/// AArch64 (VMSAv8-64 stage 1): a page descriptor at the last level (one granule: 4, 16 or 64 KiB) or a block
/// descriptor where the granule allows one (2 MiB, 1 GiB or 512 GiB with 4 KiB; 32 MiB or 64 GiB with 16 KiB; 512 MiB
/// or 4 TiB with 64 KiB). A page is writable when AP[2] is clear or DBM (Linux's PTE_WRITE) is set, and no table above
/// sets APTable[1]; executable (at EL1, the kernel's view) when PXN is clear, no table above sets PXNTable and the
/// page is not writable at EL0; user when AP[1] is set and no table above sets APTable[0].
/// </para>
/// </remarks>
/// <param name="VirtualAddress">The first virtual address the leaf maps (sign-extended: canonical on x86-64, all ones above VA_BITS in AArch64's upper half).</param>
/// <param name="PhysicalAddress">The physical address of the first byte (the entry's frame or output address; x86-64's SME C-bit cleared, AArch64's 52-bit address bits decoded).</param>
/// <param name="Size">The leaf's span: 4 KiB, 2 MiB, 4 MiB or 1 GiB on x86; the granule or a block size on AArch64.</param>
/// <param name="Writable">Writes allowed through the whole path (x86 R/W in every entry; AArch64 as above).</param>
/// <param name="Executable">The kernel may execute (x86 XD clear in every entry, always true without PAE: 32-bit entries have no XD bit; AArch64 as above).</param>
/// <param name="User">User mode may access (x86 U/S in every entry; AArch64 AP[1] and no APTable[0]).</param>
/// <param name="Entry">The raw leaf entry as stored.</param>
internal readonly record struct PageMapping(ulong VirtualAddress, ulong PhysicalAddress, ulong Size, bool Writable, bool Executable, bool User, ulong Entry);
