using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace Kvm.Testing.FreeBsd;

/// <summary>
/// The dump device's framing (sys/sys/kerneldump.h, sys/kern/kern_shutdown.c <c>dump_start</c>/<c>dump_finish</c>):
/// headers of every version, big-endian, with the parity that makes the XOR of their 32-bit words zero.
/// </summary>
public static class KernelDumpFraming
{
    public const string KernelDumpMagic = "FreeBSD Kernel Dump";
    public const string TextDumpMagic = "FreeBSD Text Dump";
    public const string ClearedMagic = "Cleared Kernel Dump";

    /// <summary>One header of <paramref name="version"/> (1-4) with the fields that version has.</summary>
    public static byte[] Header(
        ulong dumpLength,
        int version = 4,
        string magic = KernelDumpMagic,
        string architecture = "amd64",
        uint architectureVersion = 2,
        ulong? dumpExtent = null,
        uint blockSize = 512,
        byte compression = 0,
        uint keySize = 0,
        ulong dumpTime = 1700000000,
        string hostname = "freebsd-test",
        string versionString = "FreeBSD 14.0-RELEASE releng/14.0-n265380-f9716eee8ab4 GENERIC\n",
        string panic = "page fault")
    {
        var h = new byte[512];
        Encoding.ASCII.GetBytes(magic).CopyTo(h, 0);
        Encoding.ASCII.GetBytes(architecture).CopyTo(h, 20);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(32), (uint)version);
        BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(36), architectureVersion);
        BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(40), dumpLength);
        ulong extent = dumpExtent ?? dumpLength;
        switch (version)
        {
            case 1:
                BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(48), dumpTime);
                BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(56), blockSize);
                Text(h, 60, 64, hostname);
                Text(h, 124, 192, versionString);
                Text(h, 316, 192, panic);
                break;
            case 2:
                BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(48), dumpTime);
                BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(56), keySize);
                BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(60), blockSize);
                Text(h, 64, 64, hostname);
                Text(h, 128, 192, versionString);
                Text(h, 320, 188, panic);
                break;
            case 3:
                BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(48), extent);
                BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(56), dumpTime);
                BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(64), keySize);
                BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(68), blockSize);
                h[72] = compression;
                Text(h, 73, 64, hostname);
                Text(h, 137, 192, versionString);
                Text(h, 329, 179, panic);
                break;
            default:
                BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(48), dumpTime);
                BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(56), keySize);
                BinaryPrimitives.WriteUInt32BigEndian(h.AsSpan(60), blockSize);
                Text(h, 64, 64, hostname);
                Text(h, 128, 192, versionString);
                Text(h, 320, 175, panic);
                h[495] = compression;
                BinaryPrimitives.WriteUInt64BigEndian(h.AsSpan(496), extent);
                break;
        }

        SetParity(h);
        return h;
    }

    /// <summary>Recomputes the parity word (offset 508) after a change.</summary>
    public static void SetParity(byte[] header)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(508), 0);
        uint parity = 0;
        for (int i = 0; i < 512; i += 4)
        {
            parity ^= BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(i));
        }

        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(508), parity);
    }

    /// <summary>
    /// The dump area of a device: [<paramref name="before"/> bytes of whatever] [leading header, one block]
    /// [key] [payload, padded to the extent] [trailing header in the last block].
    /// </summary>
    public static byte[] Device(byte[] header, byte[] payload, int before = 0, byte[]? key = null, bool trailer = true, int? sector = null)
    {
        uint block = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(32)) switch { 1 => 56, 3 => 68, _ => 60 }));
        ulong extent = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(32)) switch
        {
            3 => BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(48)),
            4 => BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(496)),
            _ => BinaryPrimitives.ReadUInt64BigEndian(header.AsSpan(40)),
        };
        int sectorSize = sector ?? (int)block;
        var ms = new MemoryStream();
        ms.Write(Enumerable.Repeat((byte)0x5a, before).ToArray());
        var leader = new byte[block];
        header.CopyTo(leader, 0);
        ms.Write(leader);
        if (key is not null)
        {
            ms.Write(key);
        }

        ms.Write(payload);
        ms.Write(new byte[(long)extent - payload.Length]);
        if (trailer)
        {
            var last = new byte[sectorSize];
            header.CopyTo(last, 0);
            ms.Write(last);
        }

        return ms.ToArray();
    }

    public static byte[] Gzip(byte[] data)
    {
        var ms = new MemoryStream();
        using (var z = new GZipStream(ms, CompressionLevel.Fastest, leaveOpen: true))
        {
            z.Write(data);
        }

        return ms.ToArray();
    }

    public static byte[] Zstd(byte[] data)
    {
        using var compressor = new ZstdSharp.Compressor(3);
        return compressor.Wrap(data).ToArray();
    }

    private static void Text(byte[] h, int offset, int length, string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        bytes.AsSpan(0, Math.Min(bytes.Length, length)).CopyTo(h.AsSpan(offset));
    }
}
