using Kvm.IO;

namespace Kvm.Images.Elf;

/// <summary>ELF cores: saved /proc/vmcore, <c>makedumpfile -E</c>, QEMU's ELF dump, and /proc/kcore.</summary>
internal sealed class ElfCoreFormat : IImageFormat
{
    public string Name => "ELF core";

    public bool Probe(ReadOnlySpan<byte> header, long fileLength) => ElfHeader.HasMagic(header);

    public DumpImage Open(IReadOnlyList<RandomAccessFile> files, ImageOpenOptions options) => ElfCoreImage.Open(files[0], options);
}
