namespace Kvm.IO;

/// <summary>
/// A bounded, thread-safe least-recently-used cache with hit and miss counters. Used for decompressed pages,
/// page-table pages and translations; every instance has a fixed capacity so an image can never grow it without bound.
/// </summary>
internal sealed class LruCache<TKey, TValue>
    where TKey : notnull
{
    private readonly Dictionary<TKey, LinkedListNode<(TKey Key, TValue Value)>> _map;
    private readonly LinkedList<(TKey Key, TValue Value)> _order = new();
    private readonly Lock _lock = new();
    private long _hits;
    private long _misses;

    public LruCache(string name, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(capacity);
        Name = name;
        Capacity = capacity;
        _map = new Dictionary<TKey, LinkedListNode<(TKey, TValue)>>(Math.Min(capacity, 4096));
    }

    public string Name { get; }

    public int Capacity { get; }

    public bool TryGet(TKey key, out TValue value)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(key, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                _hits++;
                value = node.Value.Value;
                return true;
            }

            _misses++;
            value = default!;
            return false;
        }
    }

    public void Add(TKey key, TValue value)
    {
        if (Capacity == 0)
        {
            return;
        }

        lock (_lock)
        {
            if (_map.TryGetValue(key, out var existing))
            {
                _order.Remove(existing);
                _map.Remove(key);
            }

            if (_map.Count >= Capacity)
            {
                var last = _order.Last!;
                _order.RemoveLast();
                _map.Remove(last.Value.Key);
            }

            _map[key] = _order.AddFirst((key, value));
        }
    }

    public void Clear()
    {
        lock (_lock)
        {
            _map.Clear();
            _order.Clear();
        }
    }

    public CacheStatistics Statistics
    {
        get
        {
            lock (_lock)
            {
                return new CacheStatistics(Name, Capacity, _map.Count, _hits, _misses);
            }
        }
    }
}
