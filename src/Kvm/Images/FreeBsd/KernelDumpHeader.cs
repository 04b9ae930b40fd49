using System.Buffers.Binary;
using System.Text;

namespace Kvm.Images.FreeBsd;

/// <summary>What a <c>struct kerneldumpheader</c>'s magic says the dump device holds.</summary>
internal enum KernelDumpKind
{
    /// <summary><c>"FreeBSD Kernel Dump"</c>: a memory dump (a minidump or an ELF full dump).</summary>
    Kernel,

    /// <summary><c>"FreeBSD Text Dump"</c>: a tar archive of ddb(4) output, no memory.</summary>
    Text,

    /// <summary><c>"Cleared Kernel Dump"</c>: savecore(8) saved the dump and cleared the header.</summary>
    Cleared,
}

/// <summary>
/// FreeBSD's <c>struct kerneldumpheader</c> (sys/sys/kerneldump.h): 512 bytes in front of and behind a dump on the
/// dump device, every integer big-endian ("dump byte order", whatever the machine), and its XOR parity over the
/// 32-bit words zero. Versions 1 to 3 are the layouts sys/sys/kerneldump_compat.h keeps (v2 added the encryption
/// key size, v3 the compression byte and the extent), version 4 the current one (FreeBSD 12 and later).
/// </summary>
internal sealed record KernelDumpHeader
{
    /// <summary>The header size, which the writer pads to a block.</summary>
    public const int Size = 512;

    /// <summary><c>KERNELDUMP_COMP_NONE</c>, <c>_GZIP</c>, <c>_ZSTD</c>.</summary>
    public const byte CompressionNone = 0;

    /// <summary><c>KERNELDUMP_COMP_GZIP</c>.</summary>
    public const byte CompressionGzip = 1;

    /// <summary><c>KERNELDUMP_COMP_ZSTD</c>.</summary>
    public const byte CompressionZstd = 2;

    private static readonly (string Text, KernelDumpKind Kind)[] s_magics =
    [
        ("FreeBSD Kernel Dump", KernelDumpKind.Kernel),
        ("FreeBSD Text Dump", KernelDumpKind.Text),
        ("Cleared Kernel Dump", KernelDumpKind.Cleared),
    ];

    public required KernelDumpKind Kind { get; init; }

    /// <summary><c>architecture</c>: MACHINE_ARCH of the dumped kernel (<c>amd64</c>, <c>aarch64</c>, <c>i386</c>…).</summary>
    public required string Architecture { get; init; }

    public required uint Version { get; init; }

    public required uint ArchitectureVersion { get; init; }

    /// <summary>The dump's length on the device, without the headers (compressed length for a compressed dump).</summary>
    public required ulong DumpLength { get; init; }

    /// <summary>The space reserved for the dump between the headers (v3+; the dump length before).</summary>
    public required ulong DumpExtent { get; init; }

    /// <summary>Seconds since the epoch when the dump was written.</summary>
    public required ulong DumpTime { get; init; }

    /// <summary>Bytes of the encryption key between the leading header and the dump (v2+; 0 when not encrypted).</summary>
    public required uint DumpKeySize { get; init; }

    /// <summary>The dump device's block size: the leading header occupies one block.</summary>
    public required uint BlockSize { get; init; }

    /// <summary><c>KERNELDUMP_COMP_*</c> (v3+).</summary>
    public required byte Compression { get; init; }

    public required string Hostname { get; init; }

    /// <summary>The kernel's <c>version</c> string, e.g. <c>FreeBSD 14.0-RELEASE releng/14.0-n265380-f9716eee8ab4 GENERIC</c>.</summary>
    public required string VersionString { get; init; }

    public required string PanicString { get; init; }

    /// <summary>The 512 bytes as found, to compare the leading and trailing copies.</summary>
    public required byte[] Raw { get; init; }

    /// <summary>True when <paramref name="data"/> starts with one of the three magics (NUL-padded to 20 bytes).</summary>
    public static bool HasMagic(ReadOnlySpan<byte> data)
    {
        foreach (var (text, _) in s_magics)
        {
            if (MatchesMagic(data, text))
            {
                return true;
            }
        }

        return false;
    }

    /// <summary>
    /// Parses the 512 bytes at the start of <paramref name="data"/>. Throws <see cref="CorruptImageException"/> for
    /// a bad magic, an unknown version or a parity error, naming <paramref name="context"/>.
    /// </summary>
    public static KernelDumpHeader Parse(ReadOnlySpan<byte> data, string context)
    {
        if (data.Length < Size)
        {
            throw new CorruptImageException($"{context}: truncated: a kernel dump header needs {Size} bytes, the file has {data.Length}");
        }

        data = data[..Size];
        KernelDumpKind? kind = null;
        foreach (var (text, k) in s_magics)
        {
            if (MatchesMagic(data, text))
            {
                kind = k;
            }
        }

        if (kind is null)
        {
            throw new CorruptImageException($"{context}: not a kernel dump header (magic is not \"FreeBSD Kernel Dump\")");
        }

        // kerneldump_parity(): the XOR of every 32-bit word, whatever their byte order, is zero.
        uint parity = 0;
        for (int i = 0; i < Size; i += 4)
        {
            parity ^= BinaryPrimitives.ReadUInt32LittleEndian(data[i..]);
        }

        if (parity != 0)
        {
            throw new CorruptImageException($"{context}: parity error in the kernel dump header");
        }

        byte[] raw = data.ToArray();
        uint version = BinaryPrimitives.ReadUInt32BigEndian(data[32..]);
        uint archVersion = BinaryPrimitives.ReadUInt32BigEndian(data[36..]);
        ulong length = BinaryPrimitives.ReadUInt64BigEndian(data[40..]);
        var header = version switch
        {
            // v1: dumptime@48 blocksize@56 hostname@60 versionstring@124 panicstring[192]@316.
            1 => Make(BinaryPrimitives.ReadUInt64BigEndian(data[48..]), length, 0, BinaryPrimitives.ReadUInt32BigEndian(data[56..]), 0, 60, 124, 316, 192),

            // v2: dumptime@48 dumpkeysize@56 blocksize@60 hostname@64 versionstring@128 panicstring[188]@320.
            2 => Make(BinaryPrimitives.ReadUInt64BigEndian(data[48..]), length, BinaryPrimitives.ReadUInt32BigEndian(data[56..]), BinaryPrimitives.ReadUInt32BigEndian(data[60..]), 0, 64, 128, 320, 188),

            // v3: dumpextent@48 dumptime@56 dumpkeysize@64 blocksize@68 compression@72 hostname@73 versionstring@137 panicstring[179]@329.
            3 => Make(BinaryPrimitives.ReadUInt64BigEndian(data[56..]), BinaryPrimitives.ReadUInt64BigEndian(data[48..]), BinaryPrimitives.ReadUInt32BigEndian(data[64..]), BinaryPrimitives.ReadUInt32BigEndian(data[68..]), data[72], 73, 137, 329, 179),

            // v4: dumptime@48 dumpkeysize@56 blocksize@60 hostname@64 versionstring@128 panicstring[175]@320
            // compression@495 dumpextent@496.
            4 => Make(BinaryPrimitives.ReadUInt64BigEndian(data[48..]), BinaryPrimitives.ReadUInt64BigEndian(data[496..]), BinaryPrimitives.ReadUInt32BigEndian(data[56..]), BinaryPrimitives.ReadUInt32BigEndian(data[60..]), data[495], 64, 128, 320, 175),
            _ => throw new CorruptImageException($"{context}: unknown version ({version}) in the kernel dump header (1 to 4 are known)"),
        };

        KernelDumpHeader Make(ulong time, ulong extent, uint keySize, uint blockSize, byte compression, int host, int versionString, int panic, int panicLength)
        {
            var bytes = raw.AsSpan();
            // Before v3 the dump filled the space between the headers exactly.
            return new KernelDumpHeader
            {
                Kind = kind.Value,
                Architecture = Text(bytes.Slice(20, 12)),
                Version = version,
                ArchitectureVersion = archVersion,
                DumpLength = length,
                DumpExtent = version >= 3 ? extent : length,
                DumpTime = time,
                DumpKeySize = keySize,
                BlockSize = blockSize,
                Compression = compression,
                Hostname = Text(bytes.Slice(host, 64)),
                VersionString = Text(bytes.Slice(versionString, 192)).TrimEnd('\n'),
                PanicString = Text(bytes.Slice(panic, panicLength)),
                Raw = raw,
            };
        }

        return header;
    }

    private static bool MatchesMagic(ReadOnlySpan<byte> data, string magic)
    {
        // magic[20] holds the text and NUL padding; savecore compares all 20 bytes.
        if (data.Length < 20)
        {
            return false;
        }

        for (int i = 0; i < 20; i++)
        {
            byte expected = i < magic.Length ? (byte)magic[i] : (byte)0;
            if (data[i] != expected)
            {
                return false;
            }
        }

        return true;
    }

    private static string Text(ReadOnlySpan<byte> field)
    {
        int nul = field.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? field : field[..nul]);
    }
}
