using System.Buffers.Binary;
using System.Text;

namespace Kvm.Testing;

/// <summary>
/// A sparse kernel address space backed by byte arrays, for walkers that take a <c>VirtualReader</c>: reads stop at
/// the first byte not inside a mapped region.
/// </summary>
public sealed class FakeVirtualMemory
{
    private readonly SortedDictionary<ulong, byte[]> _regions = [];

    public void Map(ulong address, byte[] bytes) => _regions[address] = bytes;

    public byte[] Region(ulong address) => _regions[address];

    public int Read(ulong address, Span<byte> buffer)
    {
        int done = 0;
        while (done < buffer.Length)
        {
            ulong at = address + (ulong)done;
            var hit = _regions.LastOrDefault(r => r.Key <= at && at - r.Key < (ulong)r.Value.Length);
            if (hit.Value is null)
            {
                break;
            }

            int n = (int)Math.Min((ulong)(buffer.Length - done), (ulong)hit.Value.Length - (at - hit.Key));
            hit.Value.AsSpan((int)(at - hit.Key), n).CopyTo(buffer[done..]);
            done += n;
        }

        return done;
    }
}

/// <summary>
/// Builds a Linux 5.10+ lockless printk ring (kernel/printk/printk_ringbuffer.c, x86-64 layout of 6.1 as its
/// VMCOREINFO describes it) the way the kernel's writer does: data_alloc() places a block that would cross the end
/// of the data ring at its start (get_next_lpos()), blocks are ALIGN(id + text, sizeof(long)), empty texts get
/// NO_LPOS, and records whose descriptor or data space is reused are pushed off the tail (desc_push_tail()).
/// </summary>
public sealed class PrintkRingBuilder
{
    public const ulong PrbVariable = 0xffffffff82000000;
    public const ulong RingAddress = 0xffffffff82000100;
    public const ulong StaticRingAddress = 0xffffffff82000200;
    public const ulong DescsAddress = 0xffff888001000000;
    public const ulong InfosAddress = 0xffff888002000000;
    public const ulong DataAddress = 0xffff888003000000;

    public const ulong Reserved = 0;
    public const ulong Committed = 1;
    public const ulong Finalized = 2;
    public const ulong Reusable = 3;

    private const int DescSize = 24;
    private const int InfoSize = 88;
    private const ulong IdMask = ~(3UL << 62);

    private readonly List<(ulong Id, ulong Begin, ulong Next)> _live = [];
    private ulong _nextId;
    private ulong _nextSeq;
    private ulong _headLpos;

    /// <param name="firstLpos">The first data position; the kernel starts at BLK0_LPOS = -(1 &lt;&lt; sizeBits).</param>
    public PrintkRingBuilder(int countBits = 4, int sizeBits = 9, ulong firstId = 0, ulong firstLpos = 0)
    {
        _headLpos = firstLpos;
        CountBits = countBits;
        SizeBits = sizeBits;
        Descs = new byte[DescSize << countBits];
        Infos = new byte[InfoSize << countBits];
        Data = new byte[1 << sizeBits];
        _nextId = firstId & IdMask;
        HeadId = unchecked(_nextId - 1) & IdMask;
        TailId = _nextId;
    }

    public int CountBits { get; }

    public int SizeBits { get; }

    public byte[] Descs { get; }

    public byte[] Infos { get; }

    public byte[] Data { get; }

    public ulong HeadId { get; set; }

    public ulong TailId { get; set; }

    public static IReadOnlyDictionary<string, long> Offsets { get; } = new Dictionary<string, long>
    {
        ["printk_ringbuffer.desc_ring"] = 0,
        ["printk_ringbuffer.text_data_ring"] = 48,
        ["printk_ringbuffer.fail"] = 80,
        ["prb_desc_ring.count_bits"] = 0,
        ["prb_desc_ring.descs"] = 8,
        ["prb_desc_ring.infos"] = 16,
        ["prb_desc_ring.head_id"] = 24,
        ["prb_desc_ring.tail_id"] = 32,
        ["prb_desc.state_var"] = 0,
        ["prb_desc.text_blk_lpos"] = 8,
        ["prb_data_blk_lpos.begin"] = 0,
        ["prb_data_blk_lpos.next"] = 8,
        ["printk_info.seq"] = 0,
        ["printk_info.ts_nsec"] = 8,
        ["printk_info.text_len"] = 16,
        ["printk_info.caller_id"] = 20,
        ["printk_info.dev_info"] = 24,
        ["dev_printk_info.subsystem"] = 0,
        ["dev_printk_info.device"] = 16,
        ["prb_data_ring.size_bits"] = 0,
        ["prb_data_ring.data"] = 8,
        ["prb_data_ring.head_lpos"] = 16,
        ["prb_data_ring.tail_lpos"] = 24,
        ["atomic_long_t.counter"] = 0,
    };

    public static IReadOnlyDictionary<string, long> Sizes { get; } = new Dictionary<string, long>
    {
        ["printk_ringbuffer"] = 88,
        ["prb_desc_ring"] = 48,
        ["prb_desc"] = DescSize,
        ["prb_data_blk_lpos"] = 16,
        ["printk_info"] = InfoSize,
        ["dev_printk_info"] = 64,
        ["prb_data_ring"] = 32,
        ["atomic_long_t"] = 8,
    };

    public static IReadOnlyDictionary<string, long> Lengths { get; } = new Dictionary<string, long>
    {
        ["printk_info_subsystem"] = 16,
        ["printk_info_device"] = 48,
    };

    /// <summary>Appends a record as prb_reserve() + prb_final_commit() would; returns its descriptor id.</summary>
    public ulong Add(string text, ulong timestamp = 0, int level = 6, int facility = 0, uint caller = 1, string? subsystem = null, string? device = null, ulong state = Finalized, int? textLen = null)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        ulong id = _nextId;

        // desc_reserve(): the descriptor slot of id - count is reused, so that record leaves the ring.
        while (_live.Count > 0 && (unchecked(id - _live[0].Id) & IdMask) >= (1UL << CountBits))
        {
            PopTail(id);
        }

        ulong begin;
        ulong next;
        if (bytes.Length == 0)
        {
            begin = next = 0x3;
        }
        else
        {
            ulong size = (ulong)((bytes.Length + 7) & ~7) + 8;
            ulong ringSize = 1UL << SizeBits;
            begin = _headLpos;

            // Data positions wrap modulo 2^64 like the kernel's unsigned long lpos.
            next = unchecked(begin + size);
            if (begin >> SizeBits != next >> SizeBits)
            {
                next = ((next >> SizeBits) << SizeBits) + size;
            }

            // data_push_tail(): older blocks that the new one would overwrite are made reusable.
            while (_live.Any(r => r.Begin != 0x3) && unchecked(next - _live.First(r => r.Begin != 0x3).Begin) > ringSize)
            {
                PopTail(id);
            }

            _headLpos = next;
            WriteWord(Data, (int)(begin & (ringSize - 1)), id);
            int textAt = (int)(begin & (ringSize - 1)) + 8;
            if (begin >> SizeBits != next >> SizeBits)
            {
                WriteWord(Data, 0, id);
                textAt = 8;
            }

            bytes.CopyTo(Data, textAt);
        }

        int slot = (int)(id & ((1UL << CountBits) - 1));
        Array.Clear(Descs, slot * DescSize, DescSize);
        Array.Clear(Infos, slot * InfoSize, InfoSize);
        WriteWord(Descs, slot * DescSize, (state << 62) | id);
        WriteWord(Descs, (slot * DescSize) + 8, begin);
        WriteWord(Descs, (slot * DescSize) + 16, next);
        int info = slot * InfoSize;
        WriteWord(Infos, info, _nextSeq++);
        WriteWord(Infos, info + 8, timestamp);
        BinaryPrimitives.WriteUInt16LittleEndian(Infos.AsSpan(info + 16), (ushort)(textLen ?? bytes.Length));
        Infos[info + 18] = (byte)facility;
        Infos[info + 19] = (byte)(level << 5);
        BinaryPrimitives.WriteUInt32LittleEndian(Infos.AsSpan(info + 20), caller);
        Encoding.UTF8.GetBytes(subsystem ?? string.Empty).CopyTo(Infos, info + 24);
        Encoding.UTF8.GetBytes(device ?? string.Empty).CopyTo(Infos, info + 24 + 16);
        _live.Add((id, begin, next));
        HeadId = id;
        _nextId = (id + 1) & IdMask;
        return id;
    }

    /// <summary>The slot of <paramref name="id"/> in the descriptor array.</summary>
    public int Slot(ulong id) => (int)(id & ((1UL << CountBits) - 1));

    /// <summary>Overwrites a descriptor's state_var.</summary>
    public void SetStateVar(ulong id, ulong stateVar) => WriteWord(Descs, Slot(id) * DescSize, stateVar);

    /// <summary>Overwrites a descriptor's text_blk_lpos.</summary>
    public void SetLpos(ulong id, ulong begin, ulong next)
    {
        WriteWord(Descs, (Slot(id) * DescSize) + 8, begin);
        WriteWord(Descs, (Slot(id) * DescSize) + 16, next);
    }

    /// <summary>Maps the ring and its arrays into <paramref name="memory"/>; <c>prb</c> points at the first ring built.</summary>
    public FakeVirtualMemory Build(FakeVirtualMemory? memory = null, ulong ringAddress = RingAddress, uint? countBits = null, uint? sizeBits = null, ulong descs = DescsAddress, ulong infos = InfosAddress, ulong data = DataAddress)
    {
        memory ??= new FakeVirtualMemory();
        var ring = new byte[88];
        BinaryPrimitives.WriteUInt32LittleEndian(ring, countBits ?? (uint)CountBits);
        WriteWord(ring, 8, descs);
        WriteWord(ring, 16, infos);
        WriteWord(ring, 24, HeadId);
        WriteWord(ring, 32, TailId);
        BinaryPrimitives.WriteUInt32LittleEndian(ring.AsSpan(48), sizeBits ?? (uint)SizeBits);
        WriteWord(ring, 56, data);
        WriteWord(ring, 64, _headLpos);
        memory.Map(ringAddress, ring);
        memory.Map(descs, Descs);
        memory.Map(infos, Infos);
        memory.Map(data, Data);
        if (memory.Read(PrbVariable, new byte[1]) == 0)
        {
            var prb = new byte[8];
            WriteWord(prb, 0, ringAddress);
            memory.Map(PrbVariable, prb);
        }

        return memory;
    }

    /// <summary>Symbol lookup for a kernel whose <c>printk_rb_static</c> is at <paramref name="staticRing"/>.</summary>
    public static Func<string, ulong?> Symbols(ulong staticRing = RingAddress) => name => name switch
    {
        "prb" => PrbVariable,
        "printk_rb_static" => staticRing,
        _ => null,
    };

    private void PopTail(ulong adding)
    {
        var (id, _, _) = _live[0];
        _live.RemoveAt(0);
        WriteWord(Descs, Slot(id) * DescSize, (Reusable << 62) | id);
        TailId = _live.Count > 0 ? _live[0].Id : adding;
    }

    private static void WriteWord(byte[] target, int offset, ulong value) => BinaryPrimitives.WriteUInt64LittleEndian(target.AsSpan(offset), value);
}
