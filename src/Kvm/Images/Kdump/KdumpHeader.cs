using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace Kvm.Images.Kdump;

/// <summary>How the dumped kernel laid out <c>disk_dump_header</c> and <c>kdump_sub_header</c>.</summary>
internal enum KdumpLayout
{
    /// <summary>64-bit kernel: <c>unsigned long</c> and <c>struct timeval</c> fields are 8 bytes.</summary>
    Bits64,

    /// <summary>32-bit kernel whose ABI aligns 64-bit fields to 4 bytes (i386): packed sub-header.</summary>
    Bits32Packed,

    /// <summary>32-bit kernel whose ABI aligns 64-bit fields to 8 bytes (arm, mips): padded sub-header.</summary>
    Bits32Padded,
}

/// <summary>
/// The parsed <c>disk_dump_header</c> and <c>kdump_sub_header</c> of one kdump-compressed file
/// (makedumpfile diskdump_mod.h). Only fields present in the file's header version are read; the others keep
/// their "absent" values (zero, or the version-5 fallbacks for the pfn range and max_mapnr).
/// </summary>
internal sealed class KdumpHeader
{
    /// <summary>Smallest block (page) size accepted.</summary>
    public const int MinBlockSize = 512;

    /// <summary>Largest block (page) size accepted: above every Linux page size (hexagon's 256 KiB is the largest).</summary>
    public const int MaxBlockSize = 1 << 20;

    /// <summary>Highest header version known (makedumpfile and QEMU write 6).</summary>
    public const int MaxHeaderVersion = 6;

    /// <summary>Header status bit DUMP_DH_COMPRESSED_INCOMPLETE: the dump stopped early (ENOSPC).</summary>
    public const uint StatusIncomplete = 0x8;

    /// <summary>Header status bits that name a page compression (zlib, lzo, snappy, zstd).</summary>
    public const uint StatusCompressionMask = 0x1 | 0x2 | 0x4 | 0x20;

    // new_utsname: six char[65] fields starting at offset 12 in both layouts.
    private const int UtsnameOffset = 12;
    private const int UtsFieldLength = 65;
    private const int HeaderReadSize = 512;
    private const int SubHeaderReadSize = 104;

    private KdumpHeader()
    {
    }

    /// <summary>"KDUMP   " or "DISKDUMP".</summary>
    public string Signature { get; private init; } = "";

    /// <summary>The header's byte order (the dumped kernel's).</summary>
    public bool BigEndian { get; private init; }

    /// <summary>32- or 64-bit field layout.</summary>
    public KdumpLayout Layout { get; private init; }

    /// <summary><c>header_version</c>.</summary>
    public int HeaderVersion { get; private init; }

    /// <summary><c>utsname.release</c> (advisory: some makedumpfile versions shift utsname by 4 bytes).</summary>
    public string Release { get; private init; } = "";

    /// <summary><c>utsname.machine</c> (QEMU writes only this field).</summary>
    public string Machine { get; private init; } = "";

    /// <summary><c>status</c> flags (compression used, incomplete, excluded vmemmap).</summary>
    public uint Status { get; private init; }

    /// <summary><c>block_size</c>: the dumped kernel's page size.</summary>
    public int BlockSize { get; private init; }

    /// <summary><c>sub_hdr_size</c>, in blocks.</summary>
    public int SubHeaderBlocks { get; private init; }

    /// <summary><c>bitmap_blocks</c>: both bitmaps together, in blocks.</summary>
    public long BitmapBlocks { get; private init; }

    /// <summary>The header's 32-bit <c>max_mapnr</c>.</summary>
    public uint MaxMapnr32 { get; private init; }

    /// <summary><c>phys_base</c> (sub-header v1+; QEMU's is wrong on x86 when phys_base != 0, prefer VMCOREINFO).</summary>
    public ulong PhysBase { get; private init; }

    /// <summary><c>dump_level</c> (v1+), or null.</summary>
    public int? DumpLevel { get; private init; }

    /// <summary>True when <c>split</c> is set (v2+): the file holds descriptors for [<see cref="StartPfn"/>, <see cref="EndPfn"/>) only.</summary>
    public bool Split { get; private init; }

    /// <summary>First pfn of a split part (<c>start_pfn_64</c> for v6, <c>start_pfn</c> for v2-v5).</summary>
    public ulong StartPfn { get; private init; }

    /// <summary>One past the last pfn of a split part.</summary>
    public ulong EndPfn { get; private init; }

    /// <summary><c>offset_vmcoreinfo</c> (v3+), 0 when absent.</summary>
    public long VmcoreInfoOffset { get; private init; }

    /// <summary><c>size_vmcoreinfo</c> (v3+).</summary>
    public ulong VmcoreInfoSize { get; private init; }

    /// <summary><c>offset_note</c> (v4+), 0 when absent.</summary>
    public long NoteOffset { get; private init; }

    /// <summary><c>size_note</c> (v4+).</summary>
    public ulong NoteSize { get; private init; }

    /// <summary>
    /// The highest pfn + 1: <c>max_mapnr_64</c> for v6, else the header's <c>max_mapnr</c>.
    /// </summary>
    public ulong MaxMapnr { get; private init; }

    /// <summary>True when the header says the dump is incomplete (status 0x8).</summary>
    public bool Incomplete => (Status & StatusIncomplete) != 0;

    /// <summary>The first byte of the bitmap region: block 1 + sub_hdr_size.</summary>
    public long BitmapOffset => (1L + SubHeaderBlocks) * BlockSize;

    /// <summary>The bitmap region's size in bytes.</summary>
    public long BitmapBytes => BitmapBlocks * BlockSize;

    /// <summary>The first page descriptor: right after the bitmaps.</summary>
    public long DescriptorOffset => BitmapOffset + BitmapBytes;

    /// <summary>True for the signatures this reader knows.</summary>
    public static bool HasSignature(ReadOnlySpan<byte> header) =>
        header.StartsWith("KDUMP   "u8) || header.StartsWith("DISKDUMP"u8);

    /// <summary>
    /// Reads and validates the header of <paramref name="view"/>. The byte order comes from
    /// <c>header_version</c>, which sits at offset 8 in every layout and is a small number (both orders are tried
    /// only for version 0). The 32- or 64-bit layout is then chosen as libkdumpfile's <c>try_header_32/64</c> does
    /// (32 first), with stricter checks so that a 64-bit header never passes for a 32-bit one: a power-of-two
    /// <c>block_size</c>, a bitmap that covers <c>max_mapnr</c>, at least one sub-header block from version 1 on, a
    /// bitmap region within <see cref="KvmLimits.MaxBitmapBytes"/>, and page descriptors that start inside the file.
    /// </summary>
    public static KdumpHeader Read(IKdumpFileView view, KvmLimits limits)
    {
        var buf = new byte[HeaderReadSize];
        int got = view.Read(0, buf);
        if (got < HeaderReadSize)
        {
            throw new CorruptImageException($"{view.Path}: truncated kdump header ({got} of {HeaderReadSize} bytes)");
        }

        if (!HasSignature(buf))
        {
            throw new CorruptImageException($"{view.Path}: not a kdump-compressed file (signature \"{Printable(buf.AsSpan(0, 8))}\" at offset 0x0)");
        }

        int versionLe = BinaryPrimitives.ReadInt32LittleEndian(buf.AsSpan(8));
        int versionBe = BinaryPrimitives.ReadInt32BigEndian(buf.AsSpan(8));
        var orders = new List<bool>(2);
        if (versionLe is >= 0 and <= MaxHeaderVersion)
        {
            orders.Add(false);
        }

        if (versionBe is >= 0 and <= MaxHeaderVersion)
        {
            // Only version 0 reads as a known version in both byte orders; then both are tried, little-endian first.
            orders.Add(true);
        }

        if (orders.Count == 0)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{view.Path}: unsupported kdump header version {versionLe} at offset 0x8 (versions 0 to {MaxHeaderVersion} are known)");
        }

        string? firstReason32 = null;
        string? firstReason64 = null;
        foreach (bool bigEndian in orders)
        {
            int version = bigEndian ? versionBe : versionLe;
            foreach (bool is64 in (ReadOnlySpan<bool>)[false, true])
            {
                var main = MainFields.Parse(buf, bigEndian, is64);
                string? reason = main.Validate(view, limits, version);
                if (reason is null)
                {
                    return ReadSubHeader(view, main, bigEndian, is64, version);
                }

                if (is64)
                {
                    firstReason64 ??= reason;
                }
                else
                {
                    firstReason32 ??= reason;
                }
            }
        }

        // Neither layout fits. Explain with the one the machine name suggests (64-bit unless it says otherwise).
        string machine = ReadUtsField(buf, 4);
        bool looks32 = machine is "i386" or "i486" or "i586" or "i686" or "ppc" or "mips" or "s390" || machine.StartsWith("arm", StringComparison.Ordinal);
        throw new CorruptImageException($"{view.Path}: invalid kdump header: {(looks32 ? firstReason32 : firstReason64)}");
    }

    private static KdumpHeader ReadSubHeader(IKdumpFileView view, MainFields main, bool bigEndian, bool is64, int version)
    {
        var sub = new byte[SubHeaderReadSize];
        if (version >= 1 && view.Read(main.BlockSize, sub) != sub.Length)
        {
            throw new CorruptImageException($"{view.Path}: truncated kdump sub-header at offset 0x{main.BlockSize:x}");
        }

        var layout = is64 ? KdumpLayout.Bits64 : ChooseLayout32(sub, bigEndian, version, main);
        var f = SubFields.For(layout);
        var s = new SubReader(sub, bigEndian);
        ulong startPfn = 0;
        ulong endPfn = main.MaxMapnr32;
        ulong maxMapnr = main.MaxMapnr32;
        ulong physBase = 0;
        int? dumpLevel = null;
        bool split = false;
        long vmcoreInfoOffset = 0;
        ulong vmcoreInfoSize = 0;
        long noteOffset = 0;
        ulong noteSize = 0;
        if (version >= 1)
        {
            physBase = s.Word(f.PhysBase, f.WordSize);
            dumpLevel = s.Int32(f.DumpLevel);
        }

        if (version >= 2)
        {
            split = s.Int32(f.Split) != 0;
            if (split)
            {
                startPfn = s.Word(f.StartPfn, f.WordSize);
                endPfn = s.Word(f.EndPfn, f.WordSize);
            }
        }

        if (version >= 3)
        {
            vmcoreInfoOffset = unchecked((long)s.UInt64(f.OffsetVmcoreInfo));
            vmcoreInfoSize = s.Word(f.SizeVmcoreInfo, f.WordSize);
        }

        if (version >= 4)
        {
            noteOffset = unchecked((long)s.UInt64(f.OffsetNote));
            noteSize = s.Word(f.SizeNote, f.WordSize);
        }

        if (version >= 6)
        {
            if (split)
            {
                startPfn = s.UInt64(f.StartPfn64);
                endPfn = s.UInt64(f.EndPfn64);
            }

            maxMapnr = s.UInt64(f.MaxMapnr64);
        }

        if (!split)
        {
            startPfn = 0;
            endPfn = maxMapnr;
        }

        return new KdumpHeader
        {
            Signature = Encoding.ASCII.GetString(main.Signature),
            BigEndian = bigEndian,
            Layout = layout,
            HeaderVersion = version,
            Release = main.Release,
            Machine = main.Machine,
            Status = main.Status,
            BlockSize = main.BlockSize,
            SubHeaderBlocks = main.SubHeaderBlocks,
            BitmapBlocks = main.BitmapBlocks,
            MaxMapnr32 = main.MaxMapnr32,
            PhysBase = physBase,
            DumpLevel = dumpLevel,
            Split = split,
            StartPfn = startPfn,
            EndPfn = endPfn,
            VmcoreInfoOffset = vmcoreInfoOffset,
            VmcoreInfoSize = vmcoreInfoSize,
            NoteOffset = noteOffset,
            NoteSize = noteSize,
            MaxMapnr = maxMapnr,
        };
    }

    /// <summary>
    /// Picks the packed (i386) or padded (arm) 32-bit sub-header. The two agree up to version 2. From version 3 on,
    /// libkdumpfile's <c>read_sub_hdr_32</c> takes the packed reading when its <c>offset_vmcoreinfo</c> is absent or
    /// lands inside the sub-header blocks; this also requires the note range (v4+) to be absent or inside them,
    /// which tells the layouts apart when a padded dump has no vmcoreinfo.
    /// </summary>
    private static KdumpLayout ChooseLayout32(byte[] sub, bool bigEndian, int version, MainFields main)
    {
        if (version < 3 || Plausible(KdumpLayout.Bits32Packed))
        {
            return KdumpLayout.Bits32Packed;
        }

        return Plausible(KdumpLayout.Bits32Padded) ? KdumpLayout.Bits32Padded : KdumpLayout.Bits32Packed;

        bool Plausible(KdumpLayout layout)
        {
            var f = SubFields.For(layout);
            var s = new SubReader(sub, bigEndian);
            ulong payload = (ulong)(1L + main.SubHeaderBlocks) * (ulong)main.BlockSize;
            bool ok = InSubHeader(s.UInt64(f.OffsetVmcoreInfo), s.Word(f.SizeVmcoreInfo, f.WordSize));
            if (version >= 4)
            {
                ok &= InSubHeader(s.UInt64(f.OffsetNote), s.Word(f.SizeNote, f.WordSize));
            }

            return ok;

            bool InSubHeader(ulong offset, ulong size) =>
                (offset == 0 && size == 0) || (offset >= (ulong)main.BlockSize && offset <= payload && size <= payload - offset);
        }
    }

    private static string ReadUtsField(ReadOnlySpan<byte> header, int index)
    {
        var field = header.Slice(UtsnameOffset + (index * UtsFieldLength), UtsFieldLength);
        int nul = field.IndexOf((byte)0);
        return Printable(nul < 0 ? field : field[..nul]);
    }

    private static string Printable(ReadOnlySpan<byte> bytes)
    {
        var sb = new StringBuilder(bytes.Length);
        foreach (byte b in bytes)
        {
            sb.Append(b is >= 0x20 and < 0x7f ? (char)b : '?');
        }

        return sb.ToString();
    }

    /// <summary>The <c>disk_dump_header</c> fields that differ between the 32- and 64-bit layouts.</summary>
    private readonly record struct MainFields(
        byte[] Signature,
        bool Is64,
        string Release,
        string Machine,
        uint Status,
        int BlockSize,
        int SubHeaderBlocks,
        long BitmapBlocks,
        uint MaxMapnr32,
        int StatusOffset)
    {
        public static MainFields Parse(byte[] header, bool bigEndian, bool is64)
        {
            // After utsname (12 + 390 = 402) the 64-bit layout pads to 408 and has 16-byte timevals;
            // the 32-bit one pads to 404 and has 8-byte timevals (disk_dump_header_32/64 in libkdumpfile).
            int status = is64 ? 424 : 412;
            var s = new SubReader(header, bigEndian);
            return new MainFields(
                header[..8],
                is64,
                ReadUtsField(header, 2),
                ReadUtsField(header, 4),
                unchecked((uint)s.Int32(status)),
                s.Int32(status + 4),
                s.Int32(status + 8),
                unchecked((uint)s.Int32(status + 12)),
                unchecked((uint)s.Int32(status + 16)),
                status);
        }

        /// <summary>Null when the fields make sense for <paramref name="view"/>; otherwise why not.</summary>
        public string? Validate(IKdumpFileView view, KvmLimits limits, int version)
        {
            int bs = BlockSize;
            int at = StatusOffset + 4;
            if (bs < MinBlockSize || bs > MaxBlockSize || !BitOperations.IsPow2(bs))
            {
                return $"block_size {bs} at offset 0x{at:x} is not a power of two from {MinBlockSize} to {MaxBlockSize}";
            }

            // Version 1 and later always have a kdump_sub_header, so at least one block; a 64-bit header read
            // as 32-bit finds the zero high half of its timestamp here, which is how the two are told apart.
            if (SubHeaderBlocks < (version >= 1 ? 1 : 0))
            {
                return $"sub_hdr_size {SubHeaderBlocks} at offset 0x{at + 4:x} is not a valid block count";
            }

            if (BitmapBlocks < 1)
            {
                return $"bitmap_blocks {BitmapBlocks} at offset 0x{at + 8:x} is zero";
            }

            long bitmapBytes = BitmapBlocks * bs;
            if (bitmapBytes > limits.MaxBitmapBytes)
            {
                return $"bitmap region of {BitmapBlocks} blocks ({bitmapBytes} bytes) exceeds KvmLimits.MaxBitmapBytes ({limits.MaxBitmapBytes})";
            }

            if ((ulong)bitmapBytes * 8 < MaxMapnr32)
            {
                return $"bitmap of {bitmapBytes * 8} bits cannot cover max_mapnr {MaxMapnr32} (offset 0x{at + 12:x})";
            }

            // sub_hdr_size is positive and below 2^31, bs at most 2^20: no overflow in long.
            long descStart = ((1L + SubHeaderBlocks) * bs) + bitmapBytes;
            if (descStart > view.Length)
            {
                return $"sub_hdr_size {SubHeaderBlocks} and bitmap_blocks {BitmapBlocks} put the page descriptors at 0x{descStart:x}, past the end of the file (0x{view.Length:x})";
            }

            return null;
        }
    }

    /// <summary>Field offsets of <c>kdump_sub_header</c> for one layout (makedumpfile diskdump_mod.h; libkdumpfile's 32pack/32pad/64 structs).</summary>
    private readonly record struct SubFields(
        int WordSize,
        int PhysBase,
        int DumpLevel,
        int Split,
        int StartPfn,
        int EndPfn,
        int OffsetVmcoreInfo,
        int SizeVmcoreInfo,
        int OffsetNote,
        int SizeNote,
        int StartPfn64,
        int EndPfn64,
        int MaxMapnr64)
    {
        private static readonly SubFields s_bits64 = new(8, 0, 8, 12, 16, 24, 32, 40, 48, 56, 80, 88, 96);
        private static readonly SubFields s_packed = new(4, 0, 4, 8, 12, 16, 20, 28, 32, 40, 56, 64, 72);
        private static readonly SubFields s_padded = new(4, 0, 4, 8, 12, 16, 24, 32, 40, 48, 72, 80, 88);

        public static SubFields For(KdumpLayout layout) => layout switch
        {
            KdumpLayout.Bits64 => s_bits64,
            KdumpLayout.Bits32Packed => s_packed,
            _ => s_padded,
        };
    }

    /// <summary>Fixed-offset reads in the header's byte order; offsets are compile-time constants inside the buffer.</summary>
    private readonly ref struct SubReader
    {
        private readonly ReadOnlySpan<byte> _data;
        private readonly bool _bigEndian;

        public SubReader(ReadOnlySpan<byte> data, bool bigEndian)
        {
            _data = data;
            _bigEndian = bigEndian;
        }

        public int Int32(int offset) => _bigEndian
            ? BinaryPrimitives.ReadInt32BigEndian(_data[offset..])
            : BinaryPrimitives.ReadInt32LittleEndian(_data[offset..]);

        public ulong UInt64(int offset) => _bigEndian
            ? BinaryPrimitives.ReadUInt64BigEndian(_data[offset..])
            : BinaryPrimitives.ReadUInt64LittleEndian(_data[offset..]);

        public ulong Word(int offset, int size) => size == 8 ? UInt64(offset) : unchecked((uint)Int32(offset));
    }
}
