namespace Kvm;

/// <summary>Why a page-table walk stopped.</summary>
public enum TranslationFaultKind
{
    /// <summary>An entry on the path has its present bit clear.</summary>
    NotPresent,

    /// <summary>The address is outside the canonical range of the paging mode.</summary>
    NonCanonical,

    /// <summary>A page-table page could not be read from the image (excluded, missing, or truncated).</summary>
    TableUnreadable,

    /// <summary>No translation method covers the address (for example, no page-table root is known).</summary>
    NoMethod,

    /// <summary>The entry is a swap entry: the page lives in a swap area (user pages only).</summary>
    SwapEntry,

    /// <summary>
    /// The dump does not describe the address: a FreeBSD minidump holds the kernel map and the direct map only, so
    /// user addresses and the gaps of the kernel half have no translation in it.
    /// </summary>
    NotDumped,
}

/// <summary>
/// A failed translation, described by the level and entry where the walk stopped. The message reads like
/// <c>cannot translate 0xffff888012345000: pmd[3] = 0x0 not present</c>.
/// </summary>
/// <param name="VirtualAddress">The address being translated.</param>
/// <param name="Kind">Why the walk stopped.</param>
/// <param name="Level">The kernel name of the table level (<c>pgd</c>, <c>p4d</c>, <c>pud</c>, <c>pmd</c>, <c>pte</c>; a minidump's <c>pmap</c> copy), or null.</param>
/// <param name="Index">The entry index within that table.</param>
/// <param name="TableAddress">The physical address of the table.</param>
/// <param name="Entry">The raw entry value.</param>
public sealed record TranslationFault(
    ulong VirtualAddress,
    TranslationFaultKind Kind,
    string? Level,
    int Index,
    ulong TableAddress,
    ulong Entry)
{
    /// <summary>The libkvm-style message describing the fault.</summary>
    public string Message => Kind switch
    {
        TranslationFaultKind.NotPresent => $"cannot translate 0x{VirtualAddress:x}: {Level}[{Index}] = 0x{Entry:x} not present",
        TranslationFaultKind.NonCanonical => $"cannot translate 0x{VirtualAddress:x}: non-canonical address",
        TranslationFaultKind.TableUnreadable => $"cannot translate 0x{VirtualAddress:x}: {Level} table at physical 0x{TableAddress:x} is not in the image",
        TranslationFaultKind.SwapEntry => $"cannot translate 0x{VirtualAddress:x}: {Level}[{Index}] = 0x{Entry:x} is a swap entry",
        TranslationFaultKind.NotDumped => $"cannot translate 0x{VirtualAddress:x}: virtual address not minidumped (neither in the kernel map nor in the direct map)",
        _ => $"cannot translate 0x{VirtualAddress:x}: no translation method covers this address",
    };

    /// <inheritdoc/>
    public override string ToString() => Message;
}
