namespace Kvm.Symbols;

/// <summary>
/// How a kernel stores the addresses of its kallsyms symbols (scripts/kallsyms.c <c>write_src</c>; the four forms as
/// tabulated in formats.md §6.2).
/// </summary>
internal enum KallsymsAddressEncoding
{
    /// <summary><c>unsigned long kallsyms_addresses[]</c>: every kernel before v4.6, later only with CONFIG_KALLSYMS_BASE_RELATIVE=n (gone in v6.11).</summary>
    Absolute,

    /// <summary><c>kallsyms_relative_base + (u32)kallsyms_offsets[i]</c>: v4.6 until v7.0.</summary>
    BaseRelative,

    /// <summary>
    /// CONFIG_KALLSYMS_ABSOLUTE_PERCPU (x86-64 SMP, v4.6–v6.14): a non-negative offset is the absolute value (per-CPU
    /// symbols, near 0), a negative one is <c>kallsyms_relative_base - 1 - offset</c>.
    /// </summary>
    AbsolutePercpu,

    /// <summary><c>&amp;kallsyms_offsets[i] + (s32)kallsyms_offsets[i]</c>: v7.0 and later, which drop kallsyms_relative_base.</summary>
    PlaceRelative,
}
