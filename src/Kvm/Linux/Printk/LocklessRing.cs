using System.Buffers.Binary;

namespace Kvm.Linux;

/// <summary>
/// Reads the lockless printk ring buffer of Linux 5.10+ (kernel/printk/printk_ringbuffer.h, printk_ringbuffer.c):
/// a descriptor ring (<c>descs</c> + <c>infos</c>, <c>1 &lt;&lt; count_bits</c> entries) and a text data ring
/// (<c>1 &lt;&lt; size_bits</c> bytes). The three arrays are read once; records are walked from <c>tail_id</c> to
/// <c>head_id</c>.
/// </summary>
internal sealed class LocklessRing
{
    // printk_ringbuffer.h: "Data-less" logical positions have bit 0 set; FAILED_LPOS (0x1) means the text was lost,
    // NO_LPOS (renamed EMPTY_LINE_LPOS in 6.7, both 0x3) means an empty line.
    private const ulong FailedLpos = 0x1;
    private const ulong EmptyLineLpos = 0x3;

    // enum desc_state in printk_ringbuffer.h (5.10+): desc_reserved 0, desc_committed 1, desc_finalized 2, desc_reusable 3.
    private const ulong DescCommitted = 1;
    private const ulong DescFinalized = 2;

    private readonly PrintkMemory _memory;
    private readonly long _descRing;
    private readonly long _textDataRing;
    private readonly long _countBits;
    private readonly long _descs;
    private readonly long _infos;
    private readonly long _headId;
    private readonly long _tailId;
    private readonly long _descSize;
    private readonly long _stateVar;
    private readonly long _textBlkLpos;
    private readonly long _lposBegin;
    private readonly long _lposNext;
    private readonly long _infoSize;
    private readonly long _seq;
    private readonly long _tsNsec;
    private readonly long _textLen;
    private readonly long _callerId;
    private readonly long? _facility;
    private readonly long? _levelByte;
    private readonly long? _subsystem;
    private readonly int _subsystemLength;
    private readonly long? _device;
    private readonly int _deviceLength;
    private readonly long _sizeBits;
    private readonly long _data;
    private readonly long _counter;

    /// <summary>Takes the structure layout from VMCOREINFO-style keys; throws <see cref="KvmErrorCode.KernelType"/> when one is missing.</summary>
    public LocklessRing(PrintkMemory memory, Func<string, long?> offsetOf, Func<string, long?> sizeOf, Func<string, long?> lengthOf)
    {
        _memory = memory;
        long Offset(string key) => PrintkMemory.Require(offsetOf, "OFFSET", key);
        _descRing = Offset("printk_ringbuffer.desc_ring");
        _textDataRing = Offset("printk_ringbuffer.text_data_ring");
        _countBits = Offset("prb_desc_ring.count_bits");
        _descs = Offset("prb_desc_ring.descs");
        _infos = Offset("prb_desc_ring.infos");
        _headId = Offset("prb_desc_ring.head_id");
        _tailId = Offset("prb_desc_ring.tail_id");
        _descSize = PrintkMemory.Require(sizeOf, "SIZE", "prb_desc");
        _stateVar = Offset("prb_desc.state_var");
        _textBlkLpos = Offset("prb_desc.text_blk_lpos");
        _lposBegin = Offset("prb_data_blk_lpos.begin");
        _lposNext = Offset("prb_data_blk_lpos.next");
        _infoSize = PrintkMemory.Require(sizeOf, "SIZE", "printk_info");
        _seq = Offset("printk_info.seq");
        _tsNsec = Offset("printk_info.ts_nsec");
        _textLen = Offset("printk_info.text_len");
        _callerId = Offset("printk_info.caller_id");
        _sizeBits = Offset("prb_data_ring.size_bits");
        _data = Offset("prb_data_ring.data");

        // atomic_long_t is { long counter; }: the offset is 0 on every kernel, and older VMCOREINFO lacks the key.
        _counter = offsetOf("atomic_long_t.counter") ?? 0;

        int word = memory.WordSize;
        if (_descSize < Math.Max(_stateVar + _counter + word, _textBlkLpos + Math.Max(_lposBegin, _lposNext) + word)
            || _infoSize < Math.Max(Math.Max(_seq + 8, _tsNsec + 8), Math.Max(_textLen + 2, _callerId + 4)))
        {
            throw new KvmException(KvmErrorCode.KernelType, $"printk: SIZE(prb_desc) = {_descSize} or SIZE(printk_info) = {_infoSize} is smaller than the fields VMCOREINFO places in them");
        }

        (_facility, _levelByte) = LevelOffsets(offsetOf);

        if (offsetOf("printk_info.dev_info") is { } devInfo
            && offsetOf("dev_printk_info.subsystem") is { } subsystem && lengthOf("printk_info_subsystem") is { } subsystemLength
            && offsetOf("dev_printk_info.device") is { } device && lengthOf("printk_info_device") is { } deviceLength
            && subsystemLength is > 0 and <= 4096 && deviceLength is > 0 and <= 4096
            && devInfo + subsystem + subsystemLength <= _infoSize && devInfo + device + deviceLength <= _infoSize)
        {
            _subsystem = devInfo + subsystem;
            _subsystemLength = (int)subsystemLength;
            _device = devInfo + device;
            _deviceLength = (int)deviceLength;
        }
    }

    /// <summary>
    /// Where <c>facility</c> and the <c>flags:5, level:3</c> byte live. VMCOREINFO does not export them; 5.10–6.x
    /// declare <c>u16 text_len; u8 facility; u8 flags:5; u8 level:3; u32 caller_id;</c> so they follow text_len,
    /// but that is only trusted when every exported offset and the size match that declaration.
    /// </summary>
    private (long? Facility, long? Level) LevelOffsets(Func<string, long?> offsetOf)
    {
        long? facility = offsetOf("printk_info.facility");
        long? flags = offsetOf("printk_info.flags") ?? offsetOf("printk_info.level");
        if (facility is not null && flags is not null)
        {
            return (facility + 1 <= _infoSize ? facility : null, flags + 1 <= _infoSize ? flags : null);
        }

        // struct printk_info (5.10+): seq 0, ts_nsec 8, text_len 16, facility 18, flags/level 19, caller_id 20,
        // dev_info 24 (struct dev_printk_info: char subsystem[16], device[48]), 88 bytes in all, on 32-bit kernels
        // too (two leading u64s leave nothing for i386's 4-byte u64 alignment to change).
        bool known = _seq == 0 && _tsNsec == 8 && _textLen == 16 && _callerId == 20
            && offsetOf("printk_info.dev_info") is null or 24 && _infoSize == 88;
        return known ? (_textLen + 2, _textLen + 3) : (null, null);
    }

    /// <summary>Reads every readable record of the ring at <paramref name="ringAddress"/>, oldest first.</summary>
    /// <param name="ringAddress">The address of a <c>struct printk_ringbuffer</c>.</param>
    /// <param name="name">How warnings name the ring (<c>prb</c>, <c>printk_rb_static</c>).</param>
    /// <param name="warnings">Receives what was wrong with the ring.</param>
    public List<KernelLogRecord> Read(ulong ringAddress, string name, List<string> warnings)
    {
        var records = new List<KernelLogRecord>();
        var limits = _memory.Limits;
        int word = _memory.WordSize;
        ulong descRing = ringAddress + (ulong)_descRing;
        ulong dataRing = ringAddress + (ulong)_textDataRing;

        uint countBits = _memory.ReadUInt32(descRing + (ulong)_countBits, $"{name}.desc_ring.count_bits");
        uint sizeBits = _memory.ReadUInt32(dataRing + (ulong)_sizeBits, $"{name}.text_data_ring.size_bits");
        if (countBits >= 31 || 1L << (int)countBits > limits.MaxKernelLogRecords || 1L << (int)countBits > limits.MaxKernelLogBytes / Math.Max(_descSize, _infoSize))
        {
            warnings.Add($"{name}: desc_ring.count_bits = {countBits} is implausible (cap KvmLimits.MaxKernelLogRecords = {limits.MaxKernelLogRecords}); ring not read");
            return records;
        }

        if (sizeBits >= 31 || 1L << (int)sizeBits > limits.MaxKernelLogBytes || 1L << (int)sizeBits < word)
        {
            warnings.Add($"{name}: text_data_ring.size_bits = {sizeBits} is implausible (cap KvmLimits.MaxKernelLogBytes = {limits.MaxKernelLogBytes}); ring not read");
            return records;
        }

        long count = 1L << (int)countBits;
        long size = 1L << (int)sizeBits;
        ulong descsAddress = _memory.ReadWord(descRing + (ulong)_descs, $"{name}.desc_ring.descs");
        ulong infosAddress = _memory.ReadWord(descRing + (ulong)_infos, $"{name}.desc_ring.infos");
        ulong dataAddress = _memory.ReadWord(dataRing + (ulong)_data, $"{name}.text_data_ring.data");
        ulong headId = _memory.ReadWord(descRing + (ulong)_headId + (ulong)_counter, $"{name}.desc_ring.head_id");
        ulong tailId = _memory.ReadWord(descRing + (ulong)_tailId + (ulong)_counter, $"{name}.desc_ring.tail_id");

        byte[] descs = _memory.ReadBlock(descsAddress, count * _descSize, $"{name} descriptor array");
        byte[] infos = _memory.ReadBlock(infosAddress, count * _infoSize, $"{name} printk_info array");
        byte[] data = _memory.ReadBlock(dataAddress, size, $"{name} text data ring");

        // printk_ringbuffer.h: DESC_SV_BITS = bits in a long, DESC_FLAGS_SHIFT = DESC_SV_BITS - 2, DESC_ID_MASK = ~DESC_FLAGS_MASK.
        int flagsShift = (8 * word) - 2;
        ulong idMask = word == 8 ? ~(3UL << flagsShift) : ~(3UL << flagsShift) & 0xffff_ffff;
        headId &= idMask;
        tailId &= idMask;
        // Ids wrap at DESC_ID_MASK, so head_id may be numerically below tail_id; the masked difference is the distance.
        ulong distance = unchecked(headId - tailId) & idMask;
        if (distance >= (ulong)count)
        {
            warnings.Add($"{name}: head_id 0x{headId:x} is {distance} descriptors past tail_id 0x{tailId:x} but the ring holds {count}; read the {count} descriptors from tail_id only");
        }

        int mismatched = 0;
        int invalid = 0;
        int lost = 0;
        ulong id = tailId;
        for (long step = 0; step < count; step++)
        {
            long index = (long)(id & (ulong)(count - 1));
            long desc = index * _descSize;
            ulong stateVar = PrintkMemory.Word(descs, desc + _stateVar + _counter, word);
            ulong state = stateVar >> flagsShift;
            if ((stateVar & idMask) != id)
            {
                // The head descriptor keeps its previous id between desc_reserve() moving head_id and writing state_var.
                if (id != headId)
                {
                    mismatched++;
                }
            }
            else if (state is DescCommitted or DescFinalized)
            {
                switch (ReadRecord(descs.AsSpan((int)desc, (int)_descSize), infos.AsSpan((int)(index * _infoSize), (int)_infoSize), data, sizeBits))
                {
                    case { } record:
                        records.Add(record);
                        break;
                    case null when IsFailed(descs, desc):
                        lost++;
                        break;
                    default:
                        invalid++;
                        break;
                }
            }

            if (id == headId)
            {
                break;
            }

            id = (id + 1) & idMask;
        }

        if (mismatched > 0)
        {
            warnings.Add($"{name}: {mismatched} descriptors between tail_id and head_id do not carry their id in state_var (overwritten or corrupt); skipped");
        }

        if (invalid > 0)
        {
            warnings.Add($"{name}: {invalid} records have an invalid text block position; skipped");
        }

        if (lost > 0)
        {
            warnings.Add($"{name}: {lost} records lost their text (FAILED_LPOS); skipped as the kernel's prb_read() does");
        }

        return records;
    }

    private bool IsFailed(byte[] descs, long desc)
    {
        int word = _memory.WordSize;
        return PrintkMemory.Word(descs, desc + _textBlkLpos + _lposBegin, word) == FailedLpos
            && PrintkMemory.Word(descs, desc + _textBlkLpos + _lposNext, word) == FailedLpos;
    }

    /// <summary>One record, or null when its text block cannot be located.</summary>
    private KernelLogRecord? ReadRecord(ReadOnlySpan<byte> desc, ReadOnlySpan<byte> info, byte[] data, uint sizeBits)
    {
        int word = _memory.WordSize;
        ulong begin = PrintkMemory.Word(desc, _textBlkLpos + _lposBegin, word);
        ulong next = PrintkMemory.Word(desc, _textBlkLpos + _lposNext, word);
        int textLen = BinaryPrimitives.ReadUInt16LittleEndian(info.Slice((int)_textLen, 2));
        byte[] text;
        if ((begin & 1) != 0 && (next & 1) != 0)
        {
            // get_data(): both positions data-less; only NO_LPOS/EMPTY_LINE_LPOS is a real (empty) record.
            if (begin != EmptyLineLpos || next != EmptyLineLpos)
            {
                return null;
            }

            text = [];
        }
        else if (TextBlock(begin, next, sizeBits, word) is not (int offset, int length))
        {
            return null;
        }
        else
        {
            // The text_len clamp: the block can be longer (alignment padding), and a racy or corrupt text_len longer.
            text = data.AsSpan(offset, Math.Min(textLen, length)).ToArray();
        }

        ulong seq = BinaryPrimitives.ReadUInt64LittleEndian(info.Slice((int)_seq, 8));
        ulong ts = BinaryPrimitives.ReadUInt64LittleEndian(info.Slice((int)_tsNsec, 8));
        uint caller = BinaryPrimitives.ReadUInt32LittleEndian(info.Slice((int)_callerId, 4));
        int? facility = _facility is { } f ? info[(int)f] : null;

        // GCC allocates bitfields from the least significant bit on little-endian targets: flags:5 is bits 0-4, level:3 bits 5-7.
        int? level = _levelByte is { } l ? info[(int)l] >> 5 : null;
        string? subsystem = _subsystem is { } s ? PrintkMemory.FixedString(info.Slice((int)s, _subsystemLength)) : null;
        string? device = _device is { } d ? PrintkMemory.FixedString(info.Slice((int)d, _deviceLength)) : null;
        return PrintkMemory.Record(seq, ts, level, facility, caller, text, subsystem, device);
    }

    /// <summary>
    /// The text of a data block as the kernel's get_data() locates it: a regular block lies between begin and next in
    /// one wrap; a block whose begin is one wrap behind next was stored at the start of the ring instead. The block
    /// starts with the descriptor id (an unsigned long), which is not text.
    /// </summary>
    private static (int Offset, int Length)? TextBlock(ulong begin, ulong next, uint sizeBits, int word)
    {
        ulong size = 1UL << (int)sizeBits;
        ulong offset;
        ulong length;
        if (begin >> (int)sizeBits == next >> (int)sizeBits && begin < next)
        {
            offset = begin & (size - 1);
            length = next - begin;
        }
        // Data positions start at BLK0_LPOS = -size and wrap modulo 2^BITS_PER_LONG (2^32 on a 32-bit kernel), so
        // begin + size wraps on the first lap.
        else if ((unchecked(begin + size) & (word == 8 ? ulong.MaxValue : uint.MaxValue)) >> (int)sizeBits == next >> (int)sizeBits)
        {
            offset = 0;
            length = next & (size - 1);
        }
        else
        {
            return null;
        }

        if (begin % (ulong)word != 0 || next % (ulong)word != 0 || length < (ulong)word || offset + length > size)
        {
            return null;
        }

        return ((int)(offset + (ulong)word), (int)(length - (ulong)word));
    }
}
