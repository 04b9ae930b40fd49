using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Kvm.IntegrationTests;

/// <summary>
/// The lab's own consistency for its arm64 and i386 guests (<see cref="DumpLab.ForeignVariants"/>), checked without
/// the library: the files are there and intact, manifest and truth parse and agree with the variant, the dumps'
/// headers are what the manifest says (the ELF's class and e_machine read here from its header), and the truth's
/// symbol addresses are Debian's System.map plus the guest's KASLR offset.
/// </summary>
public sealed class ForeignLabTests
{
    private const ushort EmI386 = 3;
    private const ushort EmAarch64 = 183;

    /// <summary>What each foreign variant promises: the guest's architecture, paging levels, and uname -m.</summary>
    private static readonly Dictionary<string, (string Architecture, int Levels, string Machine)> s_promises = new()
    {
        ["arm64"] = ("aarch64", 4, "aarch64"),
        ["i386-pae"] = ("i386", 3, "i686"),
        ["i386"] = ("i386", 2, "i686"),
    };

    [ForeignLabFact]
    public void Lab_HasTheForeignVariants_AndVariantsKeepsToX86()
    {
        Assert.Null(DumpLab.ForeignMissingReason);
        var names = DumpLab.ForeignVariants.Select(v => v.Name).ToList();
        foreach (var (name, promise) in s_promises)
        {
            Assert.Contains(name, names);
            Assert.Equal(promise.Architecture, DumpLab.Variant(name).Architecture);
            Assert.Contains(DumpLab.Variant(name), DumpLab.VariantsFor(promise.Architecture));
        }

        Assert.All(DumpLab.Variants, v => Assert.Equal(DumpLab.DefaultArchitecture, v.Architecture));
        Assert.DoesNotContain(DumpLab.Variants, v => s_promises.ContainsKey(v.Name));
        Assert.DoesNotContain(DumpLab.AllDumps(), d => s_promises.ContainsKey((string)d[0]));
    }

    [ForeignLabFact]
    public void Manifest_EveryFileExistsWithItsSizeAndSha256()
    {
        foreach (var variant in DumpLab.ForeignVariants)
        {
            Assert.Contains(variant.Dumps, d => d.Name == "qemu.elf");
            Assert.Contains(variant.Dumps, d => d.Format == "kdump");
            foreach (var dump in variant.Dumps)
            {
                var info = new FileInfo(dump.Path);
                Assert.True(info.Exists, $"{dump}: missing");
                Assert.Equal(dump.Size, info.Length);
                using var stream = File.OpenRead(dump.Path);
                Assert.Equal(dump.Sha256, Convert.ToHexStringLower(SHA256.HashData(stream)));
            }

            foreach (var key in new[] { "truth", "systemMap", "config", "swapImage", "vmlinuz", "console" })
            {
                Assert.True(File.Exists(Path.Combine(variant.Directory, variant.Manifest.GetProperty(key).GetString()!)), $"{variant}: {key} missing");
            }
        }
    }

    [ForeignLabTheory]
    [MemberData(nameof(DumpLab.AllForeignDumps), MemberType = typeof(DumpLab))]
    public void DumpHeader_IsWhatTheManifestSays(string variant, string name)
    {
        var v = DumpLab.Variant(variant);
        var dump = v.Dump(name);
        var entry = v.Manifest.GetProperty("files").EnumerateArray().Single(f => f.GetProperty("name").GetString() == name);
        using var file = File.OpenRead(dump.Path);
        var head = new byte[64];
        file.ReadExactly(head);
        switch (dump.Format)
        {
            case "elf":
                Assert.True(head.AsSpan(0, 4).SequenceEqual("\u007fELF"u8), $"{dump}: no ELF magic");
                var elf = ElfCore.Read(file);
                Assert.Equal(v.Architecture == "aarch64" ? EmAarch64 : EmI386, elf.Machine);
                Assert.Equal(4, elf.Type); // ET_CORE
                Assert.Equal(entry.GetProperty("details").GetProperty("elfClass").GetInt32(), elf.Class);
                if (v.Architecture == "aarch64")
                {
                    Assert.Equal(64, elf.Class);
                }

                Assert.Equal(entry.GetProperty("vmcoreinfo").GetBoolean(), elf.NoteNames.Contains("VMCOREINFO"));
                Assert.True(elf.LoadSegments > 0, $"{dump}: no PT_LOAD");
                break;
            case "kdump" when dump.Flattened:
                Assert.True(head.AsSpan(0, 16).SequenceEqual("makedumpfile\0\0\0\0"u8), $"{dump}: no flattened header");
                Assert.Equal(1, BinaryPrimitives.ReadInt64BigEndian(head.AsSpan(16))); // type: flattened
                break;
            case "kdump":
                Assert.True(head.AsSpan(0, 8).SequenceEqual("KDUMP   "u8), $"{dump}: no KDUMP signature");
                break;
            default:
                Assert.Fail($"{dump}: unexpected format {dump.Format}");
                break;
        }
    }

    [ForeignLabFact]
    public void Truth_HoldsTheWorkloadAndTheKernelFacts()
    {
        foreach (var variant in DumpLab.ForeignVariants)
        {
            var truth = variant.Truth;
            var promise = s_promises[variant.Name];
            Assert.Equal(variant.Architecture, truth.GetProperty("architecture").GetString());
            Assert.Equal(promise.Machine, truth.GetProperty("uname").GetProperty("machine").GetString());
            Assert.StartsWith("Linux version ", variant.ProcVersion, StringComparison.Ordinal);
            Assert.Contains(truth.GetProperty("kmsgMarker").GetString()!, truth.GetProperty("dmesg").GetString()!, StringComparison.Ordinal);

            var processes = TruthProcess.All(variant);
            Assert.Contains(processes, p => p.Pid == 1);
            var roles = truth.GetProperty("roles");
            foreach (var role in new[] { "argv", "longArgv", "bigEnv", "nonRoot", "parent", "child", "threaded", "niced", "files", "spinner", "collector" })
            {
                Assert.True(roles.TryGetProperty(role, out var pid) && pid.ValueKind == JsonValueKind.Number, $"{variant}: role {role} missing");
                Assert.Contains(processes, p => p.Pid == pid.GetInt32());
            }

            var argv = TruthProcess.Split(processes.Single(p => p.Pid == roles.GetProperty("argv").GetInt32()).Cmdline);
            Assert.Equal("kvmtest-argv"u8.ToArray(), argv[0]);
            Assert.Contains([], argv);

            var atStop = truth.GetProperty("loadavgAtStop");
            Assert.Equal(JsonValueKind.Object, atStop.ValueKind);
            Assert.True(atStop.GetProperty("values")[0].GetDouble() > 0, $"{variant}: load average at stop is 0");
            Assert.NotNull(TruthProcStat.AtStop(variant));

            // The guest pushed argv/env pages out; the swap image holds them where its pagemap said.
            var swapped = TruthSwappedPage.All(variant);
            Assert.NotEmpty(swapped);
            using var swap = File.OpenRead(variant.SwapImage);
            int pageSize = truth.GetProperty("paging").GetProperty("pageSize").GetInt32();
            foreach (var page in swapped.Where(p => p.What == "env"))
            {
                var bytes = new byte[pageSize];
                swap.Position = checked((long)page.SwapOffset * pageSize);
                swap.ReadExactly(bytes);
                Assert.True(bytes.AsSpan().IndexOf("KVMTEST_VAR_"u8) >= 0, $"{variant}: swap page {page.SwapOffset} lacks the environment");
            }

            Assert.True(truth.GetProperty("ramRanges").GetArrayLength() > 0, $"{variant}: no RAM ranges");
            Assert.True(truth.GetProperty("iomemSystemRam").GetArrayLength() > 0, $"{variant}: no System RAM in /proc/iomem");
            Assert.NotNull(truth.GetProperty("pageOffset").GetString());
        }
    }

    [ForeignLabFact]
    public void Paging_IsWhatTheVariantPromises()
    {
        foreach (var variant in DumpLab.ForeignVariants)
        {
            var promise = s_promises[variant.Name];
            var paging = variant.Truth.GetProperty("paging");
            Assert.Equal(promise.Levels, variant.PagingLevels);
            Assert.Equal(promise.Levels, variant.Manifest.GetProperty("pagingLevels").GetInt32());
            Assert.Equal(promise.Levels, paging.GetProperty("levels").GetInt32());
            Assert.Equal(4096, paging.GetProperty("pageSize").GetInt32());
            Assert.Equal(paging.GetRawText(), variant.Manifest.GetProperty("paging").GetRawText());
            if (promise.Architecture == "aarch64")
            {
                Assert.Equal(48, paging.GetProperty("vaBits").GetInt32());
                Assert.Equal("0xffff000000000000", variant.Truth.GetProperty("pageOffset").GetString());
                Assert.True(variant.Manifest.GetProperty("kaslr").GetBoolean());
                Assert.NotEqual(0, variant.KaslrOffset);
            }
            else
            {
                Assert.Equal(variant.Name == "i386-pae", paging.GetProperty("pae").GetBoolean());
                Assert.Equal("0xc0000000", variant.Truth.GetProperty("pageOffset").GetString());
            }
        }
    }

    [ForeignLabFact]
    public void TruthSymbols_AreDebiansSystemMapPlusTheKaslrOffset()
    {
        foreach (var variant in DumpLab.ForeignVariants)
        {
            var link = new Dictionary<string, ulong>(StringComparer.Ordinal);
            foreach (var line in File.ReadLines(variant.SystemMap))
            {
                var parts = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (parts.Length >= 3)
                {
                    link.TryAdd(parts[2], Convert.ToUInt64(parts[0], 16));
                }
            }

            ulong mask = variant.Architecture == "i386" ? uint.MaxValue : ulong.MaxValue;
            ulong offset = unchecked((ulong)variant.KaslrOffset);
            foreach (var name in new[] { "_text", "_stext", "init_task", "linux_banner", "swapper_pg_dir", "init_uts_ns", "jiffies" })
            {
                Assert.True(link.ContainsKey(name), $"{variant}: System.map has no {name}");
                Assert.Equal(unchecked(link[name] + offset) & mask, variant.SymbolAddress(name));
            }

            // What the guest's own kallsyms listed (functions and _stext) agrees too.
            foreach (var symbol in variant.Truth.GetProperty("kallsyms").EnumerateObject())
            {
                Assert.Equal(unchecked(link[symbol.Name] + offset) & mask, variant.TruthSymbol(symbol.Name));
            }
        }
    }

    [ForeignLabFact]
    public void Manifest_SaysWhatWasSkippedAndWhy()
    {
        foreach (var variant in DumpLab.ForeignVariants)
        {
            var skipped = variant.Manifest.GetProperty("skipped").EnumerateArray()
                .ToDictionary(s => s.GetProperty("name").GetString()!, s => s.GetProperty("why").GetString()!);
            foreach (var name in new[] { "mdf-c-d31.kdump", "mdf-E-d31.elf", "mdf-split-c-d31.1.kdump" })
            {
                Assert.True(skipped.TryGetValue(name, out var why), $"{variant}: {name} is neither made nor listed as skipped");
                Assert.Contains("makedumpfile", why, StringComparison.Ordinal);
            }

            // makedumpfile only re-assembles QEMU's flattened file (-R); it filters nothing here.
            Assert.All(variant.Dumps.Where(d => d.Name.StartsWith("mdf-", StringComparison.Ordinal)), d => Assert.Fail($"{d}: a makedumpfile dump of a foreign guest"));
            Assert.Equal(variant.Architecture, variant.Manifest.GetProperty("architecture").GetString());
        }
    }

    /// <summary>The little an ELF core's header and notes say, read here without the library.</summary>
    private sealed record ElfCore(int Class, ushort Type, ushort Machine, int LoadSegments, HashSet<string> NoteNames)
    {
        public static ElfCore Read(FileStream file)
        {
            var eh = new byte[64];
            file.Position = 0;
            file.ReadExactly(eh);
            bool is64 = eh[4] == 2;
            ushort type = BinaryPrimitives.ReadUInt16LittleEndian(eh.AsSpan(16));
            ushort machine = BinaryPrimitives.ReadUInt16LittleEndian(eh.AsSpan(18));
            long phoff = is64 ? checked((long)BinaryPrimitives.ReadUInt64LittleEndian(eh.AsSpan(32))) : BinaryPrimitives.ReadUInt32LittleEndian(eh.AsSpan(28));
            int phentsize = BinaryPrimitives.ReadUInt16LittleEndian(eh.AsSpan(is64 ? 54 : 42));
            int phnum = BinaryPrimitives.ReadUInt16LittleEndian(eh.AsSpan(is64 ? 56 : 44));
            int loads = 0;
            var names = new HashSet<string>(StringComparer.Ordinal);
            var ph = new byte[phentsize];
            for (int i = 0; i < phnum; i++)
            {
                file.Position = phoff + ((long)i * phentsize);
                file.ReadExactly(ph);
                uint ptype = BinaryPrimitives.ReadUInt32LittleEndian(ph);
                if (ptype == 1)
                {
                    loads++;
                }
                else if (ptype == 4)
                {
                    long offset = is64 ? checked((long)BinaryPrimitives.ReadUInt64LittleEndian(ph.AsSpan(8))) : BinaryPrimitives.ReadUInt32LittleEndian(ph.AsSpan(4));
                    long size = is64 ? checked((long)BinaryPrimitives.ReadUInt64LittleEndian(ph.AsSpan(32))) : BinaryPrimitives.ReadUInt32LittleEndian(ph.AsSpan(16));
                    var notes = new byte[size];
                    file.Position = offset;
                    file.ReadExactly(notes);
                    for (int pos = 0; pos + 12 <= notes.Length;)
                    {
                        int namesz = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(notes.AsSpan(pos)));
                        int descsz = checked((int)BinaryPrimitives.ReadUInt32LittleEndian(notes.AsSpan(pos + 4)));
                        names.Add(Encoding.ASCII.GetString(notes, pos + 12, namesz).TrimEnd('\0'));
                        pos += 12 + ((namesz + 3) & ~3) + ((descsz + 3) & ~3);
                    }
                }
            }

            return new ElfCore(is64 ? 64 : 32, type, machine, loads, names);
        }
    }
}
