using System.Globalization;
using Kvm.Translation.Arm64;
using Kvm.Translation.X64;
using Kvm.Translation.X86;

namespace Kvm.Linux;

/// <summary>
/// How the kernel encodes a swapped-out page in a user PTE: the swap area (<c>swp_type</c>) and the page index within
/// it (<c>swp_offset</c>). The encoding is per architecture and, on arm64, per kernel version, so the walkers decode
/// through this instead of naming one architecture.
/// </summary>
internal abstract class SwapEntryFormat
{
    /// <summary>x86-64, Linux 4.20+ (inverted offset, L1TF).</summary>
    public static readonly SwapEntryFormat X64 = new X64Format();

    /// <summary>The swap area index of <paramref name="pte"/>.</summary>
    public abstract int Type(ulong pte);

    /// <summary>The page index within the area.</summary>
    public abstract ulong Offset(ulong pte);

    /// <summary>The format of a kernel with paging <paramref name="mode"/> and release <paramref name="release"/> (OSRELEASE).</summary>
    public static SwapEntryFormat For(PagingMode mode, string? release) => mode switch
    {
        PagingMode.Arm64 => new Arm64Format(Arm64SwapEntry.TypeShift(ParseRelease(release))),
        PagingMode.X86Pae => new X86Format(pae: true),
        PagingMode.X86TwoLevel => new X86Format(pae: false),
        _ => X64,
    };

    /// <summary>"6.1.0-56-arm64" → 6.1; null when the release does not start with two numbers.</summary>
    public static Version? ParseRelease(string? release)
    {
        if (release is null)
        {
            return null;
        }

        var parts = release.Split('.', 3);
        if (parts.Length < 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int major))
        {
            return null;
        }

        int digits = 0;
        while (digits < parts[1].Length && char.IsAsciiDigit(parts[1][digits]))
        {
            digits++;
        }

        return digits > 0 && int.TryParse(parts[1].AsSpan(0, digits), NumberStyles.None, CultureInfo.InvariantCulture, out int minor) ? new Version(major, minor) : null;
    }

    private sealed class X64Format : SwapEntryFormat
    {
        public override int Type(ulong pte) => X64SwapEntry.Type(pte);

        public override ulong Offset(ulong pte) => X64SwapEntry.Offset(pte);
    }

    private sealed class X86Format(bool pae) : SwapEntryFormat
    {
        public override int Type(ulong pte) => X86SwapEntry.Type(pte, pae);

        public override ulong Offset(ulong pte) => X86SwapEntry.Offset(pte, pae);
    }

    private sealed class Arm64Format(int typeShift) : SwapEntryFormat
    {
        public override int Type(ulong pte) => Arm64SwapEntry.Type(pte, typeShift);

        public override ulong Offset(ulong pte) => Arm64SwapEntry.Offset(pte);
    }
}
