using System.CommandLine;

namespace Kvm.Cli.Commands;

/// <summary><c>kmem info</c>: what the image is and where the kernel sits in it.</summary>
internal static class InfoCommand
{
    public static Command Create(CliIo io)
    {
        var command = new Command("info", "Describe the image: format, compression, kernel release, paging, KASLR, physical memory");
        command.SetAction(parse => Program.Guard(parse, io, Run));
        return command;
    }

    private static int Run(CliContext ctx)
    {
        using var image = ctx.OpenImage();
        var layout = image.Layout;
        var compression = image.Compression == DumpCompression.None ? "none" : image.Compression.ToString().ToLowerInvariant();
        if (ctx.IsJson)
        {
            JsonOutput.Write(ctx.Out, w =>
            {
                w.WriteStartObject();
                w.WriteString("os", OsName(image.OperatingSystem));
                w.WriteString("format", FormatName(image.Format));
                w.WriteString("description", image.FormatDescription);
                w.WriteString("compression", compression);
                w.WriteBoolean("flattened", image.IsFlattened);
                w.WriteStartArray("files");
                foreach (var f in image.Files)
                {
                    w.WriteStringValue(f);
                }

                w.WriteEndArray();
                w.WriteString("arch", image.Architecture);
                w.WriteString("release", image.Release);
                w.WriteNumber("pageSize", image.PageSize);
                w.WriteNumber("pagingLevels", layout.PagingLevels);
                w.WriteString("paging", image.OperatingSystem == KernelOperatingSystem.FreeBsd ? PagingName(layout.PagingMode, image.PageSize) : layout.PagingDescription);
                w.WriteString("pagingMode", PagingName(layout.PagingMode, image.PageSize));
                if (layout.PagingMode == PagingMode.Arm64 && image.OperatingSystem == KernelOperatingSystem.Linux)
                {
                    w.WriteString("kimageVoffset", JsonOutput.Hex(layout.KimageVoffset));
                }

                w.WriteString("kaslrOffset", AddressExpression.SignedHex(layout.KaslrOffset));
                w.WriteBoolean("kaslrOffsetKnown", layout.KaslrOffsetKnown);
                w.WriteString("physBase", AddressExpression.SignedHex(layout.PhysBase));
                if (layout.PageOffsetBase is { } pob)
                {
                    w.WriteString("pageOffsetBase", JsonOutput.Hex(pob));
                }
                else
                {
                    w.WriteNull("pageOffsetBase");
                }

                w.WriteString("pageTableRoot", JsonOutput.Hex(layout.PageTableRoot));
                w.WriteString("layoutMethod", layout.Method);
                w.WriteBoolean("vmcoreinfo", image.VmcoreInfo is not null);
                w.WriteString("vmcoreinfoSource", image.VmcoreInfo?.Source);
                w.WriteNumber("excludedPages", image.ExcludedPages);
                if (image.DumpLevel is { } level)
                {
                    w.WriteNumber("dumpLevel", level);
                }
                else
                {
                    w.WriteNull("dumpLevel");
                }

                w.WriteStartArray("physicalRanges");
                foreach (var r in image.PhysicalRanges)
                {
                    w.WriteStartObject();
                    w.WriteString("start", JsonOutput.Hex(r.Start));
                    w.WriteString("end", JsonOutput.Hex(r.End));
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                w.WriteStartArray("namelists");
                foreach (var n in image.Namelists)
                {
                    w.WriteStartObject();
                    w.WriteString("source", n.Source);
                    w.WriteString("kind", n.Kind.ToString());
                    w.WriteNumber("symbols", n.SymbolCount);
                    w.WriteString("displacement", AddressExpression.SignedHex(n.Displacement));
                    w.WriteEndObject();
                }

                w.WriteEndArray();
                if (image.Types is { } types)
                {
                    w.WriteStartObject("types");
                    w.WriteString("source", types.Source);
                    w.WriteNumber("count", types.Count);
                    w.WriteEndObject();
                }
                else
                {
                    w.WriteNull("types");
                }

                w.WriteString("typesError", image.TypeInformationError);
                w.WriteString("kallsymsError", image.KallsymsError);
                w.WriteEndObject();
            });
            return 0;
        }

        var o = ctx.Out;
        o.WriteLine($"os              {OsName(image.OperatingSystem)}");
        o.WriteLine($"format          {FormatName(image.Format)} ({image.FormatDescription}){(image.IsFlattened ? ", flattened" : string.Empty)}");
        o.WriteLine($"files           {string.Join(' ', image.Files)}");
        o.WriteLine($"compression     {compression}");
        o.WriteLine($"arch            {image.Architecture}");
        o.WriteLine($"release         {image.Release ?? "(unknown)"}");
        o.WriteLine($"page size       {image.PageSize}");
        if (image.OperatingSystem == KernelOperatingSystem.FreeBsd)
        {
            WriteFreeBsd(o, image, layout);
            return 0;
        }

        o.WriteLine($"paging          {layout.PagingDescription}");
        o.WriteLine($"kaslr offset    {AddressExpression.SignedHex(layout.KaslrOffset)}{(layout.KaslrOffsetKnown ? string.Empty : " (assumed: no namelist or VMCOREINFO to measure it)")}");
        if (layout.PagingMode == PagingMode.Arm64)
        {
            o.WriteLine($"phys_offset     {AddressExpression.SignedHex(layout.PhysBase)}");
            o.WriteLine($"kimage_voffset  {JsonOutput.Hex(layout.KimageVoffset)}");
        }
        else
        {
            o.WriteLine($"phys_base       {AddressExpression.SignedHex(layout.PhysBase)}");
        }

        o.WriteLine($"page_offset     {(layout.PageOffsetBase is { } p ? JsonOutput.Hex(p) : "(unknown)")}");
        o.WriteLine($"page table      {JsonOutput.Hex(layout.PageTableRoot)} (found by {layout.Method})");
        o.WriteLine($"vmcoreinfo      {(image.VmcoreInfo is { } vi ? $"yes ({vi.Source})" : "no")}");
        o.WriteLine($"dump level      {(image.DumpLevel is { } d ? d.ToString(System.Globalization.CultureInfo.InvariantCulture) : "-")}");
        o.WriteLine($"excluded pages  {image.ExcludedPages}");
        o.WriteLine("physical memory");
        foreach (var r in image.PhysicalRanges)
        {
            o.WriteLine($"  {r.Start:x16}-{r.End:x16}  {r.Length >> 10} KiB");
        }

        foreach (var n in image.Namelists)
        {
            o.WriteLine($"namelist        {n.Source} ({n.Kind}, {n.SymbolCount} symbols, displacement {AddressExpression.SignedHex(n.Displacement)})");
        }

        if (image.KallsymsError is { } kallsymsError)
        {
            o.WriteLine($"kallsyms        not read: {kallsymsError}");
        }

        o.WriteLine(image.Types is { } t ? $"types           BTF, {t.Count} types, from {t.Source}" : $"types           none: {image.TypeInformationError}");

        return 0;
    }

    public static string FormatName(DumpFormat format) => format switch
    {
        DumpFormat.Elf => "elf",
        DumpFormat.Kcore => "kcore",
        DumpFormat.Kdump => "kdump",
        DumpFormat.Lime => "lime",
        DumpFormat.Minidump => "minidump",
        _ => "raw",
    };

    public static string OsName(KernelOperatingSystem os) => os == KernelOperatingSystem.FreeBsd ? "FreeBSD" : "Linux";

    /// <summary>The paging mode in words: what the kernel translated with.</summary>
    public static string PagingName(PagingMode mode, int pageSize) => mode switch
    {
        PagingMode.X64FourLevel => "x86-64 4-level",
        PagingMode.X64FiveLevel => "x86-64 5-level (LA57)",
        PagingMode.X86Pae => "i386 PAE (3-level)",
        PagingMode.X86TwoLevel => "i386 non-PAE (2-level)",
        PagingMode.Arm64 => $"arm64, {pageSize / 1024} KiB pages",
        _ => "unknown",
    };

    /// <summary>The FreeBSD lines: how addresses translate, and the kernel's symbols; no Linux layout.</summary>
    private static void WriteFreeBsd(TextWriter o, KernelImage image, KernelLayout layout)
    {
        bool minidump = image.Format == DumpFormat.Minidump;
        o.WriteLine($"paging          {PagingName(layout.PagingMode, image.PageSize)}, {(minidump ? "through the minidump's page map" : $"from {layout.Method} at {JsonOutput.Hex(layout.PageTableRoot)}")}");
        o.WriteLine($"kerndisp        {AddressExpression.SignedHex(layout.KaslrOffset)} (FreeBSD kernels run at their link address)");
        o.WriteLine($"direct map      {(layout.PageOffsetBase is { } p ? JsonOutput.Hex(p) : "none")}");
        o.WriteLine($"pages left out  {image.ExcludedPages}");
        o.WriteLine("physical memory");
        foreach (var r in image.PhysicalRanges)
        {
            o.WriteLine($"  {r.Start:x16}-{r.End:x16}  {r.Length >> 10} KiB");
        }

        foreach (var n in image.Namelists)
        {
            o.WriteLine($"namelist        {n.Source} ({n.Kind}, {n.SymbolCount} symbols)");
        }

        if (image.Namelists.Count == 0)
        {
            o.WriteLine("namelist        none (give the kernel with -N for symbols)");
        }

        o.WriteLine(image.Types is { } t ? $"types           CTF, {t.Count} types, from {t.Source}" : $"types           none: {image.TypeInformationError}");
    }
}
