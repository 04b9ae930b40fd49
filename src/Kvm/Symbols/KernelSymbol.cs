namespace Kvm;

/// <summary>A kernel symbol with its runtime (relocated) address.</summary>
/// <param name="Name">The symbol name, verbatim.</param>
/// <param name="Address">The runtime address: link-time address plus the KASLR displacement where that applies.</param>
/// <param name="Type">The nm type letter (<c>T</c>, <c>t</c>, <c>D</c>, <c>B</c>, <c>R</c>, <c>A</c>…), or <c>?</c> when the source does not say.</param>
/// <param name="Source">Where it came from: a file path, <c>vmcoreinfo</c>, <c>kallsyms in memory</c>, or <c>resolver</c>.</param>
public readonly record struct KernelSymbol(string Name, ulong Address, char Type, string Source)
{
    /// <summary>True for global symbols (upper-case nm letters).</summary>
    public bool IsGlobal => char.IsUpper(Type);
}
