using System.Buffers.Binary;

namespace Kvm.Translation.X64;

/// <summary>
/// The control registers of one vCPU from QEMU's <c>QEMU</c> note (QEMUCPUState, qemu target/i386/arch_dump.c):
/// u32 version, u32 size, 18 general registers, 10 segments of 24 bytes, then cr[0..4]. It is the only common source
/// of CR3 and CR4 in a dump.
/// </summary>
internal readonly record struct X64CpuState(ulong Cr0, ulong Cr3, ulong Cr4)
{
    private const int CrOffset = 8 + (18 * 8) + (10 * 24);

    /// <summary>CR4.LA57 (bit 12): 5-level paging is on.</summary>
    public bool La57 => (Cr4 & (1UL << 12)) != 0;

    /// <summary>CR0.PG: paging is on (false for a vCPU still in real mode).</summary>
    public bool PagingEnabled => (Cr0 & (1UL << 31)) != 0;

    public static bool TryParse(ReadOnlySpan<byte> descriptor, out X64CpuState state)
    {
        state = default;
        if (descriptor.Length < CrOffset + (5 * 8))
        {
            return false;
        }

        uint size = BinaryPrimitives.ReadUInt32LittleEndian(descriptor[4..]);
        if (size != 0 && size < CrOffset + (5 * 8))
        {
            return false;
        }

        ulong cr0 = BinaryPrimitives.ReadUInt64LittleEndian(descriptor[CrOffset..]);
        ulong cr3 = BinaryPrimitives.ReadUInt64LittleEndian(descriptor[(CrOffset + 24)..]);
        ulong cr4 = BinaryPrimitives.ReadUInt64LittleEndian(descriptor[(CrOffset + 32)..]);
        state = new X64CpuState(cr0, cr3, cr4);
        return true;
    }
}
