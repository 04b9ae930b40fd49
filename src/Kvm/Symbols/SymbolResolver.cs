namespace Kvm;

/// <summary>
/// A caller-supplied symbol resolver, as libkvm's <c>kvm_open2</c> takes one. Return the runtime address of
/// <paramref name="name"/>, or null when it is unknown. The name is passed as requested (libkvm passes it verbatim).
/// </summary>
public delegate ulong? SymbolResolver(string name);
