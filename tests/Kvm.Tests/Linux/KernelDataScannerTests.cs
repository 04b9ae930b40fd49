using System.Buffers.Binary;
using System.Text;
using Kvm.Linux;
using Kvm.Testing;
using Kvm.Types;

namespace Kvm.Tests.Linux;

/// <summary>
/// <see cref="KernelDataScanner"/> on a sparse kernel image built here: the BTF header and init_task are recognized
/// by the rules of include/uapi/linux/btf.h and of init_task itself (pid 0, no mm, a tasks list that points back),
/// decoys are not, and unreadable blocks are skipped.
/// </summary>
public sealed class KernelDataScannerTests
{
    private const ulong Etext = 0xffff_8000_0900_0000;

    // The layout the builder's task_struct has (offsets are what BtfBuilder is told, in bits below).
    private const int PidOffset = 16;
    private const int TgidOffset = 20;
    private const int TasksOffset = 24;
    private const int MmOffset = 40;
    private const int CommOffset = 48;
    private const int TaskSize = 64;

    [Fact]
    public void FindsBtfAndInitTask_AtTheirAddresses()
    {
        var memory = new SparseMemory();
        byte[] btf = TaskBtf();
        ulong btfAt = Etext + 0x4a_e4cc;
        memory.Write(btfAt, btf);
        ulong initTask = Etext + 0xfc_8d80;
        ulong other = Etext + 0x100_0000;
        WriteTask(memory, initTask, "swapper/0", pid: 0, mm: 0, next: other + TasksOffset, prev: other + TasksOffset);
        WriteTask(memory, other, "init", pid: 1, mm: 0xffff_0000_1234_0000, next: initTask + TasksOffset, prev: initTask + TasksOffset);

        var result = KernelDataScanner.Scan(memory.Read, Etext, 8, KvmLimits.Default);

        Assert.NotNull(result.Types);
        Assert.True(result.Types.TryGetSize("task_struct", out long size));
        Assert.Equal(TaskSize, size);
        Assert.Equal(btfAt, Symbol(result, "__start_BTF"));
        Assert.Equal(btfAt + (ulong)btf.Length, Symbol(result, "__stop_BTF"));
        Assert.Equal(initTask, Symbol(result, "init_task"));
        Assert.All(result.Symbols, s => Assert.Equal("scan", s.Source));
    }

    [Fact]
    public void Decoys_AreNotTakenForInitTask()
    {
        var memory = new SparseMemory();
        memory.Write(Etext + 0x1000, TaskBtf());

        // "swapper/0" as a plain string; a task with pid 0 whose list does not point back; an idle task of another
        // CPU with an mm; then the real one.
        memory.Write(Etext + 0x20_0000, Encoding.ASCII.GetBytes("swapper/0\0"));
        ulong broken = Etext + 0x30_0000;
        WriteTask(memory, broken, "swapper/0", pid: 0, mm: 0, next: Etext + 0x90_0000, prev: Etext + 0x90_0000);
        ulong withMm = Etext + 0x40_0000;
        WriteTask(memory, withMm, "swapper/0", pid: 0, mm: 0xffff_0000_0000_1000, next: withMm + TasksOffset, prev: withMm + TasksOffset);
        ulong initTask = Etext + 0x50_0000;
        WriteTask(memory, initTask, "swapper/0", pid: 0, mm: 0, next: initTask + TasksOffset, prev: initTask + TasksOffset);

        var result = KernelDataScanner.Scan(memory.Read, Etext, 8, KvmLimits.Default);

        Assert.Equal(initTask, Symbol(result, "init_task"));
    }

    [Fact]
    public void MatchesAcrossBlockBoundaries_AndUnreadableBlocks_AreHandled()
    {
        var memory = new SparseMemory();

        // The BTF header starts 4 bytes before a 64 KiB boundary; an unreadable 1 MiB lies before it.
        ulong btfAt = Etext + 0x20_0000 - 4;
        memory.Write(btfAt, TaskBtf());

        // init_task's comm straddles the next 64 KiB boundary.
        ulong initTask = Etext + 0x30_0000 - CommOffset - 3;
        initTask &= ~7UL;
        WriteTask(memory, initTask, "swapper", pid: 0, mm: 0, next: initTask + TasksOffset, prev: initTask + TasksOffset);

        var result = KernelDataScanner.Scan(memory.Read, Etext, 8, KvmLimits.Default);

        Assert.Equal(btfAt, Symbol(result, "__start_BTF"));
        Assert.Equal(initTask, Symbol(result, "init_task"));
    }

    [Fact]
    public void BadBtfHeaders_AreSkipped_AndNothingFound_GivesNoSymbols()
    {
        var memory = new SparseMemory();
        byte[] good = TaskBtf();

        // The magic with the strings not right after the types; then a BTF that parses but has no task_struct.
        byte[] misplaced = (byte[])good.Clone();
        BinaryPrimitives.WriteUInt32LittleEndian(misplaced.AsSpan(16), BinaryPrimitives.ReadUInt32LittleEndian(good.AsSpan(16)) + 4);
        memory.Write(Etext + 0x1000, misplaced);
        var other = new BtfBuilder();
        other.Int("int", 4, 32, signed: true);
        memory.Write(Etext + 0x8000, other.Build());

        var result = KernelDataScanner.Scan(memory.Read, Etext, 8, KvmLimits.Default);

        Assert.Null(result.Types);
        Assert.Empty(result.Symbols);
    }

    [Fact]
    public void GivenTypes_FindInitTaskInA32BitKernel()
    {
        var memory = new SparseMemory();
        var types = TypeCatalog.Parse(TaskBtf(pointerSize: 4), "test");
        const ulong etext = 0xc191_bc80;
        ulong initTask = 0xc1c4_44c0;
        Write32Task(memory, initTask, "swapper/0", next: initTask + 12, prev: initTask + 12);

        var result = KernelDataScanner.Scan(memory.Read, etext, 4, KvmLimits.Default, types);

        Assert.Same(types, result.Types);
        Assert.Equal(initTask, Symbol(result, "init_task"));
        Assert.DoesNotContain(result.Symbols, s => s.Name == "__start_BTF");
    }

    [Fact]
    public void ExportedVariables_ComeFromTheKsymtab_AndPerCpuOnesFromTheBtfDataSection()
    {
        var memory = new SparseMemory();
        ulong table = Etext + 0x44_a720;
        ulong strings = Etext + 0x46_0000;
        ulong percpuStart = Etext + 0xb0_3000;

        // include/linux/export-internal.h (6.1, PREL32): { int value_offset; int name_offset; int namespace_offset; },
        // each relative to its own field; sorted by name. A function (below _etext) is exported too.
        (string Name, ulong Value)[] exports =
        [
            ("__per_cpu_offset", Etext + 0x9c_3000),
            ("avenrun", Etext + 0xc8_00f8),
            ("kernel_cpustat", percpuStart + 10408),
            ("nr_cpu_ids", Etext + 0x9b_eb20),
            ("printk", Etext - 0x10_0000),
        ];
        ulong at = strings;
        for (int i = 0; i < exports.Length; i++)
        {
            memory.Write(at, Encoding.ASCII.GetBytes("\0" + exports[i].Name + "\0"));
            ulong entry = table + (ulong)(12 * i);
            var e = new byte[12];
            BinaryPrimitives.WriteInt32LittleEndian(e, unchecked((int)(long)(exports[i].Value - entry)));
            BinaryPrimitives.WriteInt32LittleEndian(e.AsSpan(4), unchecked((int)(long)(at + 1 - (entry + 4))));
            memory.Write(entry, e);
            at += (ulong)exports[i].Name.Length + 1;
        }

        memory.Write(Etext + 0x4a_0000, TaskBtf(perCpu: [("kernel_cpustat", 10408, 80), ("runqueues", 81728, 3328), ("__entry_task", 776, 8)]));

        var result = KernelDataScanner.Scan(memory.Read, Etext, 8, KvmLimits.Default);

        Assert.Equal(Etext + 0xc8_00f8, Symbol(result, "avenrun"));
        Assert.Equal(Etext + 0x9b_eb20, Symbol(result, "nr_cpu_ids"));
        Assert.Equal("__ksymtab", Assert.Single(result.Symbols, s => s.Name == "avenrun").Source);
        Assert.DoesNotContain(result.Symbols, s => s.Name == "printk");
        Assert.Equal(percpuStart, Symbol(result, "__per_cpu_start"));
        Assert.Equal(percpuStart + 81728 + 3328, Symbol(result, "__per_cpu_end"));
        Assert.Equal(percpuStart + 81728, Symbol(result, "runqueues"));
        Assert.Equal(percpuStart + 776, Symbol(result, "__entry_task"));
        Assert.Equal(percpuStart + 10408, Symbol(result, "kernel_cpustat"));
    }

    [Fact]
    public void ExportedVariables_OfA32BitKernelWithPointerEntries()
    {
        // Without PREL32 relocations: { unsigned long value; const char *name; const char *namespace; }.
        var memory = new SparseMemory();
        const ulong etext = 0xc191_bc80;
        const ulong table = 0xc1bd_bbf0;
        ulong at = 0xc1c0_0000;
        (string Name, ulong Value)[] exports = [("avenrun", 0xc1f0_0010), ("init_uts_ns", 0xc1e0_0020), ("nr_cpu_ids", 0xc1e0_1000)];
        for (int i = 0; i < exports.Length; i++)
        {
            memory.Write(at, Encoding.ASCII.GetBytes("\0" + exports[i].Name + "\0"));
            var e = new byte[12];
            BinaryPrimitives.WriteUInt32LittleEndian(e, (uint)exports[i].Value);
            BinaryPrimitives.WriteUInt32LittleEndian(e.AsSpan(4), (uint)(at + 1));
            memory.Write(table + (ulong)(12 * i), e);
            at += (ulong)exports[i].Name.Length + 1;
        }

        var result = KernelDataScanner.Scan(memory.Read, etext, 4, KvmLimits.Default, TypeCatalog.Parse(TaskBtf(pointerSize: 4), "test"));

        Assert.Equal(0xc1f0_0010UL, Symbol(result, "avenrun"));
        Assert.Equal(0xc1e0_0020UL, Symbol(result, "init_uts_ns"));
        Assert.Equal(0xc1e0_1000UL, Symbol(result, "nr_cpu_ids"));
    }

    [Fact]
    public void AnOffsetThatHappensToReachAnAnchor_IsNotATable()
    {
        // One int that leads to "avenrun", with nothing that reads as neighbouring entries: no symbols come of it.
        var memory = new SparseMemory();
        ulong name = Etext + 0x46_0001;
        memory.Write(name - 1, "\0avenrun\0"u8);
        ulong entry = Etext + 0x44_0000;
        var e = new byte[12];
        BinaryPrimitives.WriteInt32LittleEndian(e.AsSpan(4), unchecked((int)(long)(name - (entry + 4))));
        memory.Write(entry, e);

        var result = KernelDataScanner.Scan(memory.Read, Etext, 8, KvmLimits.Default);

        Assert.DoesNotContain(result.Symbols, s => s.Name == "avenrun");
    }

    [Fact]
    public void AnEtextNearTheTopOfTheAddressSpace_EndsTheWindowThere()
    {
        // A corrupt _etext: the window would wrap past 2^64 to address 0 and go on for ever; it must stop at the top.
        var memory = new SparseMemory();
        memory.Write(0x1000, "\0avenrun\0swapper/0\0"u8);

        var result = KernelDataScanner.Scan(memory.Read, 0xffff_ffff_ffff_0123, 8, KvmLimits.Default);

        Assert.Empty(result.Symbols);
        Assert.Null(result.Types);
    }

    private static ulong Symbol(KernelDataScanner.Result result, string name) => Assert.Single(result.Symbols, s => s.Name == name).Address;

    /// <summary>A task_struct with pid, tgid, tasks (list_head), mm and comm[16] at the offsets above (or the 32-bit ones).</summary>
    private static byte[] TaskBtf(int pointerSize = 8, (string Name, int Offset, int Size)[]? perCpu = null)
    {
        var b = new BtfBuilder();
        int i32 = b.Int("int", 4, 32, signed: true);
        int ch = b.Int("char", 1, 8, signed: true, isChar: true);
        int list = b.Forward("list_head");
        int listPtr = b.Pointer(list);
        int listHead = b.Struct("list_head", 2 * pointerSize, ("next", listPtr, 0, 0), ("prev", listPtr, pointerSize * 8, 0));
        int mmPtr = b.Pointer(b.Forward("mm_struct"));
        int comm = b.Array(ch, i32, 16);
        if (pointerSize == 8)
        {
            b.Struct("task_struct", TaskSize, ("pid", i32, PidOffset * 8, 0), ("tgid", i32, TgidOffset * 8, 0), ("tasks", listHead, TasksOffset * 8, 0), ("mm", mmPtr, MmOffset * 8, 0), ("comm", comm, CommOffset * 8, 0));
        }
        else
        {
            // i386: pid 4, tgid 8, tasks 12, mm 20, comm 24.
            b.Struct("task_struct", 40, ("pid", i32, 32, 0), ("tgid", i32, 64, 0), ("tasks", listHead, 96, 0), ("mm", mmPtr, 160, 0), ("comm", comm, 192, 0));
        }

        if (perCpu is not null)
        {
            // What pahole writes for per-CPU variables: a VAR each, and a DATASEC with their offsets in the section.
            var vars = perCpu.Select(v => (b.Variable(v.Name, i32), v.Offset, v.Size)).ToArray();
            b.DataSection(".data..percpu", perCpu.Max(v => v.Offset + v.Size), vars);
        }

        return b.Build();
    }

    private static void WriteTask(SparseMemory memory, ulong task, string comm, int pid, ulong mm, ulong next, ulong prev)
    {
        var t = new byte[TaskSize];
        BinaryPrimitives.WriteInt32LittleEndian(t.AsSpan(PidOffset), pid);
        BinaryPrimitives.WriteInt32LittleEndian(t.AsSpan(TgidOffset), pid);
        BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(TasksOffset), next);
        BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(TasksOffset + 8), prev);
        BinaryPrimitives.WriteUInt64LittleEndian(t.AsSpan(MmOffset), mm);
        Encoding.ASCII.GetBytes(comm).CopyTo(t.AsSpan(CommOffset));
        memory.Write(task, t);
    }

    private static void Write32Task(SparseMemory memory, ulong task, string comm, ulong next, ulong prev)
    {
        var t = new byte[40];
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(12), (uint)next);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(16), (uint)prev);
        Encoding.ASCII.GetBytes(comm).CopyTo(t.AsSpan(24));
        memory.Write(task, t);
    }

    /// <summary>Kernel virtual memory of 4 KiB pages: what was written reads back; every other page is unreadable.</summary>
    private sealed class SparseMemory
    {
        private readonly Dictionary<ulong, byte[]> _pages = [];

        public void Write(ulong address, ReadOnlySpan<byte> bytes)
        {
            for (int i = 0; i < bytes.Length; i++)
            {
                ulong a = address + (ulong)i;
                if (!_pages.TryGetValue(a & ~4095UL, out var page))
                {
                    _pages[a & ~4095UL] = page = new byte[4096];
                }

                page[a & 4095] = bytes[i];
            }
        }

        /// <summary>Reads up to the first page that is not there, as a kernel-memory read does.</summary>
        public int Read(ulong address, Span<byte> buffer)
        {
            int done = 0;
            while (done < buffer.Length)
            {
                ulong a = address + (ulong)done;
                if (!_pages.TryGetValue(a & ~4095UL, out var page))
                {
                    break;
                }

                int n = Math.Min(buffer.Length - done, 4096 - (int)(a & 4095));
                page.AsSpan((int)(a & 4095), n).CopyTo(buffer[done..]);
                done += n;
            }

            return done;
        }
    }
}
