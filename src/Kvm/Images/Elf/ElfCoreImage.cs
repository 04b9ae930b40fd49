using Kvm.Images.FreeBsd;
using Kvm.IO;

namespace Kvm.Images.Elf;

/// <summary>
/// An ELF core as physical memory. PT_LOAD p_paddr gives the physical map; p_vaddr, when it differs from p_paddr,
/// gives virtual segments (kexec vmcores, /proc/kcore). QEMU writes p_vaddr == p_paddr, so its virtual addresses
/// are ignored (formats.md §1.5). A segment with p_filesz &lt; p_memsz has an excluded tail (makedumpfile -E).
/// </summary>
internal sealed class ElfCoreImage : FileBackedImage
{
    /// <summary>NT_TASKSTRUCT: only /proc/kcore carries it (fs/proc/kcore.c).</summary>
    private const uint NtTaskStruct = 4;

    private readonly ElfHeader _header;
    private readonly List<ElfNote> _notes;
    private readonly VmcoreInfo? _vmcoreInfo;
    private readonly List<VirtualSegment> _virtualSegments;
    private readonly bool _isKcore;
    private readonly bool _isQemu;

    private ElfCoreImage(RandomAccessFile file, SegmentMap map, ElfHeader header, List<ElfNote> notes, VmcoreInfo? vmcoreInfo, List<VirtualSegment> virtualSegments, bool isKcore, int programHeaders)
        : base(file, map)
    {
        _header = header;
        _notes = notes;
        _vmcoreInfo = vmcoreInfo;
        _virtualSegments = virtualSegments;
        _isKcore = isKcore;
        _isQemu = notes.Any(n => n.Name == "QEMU");
        ProgramHeaderCount = programHeaders;

        // FreeBSD's full dumps are ELF cores marked ELFOSABI_STANDALONE, without notes, one PT_LOAD per physical
        // chunk with p_vaddr = p_paddr (sys/kern/kern_dump.c dumpsys_generic, cb_dumphdr).
        if (header.OsAbi == ElfHeader.OsAbiStandalone && notes.Count == 0 && FreeBsdDumpInfo.FromElfMachine(header.Machine) is { } architecture)
        {
            FreeBsd = new FreeBsdDumpInfo(architecture, null, null);
        }
    }

    public int ProgramHeaderCount { get; }

    public override DumpFormat Format => _isKcore ? DumpFormat.Kcore : DumpFormat.Elf;

    public override FreeBsdDumpInfo? FreeBsd { get; }

    public override string Description => _isKcore ? "/proc/kcore (live kernel)"
        : _isQemu ? "ELF core (QEMU dump-guest-memory)"
        : FreeBsd is not null ? $"FreeBSD full dump (ELF{(_header.Is64 ? "64" : "32")} core)"
        : "ELF vmcore";

    public override ushort ElfMachine => _header.Machine;

    public override IReadOnlyList<ElfNote> Notes => _notes;

    public override VmcoreInfo? VmcoreInfo => _vmcoreInfo;

    public override IReadOnlyList<VirtualSegment> VirtualSegments => _virtualSegments;

    public static ElfCoreImage Open(RandomAccessFile file, ImageOpenOptions options)
    {
        var limits = options.Limits;
        var head = new byte[64];
        int n = file.Read(0, head);
        var header = ElfHeader.Parse(head.AsSpan(0, n), file.Path);
        if (header.Type != ElfHeader.EtCore)
        {
            throw new CorruptImageException($"{file.Path}: ELF file is not a core dump (e_type {header.Type}; a vmlinux is a namelist, give it with -N)");
        }

        int phnum = header.ProgramHeaderCount;
        if (phnum == ElfHeader.PnXnum)
        {
            // More than 65534 headers: the real count is in section header 0's sh_info (ELF gABI, PN_XNUM).
            var sections = ElfSectionHeader.ReadAll(file, header with { SectionHeaderCount = 1 }, 1);
            if (sections.Count == 0)
            {
                throw new CorruptImageException($"{file.Path}: e_phnum is PN_XNUM but there is no section header 0");
            }

            phnum = checked((int)Math.Min(sections[0].Info, int.MaxValue));
        }

        if (phnum > limits.MaxProgramHeaders)
        {
            throw new CorruptImageException($"{file.Path}: program header count {phnum} exceeds the limit {limits.MaxProgramHeaders}");
        }

        int entSize = header.ProgramHeaderEntrySize;
        int minSize = header.Is64 ? 56 : 32;
        if (phnum > 0 && entSize < minSize)
        {
            throw new CorruptImageException($"{file.Path}: e_phentsize {entSize} is smaller than {minSize}");
        }

        long tableBytes = (long)phnum * entSize;
        if (header.ProgramHeaderOffset > (ulong)file.Length || (ulong)tableBytes > (ulong)file.Length - header.ProgramHeaderOffset)
        {
            throw new CorruptImageException($"{file.Path}: truncated: {phnum} program headers at offset 0x{header.ProgramHeaderOffset:x} run past the end of the file");
        }

        var table = new byte[tableBytes];
        file.ReadExactly((long)header.ProgramHeaderOffset, table, "program headers");
        var phdrs = new List<ElfProgramHeader>(phnum);
        for (int i = 0; i < phnum; i++)
        {
            var r = new EndianReader(table.AsSpan(i * entSize, entSize), header.BigEndian, $"{file.Path}: program header {i}");
            phdrs.Add(ElfProgramHeader.Read(ref r, header.Is64));
        }

        var notes = ReadNotes(file, header, phdrs, limits);
        VmcoreInfo? vmcoreInfo = null;
        foreach (var note in notes)
        {
            if (note.Name == "VMCOREINFO")
            {
                if (note.Descriptor.Length > limits.MaxVmcoreInfoBytes)
                {
                    throw new CorruptImageException($"{file.Path}: VMCOREINFO note of {note.Descriptor.Length} bytes exceeds the limit {limits.MaxVmcoreInfoBytes}");
                }

                vmcoreInfo = VmcoreInfo.Parse(note.Descriptor, "ELF note");
            }
        }

        bool isKcore = notes.Any(x => x.Name == "CORE" && x.Type == NtTaskStruct) || file.Path == "/proc/kcore";
        var loads = phdrs.Where(p => p.Type == ElfProgramHeader.PtLoad).ToList();
        foreach (var (p, i) in loads.Select((p, i) => (p, i)))
        {
            if (p.Offset > long.MaxValue || p.FileSize > long.MaxValue - p.Offset || p.MemorySize > ulong.MaxValue - p.PhysicalAddress && p.PhysicalAddress != ulong.MaxValue)
            {
                throw new CorruptImageException($"{file.Path}: PT_LOAD {i} has an impossible offset or size (offset 0x{p.Offset:x}, filesz 0x{p.FileSize:x}, memsz 0x{p.MemorySize:x})");
            }
        }

        // Linux before 4.11 wrote p_paddr = 0 for every kcore segment: then physical addresses mean nothing.
        bool physicalMeaningful = loads.Count <= 1 || loads.Any(p => p.PhysicalAddress != 0 && p.PhysicalAddress != ulong.MaxValue);
        var physical = physicalMeaningful
            ? loads.Where(p => p.PhysicalAddress != ulong.MaxValue).Select(p => new SegmentMap.Entry(p.PhysicalAddress, p.MemorySize, (long)p.Offset, Math.Min(p.FileSize, p.MemorySize)))
            : [];

        // QEMU (and FreeBSD full dumps) write p_vaddr == p_paddr: those are not kernel virtual addresses.
        bool virtualMeaningful = loads.Any(p => p.VirtualAddress != p.PhysicalAddress);
        var virtualSegments = virtualMeaningful
            ? loads.Select(p => new VirtualSegment(p.VirtualAddress, p.MemorySize, (long)p.Offset, Math.Min(p.FileSize, p.MemorySize), p.PhysicalAddress == ulong.MaxValue ? null : p.PhysicalAddress)).OrderBy(s => s.VirtualAddress).ToList()
            : [];

        return new ElfCoreImage(file, new SegmentMap(physical), header, notes, vmcoreInfo, virtualSegments, isKcore, phnum);
    }

    private static List<ElfNote> ReadNotes(RandomAccessFile file, ElfHeader header, List<ElfProgramHeader> phdrs, KvmLimits limits)
    {
        var notes = new List<ElfNote>();
        long total = 0;
        foreach (var p in phdrs.Where(p => p.Type == ElfProgramHeader.PtNote))
        {
            total += (long)Math.Min(p.FileSize, int.MaxValue);
            if (p.FileSize > (ulong)limits.MaxNoteBytes || total > limits.MaxNoteBytes)
            {
                throw new CorruptImageException($"{file.Path}: PT_NOTE segments of {total} bytes exceed the limit {limits.MaxNoteBytes}");
            }

            if (p.Offset > (ulong)file.Length || p.FileSize > (ulong)file.Length - p.Offset)
            {
                throw new CorruptImageException($"{file.Path}: truncated: PT_NOTE at offset 0x{p.Offset:x} ({p.FileSize} bytes) runs past the end of the file");
            }

            var blob = new byte[p.FileSize];
            file.ReadExactly((long)p.Offset, blob, "PT_NOTE");
            notes.AddRange(ElfNote.Parse(blob, header.BigEndian, p.Alignment == 8 ? 8 : 4));
        }

        return notes;
    }
}
