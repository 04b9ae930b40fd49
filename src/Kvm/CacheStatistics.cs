namespace Kvm;

/// <summary>Hit and miss counters of one bounded cache.</summary>
/// <param name="Name">The cache's name (<c>pages</c>, <c>page-tables</c>, <c>tlb</c>).</param>
/// <param name="Capacity">How many entries the cache holds at most.</param>
/// <param name="Count">How many entries it holds now.</param>
/// <param name="Hits">Look-ups answered from the cache.</param>
/// <param name="Misses">Look-ups that had to go to the image.</param>
public sealed record CacheStatistics(string Name, int Capacity, int Count, long Hits, long Misses);
