using System.Buffers.Binary;
using Kvm.Memory;

namespace Kvm.Linux;

/// <summary>
/// Reads the kernel's table of exported symbols (<c>__ksymtab</c> and <c>__ksymtab_gpl</c>, the EXPORT_SYMBOL entries
/// modules link against) without knowing where it is: every kernel has it, even one whose kallsyms lists functions
/// only, and it names data such as <c>avenrun</c>, <c>nr_cpu_ids</c>, <c>__per_cpu_offset</c>, <c>__cpu_online_mask</c>
/// and <c>kernel_cpustat</c>.
/// </summary>
/// <remarks>
/// <para>
/// An entry is <c>struct kernel_symbol</c> (include/linux/export.h, include/linux/export-internal.h in 6.1): with
/// CONFIG_HAVE_ARCH_PREL32_RELOCATIONS (arm64, x86; 4.19+) three 32-bit offsets, each relative to its own field —
/// value, name, namespace (the namespace since 5.4: 8-byte entries before) — else three pointers (two before 5.4).
/// The names are NUL-terminated strings of <c>__ksymtab_strings</c>, which the linker script places after the tables
/// (include/asm-generic/vmlinux.lds.h, RO_DATA).
/// </para>
/// <para>
/// The table is found from a few exported names whose strings the caller located (<c>"\0avenrun\0"</c>…): an entry
/// whose name field leads to one of them, in either layout, and whose neighbours at the layout's stride also name
/// valid identifiers, is in the table; from it the walk goes both ways while entries name identifiers. The two tables
/// are adjacent sections, so one walk usually reads both.
/// </para>
/// </remarks>
internal static class KsymtabReader
{
    /// <summary>Exported names whose strings anchor the search: every kernel since 2.6 exports them (avenrun and init_task with EXPORT_SYMBOL, init_uts_ns with EXPORT_SYMBOL_GPL).</summary>
    public static readonly string[] AnchorNames = ["avenrun", "init_task", "nr_cpu_ids", "init_uts_ns"];

    private const int BlockBytes = 64 << 10;
    private const int PageBytes = 4096;
    private const int MaxNameBytes = 128;
    private const int MaxEntries = 200_000;

    /// <summary>
    /// Reads the exported symbols of the table that refers to one of <paramref name="anchors"/> (addresses of anchor
    /// name strings), looking for it in [<paramref name="start"/>, <paramref name="end"/>). Empty when there is none.
    /// </summary>
    public static IReadOnlyList<KernelSymbol> Read(VirtualReader read, ulong start, ulong end, IReadOnlySet<ulong> anchors, int pointerSize)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(anchors);
        if (anchors.Count == 0)
        {
            return [];
        }

        var block = new byte[BlockBytes + 16];
        ulong at = start & ~(ulong)(PageBytes - 1);
        while (at < end)
        {
            int n = Math.Max(read(at, block), 0);
            int limit = n == block.Length ? BlockBytes : Math.Max(n - (3 * pointerSize), 0);
            for (int i = 0; i < limit; i += 4)
            {
                ulong p = unchecked(at + (ulong)i);
                if (anchors.Contains(unchecked(p + 4 + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(block.AsSpan(i + 4)))))
                {
                    foreach (int stride in (int[])[12, 8])
                    {
                        if (Walk(read, p, stride, relative: true, pointerSize) is { Count: > 0 } found)
                        {
                            return found;
                        }
                    }
                }

                if (i % pointerSize == 0 && anchors.Contains(Pointer(block.AsSpan(i + pointerSize), pointerSize)))
                {
                    foreach (int stride in (int[])[3 * pointerSize, 2 * pointerSize])
                    {
                        if (Walk(read, p, stride, relative: false, pointerSize) is { Count: > 0 } found)
                        {
                            return found;
                        }
                    }
                }
            }

            // Near the top of the address space the next block would wrap round to 0: the window ends there.
            ulong next = unchecked(n == block.Length ? at + BlockBytes : ((at + (ulong)n) & ~(ulong)(PageBytes - 1)) + PageBytes);
            if (next <= at)
            {
                break;
            }

            at = next;
        }

        return [];
    }

    /// <summary>
    /// The symbols of the table holding the entry at <paramref name="entry"/>, if entries of this layout and stride
    /// name identifiers on both sides of it; else empty.
    /// </summary>
    private static List<KernelSymbol> Walk(VirtualReader read, ulong entry, int stride, bool relative, int pointerSize)
    {
        // Addresses wrap as the kernel's do; the walk is bounded by MaxEntries either way.
        unchecked
        {
            if (Decode(read, entry - (ulong)stride, relative, pointerSize) is null || Decode(read, entry + (ulong)stride, relative, pointerSize) is null)
            {
                return [];
            }

            ulong first = entry;
            for (int i = 0; i < MaxEntries && Decode(read, first - (ulong)stride, relative, pointerSize) is not null; i++)
            {
                first -= (ulong)stride;
            }

            var symbols = new List<KernelSymbol>();
            for (ulong p = first; symbols.Count < MaxEntries && Decode(read, p, relative, pointerSize) is { } s; p += (ulong)stride)
            {
                symbols.Add(s);
            }

            return symbols;
        }
    }

    private static KernelSymbol? Decode(VirtualReader read, ulong entry, bool relative, int pointerSize)
    {
        Span<byte> raw = stackalloc byte[16];
        int size = relative ? 8 : 2 * pointerSize;
        if (read(entry, raw[..size]) != size)
        {
            return null;
        }

        ulong value, name;
        if (relative)
        {
            value = unchecked(entry + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(raw));
            name = unchecked(entry + 4 + (ulong)(long)BinaryPrimitives.ReadInt32LittleEndian(raw[4..]));
        }
        else
        {
            value = Pointer(raw, pointerSize);
            name = Pointer(raw[pointerSize..], pointerSize);
        }

        if (pointerSize == 4)
        {
            value &= uint.MaxValue;
            name &= uint.MaxValue;
        }

        return ReadIdentifier(read, name) is { } text ? new KernelSymbol(text, value, '?', "__ksymtab") : null;
    }

    /// <summary>The C identifier at <paramref name="address"/>, NUL-terminated within <see cref="MaxNameBytes"/>, or null.</summary>
    private static string? ReadIdentifier(VirtualReader read, ulong address)
    {
        Span<byte> buffer = stackalloc byte[MaxNameBytes];
        int n = read(address, buffer);
        int length = buffer[..n].IndexOf((byte)0);
        if (length <= 0)
        {
            return null;
        }

        var name = buffer[..length];
        if (char.IsAsciiDigit((char)name[0]))
        {
            return null;
        }

        foreach (byte c in name)
        {
            if (!(char.IsAsciiLetterOrDigit((char)c) || c is (byte)'_' or (byte)'.' or (byte)'$'))
            {
                return null;
            }
        }

        return System.Text.Encoding.ASCII.GetString(name);
    }

    private static ulong Pointer(ReadOnlySpan<byte> bytes, int pointerSize) =>
        pointerSize == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(bytes) : BinaryPrimitives.ReadUInt64LittleEndian(bytes);
}
