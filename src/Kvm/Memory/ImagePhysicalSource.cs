using Kvm.Images;
using Kvm.Translation;

namespace Kvm.Memory;

/// <summary>Adapts an image to the one-method seam translation reads page tables through.</summary>
internal sealed class ImagePhysicalSource(DumpImage image) : IPhysicalSource
{
    public bool TryReadPhysical(ulong physicalAddress, Span<byte> buffer) =>
        image.ReadPhysical(physicalAddress, buffer, out _) == buffer.Length;
}
