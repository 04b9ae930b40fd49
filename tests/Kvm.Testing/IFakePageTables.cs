namespace Kvm.Testing;

/// <summary>Page tables a fake kernel builds, whatever the architecture: map, write a raw leaf entry, encode a swap entry.</summary>
public interface IFakePageTables
{
    /// <summary>Physical address of the top-level table.</summary>
    ulong Root { get; }

    /// <summary>Maps one page or block of <paramref name="size"/> bytes.</summary>
    IFakePageTables Map(ulong va, ulong pa, ulong size = 4096);

    /// <summary>Writes a raw last-level entry for <paramref name="va"/>.</summary>
    IFakePageTables SetPte(ulong va, ulong rawEntry);

    /// <summary>The swap PTE for (<paramref name="type"/>, <paramref name="offset"/>) as this architecture's Linux encodes it.</summary>
    ulong SwapEntryFor(int type, ulong offset);
}
