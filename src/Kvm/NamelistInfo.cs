namespace Kvm;

/// <summary>A namelist in use: where it came from, what it is, and the displacement applied to its addresses.</summary>
/// <param name="Source">File path, or <c>vmcoreinfo</c>.</param>
/// <param name="Kind">The kind, detected from the content.</param>
/// <param name="SymbolCount">Symbols it holds.</param>
/// <param name="Displacement">Added to its text-map addresses: the KASLR offset for link-time lists, 0 for runtime ones.</param>
public sealed record NamelistInfo(string Source, NamelistKind Kind, int SymbolCount, long Displacement);
