namespace Kvm;

/// <summary>Page compression used by an image.</summary>
[Flags]
public enum DumpCompression
{
    /// <summary>Pages are stored uncompressed.</summary>
    None = 0,

    /// <summary>zlib streams.</summary>
    Zlib = 1,

    /// <summary>LZO1X blocks.</summary>
    Lzo = 2,

    /// <summary>Raw snappy blocks.</summary>
    Snappy = 4,

    /// <summary>Zstandard frames.</summary>
    Zstd = 0x20,

    /// <summary>
    /// One gzip stream over the whole dump (FreeBSD's <c>savecore -z</c>, or <c>dumpon -z</c>): decompressed once
    /// into a temporary file when the image is opened.
    /// </summary>
    Gzip = 0x40,
}
