namespace Kvm;

/// <summary>A range of physical memory the image describes.</summary>
/// <param name="Start">First physical address.</param>
/// <param name="Length">Length in bytes.</param>
public readonly record struct PhysicalRange(ulong Start, ulong Length)
{
    /// <summary>One past the last address.</summary>
    public ulong End => Start + Length;

    /// <summary>True when <paramref name="address"/> lies in the range.</summary>
    public bool Contains(ulong address) => address >= Start && address - Start < Length;

    /// <inheritdoc/>
    public override string ToString() => $"0x{Start:x}-0x{End:x}";
}
