namespace Kvm.Images;

/// <summary>A kernel virtual range that the container maps to file offsets directly (ELF PT_LOAD with a real p_vaddr).</summary>
/// <param name="VirtualAddress">First virtual address.</param>
/// <param name="Length">Bytes mapped (p_memsz).</param>
/// <param name="FileOffset">File offset of the first byte.</param>
/// <param name="FileLength">Bytes present in the file (p_filesz); the rest is excluded.</param>
/// <param name="PhysicalAddress">The physical address, or null (p_paddr == -1 in /proc/kcore).</param>
internal readonly record struct VirtualSegment(ulong VirtualAddress, ulong Length, long FileOffset, ulong FileLength, ulong? PhysicalAddress);
