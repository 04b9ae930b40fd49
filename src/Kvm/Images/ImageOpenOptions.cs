namespace Kvm.Images;

/// <summary>What an image format needs to open its files.</summary>
internal sealed record ImageOpenOptions(bool Writable, KvmLimits Limits, CacheOptions Cache);
