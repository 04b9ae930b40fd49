namespace Kvm;

/// <summary>Sizes of the bounded caches an open image keeps.</summary>
public sealed class CacheOptions
{
    /// <summary>The defaults.</summary>
    public static CacheOptions Default { get; } = new();

    /// <summary>Decompressed kdump pages kept (libkdumpfile's default is 1024).</summary>
    public int DecompressedPages { get; init; } = 1024;

    /// <summary>Page-table pages kept across walks.</summary>
    public int PageTablePages { get; init; } = 256;

    /// <summary>Virtual-to-physical translations kept (a small TLB keyed by page).</summary>
    public int Translations { get; init; } = 4096;
}
