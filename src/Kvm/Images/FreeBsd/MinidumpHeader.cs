using System.Buffers.Binary;
using System.Text;

namespace Kvm.Images.FreeBsd;

/// <summary>The FreeBSD architectures whose minidumps and full dumps Kvm reads.</summary>
internal enum FreeBsdArchitecture
{
    /// <summary>amd64 (x86-64).</summary>
    Amd64,

    /// <summary>arm64 (AArch64).</summary>
    Arm64,

    /// <summary>i386, with or without PAE.</summary>
    I386,
}

/// <summary>
/// The header page of a FreeBSD minidump (sys/&lt;arch&gt;/include/minidump.h), little-endian, in the first page of
/// the file (the rest of the page is zero, so fields a version adds read as 0 in older dumps):
/// <list type="bullet">
/// <item>amd64 (<c>"minidump FreeBSD/amd64"</c>, versions 1-3): version@24 msgbufsize@28 bitmapsize@32 pmapsize@36
/// kernbase@40 dmapbase@48 dmapend@56, dumpavailsize@64 from v3. v1's pmap holds one PTE per 4 KiB page from
/// kernbase, v2 and v3 one PDE per 2 MiB (sys/amd64/amd64/minidump_machdep.c).</item>
/// <item>arm64 (<c>"minidump FreeBSD/arm64"</c>, versions 1-3): pmapsize@36 kernbase@40 dmapphys@48 dmapbase@56
/// dmapend@64, dumpavailsize@72 from v2, flags@76 from v3 (<c>MINIDUMP_FLAG_PS_MASK</c> = 3: 0 for 4 KiB pages, 1
/// for 16 KiB). The pmap holds one L3 descriptor per page from kernbase (sys/arm64/arm64/minidump_machdep.c).</item>
/// <item>i386 (<c>"minidump FreeBSD/i386"</c>, versions 1-2): ptesize@36 kernbase@40 (32-bit) paemode@44,
/// dumpavailsize@48 from v2. The PTE array has one entry per 4 KiB page from kernbase, 64-bit with PAE and
/// 32-bit without (sys/i386/i386/minidump_machdep_base.c).</item>
/// </list>
/// Versions are checked as lib/libkvm's readers do, with their message ("wrong minidump version. expected 3 got 4").
/// </summary>
internal sealed record MinidumpHeader
{
    /// <summary>Every FreeBSD minidump magic starts so (lib/libkvm kvm_private.c <c>_kvm_is_minidump</c> checks 8 bytes).</summary>
    public const string MagicPrefix = "minidump FreeBSD/";

    public required FreeBsdArchitecture Architecture { get; init; }

    public required uint Version { get; init; }

    /// <summary>Bytes of the kernel message buffer stored after the header page.</summary>
    public required uint MessageBufferSize { get; init; }

    /// <summary>Bytes of the page bitmap.</summary>
    public required uint BitmapSize { get; init; }

    /// <summary>Bytes of the page map (<c>pmapsize</c>; i386's <c>ptesize</c>).</summary>
    public required uint PageMapSize { get; init; }

    /// <summary>The first kernel-map address the page map describes (<c>VM_MIN_KERNEL_ADDRESS</c>; i386 <c>KERNBASE</c>).</summary>
    public required ulong KernelBase { get; init; }

    /// <summary>The physical address the direct map starts at (arm64 <c>DMAP_MIN_PHYSADDR</c>; 0 elsewhere).</summary>
    public required ulong DirectMapPhysical { get; init; }

    /// <summary>The direct map's first address (<c>DMAP_MIN_ADDRESS</c>); 0 on i386, which has none.</summary>
    public required ulong DirectMapBase { get; init; }

    /// <summary>One past the direct map's last address (<c>DMAP_MAX_ADDRESS</c>).</summary>
    public required ulong DirectMapEnd { get; init; }

    /// <summary>Bytes of the <c>dump_avail</c> array (0 before amd64 v3, arm64 v2 and i386 v2).</summary>
    public required uint DumpAvailSize { get; init; }

    /// <summary>arm64 v3 flags (<c>MINIDUMP_FLAG_PS_*</c>).</summary>
    public required uint Flags { get; init; }

    /// <summary>The dumped kernel's page size: 4 KiB, or 16 KiB for arm64 kernels built so.</summary>
    public required int PageSize { get; init; }

    /// <summary>i386: the PTE array holds 64-bit PAE entries.</summary>
    public required bool Pae { get; init; }

    /// <summary>The latest version Kvm knows for the architecture.</summary>
    public int LatestVersion => LatestVersionOf(Architecture);

    /// <summary>The size of one page-map entry in bytes.</summary>
    public int PageMapEntrySize => Architecture == FreeBsdArchitecture.I386 && !Pae ? 4 : 8;

    /// <summary>The architecture name FreeBSD gives it (the minidump magic's suffix).</summary>
    public string ArchitectureName => NameOf(Architecture);

    public static string NameOf(FreeBsdArchitecture architecture) => architecture switch
    {
        FreeBsdArchitecture.Amd64 => "amd64",
        FreeBsdArchitecture.Arm64 => "arm64",
        _ => "i386",
    };

    /// <summary>True when <paramref name="data"/> starts with <c>"minidump FreeBSD/"</c>.</summary>
    public static bool HasMagic(ReadOnlySpan<byte> data) => data.StartsWith(Encoding.ASCII.GetBytes(MagicPrefix));

    /// <summary>Parses the header at the start of <paramref name="data"/> (at least the first 128 bytes of the file).</summary>
    public static MinidumpHeader Parse(ReadOnlySpan<byte> data, string context)
    {
        if (data.Length < 128)
        {
            throw new CorruptImageException($"{context}: truncated: a minidump header needs 128 bytes, the file has {data.Length}");
        }

        var magic = data[..24];
        int nul = magic.IndexOf((byte)0);
        string text = Encoding.ASCII.GetString(nul < 0 ? magic : magic[..nul]);
        FreeBsdArchitecture architecture = text switch
        {
            "minidump FreeBSD/amd64" => FreeBsdArchitecture.Amd64,
            "minidump FreeBSD/arm64" => FreeBsdArchitecture.Arm64,
            "minidump FreeBSD/i386" => FreeBsdArchitecture.I386,
            // The other architectures FreeBSD writes minidumps for (powerpc64's 32-byte magic does not fit the field).
            "minidump FreeBSD/arm" or "minidump FreeBSD/riscv" or "minidump FreeBSD/mips" or "minidump FreeBSD/powerpc" =>
                throw new KvmException(KvmErrorCode.NotSupported, $"{context}: FreeBSD/{text[MagicPrefix.Length..]} minidumps are not supported (amd64, arm64 and i386 are)"),
            _ => throw new CorruptImageException($"{context}: not a minidump for this platform (magic \"{Printable(text)}\")"),
        };

        uint version = U32(data, 24);
        int latest = LatestVersionOf(architecture);
        if (version < 1 || version > latest)
        {
            throw new CorruptImageException($"{context}: wrong minidump version. expected {latest} got {version}");
        }

        uint msgbuf = U32(data, 28);
        uint bitmap = U32(data, 32);
        uint pmap = U32(data, 36);
        return architecture switch
        {
            FreeBsdArchitecture.Amd64 => new MinidumpHeader
            {
                Architecture = architecture,
                Version = version,
                MessageBufferSize = msgbuf,
                BitmapSize = bitmap,
                PageMapSize = pmap,
                KernelBase = U64(data, 40),
                DirectMapPhysical = 0,
                DirectMapBase = U64(data, 48),
                DirectMapEnd = U64(data, 56),
                DumpAvailSize = version >= 3 ? U32(data, 64) : 0,
                Flags = 0,
                PageSize = 4096,
                Pae = false,
            },
            FreeBsdArchitecture.Arm64 => new MinidumpHeader
            {
                Architecture = architecture,
                Version = version,
                MessageBufferSize = msgbuf,
                BitmapSize = bitmap,
                PageMapSize = pmap,
                KernelBase = U64(data, 40),
                DirectMapPhysical = U64(data, 48),
                DirectMapBase = U64(data, 56),
                DirectMapEnd = U64(data, 64),
                DumpAvailSize = version >= 2 ? U32(data, 72) : 0,
                Flags = version >= 3 ? U32(data, 76) : 0,
                PageSize = Arm64PageSize(version >= 3 ? U32(data, 76) : 0, context),
                Pae = false,
            },
            _ => new MinidumpHeader
            {
                Architecture = architecture,
                Version = version,
                MessageBufferSize = msgbuf,
                BitmapSize = bitmap,
                PageMapSize = pmap,
                KernelBase = U32(data, 40),
                DirectMapPhysical = 0,
                DirectMapBase = 0,
                DirectMapEnd = 0,
                DumpAvailSize = version >= 2 ? U32(data, 48) : 0,
                Flags = 0,
                PageSize = 4096,
                Pae = U32(data, 44) != 0,
            },
        };
    }

    private static int LatestVersionOf(FreeBsdArchitecture architecture) => architecture == FreeBsdArchitecture.I386 ? 2 : 3;

    private static int Arm64PageSize(uint flags, string context) => (flags & 3) switch
    {
        0 => 4096,
        1 => 16384,
        var other => throw new CorruptImageException($"{context}: unknown page size flag {other} in the arm64 minidump header (0 is 4 KiB, 1 is 16 KiB)"),
    };

    private static uint U32(ReadOnlySpan<byte> data, int offset) => BinaryPrimitives.ReadUInt32LittleEndian(data[offset..]);

    private static ulong U64(ReadOnlySpan<byte> data, int offset) => BinaryPrimitives.ReadUInt64LittleEndian(data[offset..]);

    private static string Printable(string text) => string.Concat(text.Select(c => c is >= ' ' and < (char)127 ? c : '?'));
}
