namespace Kvm;

/// <summary>A symbol is not in any namelist of the image.</summary>
public sealed class SymbolNotFoundException : KvmException
{
    /// <summary>Creates the exception for <paramref name="symbolName"/>.</summary>
    public SymbolNotFoundException(string symbolName)
        : this(symbolName, null)
    {
    }

    /// <summary>Creates the exception for <paramref name="symbolName"/>, with <paramref name="hint"/> (what would provide it) appended when not null.</summary>
    public SymbolNotFoundException(string symbolName, string? hint)
        : base(KvmErrorCode.SymbolNotFound, hint is null ? $"symbol not found: {symbolName}" : $"symbol not found: {symbolName} ({hint})")
    {
        SymbolName = symbolName;
    }

    /// <summary>The name that was looked up.</summary>
    public string SymbolName { get; }
}
