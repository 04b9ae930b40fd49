using Kvm.Images.FreeBsd;

namespace Kvm.Images;

/// <summary>
/// Layer 1: an image as physical memory plus metadata (notes, VMCOREINFO). Implementations are thread-safe for
/// reads. Address translation is not their business: they answer "what bytes are at this physical address, and if
/// none, why not".
/// </summary>
internal abstract class DumpImage : IDisposable
{
    private bool _disposed;

    /// <summary>The container format.</summary>
    public abstract DumpFormat Format { get; }

    /// <summary>A one-line human description, e.g. "ELF core (QEMU dump-guest-memory)".</summary>
    public abstract string Description { get; }

    /// <summary>Page compression used, if any.</summary>
    public virtual DumpCompression Compression => DumpCompression.None;

    /// <summary>True for a flattened kdump file read in place.</summary>
    public virtual bool IsFlattened => false;

    /// <summary>The files behind the image (several for a split set).</summary>
    public abstract IReadOnlyList<string> Files { get; }

    /// <summary>Page size declared by the container, or null when it does not say.</summary>
    public virtual int? PageSize => null;

    /// <summary>The ELF machine (EM_*) or the kdump header's utsname.machine mapped to one; 0 when unknown.</summary>
    public virtual ushort ElfMachine => 0;

    /// <summary>The machine name from the container (kdump utsname.machine), or null.</summary>
    public virtual string? MachineName => null;

    /// <summary>Notes carried by the container (PRSTATUS per CPU, QEMU CPU state, VMCOREINFO).</summary>
    public virtual IReadOnlyList<ElfNote> Notes => [];

    /// <summary>VMCOREINFO carried by the container, or null.</summary>
    public virtual VmcoreInfo? VmcoreInfo => null;

    /// <summary>The physical ranges the image describes (in RAM at dump time; pages may still be excluded).</summary>
    public abstract IReadOnlyList<PhysicalRange> PhysicalRanges { get; }

    /// <summary>Kernel virtual ranges the container maps directly (kexec vmcores, /proc/kcore), if any.</summary>
    public virtual IReadOnlyList<VirtualSegment> VirtualSegments => [];

    /// <summary>
    /// What makes the image a FreeBSD dump (architecture, minidump, dump-device header), or null for every other
    /// image: Linux dumps, and ELF cores that carry notes or are not marked as FreeBSD's.
    /// </summary>
    public virtual FreeBsdDumpInfo? FreeBsd => null;

    /// <summary>How many pages inside <see cref="PhysicalRanges"/> the dump left out (in the dump's page size).</summary>
    public virtual long ExcludedPages => 0;

    /// <summary>The kdump dump level (makedumpfile -d), or null.</summary>
    public virtual int? DumpLevel => null;

    /// <summary>True when the image can be written (opened for writing, and the format allows writing in place).</summary>
    public virtual bool CanWrite => false;

    /// <summary>Cache counters of the image's own caches (decompressed pages).</summary>
    public virtual IReadOnlyList<CacheStatistics> CacheStatistics => [];

    /// <summary>
    /// Reads up to <paramref name="buffer"/>.Length bytes at <paramref name="physicalAddress"/>. Returns the count of
    /// contiguous bytes read from the start; <paramref name="status"/> says why it stopped early.
    /// Throws <see cref="CorruptImageException"/> only for corrupt structures (a bad page descriptor, a page that does
    /// not decompress), never for an address that is simply absent.
    /// </summary>
    public abstract int ReadPhysical(ulong physicalAddress, Span<byte> buffer, out PhysicalReadStatus status);

    /// <summary>
    /// Says where the <paramref name="length"/> bytes at <paramref name="physicalAddress"/> are kept, without reading
    /// or decompressing them: plain and contiguous in one file (with the offset on disk), stored some other way, or
    /// not readable and why. Throws <see cref="CorruptImageException"/> only for corrupt structures, as
    /// <see cref="ReadPhysical"/> does.
    /// </summary>
    public abstract PhysicalStorage Locate(ulong physicalAddress, ulong length);

    /// <summary>
    /// The physical ranges whose bytes the image holds, ascending and coalesced: <see cref="PhysicalRanges"/> without
    /// excluded pages and without what a truncated file lacks. Lazy, so a fragmented kdump bitmap is never turned
    /// into one large list. A compressed image cannot know without reading descriptors that an incomplete dump lost
    /// a page; <see cref="Locate"/> says so per page.
    /// </summary>
    public abstract IEnumerable<PhysicalRange> EnumerateStoredRanges();

    /// <summary>Writes in place at <paramref name="physicalAddress"/>; returns the bytes written.</summary>
    public virtual int WritePhysical(ulong physicalAddress, ReadOnlySpan<byte> data) =>
        throw new KvmException(KvmErrorCode.NotSupported, $"writing is not supported for {Description} images");

    /// <summary>Drops cached data (for live images, or after a write).</summary>
    public virtual void FlushCaches()
    {
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        if (!_disposed)
        {
            _disposed = true;
            Dispose(true);
        }
    }

    /// <summary>Releases files.</summary>
    protected virtual void Dispose(bool disposing)
    {
    }
}
