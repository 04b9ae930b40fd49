namespace Kvm;

/// <summary>A symbol is not in any namelist of the image.</summary>
public sealed class SymbolNotFoundException : KvmException
{
    /// <summary>Creates the exception for <paramref name="symbolName"/>.</summary>
    public SymbolNotFoundException(string symbolName)
        : base(KvmErrorCode.SymbolNotFound, $"symbol not found: {symbolName}")
    {
        SymbolName = symbolName;
    }

    /// <summary>The name that was looked up.</summary>
    public string SymbolName { get; }
}
