namespace Kvm;

/// <summary>One level of a page-table walk: which table was read, which entry, and what it held.</summary>
/// <param name="Level">The kernel name of the level (<c>pgd</c>, <c>p4d</c>, <c>pud</c>, <c>pmd</c>, <c>pte</c>).</param>
/// <param name="TableAddress">Physical address of the table.</param>
/// <param name="Index">Index of the entry in the table.</param>
/// <param name="Entry">The raw entry.</param>
/// <param name="IsLeaf">True when the entry maps a page (a 4 KiB page, or a 2 MiB/1 GiB large page).</param>
/// <param name="EntrySize">The size of one entry in bytes: 8, or 4 for 32-bit x86 tables without PAE.</param>
/// <remarks>
/// A FreeBSD minidump keeps a copy of the kernel's page-table entries (the <c>pmap</c> area) rather than the tables
/// themselves: its step has the level <c>pmap</c>, a table address of 0 and the entry's index in that copy.
/// </remarks>
public sealed record TranslationStep(string Level, ulong TableAddress, int Index, ulong Entry, bool IsLeaf, int EntrySize = 8)
{
    /// <summary>Physical address of the entry itself (for a minidump's <c>pmap</c> step, its offset in the copy).</summary>
    public ulong EntryAddress => TableAddress + ((ulong)Index * (ulong)EntrySize);
}
