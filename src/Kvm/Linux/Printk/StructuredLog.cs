using System.Buffers.Binary;
using System.Text;

namespace Kvm.Linux;

/// <summary>
/// Reads the variable-length record log of Linux 3.5–5.9 (kernel/printk/printk.c of those releases): <c>log_buf</c>
/// holds <c>struct printk_log</c> headers (<c>struct log</c> before 3.11) each followed by its text and dictionary;
/// records run from <c>log_first_idx</c> to <c>log_next_idx</c>, and a header with <c>len == 0</c> means the next
/// record starts at index 0.
/// </summary>
internal static class StructuredLog
{
    /// <summary>Reads the log; <paramref name="warnings"/> receives what was wrong with it.</summary>
    public static List<KernelLogRecord> Read(PrintkMemory memory, Func<string, ulong?> symbol, Func<string, long?> offsetOf, Func<string, long?> sizeOf, List<string> warnings)
    {
        string type = sizeOf("printk_log") is not null ? "printk_log" : "log";
        long headerSize = PrintkMemory.Require(sizeOf, "SIZE", type);
        long tsNsec = PrintkMemory.Require(offsetOf, "OFFSET", $"{type}.ts_nsec");
        long lenOffset = PrintkMemory.Require(offsetOf, "OFFSET", $"{type}.len");
        long textLenOffset = PrintkMemory.Require(offsetOf, "OFFSET", $"{type}.text_len");
        long? dictLenOffset = offsetOf($"{type}.dict_len");
        if (headerSize < Math.Max(tsNsec + 8, Math.Max(lenOffset, textLenOffset) + 2) || (dictLenOffset is { } dl && dl + 2 > headerSize))
        {
            throw new KvmException(KvmErrorCode.KernelType, $"printk: SIZE({type}) = {headerSize} is smaller than the fields VMCOREINFO places in it");
        }

        // struct printk_log { u64 ts_nsec; u16 len; u16 text_len; u16 dict_len; u8 facility; u8 flags:5, level:3;
        // u32 caller_id (5.1+, CONFIG_PRINTK_CALLER) }: facility and level are not exported, so they are only taken
        // when the exported offsets match that declaration.
        bool known = tsNsec == 0 && lenOffset == 8 && textLenOffset == 10 && dictLenOffset is null or 12 && headerSize >= 16;
        bool hasCaller = known && headerSize >= 20;

        ulong buffer = memory.ReadWord(Symbol(symbol, "log_buf"), "log_buf");
        uint length = memory.ReadUInt32(Symbol(symbol, "log_buf_len"), "log_buf_len");
        uint first = memory.ReadUInt32(Symbol(symbol, "log_first_idx"), "log_first_idx");
        uint next = memory.ReadUInt32(Symbol(symbol, "log_next_idx"), "log_next_idx");
        ulong sequence = symbol("log_first_seq") is { } firstSeq ? memory.ReadUInt64(firstSeq, "log_first_seq") : 0;
        var records = new List<KernelLogRecord>();
        if (length == 0 || length > memory.Limits.MaxKernelLogBytes || first >= length || next >= length)
        {
            warnings.Add($"log_buf_len = {length}, log_first_idx = {first}, log_next_idx = {next} are inconsistent (cap KvmLimits.MaxKernelLogBytes = {memory.Limits.MaxKernelLogBytes}); log not read");
            return records;
        }

        byte[] log = memory.ReadBlock(buffer, length, "log_buf");
        long index = first;
        bool wrapped = false;
        long maxRecords = (length / headerSize) + 2;
        for (long step = 0; index != next; step++)
        {
            if (step > maxRecords)
            {
                warnings.Add($"log_buf: more records than fit in {length} bytes before reaching log_next_idx; stopped");
                break;
            }

            if (index + headerSize > length)
            {
                warnings.Add($"log_buf: record header at index {index} runs past log_buf_len {length}; stopped");
                break;
            }

            var header = log.AsSpan((int)index, (int)headerSize);
            int recordLength = BinaryPrimitives.ReadUInt16LittleEndian(header[(int)lenOffset..]);
            if (recordLength == 0)
            {
                // log_store() writes an empty header where the next record did not fit and continues at index 0.
                if (index == 0 || wrapped)
                {
                    warnings.Add($"log_buf: empty record header at index {index} does not mark a wrap; stopped");
                    break;
                }

                wrapped = true;
                index = 0;
                continue;
            }

            int textLength = BinaryPrimitives.ReadUInt16LittleEndian(header[(int)textLenOffset..]);
            int dictLength = dictLenOffset is { } d ? BinaryPrimitives.ReadUInt16LittleEndian(header[(int)d..]) : 0;
            if (index + recordLength > length || headerSize + textLength + dictLength > recordLength)
            {
                warnings.Add($"log_buf: record at index {index} (len {recordLength}, text_len {textLength}, dict_len {dictLength}) does not fit; stopped");
                break;
            }

            ulong ts = BinaryPrimitives.ReadUInt64LittleEndian(header[(int)tsNsec..]);
            int? facility = known ? header[14] : null;
            int? level = known ? header[15] >> 5 : null;
            uint caller = hasCaller ? BinaryPrimitives.ReadUInt32LittleEndian(header[16..]) : 0;
            int textStart = (int)(index + headerSize);
            byte[] text = log.AsSpan(textStart, textLength).ToArray();
            var (subsystem, device) = Dictionary(log.AsSpan(textStart + textLength, dictLength));
            records.Add(PrintkMemory.Record(sequence, ts, level, facility, caller, text, subsystem, device));
            sequence++;
            wrapped = false;
            index += recordLength;
        }

        return records;
    }

    /// <summary>The SUBSYSTEM= and DEVICE= entries of a record's dictionary (NUL-separated KEY=value pairs, dev_printk_emit in 3.5–5.9).</summary>
    private static (string? Subsystem, string? Device) Dictionary(ReadOnlySpan<byte> dictionary)
    {
        string? subsystem = null;
        string? device = null;
        foreach (var entry in Encoding.UTF8.GetString(dictionary).Split('\0'))
        {
            if (entry.StartsWith("SUBSYSTEM=", StringComparison.Ordinal) && entry.Length > 10)
            {
                subsystem = entry[10..];
            }
            else if (entry.StartsWith("DEVICE=", StringComparison.Ordinal) && entry.Length > 7)
            {
                device = entry[7..];
            }
        }

        return (subsystem, device);
    }

    private static ulong Symbol(Func<string, ulong?> symbol, string name) => symbol(name) ?? throw new SymbolNotFoundException(name);
}
