using System.Buffers.Binary;
using Kvm.Testing;
using Kvm.Tests.Images.Elf;
using Kvm.Translation.X64;

namespace Kvm.Tests.Translation;

/// <summary>
/// QEMUCPUState (qemu target/i386/arch_dump.c): u32 version, u32 size, 18 u64 registers (rax..r15, rip, rflags),
/// 10 segments of 24 bytes (cs, ds, es, fs, gs, ss, ldt, tr, gdt, idt), then u64 cr[5] at byte 392.
/// </summary>
public sealed class X64CpuStateTests
{
    private const int Cr0Offset = 392;

    [Fact]
    public void TryParse_BuilderQemuNote_ReadsControlRegisters()
    {
        var elf = new ElfCoreBuilder().AddQemuCpuState(0x80050033, 0x1a2b3000, 0x1000).AddLoad(0, 0, new byte[4096]).Build();
        using var file = new ScratchFile(elf);
        using var image = file.Open();

        var note = Assert.Single(image.Notes, n => n.Name == "QEMU");
        Assert.True(X64CpuState.TryParse(note.Descriptor, out var state));

        Assert.Equal(0x80050033UL, state.Cr0);
        Assert.Equal(0x1a2b3000UL, state.Cr3);
        Assert.Equal(0x1000UL, state.Cr4);
        Assert.True(state.La57);
        Assert.True(state.PagingEnabled);
    }

    [Fact]
    public void TryParse_HandLaidOutDescriptor_ReadsCr0Cr3Cr4NotNeighbours()
    {
        var desc = Descriptor(448, 448);
        WriteU64(desc, Cr0Offset - 8, 0x1111);        // last word of idt
        WriteU64(desc, Cr0Offset, 0x80000011);        // cr0
        WriteU64(desc, Cr0Offset + 8, 0xdead);        // cr1
        WriteU64(desc, Cr0Offset + 16, 0xbeef);       // cr2
        WriteU64(desc, Cr0Offset + 24, 0x7654000);    // cr3
        WriteU64(desc, Cr0Offset + 32, 0x3406f0);     // cr4 (LA57 clear)
        WriteU64(desc, Cr0Offset + 40, 0xffff);       // kernel_gs_base

        Assert.True(X64CpuState.TryParse(desc, out var state));

        Assert.Equal(new X64CpuState(0x80000011, 0x7654000, 0x3406f0), state);
        Assert.False(state.La57);
        Assert.True(state.PagingEnabled);
    }

    [Fact]
    public void PagingEnabled_Cr0PgClear_IsFalse()
    {
        Assert.False(new X64CpuState(0x11, 0, 0).PagingEnabled);
        Assert.True(new X64CpuState(0x80000000, 0, 0).PagingEnabled);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(391)]
    [InlineData(431)] // one byte short of cr[4]
    public void TryParse_ShortDescriptor_IsRejected(int length)
    {
        Assert.False(X64CpuState.TryParse(Descriptor(length, 0), out var state));
        Assert.Equal(default, state);
    }

    [Fact]
    public void TryParse_ExactlyThroughCr4WithSizeZero_IsAccepted()
    {
        var desc = Descriptor(432, 0);
        WriteU64(desc, Cr0Offset + 24, 0x5000);

        Assert.True(X64CpuState.TryParse(desc, out var state));
        Assert.Equal(0x5000UL, state.Cr3);
    }

    [Theory]
    [InlineData(100u)]
    [InlineData(431u)]
    public void TryParse_SizeFieldTooSmallForCr4_IsRejected(uint size)
    {
        Assert.False(X64CpuState.TryParse(Descriptor(448, size), out _));
    }

    private static byte[] Descriptor(int length, uint size)
    {
        var desc = new byte[length];
        if (length >= 8)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(desc, 1);
            BinaryPrimitives.WriteUInt32LittleEndian(desc.AsSpan(4), size);
        }

        return desc;
    }

    private static void WriteU64(byte[] buffer, int offset, ulong value) =>
        BinaryPrimitives.WriteUInt64LittleEndian(buffer.AsSpan(offset), value);
}
