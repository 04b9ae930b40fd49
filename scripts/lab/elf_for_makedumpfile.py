#!/usr/bin/env python3
"""Rewrite a QEMU 7.2 ELF dump into a /proc/vmcore-like ELF that makedumpfile 1.7.2 accepts.

Usage: elf_for_makedumpfile.py QEMU.elf PAGE_OFFSET_BASE OUT.elf [RAMSTART:RAMEND ...]

Why this exists (both problems were seen on this machine):
  * makedumpfile 1.7.2 assumes the program headers follow the ELF header directly;
    QEMU 7.2 puts section headers there, so makedumpfile fails ("Can't get the number
    of PT_LOAD").
  * QEMU's dump with paging=false has p_vaddr == p_paddr.  makedumpfile derives the
    direct-map base (page_offset) from the first PT_LOAD below __START_KERNEL_map as
    p_vaddr - p_paddr, so it would get 0; with a kdump-compressed input it falls back
    to a constant that KASLR (CONFIG_RANDOMIZE_MEMORY) makes wrong.  QEMU's kdump
    sub-header also carries a wrong phys_base (it parses the decimal value as hex).
So we write: ELF header, then the program headers, then the notes, then the memory,
with p_vaddr = page_offset_base + p_paddr as the kernel's own /proc/vmcore does.
page_offset_base comes from the guest (its /proc/kcore program headers), never from
the dump.  The result is an intermediate file for makedumpfile only.

The optional RAM ranges (physical, end exclusive; from the guest's /proc/kcore RAM
segments) restrict the PT_LOADs to System RAM, as /proc/vmcore does.  Without that,
QEMU's video RAM and BIOS ROM segments near 4 GiB make makedumpfile --split cut the
pfn range in the wrong place (one file got every page, the other none).
"""
import shutil
import struct
import sys

EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
PHDR = struct.Struct("<IIQQQQQQ")
PT_LOAD, PT_NOTE = 1, 4


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    src, pob, dst = sys.argv[1], int(sys.argv[2], 0), sys.argv[3]
    ram = [tuple(int(x, 0) for x in r.split(":")) for r in sys.argv[4:]]
    with open(src, "rb") as f:
        eh = EHDR.unpack(f.read(EHDR.size))
        ident, e_type, machine, version, entry, phoff, shoff, flags, ehsize, phentsize, phnum, shentsize, shnum, shstrndx = eh
        if ident[:4] != b"\x7fELF" or ident[4] != 2 or e_type != 4:
            sys.exit(f"{src}: not a 64-bit ELF core file")
        f.seek(phoff)
        phdrs = [list(PHDR.unpack(f.read(PHDR.size))) for _ in range(phnum)]

    # New layout: ehdr | phdrs | note data | load data (page aligned).
    notes = [p for p in phdrs if p[0] == PT_NOTE]
    loads = [p for p in phdrs if p[0] == PT_LOAD]
    if ram:
        # Cut every PT_LOAD down to its intersections with the RAM ranges.
        cut = []
        for p in loads:
            start, end = p[4], p[4] + p[5]
            for lo, hi in ram:
                a, b = max(start, lo), min(end, hi)
                if a < b:
                    q = list(p)
                    q[2] = p[2] + (a - start)  # source offset
                    q[3] = q[4] = a
                    q[5] = q[6] = b - a
                    cut.append(q)
        loads = cut
    out_ph = notes + loads
    pos = EHDR.size + PHDR.size * len(out_ph)
    layout = []  # (phdr, source offset, size)
    for p in notes:
        layout.append((p, p[2], p[5]))
        p[2] = pos
        pos += p[5]
    pos = (pos + 4095) & ~4095
    for p in loads:
        layout.append((p, p[2], p[5]))
        p[2] = pos
        p[3] = pob + p[4]  # p_vaddr = direct-map address of p_paddr
        pos += p[5]

    with open(src, "rb") as fi, open(dst, "wb") as fo:
        fo.write(EHDR.pack(ident, e_type, machine, version, entry, EHDR.size, 0, flags, EHDR.size, PHDR.size,
                           len(out_ph), 0, 0, 0))
        for p in out_ph:
            fo.write(PHDR.pack(*p))
        for p, off, size in layout:
            fo.seek(p[2])
            fi.seek(off)
            left = size
            while left > 0:
                chunk = fi.read(min(left, 1 << 22))
                if not chunk:
                    sys.exit(f"{src}: truncated segment at offset {off:#x}")
                fo.write(chunk)
                left -= len(chunk)
        fo.truncate(pos)


if __name__ == "__main__":
    main()
