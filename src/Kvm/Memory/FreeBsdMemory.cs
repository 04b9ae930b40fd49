using Kvm.Images;
using Kvm.Images.FreeBsd;
using Kvm.Translation.FreeBsd;
using Kvm.Translation.X86;

namespace Kvm.Memory;

/// <summary>
/// Sets up kernel-memory translation for a FreeBSD dump. A minidump needs nothing but itself (its page map). A full
/// dump is translated through the kernel's own page tables, whose root only the kernel's symbols locate, read at
/// physical address (symbol − <c>kernbase</c>) because the kernel image is loaded so (lib/libkvm kvm_amd64.c and
/// kvm_i386.c <c>_*_initvtop</c>): amd64 reads <c>KPML4phys</c>; i386 <c>IdlePDPT</c> (PAE) or <c>IdlePTD</c>.
/// </summary>
internal static class FreeBsdMemory
{
    /// <summary>Creates the kernel memory of <paramref name="image"/>; <paramref name="symbol"/> looks up the kernel's symbols.</summary>
    public static KernelMemory Create(DumpImage image, FreeBsdDumpInfo info, Func<string, ulong?> symbol, CacheOptions cache)
    {
        string path = image.Files[0];
        if (info.Minidump is { } minidump)
        {
            var translator = MinidumpTranslator.Create(minidump, new ImagePhysicalSource(image), cache.PageTablePages);
            var header = minidump.Header;
            var layout = new KernelLayout
            {
                PagingMode = translator.Mode,
                PageTableRoot = 0,
                KaslrOffset = 0,
                PhysBase = 0,
                PageOffsetBase = header.DirectMapEnd > header.DirectMapBase ? header.DirectMapBase : null,
                Method = "minidump",
            };
            return new KernelMemory(image, layout, translator, cache);
        }

        switch (info.Architecture)
        {
            case FreeBsdArchitecture.Amd64:
                return Amd64FullDump(image, path, symbol, cache);
            case FreeBsdArchitecture.I386:
                return I386FullDump(image, path, symbol, cache);
        }

        throw new KvmException(KvmErrorCode.NotSupported, $"{path}: a FreeBSD {MinidumpHeader.NameOf(info.Architecture)} full dump: FreeBSD's libkvm reads none either (arm64 kernels write minidumps)");
    }

    private static KernelMemory Amd64FullDump(DumpImage image, string path, Func<string, ulong?> symbol, CacheOptions cache)
    {
        ulong kernbase = Required(symbol, "kernbase", path, "amd64");
        ulong kpml4 = Required(symbol, "KPML4phys", path, "amd64");

        // FreeBSD 13.1+ can run with 5-level paging (la57); its tables start at KPML5phys.
        if (symbol("la57") is { } la57 && ReadPhysicalUInt32(image, la57 - kernbase) is { } on && on != 0)
        {
            throw new KvmException(KvmErrorCode.NotSupported, $"{path}: the kernel ran with 5-level paging (la57 = {on}); FreeBSD full dumps are read with 4-level paging only");
        }

        ulong root = ReadPhysicalUInt64(image, kpml4 - kernbase)
            ?? throw new CorruptImageException($"{path}: cannot read KPML4phys at physical 0x{kpml4 - kernbase:x} (KPML4phys 0x{kpml4:x} − kernbase 0x{kernbase:x}): not in the dump");
        var page = new byte[4096];
        if (image.ReadPhysical(root & 0x000ffffffffff000, page, out _) != page.Length)
        {
            throw new CorruptImageException($"{path}: the kernel's PML4 at physical 0x{root:x} (from KPML4phys) is not in the dump");
        }

        var layout = new KernelLayout
        {
            PagingMode = PagingMode.X64FourLevel,
            PageTableRoot = root & 0x000ffffffffff000,
            KaslrOffset = 0,
            PhysBase = 0,
            PageOffsetBase = FreeBsdPageWalker.Amd64DirectMapStart,
            Method = "KPML4phys",
        };
        return new KernelMemory(image, layout, cache, live: false);
    }

    private static KernelMemory I386FullDump(DumpImage image, string path, Func<string, ulong?> symbol, CacheOptions cache)
    {
        ulong kernbase = Required(symbol, "kernbase", path, "i386");

        // FreeBSD 12.1+ builds one kernel for both paging modes and says which ran in pae_mode; older kernels have
        // IdlePDPT only when built with PAE (libkvm tries IdlePDPT first).
        bool pae;
        if (symbol("pae_mode") is { } paeMode && ReadPhysicalUInt32(image, paeMode - kernbase) is { } mode)
        {
            pae = mode != 0;
        }
        else
        {
            pae = symbol("IdlePDPT") is not null;
        }

        string name = pae ? "IdlePDPT" : symbol("IdlePTD_nopae") is not null && symbol("pae_mode") is not null ? "IdlePTD_nopae" : "IdlePTD";
        ulong variable = Required(symbol, name, path, "i386");
        ulong root = ReadPhysicalUInt32(image, variable - kernbase)
            ?? throw new CorruptImageException($"{path}: cannot read {name} at physical 0x{variable - kernbase:x}: not in the dump");
        // The 32-bit x86 walker (Translation/X86) reads both modes: a PAE root is the 32-byte-aligned PDPT, a non-PAE
        // root the 4 KiB page directory (sys/i386/include/pmap.h).
        ulong table = pae ? root & 0xffffffe0 : root & 0xfffff000;
        var check = new byte[pae ? 32 : 4096];
        if (image.ReadPhysical(table, check, out _) != check.Length)
        {
            throw new CorruptImageException($"{path}: the kernel's {(pae ? "page-directory-pointer table" : "page directory")} at physical 0x{table:x} (from {name}) is not in the dump");
        }

        var layout = new KernelLayout
        {
            PagingMode = pae ? PagingMode.X86Pae : PagingMode.X86TwoLevel,
            PageTableRoot = table,
            KaslrOffset = 0,
            PhysBase = 0,
            PageOffsetBase = null,
            Method = name,
        };
        return new KernelMemory(image, layout, cache, live: false);
    }

    private static ulong Required(Func<string, ulong?> symbol, string name, string path, string architecture) =>
        symbol(name) ?? throw new KvmException(KvmErrorCode.SymbolNotFound, $"{path}: a FreeBSD {architecture} full dump is translated through the kernel's page tables, found from the kernel's {name}: give the kernel as the namelist (-N /boot/kernel/kernel) or a symbol resolver");

    private static ulong? ReadPhysicalUInt64(DumpImage image, ulong pa)
    {
        Span<byte> b = stackalloc byte[8];
        return image.ReadPhysical(pa, b, out _) == 8 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b) : null;
    }

    private static uint? ReadPhysicalUInt32(DumpImage image, ulong pa)
    {
        Span<byte> b = stackalloc byte[4];
        return image.ReadPhysical(pa, b, out _) == 4 ? System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b) : null;
    }
}
