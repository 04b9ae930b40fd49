namespace Kvm.Images;

/// <summary>Why a physical read stopped before the end of the buffer.</summary>
internal enum PhysicalReadStatus
{
    /// <summary>Everything was read.</summary>
    Complete,

    /// <summary>The address is not covered by the image.</summary>
    NotInImage,

    /// <summary>The page exists but the dump excluded it.</summary>
    Excluded,

    /// <summary>The file ends before the data the headers describe.</summary>
    Truncated,
}
