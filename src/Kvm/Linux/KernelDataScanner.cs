using System.Buffers.Binary;
using Kvm.Memory;
using Kvm.Types;

namespace Kvm.Linux;

/// <summary>
/// Finds the kernel's BTF and <c>init_task</c> by their contents when the symbol table cannot say where they are: a
/// bare dump of a kernel whose kallsyms lists functions only (no CONFIG_KALLSYMS_ALL, as Debian builds its arm64 and
/// 686 kernels), where neither <c>__start_BTF</c> nor <c>init_task</c> is a known symbol.
/// </summary>
/// <remarks>
/// <para>
/// Both lie in the kernel image after its text: the linker script puts read-only data (with <c>.BTF</c>) right after
/// <c>_etext</c> and the data section (which starts with <c>init_task</c>, INIT_TASK_DATA) a few MiB later
/// (include/asm-generic/vmlinux.lds.h, Linux 5.2+ for .BTF). <c>_etext</c> is a text symbol, so kallsyms always has it.
/// The scan reads from there in blocks, skipping unreadable ones, for at most <see cref="WindowBytes"/>, and stops
/// once both are found.
/// </para>
/// <para>
/// A BTF candidate is the header a kernel's .BTF starts with (magic 0xeB9F little-endian, version 1, flags 0,
/// hdr_len 24, the type section first and the strings right after it) and counts only if the whole section parses
/// and describes <c>struct task_struct</c>. An <c>init_task</c> candidate is a "swapper/0" (SMP: init_idle renames
/// the boot CPU's idle task, kernel/sched/core.c) or "swapper" (UP, INIT_TASK_COMM) at <c>task_struct.comm</c>, with
/// pid and tgid 0, no mm, and a <c>tasks</c> list whose neighbours point back at it — a string elsewhere does not
/// pass all of that.
/// </para>
/// </remarks>
internal static class KernelDataScanner
{
    /// <summary>How far past <c>_etext</c> the scan reads (Debian's arm64 kernel: init_task at +16.5 MiB, _end at +19 MiB).</summary>
    public const ulong WindowBytes = 128UL << 20;

    private const int BlockBytes = 64 << 10;

    // The smallest page: a failed read skips this much (larger granules just take a few more reads).
    private const int PageBytes = 4096;

    // struct btf_header (include/uapi/linux/btf.h): magic 0xeB9F, version 1, flags 0, hdr_len 24, little-endian.
    private static readonly byte[] s_btfMagic = [0x9f, 0xeb, 0x01, 0x00, 0x18, 0x00, 0x00, 0x00];
    private static readonly byte[][] s_idleNames = ["swapper/0\0"u8.ToArray(), "swapper\0"u8.ToArray()];

    // "\0name\0": an exported name as __ksymtab_strings holds it, NUL-separated from its neighbours.
    private static readonly byte[][] s_anchorStrings = [.. KsymtabReader.AnchorNames.Select(n => System.Text.Encoding.ASCII.GetBytes("\0" + n + "\0"))];

    /// <summary>What the scan found: symbols to add (<c>__start_BTF</c>, <c>__stop_BTF</c>, <c>init_task</c>) and the parsed BTF.</summary>
    public sealed record Result(IReadOnlyList<KernelSymbol> Symbols, TypeCatalog? Types);

    /// <summary>
    /// Scans from <paramref name="etext"/>. <paramref name="read"/> reads kernel virtual memory and returns the bytes
    /// read (0 when unmapped); <paramref name="pointerSize"/> is the kernel's (4 or 8). <paramref name="knownTypes"/>
    /// is BTF given from outside (a kernel built without BTF): then only <c>init_task</c> is looked for.
    /// </summary>
    public static Result Scan(VirtualReader read, ulong etext, int pointerSize, KvmLimits limits, TypeCatalog? knownTypes = null)
    {
        ArgumentNullException.ThrowIfNull(read);
        ArgumentNullException.ThrowIfNull(limits);
        var symbols = new List<KernelSymbol>();
        TypeCatalog? types = knownTypes;
        TaskLayout? task = knownTypes is null ? null : TaskLayout.From(knownTypes);
        ulong? initTask = null;
        var pendingIdle = new List<ulong>();
        var anchors = new HashSet<ulong>();
        ulong end = ulong.MaxValue - etext < WindowBytes ? ulong.MaxValue : etext + WindowBytes;

        // Blocks overlap by a pattern's length so that a match across a block boundary is still seen. A read stops at
        // the first page it cannot read (unmapped, or excluded from a filtered dump): what came before it is searched,
        // and the scan goes on at the page after it.
        const int overlap = 16;
        var block = new byte[BlockBytes + overlap];
        ulong at = etext & ~(ulong)(PageBytes - 1);
        while (at < end && (types is null || initTask is null))
        {
            int n = Math.Max(read(at, block), 0);
            int limit = n == block.Length ? BlockBytes : n;
            if (types is null)
            {
                foreach (int offset in Matches(block, n, s_btfMagic, limit))
                {
                    ulong address = unchecked(at + (ulong)offset);
                    if (address % 4 == 0 && TryReadBtf(read, address, limits, out var catalog, out ulong length))
                    {
                        types = catalog;
                        task = TaskLayout.From(catalog);
                        symbols.Add(new KernelSymbol("__start_BTF", address, 'R', "scan"));
                        symbols.Add(new KernelSymbol("__stop_BTF", unchecked(address + length), 'R', "scan"));
                        break;
                    }
                }
            }

            foreach (var anchor in s_anchorStrings)
            {
                foreach (int offset in Matches(block, n, anchor, limit))
                {
                    anchors.Add(unchecked(at + (ulong)offset + 1));
                }
            }

            if (initTask is null)
            {
                foreach (var name in s_idleNames)
                {
                    foreach (int offset in Matches(block, n, name, limit))
                    {
                        pendingIdle.Add(unchecked(at + (ulong)offset));
                    }
                }

                if (task is not null)
                {
                    // init_task comes after .BTF in the image, but a "swapper" seen before the BTF was found is kept.
                    initTask = pendingIdle.Select(hit => task.InitTaskAt(read, hit, pointerSize)).FirstOrDefault(t => t is not null);
                    pendingIdle.Clear();
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

        if (initTask is { } found)
        {
            symbols.Add(new KernelSymbol("init_task", found, 'D', "scan"));
        }

        // The exported symbols: the tables lie before their strings, so from _etext up to the last anchor string.
        var exported = anchors.Count == 0 ? [] : KsymtabReader.Read(read, etext, anchors.Max(), anchors, pointerSize);
        var known = symbols.Select(x => x.Name).ToHashSet(StringComparer.Ordinal);
        foreach (var x in exported)
        {
            // Functions are in kallsyms already; what is exported beyond _etext is data.
            if (x.Address >= etext && known.Add(x.Name))
            {
                symbols.Add(new KernelSymbol(x.Name, x.Address, 'D', "__ksymtab"));
            }
        }

        if (types is not null)
        {
            symbols.AddRange(PerCpuSymbols(types, symbols, known));
        }

        return new Result(symbols, types);
    }

    /// <summary>
    /// Every per-CPU variable of the BTF's <c>.data..percpu</c> DATASEC (pahole encodes their offsets in the section),
    /// placed by one whose address is known (an exported one: <c>kernel_cpustat</c>, <c>irq_stat</c>…): where per-CPU
    /// variables are image addresses (arm64, i386; not x86-64's zero-based section), <c>__per_cpu_start</c> is that
    /// address minus its offset, and every other variable follows, with <c>__per_cpu_end</c> after the last. Two known
    /// variables that disagree on the start mean the BTF is not this kernel's: then nothing is added.
    /// </summary>
    private static IEnumerable<KernelSymbol> PerCpuSymbols(TypeCatalog types, List<KernelSymbol> symbols, HashSet<string> known)
    {
        var section = types.GetDataSection(".data..percpu");
        var byName = symbols.GroupBy(x => x.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Address, StringComparer.Ordinal);
        var starts = section.Where(v => byName.ContainsKey(v.Name)).Select(v => unchecked(byName[v.Name] - (ulong)v.Offset)).Distinct().ToList();
        if (starts.Count != 1 || known.Contains("__per_cpu_start"))
        {
            return [];
        }

        ulong start = starts[0];
        var added = new List<KernelSymbol> { new("__per_cpu_start", start, 'D', "scan"), new("__per_cpu_end", unchecked(start + (ulong)section.Max(v => v.Offset + v.Size)), 'D', "scan") };
        added.AddRange(section.Where(v => known.Add(v.Name)).Select(v => new KernelSymbol(v.Name, unchecked(start + (ulong)v.Offset), 'D', "BTF .data..percpu")));
        return added;
    }

    /// <summary>Offsets of <paramref name="pattern"/> in the first <paramref name="length"/> bytes of <paramref name="block"/> that start below <paramref name="limit"/>.</summary>
    private static IEnumerable<int> Matches(byte[] block, int length, byte[] pattern, int limit)
    {
        int start = 0;
        while (start < length)
        {
            int i = block.AsSpan(start, length - start).IndexOf(pattern);
            if (i < 0 || start + i >= limit)
            {
                yield break;
            }

            yield return start + i;
            start += i + 1;
        }
    }

    private static bool TryReadBtf(VirtualReader read, ulong address, KvmLimits limits, out TypeCatalog catalog, out ulong length)
    {
        catalog = null!;
        length = 0;
        Span<byte> header = stackalloc byte[24];
        if (read(address, header) != header.Length)
        {
            return false;
        }

        uint typeOff = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        uint typeLen = BinaryPrimitives.ReadUInt32LittleEndian(header[12..]);
        uint strOff = BinaryPrimitives.ReadUInt32LittleEndian(header[16..]);
        uint strLen = BinaryPrimitives.ReadUInt32LittleEndian(header[20..]);

        // pahole and the kernel's resolve_btfids write the types first and the strings right after them.
        ulong total = 24UL + strOff + strLen;
        if (typeOff != 0 || strOff != typeLen || typeLen == 0 || strLen == 0 || total > (ulong)limits.MaxBtfBytes)
        {
            return false;
        }

        var blob = new byte[total];
        if (read(address, blob) != blob.Length)
        {
            return false;
        }

        try
        {
            var parsed = TypeCatalog.Parse(blob, $"kernel memory 0x{address:x}-0x{address + total:x} (.BTF, found by scanning after _etext)", limits);
            if (!parsed.TryGetSize("task_struct", out _))
            {
                return false;
            }

            catalog = parsed;
            length = total;
            return true;
        }
        catch (CorruptImageException)
        {
            return false;
        }
    }

    /// <summary>The members of <c>task_struct</c> that tell <c>init_task</c> from a string that merely reads "swapper".</summary>
    private sealed record TaskLayout(long Comm, long Pid, long Tgid, long Mm, long Tasks)
    {
        public static TaskLayout? From(TypeCatalog types) =>
            types.TryGetMember("task_struct.comm", out var comm) && types.TryGetMember("task_struct.pid", out var pid) &&
            types.TryGetMember("task_struct.tgid", out var tgid) && types.TryGetMember("task_struct.mm", out var mm) &&
            types.TryGetMember("task_struct.tasks", out var tasks)
                ? new TaskLayout(comm.Offset, pid.Offset, tgid.Offset, mm.Offset, tasks.Offset)
                : null;

        /// <summary>The task whose comm is at <paramref name="commAddress"/> if it is init_task, else null.</summary>
        public ulong? InitTaskAt(VirtualReader read, ulong commAddress, int pointerSize)
        {
            if (commAddress < (ulong)Comm)
            {
                return null;
            }

            ulong task = commAddress - (ulong)Comm;
            if (task % (ulong)pointerSize != 0)
            {
                return null;
            }

            // Addresses wrap as the kernel's do: a candidate at the top of the address space is just not init_task.
            unchecked
            {
                ulong tasks = task + (ulong)Tasks;
                return ReadInt(read, task + (ulong)Pid) == 0 && ReadInt(read, task + (ulong)Tgid) == 0 &&
                    ReadPointer(read, task + (ulong)Mm, pointerSize) == 0 &&
                    ReadPointer(read, tasks, pointerSize) is { } next and not 0 && ReadPointer(read, tasks + (ulong)pointerSize, pointerSize) is { } prev and not 0 &&
                    ReadPointer(read, next + (ulong)pointerSize, pointerSize) == tasks && ReadPointer(read, prev, pointerSize) == tasks
                    ? task
                    : null;
            }
        }

        private static int? ReadInt(VirtualReader read, ulong address)
        {
            Span<byte> b = stackalloc byte[4];
            return read(address, b) == 4 ? BinaryPrimitives.ReadInt32LittleEndian(b) : null;
        }

        private static ulong? ReadPointer(VirtualReader read, ulong address, int pointerSize)
        {
            Span<byte> b = stackalloc byte[8];
            var slice = b[..pointerSize];
            return read(address, slice) != pointerSize ? null
                : pointerSize == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(slice) : BinaryPrimitives.ReadUInt64LittleEndian(slice);
        }
    }
}
