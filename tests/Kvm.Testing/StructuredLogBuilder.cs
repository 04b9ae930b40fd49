using System.Buffers.Binary;
using System.Text;

namespace Kvm.Testing;

/// <summary>
/// Builds a Linux 3.5–5.9 record log the way kernel/printk/printk.c log_store() writes it: records are
/// <c>struct printk_log</c> + text + dict padded to LOG_ALIGN (4 on x86), a record that would leave no room for an
/// empty header at the end goes to index 0 after a zeroed header (len == 0), and the oldest records are dropped
/// (log_first_idx advances) until the new one fits.
/// </summary>
public sealed class StructuredLogBuilder
{
    public const ulong LogBufVariable = 0xffffffff82100000;
    public const ulong LogBufLenVariable = 0xffffffff82100008;
    public const ulong FirstIdxVariable = 0xffffffff82100010;
    public const ulong NextIdxVariable = 0xffffffff82100018;
    public const ulong FirstSeqVariable = 0xffffffff82100020;
    public const ulong BufferAddress = 0xffff888004000000;

    private readonly List<(int Index, int Length)> _live = [];
    private readonly int _headerSize;
    private int _next;
    private ulong _firstSeq;

    public StructuredLogBuilder(int length = 256, bool callerId = false, string structName = "printk_log")
    {
        Buffer = new byte[length];
        StructName = structName;
        _headerSize = callerId ? 20 : 16;
    }

    public byte[] Buffer { get; }

    public string StructName { get; }

    public int FirstIndex => _live.Count > 0 ? _live[0].Index : _next;

    public int NextIndex => _next;

    public ulong FirstSeq => _firstSeq;

    public long? OffsetOf(string key) => key == $"{StructName}.ts_nsec" ? 0 : key == $"{StructName}.len" ? 8 : key == $"{StructName}.text_len" ? 10 : key == $"{StructName}.dict_len" ? 12 : null;

    public long? SizeOf(string key) => key == StructName ? _headerSize : null;

    public void Add(string text, ulong timestamp = 0, int level = 6, int facility = 0, string dict = "", uint caller = 0)
    {
        byte[] t = Encoding.UTF8.GetBytes(text);
        byte[] d = Encoding.UTF8.GetBytes(dict);
        int size = (_headerSize + t.Length + d.Length + 3) & ~3;
        int start = _next;
        if (start + size + _headerSize > Buffer.Length)
        {
            Array.Clear(Buffer, start, Math.Min(_headerSize, Buffer.Length - start));
            start = 0;
        }

        while (_live.Count > 0 && Overlaps(_live[0], start, size + _headerSize))
        {
            _live.RemoveAt(0);
            _firstSeq++;
        }

        var h = Buffer.AsSpan(start, _headerSize);
        h.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(h, timestamp);
        BinaryPrimitives.WriteUInt16LittleEndian(h[8..], (ushort)size);
        BinaryPrimitives.WriteUInt16LittleEndian(h[10..], (ushort)t.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(h[12..], (ushort)d.Length);
        h[14] = (byte)facility;
        h[15] = (byte)(level << 5);
        if (_headerSize >= 20)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(h[16..], caller);
        }

        t.CopyTo(Buffer, start + _headerSize);
        d.CopyTo(Buffer, start + _headerSize + t.Length);
        _live.Add((start, size));
        _next = start + size;
    }

    public FakeVirtualMemory Build(uint? length = null, uint? firstIdx = null)
    {
        var memory = new FakeVirtualMemory();
        var vars = new byte[40];
        BinaryPrimitives.WriteUInt64LittleEndian(vars, BufferAddress);
        BinaryPrimitives.WriteUInt32LittleEndian(vars.AsSpan(8), length ?? (uint)Buffer.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(vars.AsSpan(16), firstIdx ?? (uint)FirstIndex);
        BinaryPrimitives.WriteUInt32LittleEndian(vars.AsSpan(24), (uint)NextIndex);
        BinaryPrimitives.WriteUInt64LittleEndian(vars.AsSpan(32), _firstSeq);
        memory.Map(LogBufVariable, vars);
        memory.Map(BufferAddress, Buffer);
        return memory;
    }

    public static ulong? Symbol(string name) => name switch
    {
        "log_buf" => LogBufVariable,
        "log_buf_len" => LogBufLenVariable,
        "log_first_idx" => FirstIdxVariable,
        "log_next_idx" => NextIdxVariable,
        "log_first_seq" => FirstSeqVariable,
        _ => null,
    };

    private static bool Overlaps((int Index, int Length) record, int start, int length) =>
        record.Index < start + length && start < record.Index + record.Length;
}
