using System.Text;

namespace Kvm.FreeBsd;

/// <summary>
/// Reads a FreeBSD kernel's message buffer as <c>dmesg -M core -N kernel</c> does (sbin/dmesg/dmesg.c): the
/// <c>struct msgbuf</c> that <c>msgbufp</c> points to (sys/sys/msgbuf.h, its layout from the kernel's CTF), checked
/// (<c>msg_magic</c> is <c>MSG_MAGIC</c>, <c>msg_size</c> is plausible, <c>msg_ptr</c> is set), then its ring unwrapped
/// from the write position — <c>MSGBUF_SEQ_TO_POS(mbp, msg_wseq)</c>, <c>msg_wseq % msg_size</c> — so that the oldest
/// byte comes first, and cut into lines.
/// </summary>
/// <remarks>
/// As dmesg.c does: a ring that starts with NULs has not wrapped (the NULs are dropped); one that has wrapped starts in
/// the middle of a line, which is kept but marked <see cref="KernelLogRecord.IsShownByDefault"/> false (dmesg prints it
/// with <c>-a</c> only). A missing final newline is added. A line starting <c>&lt;N&gt;</c> (N decimal, what
/// <c>log(9)</c> and <c>msglogchar</c> write, sys/kern/subr_prf.c) loses that prefix; N gives the record's level
/// (<c>LOG_PRI</c>) and facility (<c>LOG_FAC</c>, sys/sys/syslog.h), and a facility other than <c>LOG_KERN</c> hides
/// the line from dmesg without <c>-a</c>.
/// </remarks>
internal static class FreeBsdMessageBuffer
{
    /// <summary>sys/sys/msgbuf.h <c>MSG_MAGIC</c>.</summary>
    public const uint Magic = 0x063062;

    /// <summary>sys/sys/syslog.h <c>LOG_PRIMASK</c> and <c>LOG_FACMASK</c>.</summary>
    private const long PriorityMask = 0x07, FacilityMask = 0x03f8;

    /// <summary>sys/kern/subr_msgbuf.c <c>SEQMOD(size)</c>: sequence numbers run modulo 16 times the size.</summary>
    private const long SequenceFactor = 16;

    /// <summary>Reads and splits the message buffer.</summary>
    /// <exception cref="SymbolNotFoundException">The kernel has no <c>msgbufp</c>.</exception>
    /// <exception cref="CorruptImageException">The <c>struct msgbuf</c> is not a message buffer; the message names the field.</exception>
    /// <exception cref="MemoryFaultException">The structure or its ring cannot be read.</exception>
    public static KernelLogContents Read(FreeBsdKernelReader k)
    {
        ulong msgbufp = k.RequireSymbol("msgbufp");
        ulong address = k.ReadPointer(msgbufp);
        if (address == 0)
        {
            throw new CorruptImageException("msgbufp is NULL: the kernel had not set up its message buffer (sys/kern/subr_msgbuf.c msgbufinit)");
        }

        var msgbuf = k.ReadStruct("msgbuf", address);
        long magic = k.Int(msgbuf, "msgbuf.msg_magic") & 0xffffffff;
        if (magic != Magic)
        {
            throw new CorruptImageException($"struct msgbuf at 0x{address:x}: msg_magic is 0x{magic:x}, not MSG_MAGIC 0x{Magic:x} (sys/sys/msgbuf.h)");
        }

        long size = k.Int(msgbuf, "msgbuf.msg_size") & 0xffffffff;
        if (size == 0 || size > k.Limits.MaxKernelLogBytes)
        {
            throw new CorruptImageException($"struct msgbuf at 0x{address:x}: msg_size {size} is outside 1..KvmLimits.MaxKernelLogBytes ({k.Limits.MaxKernelLogBytes})");
        }

        ulong ring = k.Pointer(msgbuf, "msgbuf.msg_ptr");
        if (ring == 0)
        {
            throw new CorruptImageException($"struct msgbuf at 0x{address:x}: msg_ptr is NULL");
        }

        var warnings = new List<string>();
        long writeSequence = k.Int(msgbuf, "msgbuf.msg_wseq") & 0xffffffff;
        long sequenceModulus = k.Types.TryGetMember("msgbuf.msg_seqmod", out var seqmodMember) ? k.Int(msgbuf, seqmodMember) & 0xffffffff : size * SequenceFactor;
        if (sequenceModulus != size * SequenceFactor)
        {
            warnings.Add($"msg_seqmod is {sequenceModulus}, not SEQMOD(msg_size) = {size * SequenceFactor}; sequence numbers are taken modulo SEQMOD");
            sequenceModulus = size * SequenceFactor;
        }

        if (writeSequence >= sequenceModulus)
        {
            warnings.Add($"msg_wseq {writeSequence} is not below SEQMOD(msg_size) = {sequenceModulus}");
        }

        long position = writeSequence % size;
        var bytes = new byte[size];
        int n = k.Read(ring, bytes);
        if (n != bytes.Length)
        {
            throw new MemoryFaultException(ring + (ulong)n, AddressSpace.KernelVirtual, MemoryFaultReason.NotMapped, $"struct msgbuf at 0x{address:x}: its {size}-byte ring at msg_ptr 0x{ring:x} cannot be read past byte {n}");
        }

        // Oldest first: from the write position to the end, then from the start to the write position.
        var unwrapped = new byte[size];
        bytes.AsSpan((int)position).CopyTo(unwrapped);
        bytes.AsSpan(0, (int)position).CopyTo(unwrapped.AsSpan((int)(size - position)));
        bool wrapped = unwrapped[0] != 0;
        var records = Split(unwrapped, wrapped, writeSequence - size, sequenceModulus);
        string layout = $"FreeBSD msgbuf ({size} bytes, {(wrapped ? "wrapped" : "not wrapped")})";
        return new KernelLogContents(records, layout, warnings);
    }

    /// <summary>
    /// Cuts the unwrapped ring into lines as dmesg.c does. <paramref name="firstSequence"/> is the sequence number of
    /// byte 0 (the write sequence less the ring's size), normalised modulo <paramref name="modulus"/>.
    /// </summary>
    private static List<KernelLogRecord> Split(byte[] data, bool wrapped, long firstSequence, long modulus)
    {
        var records = new List<KernelLogRecord>();
        int start = 0;
        if (!wrapped)
        {
            while (start < data.Length && data[start] == 0)
            {
                start++;
            }
        }

        bool first = true;
        while (start < data.Length)
        {
            int newline = Array.IndexOf(data, (byte)'\n', start);
            int end = newline < 0 ? data.Length : newline;
            var line = data.AsSpan(start, end - start);
            int? level = null, facility = null;
            bool kernel = true;
            if (ParsePriority(line, out long priority, out int prefixLength))
            {
                level = (int)(priority & PriorityMask);
                facility = (int)((priority & FacilityMask) >> 3);
                kernel = facility == 0;
                line = line[prefixLength..];
            }

            var raw = line.ToArray();
            long sequence = ((firstSequence + start) % modulus + modulus) % modulus;
            records.Add(new KernelLogRecord((ulong)sequence, 0, level, facility, 0, Encoding.UTF8.GetString(raw), raw, null, null)
            {
                HasTimestamp = false,
                IsShownByDefault = kernel && !(first && wrapped),
            });
            first = false;
            start = end + 1;
        }

        return records;
    }

    /// <summary>
    /// A <c>&lt;N&gt;</c> prefix as dmesg.c accepts it: a digit after the <c>&lt;</c>, a decimal number below
    /// <c>INT_MAX</c>, then <c>&gt;</c>.
    /// </summary>
    private static bool ParsePriority(ReadOnlySpan<byte> line, out long priority, out int length)
    {
        priority = 0;
        length = 0;
        if (line.Length < 3 || line[0] != '<' || !char.IsAsciiDigit((char)line[1]))
        {
            return false;
        }

        int i = 1;
        while (i < line.Length && char.IsAsciiDigit((char)line[i]))
        {
            priority = (priority * 10) + (line[i] - '0');
            if (priority >= int.MaxValue)
            {
                return false;
            }

            i++;
        }

        if (i >= line.Length || line[i] != '>')
        {
            return false;
        }

        length = i + 1;
        return true;
    }
}
