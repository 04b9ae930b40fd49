using System.Buffers.Binary;
using System.Text;
using Kvm.Linux;
using Kvm.Testing;

namespace Kvm.Tests.Linux;

/// <summary>
/// The kernel log reader against rings built by the kernel's writer rules (PrintkRingBuilder, StructuredLogBuilder):
/// expected records are what the kernel's reader (prb_read_valid(), log_from_idx()) would return.
/// </summary>
public sealed class PrintkLogTests
{
    private static KernelLog ReadLockless(PrintkRingBuilder b, FakeVirtualMemory? memory = null, Func<string, ulong?>? symbols = null, Func<string, long?>? offsetOf = null, KvmLimits? limits = null)
    {
        memory ??= b.Build();
        return PrintkLog.Read(
            memory.Read,
            symbols ?? PrintkRingBuilder.Symbols(),
            offsetOf ?? (k => PrintkRingBuilder.Offsets.TryGetValue(k, out long v) ? v : null),
            k => PrintkRingBuilder.Sizes.TryGetValue(k, out long v) ? v : null,
            k => PrintkRingBuilder.Lengths.TryGetValue(k, out long v) ? v : null,
            limits ?? KvmLimits.Default);
    }

    [Fact]
    public void Lockless_ReadsFinalizedAndCommittedRecords_SkipsReserved()
    {
        var b = new PrintkRingBuilder();
        b.Add("Linux version 6.1.0", timestamp: 0, level: 5, caller: 0x8000_0000);
        b.Add("committed but not finalized", timestamp: 1_500_000_000, level: 4, facility: 1, caller: 42, state: PrintkRingBuilder.Committed);
        b.Add("still being written", timestamp: 2_000_000_000, state: PrintkRingBuilder.Reserved);

        var log = ReadLockless(b);

        Assert.Equal(PrintkLog.LocklessLayout, log.Layout);
        Assert.Empty(log.Warnings);
        Assert.Equal(2, log.Records.Count);
        var first = log.Records[0];
        Assert.Equal((0UL, 0UL, 5, 0, 0x8000_0000u, "Linux version 6.1.0"), (first.Sequence, first.TimestampNanoseconds, first.Level!.Value, first.Facility!.Value, first.CallerId, first.Text));
        Assert.Null(first.Subsystem);
        Assert.Null(first.Device);
        var second = log.Records[1];
        Assert.Equal((1UL, 1_500_000_000UL, 4, 1, 42u), (second.Sequence, second.TimestampNanoseconds, second.Level!.Value, second.Facility!.Value, second.CallerId));
        Assert.Equal("[    1.500000] committed but not finalized", second.Format());
    }

    [Fact]
    public void Lockless_BlockCrossingTheRingEnd_IsReadFromTheRingStart()
    {
        // 256-byte data ring, 60-byte texts: blocks of 8 + 64 bytes at lpos 0, 72, 144; the fourth (216..288) would
        // cross the end, so get_next_lpos() stores it at 256..328 (index 0) and data_push_tail() drops the first.
        var b = new PrintkRingBuilder(countBits: 4, sizeBits: 8);
        string[] texts = [.. Enumerable.Range(0, 4).Select(i => new string((char)('a' + i), 60))];
        foreach (var t in texts)
        {
            b.Add(t);
        }

        var log = ReadLockless(b);

        Assert.Empty(log.Warnings);
        Assert.Equal(texts[1..], log.Records.Select(r => r.Text));
        Assert.Equal([1UL, 2UL, 3UL], log.Records.Select(r => r.Sequence));
        Assert.Equal(texts[3], Encoding.ASCII.GetString(b.Data, 8, 60));
    }

    [Fact]
    public void Lockless_BlockCrossingTheRingEndOnTheFirstLap_IsReadFromTheRingStart()
    {
        // The kernel starts data positions at BLK0_LPOS = -256, so the crossing block begins at 2^64 - 40 and its
        // lpos wraps through zero; the layout in the ring is the same as when positions start at 0.
        var b = new PrintkRingBuilder(countBits: 4, sizeBits: 8, firstLpos: unchecked(0UL - 256));
        string[] texts = [.. Enumerable.Range(0, 4).Select(i => new string((char)('a' + i), 60))];
        foreach (var t in texts)
        {
            b.Add(t);
        }

        var log = ReadLockless(b);

        Assert.Empty(log.Warnings);
        Assert.Equal(texts[1..], log.Records.Select(r => r.Text));
        Assert.Equal(texts[3], Encoding.ASCII.GetString(b.Data, 8, 60));
    }

    [Fact]
    public void Lockless_DataLessRecord_IsAnEmptyLine()
    {
        var b = new PrintkRingBuilder();
        b.Add("before");
        b.Add(string.Empty, timestamp: 3_000_000);
        b.Add("after");

        var log = ReadLockless(b);

        Assert.Equal(["before", string.Empty, "after"], log.Records.Select(r => r.Text));
        Assert.Empty(log.Records[1].RawText);
        Assert.Equal("[    0.003000] ", log.Records[1].Format());
    }

    [Fact]
    public void Lockless_MultiLineRecord_FormatsEveryLineWithThePrefix()
    {
        var b = new PrintkRingBuilder();
        b.Add("first line\nsecond line", timestamp: 1_234_567_890);

        var record = Assert.Single(ReadLockless(b).Records);

        Assert.Equal("[    1.234567] first line\n[    1.234567] second line", record.Format());
    }

    [Fact]
    public void Lockless_DevInfo_GivesSubsystemAndDevice()
    {
        var b = new PrintkRingBuilder();
        b.Add("virtio-pci 0000:00:03.0: enabling device", subsystem: "pci", device: "+pci:0000:00:03.0");

        var record = Assert.Single(ReadLockless(b).Records);

        Assert.Equal("pci", record.Subsystem);
        Assert.Equal("+pci:0000:00:03.0", record.Device);
    }

    [Fact]
    public void Lockless_IdsWrappingPastIdMask_AreFollowed()
    {
        var b = new PrintkRingBuilder(firstId: ~(3UL << 62) - 1);
        b.Add("one");
        b.Add("two");
        b.Add("three");

        var log = ReadLockless(b);

        Assert.Empty(log.Warnings);
        Assert.Equal(["one", "two", "three"], log.Records.Select(r => r.Text));
    }

    [Fact]
    public void Lockless_ReusedDescriptors_KeepTheNewestRecords()
    {
        var b = new PrintkRingBuilder(countBits: 2, sizeBits: 10);
        for (int i = 0; i < 6; i++)
        {
            b.Add($"record {i}");
        }

        var log = ReadLockless(b);

        Assert.Empty(log.Warnings);
        Assert.Equal(["record 2", "record 3", "record 4", "record 5"], log.Records.Select(r => r.Text));
        Assert.Equal([2UL, 3UL, 4UL, 5UL], log.Records.Select(r => r.Sequence));
    }

    [Fact]
    public void Lockless_TextLenLongerThanTheBlock_IsClampedToTheBlock()
    {
        var b = new PrintkRingBuilder();
        b.Add("abc", textLen: 1000);

        var record = Assert.Single(ReadLockless(b).Records);

        // The block is ALIGN(8 + 3, 8) = 16 bytes: 8 of them after the id word.
        Assert.Equal(8, record.RawText.Length);
        Assert.Equal("abc"u8.ToArray(), record.RawText[..3]);
    }

    [Fact]
    public void Lockless_ExportedLevelOffsets_AreUsed()
    {
        var b = new PrintkRingBuilder();
        b.Add("x", level: 3, facility: 2);
        var offsets = new Dictionary<string, long>(PrintkRingBuilder.Offsets) { ["printk_info.facility"] = 19, ["printk_info.flags"] = 18 };

        var record = Assert.Single(ReadLockless(b, offsetOf: k => offsets.TryGetValue(k, out long v) ? v : null).Records);

        Assert.Equal(3 << 5, record.Facility);
        Assert.Equal(0, record.Level);
    }

    [Fact]
    public void Lockless_StaticRingRecordsOlderThanTheDynamicRing_ArePrepended()
    {
        var dynamicRing = new PrintkRingBuilder(countBits: 2, sizeBits: 10);
        var staticRing = new PrintkRingBuilder(countBits: 3, sizeBits: 10);
        for (int i = 0; i < 6; i++)
        {
            dynamicRing.Add($"record {i}", timestamp: (ulong)i);
            if (i < 4)
            {
                staticRing.Add($"record {i}", timestamp: (ulong)i);
            }
        }

        var memory = dynamicRing.Build();
        staticRing.Build(memory, PrintkRingBuilder.StaticRingAddress, descs: 0xffff888005000000, infos: 0xffff888006000000, data: 0xffff888007000000);

        var log = ReadLockless(dynamicRing, memory, PrintkRingBuilder.Symbols(PrintkRingBuilder.StaticRingAddress));

        Assert.Equal(Enumerable.Range(0, 6).Select(i => $"record {i}"), log.Records.Select(r => r.Text));
        Assert.Contains(log.Warnings, w => w.Contains("printk_rb_static", StringComparison.Ordinal));
    }

    [Fact]
    public void Corrupt_CountBits_GivesAWarningAndNoRecords()
    {
        var b = new PrintkRingBuilder();
        b.Add("x");

        var log = ReadLockless(b, b.Build(countBits: 40));

        Assert.Empty(log.Records);
        Assert.Contains(log.Warnings, w => w.Contains("count_bits = 40", StringComparison.Ordinal));
    }

    [Fact]
    public void Corrupt_HugeSizeBits_GivesAWarningWithoutAllocating()
    {
        var b = new PrintkRingBuilder();
        b.Add("x");

        var log = ReadLockless(b, b.Build(sizeBits: 29), limits: new KvmLimits { MaxKernelLogBytes = 1 << 20 });

        Assert.Empty(log.Records);
        Assert.Contains(log.Warnings, w => w.Contains("size_bits = 29", StringComparison.Ordinal));
    }

    [Fact]
    public void Corrupt_DescriptorWithAnotherId_IsSkippedWithAWarning()
    {
        var b = new PrintkRingBuilder();
        b.Add("one");
        ulong two = b.Add("two");
        b.Add("three");
        b.SetStateVar(two, (PrintkRingBuilder.Finalized << 62) | (two + 16));

        var log = ReadLockless(b);

        Assert.Equal(["one", "three"], log.Records.Select(r => r.Text));
        Assert.Contains(log.Warnings, w => w.Contains("do not carry their id", StringComparison.Ordinal));
    }

    [Fact]
    public void Corrupt_HeadFarFromTail_IsBoundedByTheRing()
    {
        var b = new PrintkRingBuilder(countBits: 2);
        b.Add("one");
        b.Add("two");
        b.HeadId = b.TailId + 1_000_000;

        var log = ReadLockless(b);

        Assert.Equal(["one", "two"], log.Records.Select(r => r.Text));
        Assert.Contains(log.Warnings, w => w.Contains("head_id", StringComparison.Ordinal));
    }

    [Fact]
    public void Corrupt_InvalidTextPosition_IsSkippedWithAWarning()
    {
        var b = new PrintkRingBuilder();
        ulong one = b.Add("one");
        b.Add("two");
        b.SetLpos(one, 64, 16);

        var log = ReadLockless(b);

        Assert.Equal(["two"], log.Records.Select(r => r.Text));
        Assert.Contains(log.Warnings, w => w.Contains("invalid text block", StringComparison.Ordinal));
    }

    [Fact]
    public void FailedRecord_IsSkippedAsThePrbReaderDoes()
    {
        var b = new PrintkRingBuilder();
        ulong one = b.Add("one");
        b.Add("two");
        b.SetLpos(one, 1, 1);

        var log = ReadLockless(b);

        Assert.Equal(["two"], log.Records.Select(r => r.Text));
        Assert.Contains(log.Warnings, w => w.Contains("FAILED_LPOS", StringComparison.Ordinal));
    }

    [Fact]
    public void UnreadableArray_ThrowsWithTheAddress()
    {
        var b = new PrintkRingBuilder();
        b.Add("x");
        var memory = b.Build(descs: 0xffff888009000000);
        memory.Map(0xffff888009000000, new byte[100]);

        var e = Assert.ThrowsAny<KvmException>(() => ReadLockless(b, memory));

        Assert.Equal(KvmErrorCode.MemoryFault, e.Code);
        Assert.Contains("0xffff888009000064", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void MissingLayoutKey_ThrowsKernelType()
    {
        var b = new PrintkRingBuilder();
        b.Add("x");

        var e = Assert.ThrowsAny<KvmException>(() => ReadLockless(b, offsetOf: k => k == "printk_info.ts_nsec" ? null : PrintkRingBuilder.Offsets.GetValueOrDefault(k)));

        Assert.Equal(KvmErrorCode.KernelType, e.Code);
        Assert.Contains("OFFSET(printk_info.ts_nsec)", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NoPrintkSymbol_ThrowsSymbolNotFound()
    {
        Assert.Throws<SymbolNotFoundException>(() => PrintkLog.Read((_, _) => 0, _ => null, _ => null, _ => null, _ => null, KvmLimits.Default));
    }

    private static KernelLog ReadStructured(StructuredLogBuilder b, FakeVirtualMemory? memory = null) =>
        PrintkLog.Read((memory ?? b.Build()).Read, StructuredLogBuilder.Symbol, b.OffsetOf, b.SizeOf, _ => null, KvmLimits.Default);

    [Theory]
    [InlineData("printk_log", false)]
    [InlineData("printk_log", true)]
    [InlineData("log", false)]
    public void Structured_ReadsRecordsWithLevelAndDictionary(string structName, bool callerId)
    {
        var b = new StructuredLogBuilder(length: 512, callerId, structName);
        b.Add("Linux version 5.4.0", timestamp: 0, level: 5);
        b.Add("e1000 0000:00:03.0: link up", timestamp: 2_000_001_000, level: 6, dict: "SUBSYSTEM=pci\0DEVICE=+pci:0000:00:03.0", caller: 0x8000_0001);
        b.Add("from userspace", timestamp: 3_000_000_000, level: 4, facility: 1);

        var log = ReadStructured(b);

        Assert.Equal(PrintkLog.StructuredLayout, log.Layout);
        Assert.Empty(log.Warnings);
        Assert.Equal(["Linux version 5.4.0", "e1000 0000:00:03.0: link up", "from userspace"], log.Records.Select(r => r.Text));
        Assert.Equal([5, 6, 4], log.Records.Select(r => r.Level!.Value));
        Assert.Equal([0, 0, 1], log.Records.Select(r => r.Facility!.Value));
        Assert.Equal(("pci", "+pci:0000:00:03.0"), (log.Records[1].Subsystem, log.Records[1].Device));
        Assert.Equal(callerId ? 0x8000_0001u : 0u, log.Records[1].CallerId);
        Assert.Equal("[    2.000001] e1000 0000:00:03.0: link up", log.Records[1].Format());
    }

    [Fact]
    public void Structured_WrapMarker_ContinuesAtIndexZero()
    {
        var b = new StructuredLogBuilder(length: 200);
        for (int i = 0; i < 8; i++)
        {
            b.Add($"message number {i}", timestamp: (ulong)i);
        }

        var log = ReadStructured(b);

        Assert.Empty(log.Warnings);
        Assert.True(b.FirstIndex > b.NextIndex, "the builder should have wrapped");
        var expected = Enumerable.Range((int)b.FirstSeq, 8 - (int)b.FirstSeq).Select(i => $"message number {i}").ToList();
        Assert.Equal(expected, log.Records.Select(r => r.Text));
        Assert.Equal(b.FirstSeq, log.Records[0].Sequence);
    }

    [Fact]
    public void Structured_CorruptRecordLength_StopsWithAWarning()
    {
        var b = new StructuredLogBuilder(length: 256);
        b.Add("good");
        b.Add("bad");
        BinaryPrimitives.WriteUInt16LittleEndian(b.Buffer.AsSpan(20 + 8), 4000);

        var log = ReadStructured(b);

        Assert.Equal(["good"], log.Records.Select(r => r.Text));
        Assert.Contains(log.Warnings, w => w.Contains("does not fit", StringComparison.Ordinal));
    }

    [Fact]
    public void Structured_ImplausibleLength_GivesAWarning()
    {
        var b = new StructuredLogBuilder();
        b.Add("x");

        var log = ReadStructured(b, b.Build(length: 0x7fff_ffff));

        Assert.Empty(log.Records);
        Assert.Contains(log.Warnings, w => w.Contains("log_buf_len", StringComparison.Ordinal));
    }

    [Fact]
    public void Plain_CharacterRing_IsSplitIntoLinesWithLevelAndTime()
    {
        // 64-byte ring; 88 bytes were written, so the oldest 24 are gone and the first surviving line is partial.
        string all = "<6>[    0.000000] Linux version 2.6.32\n<4>[    1.500000] warning: x\n<3>[    2.000000] e\n";
        byte[] bytes = Encoding.ASCII.GetBytes(all);
        var ring = new byte[64];
        for (int i = 0; i < bytes.Length; i++)
        {
            ring[i % 64] = bytes[i];
        }

        var memory = new FakeVirtualMemory();
        var vars = new byte[32];
        BinaryPrimitives.WriteUInt64LittleEndian(vars, 0xffff888008000000);
        BinaryPrimitives.WriteUInt32LittleEndian(vars.AsSpan(8), 64);
        BinaryPrimitives.WriteUInt32LittleEndian(vars.AsSpan(16), (uint)bytes.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(vars.AsSpan(24), (uint)bytes.Length);
        memory.Map(0xffffffff82200000, vars);
        memory.Map(0xffff888008000000, ring);
        Func<string, ulong?> symbols = n => n switch
        {
            "log_buf" => 0xffffffff82200000,
            "log_buf_len" => 0xffffffff82200008,
            "log_end" => 0xffffffff82200010,
            "logged_chars" => 0xffffffff82200018,
            _ => null,
        };

        var log = PrintkLog.Read(memory.Read, symbols, _ => null, _ => null, _ => null, KvmLimits.Default);

        Assert.Equal(PrintkLog.PlainLayout, log.Layout);
        Assert.Equal(88, bytes.Length);
        Assert.Equal([all[24..all.IndexOf('\n', 24)], "warning: x", "e"], log.Records.Select(r => r.Text));
        Assert.Equal((4, 0, 1_500_000_000UL), (log.Records[1].Level!.Value, log.Records[1].Facility!.Value, log.Records[1].TimestampNanoseconds));
        Assert.Equal("[    2.000000] e", log.Records[2].Format());
    }

    [Fact]
    public void Format_LargeTimestamp_WidensTheSeconds()
    {
        var record = new KernelLogRecord(0, 123_456_789_012_345, 6, 0, 0, "x", "x"u8.ToArray(), null, null);

        Assert.Equal("[123456.789012] x", record.Format());
    }
}
