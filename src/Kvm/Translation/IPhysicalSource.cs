namespace Kvm.Translation;

/// <summary>
/// The only thing translation needs from below: bytes at a physical address. Translation never touches files,
/// which keeps it testable with a dictionary of pages (libkdumpfile's addrxlat callback seam).
/// </summary>
internal interface IPhysicalSource
{
    /// <summary>Reads exactly <paramref name="buffer"/>.Length bytes at <paramref name="physicalAddress"/>; false when any byte is unavailable.</summary>
    bool TryReadPhysical(ulong physicalAddress, Span<byte> buffer);
}
