using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace Kvm.Cli.Commands;

/// <summary>
/// <c>kmem pages [--limit N]</c>: every kernel page as FreeBSD's <c>kvm_walk_pages</c> reports it, kernel-map
/// mappings first, then direct-map-only pages, with a summary line of counts per pass and page size.
/// </summary>
internal static class PagesCommand
{
    /// <summary>Records written between flushes of the JSON writer, so a whole dump never sits in memory as text.</summary>
    private const int FlushEvery = 4096;

    private static readonly (int Shift, string Unit)[] s_units = [(40, "T"), (30, "G"), (20, "M"), (10, "K")];

    public static Command Create(CliIo io)
    {
        var limit = new Option<int?>("-n", "--limit") { Description = "Stop after N records" };
        var command = new Command("pages", "Walk the kernel's pages (kvm_walk_pages): kernel-map mappings, then direct-map-only pages");
        command.Aliases.Add("walk");
        command.Options.Add(limit);
        command.SetAction(parse => Program.Guard(parse, io, ctx => Run(ctx, parse.GetValue(limit))));
        return command;
    }

    private static int Run(CliContext ctx, int? limit)
    {
        if (limit < 0)
        {
            throw new ArgumentException($"bad record count '{limit}' for --limit");
        }

        using var image = ctx.OpenImage();
        var summary = new Summary(image.Layout.PageSizes);
        var pages = image.EnumeratePages();
        if (limit is { } n)
        {
            pages = pages.Take(n);
        }

        if (ctx.IsJson)
        {
            WriteJson(ctx.Out, pages, summary, limit);
        }
        else
        {
            ctx.Out.WriteLine("PADDR            KMAP             DMAP             PROT OFFSET       LEN");
            foreach (var p in pages)
            {
                summary.Add(p);
                ctx.Out.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{p.PhysicalAddress:x16} {Address(p.KernelMapAddress),-16} {Address(p.DirectMapAddress),-16} {p.ProtectionText}  {(p.FileOffset < 0 ? "-" : $"0x{p.FileOffset:x}"),-12} {SizeName(p.Length)}"));
            }

            ctx.Out.WriteLine(summary.Format(limit));
        }

        return 0;
    }

    private static void WriteJson(TextWriter output, IEnumerable<KernelPage> pages, Summary summary, int? limit)
    {
        using var stream = new MemoryStream();
        using var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        w.WriteStartObject();
        w.WriteStartArray("pages");
        foreach (var p in pages)
        {
            summary.Add(p);
            w.WriteStartObject();
            w.WriteString("physical", JsonOutput.Hex(p.PhysicalAddress));
            w.WriteString("kernelMap", p.KernelMapAddress == 0 ? null : JsonOutput.Hex(p.KernelMapAddress));
            w.WriteString("directMap", p.DirectMapAddress == 0 ? null : JsonOutput.Hex(p.DirectMapAddress));
            w.WriteNumber("prot", (int)p.Protection);
            w.WriteNumber("fileOffset", p.FileOffset);
            w.WriteNumber("length", p.Length);
            w.WriteEndObject();
            if (summary.Records % FlushEvery == 0)
            {
                Drain(w, stream, output);
            }
        }

        w.WriteEndArray();
        w.WriteStartObject("summary");
        w.WriteNumber("records", summary.Records);
        w.WriteNumber("kernelMap", summary.KernelMap);
        w.WriteNumber("kernelMap4K", summary.Count(4096));
        w.WriteNumber("kernelMap2M", summary.Count(1UL << 21));
        w.WriteNumber("kernelMap1G", summary.Count(1UL << 30));
        w.WriteStartObject("kernelMapBySize");
        foreach (var (size, count) in summary.BySize)
        {
            w.WriteNumber(SizeName(size), count);
        }

        w.WriteEndObject();
        w.WriteNumber("directMapOnly", summary.DirectMapOnly);
        w.WriteBoolean("limited", limit is { } n && summary.Records >= n);
        w.WriteEndObject();
        w.WriteEndObject();
        Drain(w, stream, output);
        output.WriteLine();
    }

    private static void Drain(Utf8JsonWriter w, MemoryStream stream, TextWriter output)
    {
        w.Flush();
        output.Write(Encoding.UTF8.GetString(stream.GetBuffer(), 0, (int)stream.Length));
        stream.SetLength(0);
    }

    private static string Address(ulong address) => address == 0 ? "-" : address.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>"4K", "64K", "2M", "512M", "1G", "4T": the page and block sizes of x86 and AArch64; else bytes.</summary>
    private static string SizeName(ulong size)
    {
        foreach (var (shift, unit) in s_units)
        {
            if (size >= 1UL << shift && size % (1UL << shift) == 0)
            {
                return string.Create(CultureInfo.InvariantCulture, $"{size >> shift}{unit}");
            }
        }

        return size.ToString(CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// Counts per pass and, for kernel-map mappings, per page size: every size the paging mode has (x86-64 4K, 2M,
    /// 1G; an arm64 granule and its blocks), zeros included, and any other size met.
    /// </summary>
    private sealed class Summary(IReadOnlyList<ulong> pageSizes)
    {
        private readonly SortedDictionary<ulong, long> _bySize = new(pageSizes.ToDictionary(size => size, _ => 0L));

        public long Records { get; private set; }

        public long KernelMap { get; private set; }

        public long DirectMapOnly { get; private set; }

        public IEnumerable<KeyValuePair<ulong, long>> BySize => _bySize;

        public long Count(ulong size) => _bySize.GetValueOrDefault(size);

        public void Add(KernelPage page)
        {
            Records++;
            if (!page.IsKernelMapped)
            {
                DirectMapOnly++;
                return;
            }

            KernelMap++;
            _bySize[page.Length] = _bySize.GetValueOrDefault(page.Length) + 1;
        }

        public string Format(int? limit) => string.Create(
            CultureInfo.InvariantCulture,
            $"{Records} records: {KernelMap} kernel-map mappings ({string.Join(", ", _bySize.Select(s => $"{SizeName(s.Key)} {s.Value}"))}), {DirectMapOnly} direct-map-only pages{(limit is { } n && Records >= n ? $" (stopped at --limit {n})" : string.Empty)}");
    }
}
