using System.Buffers.Binary;
using Kvm.IO;

namespace Kvm.Translation;

/// <summary>
/// Reads page-table pages as arrays of little-endian entries, caching them whole in a bounded LRU (one read per new
/// table, as drgn's iterator does). Shared by every walker; a table is keyed by its address and entry count, so a
/// 32-byte PAE PDPT and a page directory at the same address do not collide.
/// </summary>
internal sealed class PageTableReader
{
    private readonly IPhysicalSource _source;
    private readonly LruCache<(ulong Address, int Count), ulong[]> _tables;

    /// <summary>Creates a reader over <paramref name="source"/> caching up to <paramref name="cachedTables"/> tables.</summary>
    public PageTableReader(IPhysicalSource source, int cachedTables, string cacheName = "page-tables")
    {
        _source = source;
        _tables = new LruCache<(ulong, int), ulong[]>(cacheName, cachedTables);
    }

    /// <summary>Hit and miss counters of the table cache.</summary>
    public CacheStatistics Statistics => _tables.Statistics;

    /// <summary>Drops every cached table (after a write, say).</summary>
    public void Clear() => _tables.Clear();

    /// <summary>
    /// The <paramref name="count"/> entries of <paramref name="entrySize"/> bytes (4 or 8) at <paramref name="tableAddress"/>,
    /// or null when the image does not hold them. <paramref name="cache"/> false reads without filling the cache (walks
    /// over a whole table tree would evict the hot tables).
    /// </summary>
    public ulong[]? Read(ulong tableAddress, int count, int entrySize = 8, bool cache = true)
    {
        var key = (tableAddress, count);
        if (_tables.TryGet(key, out var cached))
        {
            return cached;
        }

        int length = count * entrySize;
        Span<byte> bytes = length <= 4096 ? stackalloc byte[length] : new byte[length];
        if (!_source.TryReadPhysical(tableAddress, bytes))
        {
            return null;
        }

        var entries = new ulong[count];
        for (int i = 0; i < count; i++)
        {
            entries[i] = entrySize == 8
                ? BinaryPrimitives.ReadUInt64LittleEndian(bytes[(i * 8)..])
                : BinaryPrimitives.ReadUInt32LittleEndian(bytes[(i * 4)..]);
        }

        if (cache)
        {
            _tables.Add(key, entries);
        }

        return entries;
    }
}
