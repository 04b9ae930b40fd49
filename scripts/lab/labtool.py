#!/usr/bin/env python3
"""Host-side helpers of the dump lab (called by scripts/make-test-dumps.sh).

  labtool.py truth    --tar truth.img --outdir VDIR --variant NAME --swap swap.img
                      --swap-uuid UUID --swap-label LABEL --expect-levels 2|3|4|5 [--expect-pressure]
                      [--qmp-result qmp-result.json] [--arch x86_64|aarch64|i386]
                      [--config CONFIG] [--system-map DEBIAN-DBG-SYSTEM.MAP]
      Turn the guest's raw truth (a tar stream on a raw disk) into VDIR/truth.json and
      VDIR/System.map; check what the variant promises (paging levels, pages really in
      swap and, in swap.img, holding the argv/env bytes the guest recorded).
      loadavgAtStop and procStatAtStop come from qmp_dump.py's result file (the guest's
      console, read at `stop`).  On x86-64 System.map is derived from the guest's kallsyms
      (KALLSYMS_ALL=y); Debian's arm64 and i386 kernels list functions only, so for them
      --system-map gives the link-time map of Debian's -dbg package, which is copied, and
      the KASLR offset is the guest's _text (or _stext) minus that map's.
  labtool.py mdf-input VDIR/truth.json
      Print "PAGE_OFFSET_BASE RAMSTART:RAMEND ..." for elf_for_makedumpfile.py.
  labtool.py kdump-compression FILE
      Print the compression named by a kdump header's status (none|zlib|lzo|snappy|zstd).
  labtool.py manifest --dir VDIR --files files.tsv --meta meta.json
      Write VDIR/manifest.json, describing each dump as read from its own bytes.
  labtool.py check VDIR
      Exit 0 if VDIR/manifest.json exists and every file it names is there (cache hit).
  labtool.py index --base BASE --root DIR VDIR...
      Write BASE/index.json.
  labtool.py modules --root ROOT --release REL --out DIR NAME...
      Resolve NAME... (and their dependencies, from the modules.dep that `depmod -b`
      wrote) in the unpacked kernel package, skip built-in ones, copy them decompressed
      into DIR (busybox insmod takes plain .ko files) and write DIR/load.list in order.

Truth comes from the guest only; nothing here reads the dumps to make truth.
"""
import argparse
import hashlib
import json
import os
import re
import struct
import sys
import tarfile

START_KERNEL_MAP = 0xFFFFFFFF80000000
LINK_TEXT = 0xFFFFFFFF81000000  # x86-64 link-time address of _text
PF_KTHREAD = 0x00200000
KALLSYMS_WANTED = ["_text", "_stext", "init_task", "jiffies", "avenrun", "init_top_pgt", "page_offset_base",
                   "init_uts_ns", "linux_banner"]
# The symbols recorded for the other architectures (truth "kallsyms" where the guest's /proc/kallsyms
# has them, "symbols" for all): x86-64's swapper_pg_dir is init_top_pgt (a macro, not a symbol).
SYMBOLS_WANTED = {
    "x86_64": KALLSYMS_WANTED,
    "aarch64": ["_text", "_stext", "_end", "init_task", "jiffies", "avenrun", "swapper_pg_dir", "init_uts_ns",
                "linux_banner", "memstart_addr", "kimage_voffset"],
    "i386": ["_text", "_stext", "_end", "init_task", "jiffies", "avenrun", "swapper_pg_dir", "initial_page_table",
             "init_uts_ns", "linux_banner"],
}
COMPRESSION = [(0x1, "zlib"), (0x2, "lzo"), (0x4, "snappy"), (0x20, "zstd")]


def fail(msg):
    print(f"make-test-dumps: ERROR: {msg}", file=sys.stderr)
    sys.exit(1)


# ---------------------------------------------------------------- truth

def read_tar(path):
    files = {}
    with tarfile.open(path, "r:") as t:
        for m in t.getmembers():
            if m.isfile():
                name = m.name[2:] if m.name.startswith("./") else m.name
                files[name] = t.extractfile(m).read()
    if not files:
        fail(f"{path}: no truth files in the tar stream")
    return files


def text(files, name):
    if name not in files:
        fail(f"truth file {name} missing")
    return files[name].decode("utf-8", "replace")


def parse_stat(line):
    """Fields of /proc/PID/stat, 1-based like proc(5); comm may hold spaces and ')'."""
    lp, rp = line.index("("), line.rindex(")")
    rest = line[rp + 2:].split()
    f = [None, int(line[:lp]), line[lp + 1:rp]] + rest  # f[3] = state
    return f


def status_fields(s):
    out = {}
    for line in s.splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


def make_processes(files):
    pids = sorted({int(n.split("/")[1]) for n in files if n.startswith("proc/") and n.endswith("/stat")})
    procs = []
    for pid in pids:
        base = f"proc/{pid}/"
        stat = files[base + "stat"].decode("utf-8", "surrogateescape").strip()
        if not stat:
            continue  # the process exited while we were recording
        f = parse_stat(stat)
        st = status_fields(files.get(base + "status", b"").decode("utf-8", "replace"))
        flags = int(f[9])
        kthread = bool(flags & PF_KTHREAD)
        tasks = sorted(int(x) for x in files.get(base + "tasks", b"").decode().split())

        def ids(key):
            return [int(x) for x in st.get(key, "").split()] or None

        def hexaddr(i):
            return None if kthread or len(f) <= i else f"0x{int(f[i]):x}"

        procs.append({
            "pid": pid,
            "tgid": int(st["Tgid"]) if "Tgid" in st else pid,
            "ppid": int(f[4]), "pgid": int(f[5]), "sid": int(f[6]), "ttyNr": int(f[7]),
            "state": f[3], "comm": f[2],
            "nice": int(f[19]), "priority": int(f[18]), "numThreads": int(f[20]),
            "startTime": int(f[22]),
            "uid": ids("Uid"), "gid": ids("Gid"),
            "groups": [int(x) for x in st.get("Groups", "").split()],
            "vsizeBytes": int(f[23]), "rssPages": int(f[24]),
            "flags": flags,
            "kernelThread": kthread,
            "argStart": hexaddr(48), "argEnd": hexaddr(49), "envStart": hexaddr(50), "envEnd": hexaddr(51),
            "cmdlineHex": files.get(base + "cmdline", b"").hex(),
            "environHex": files.get(base + "environ", b"").hex(),
            "threads": tasks,
            "stat": stat,
            "status": files.get(base + "status", b"").decode("utf-8", "replace"),
        })
    return procs


def parse_kcore(files, arch="x86_64", text_addr=None):
    """/proc/kcore's PT_LOADs -> (loads, RAM ranges, direct-map offset, phys_base or None, text load or None)."""
    loads = []
    for line in text(files, "kcore-phdrs.txt").splitlines():
        v, p, sz = (int(x, 16) for x in line.split())
        loads.append({"vaddr": v, "paddr": p, "size": sz})
    if arch != "x86_64":
        # 32-bit kcore says "no physical address" with (Elf32_Addr)-1.  arm64's kcore has a TEXT segment
        # starting at _text (the kernel image's own mapping); i386's has none (no ARCH_PROC_KCORE_TEXT:
        # the image lies in the direct map), and its one RAM segment is [0, max_low_pfn), holes included.
        none = 0xFFFFFFFF if arch == "i386" else 0xFFFFFFFFFFFFFFFF
        phys = [l for l in loads if l["paddr"] != none]
        textl = next((l for l in phys if l["vaddr"] == text_addr), None) if arch == "aarch64" else None
        ramls = [l for l in phys if l is not textl]
        ram = sorted((l["paddr"], l["paddr"] + l["size"]) for l in ramls)
        offs = {(l["vaddr"] - l["paddr"]) % (1 << 64) for l in ramls}
        if len(offs) > 1:
            fail(f"/proc/kcore RAM segments disagree on the direct map's offset: {sorted(map(hex, offs))}")
        return loads, ram, (offs.pop() if offs else None), None, textl
    ram = [(l["paddr"], l["paddr"] + l["size"]) for l in loads
           if l["paddr"] != 0xFFFFFFFFFFFFFFFF and l["vaddr"] < START_KERNEL_MAP]
    pob = None
    for l in loads:
        if l["paddr"] != 0xFFFFFFFFFFFFFFFF and l["vaddr"] < START_KERNEL_MAP:
            pob = l["vaddr"] - l["paddr"]
            break
    phys_base = None
    for l in loads:
        if l["paddr"] != 0xFFFFFFFFFFFFFFFF and l["vaddr"] >= START_KERNEL_MAP:
            phys_base = l["paddr"] - (l["vaddr"] - START_KERNEL_MAP)
            break
    textl = next((l for l in loads if l["paddr"] != 0xFFFFFFFFFFFFFFFF and l["vaddr"] >= START_KERNEL_MAP), None)
    return loads, sorted(ram), pob, phys_base, textl


def derive_system_map(kallsyms_text, offset):
    """Link-time System.map from the guest's /proc/kallsyms (core kernel only)."""
    entries = []
    for i, line in enumerate(kallsyms_text.splitlines()):
        parts = line.split()
        if len(parts) != 3:
            continue  # 4 columns = module symbol ("[module]"); drop
        addr = int(parts[0], 16)
        if addr >= START_KERNEL_MAP:
            addr -= offset
        entries.append((addr, i, parts[1], parts[2]))
    entries.sort()
    return "".join(f"{a:016x} {t} {n}\n" for a, _, t, n in entries)


def cmd_truth(a):
    files = read_tar(a.tar)
    t = {"schemaVersion": 1, "variant": a.variant}

    u = dict(l.split("=", 1) for l in text(files, "uname.txt").splitlines() if "=" in l)
    t["uname"] = {k: u.get(k) for k in ("sysname", "nodename", "release", "version", "machine")}
    t["unameA"] = text(files, "uname-a.txt").rstrip("\n")
    t["procVersion"] = text(files, "version.txt").rstrip("\n")
    t["procCmdline"] = text(files, "cmdline.txt").rstrip("\n")

    arch = a.arch
    t["architecture"] = arch
    paging = dict(l.split("=", 1) for l in text(files, "paging.txt").splitlines() if "=" in l)
    # x86-64: the guest's mmap probe decides (4 or 5 levels); elsewhere set below from VA bits / PAE.
    t["pagingLevels"] = int(paging["levels"]) if arch == "x86_64" else None
    t["pagingProbeMmap"] = paging.get("mmap")
    cpuinfo = text(files, "cpuinfo.txt")
    flags_line = next((l for l in cpuinfo.splitlines() if l.startswith("flags")), "")
    t["cpuHasLa57"] = "la57" in flags_line.split(":", 1)[-1].split()

    la = text(files, "loadavg.txt").strip()
    t["loadavg"] = la
    t["loadavgValues"] = [float(x) for x in la.split()[:3]]
    t["uptimeSeconds"] = float(text(files, "uptime.txt").split()[0])
    # loadavg above was read seconds before the host stopped the VM (avenrun moves every 5 s);
    # this is the guest's last console report before the stop (qmp_dump.py), null if none.
    t["loadavgAtStop"] = None
    if a.qmp_result:
        t["loadavgAtStop"] = json.load(open(a.qmp_result)).get("loadavgAtStop")
    # The cpu lines of /proc/stat from the same console line (and the one before), null if none.
    t["procStatAtStop"] = proc_stat_at_stop(t["loadavgAtStop"])

    swaps = []
    for line in text(files, "swaps.txt").splitlines()[1:]:
        p = line.split()
        if len(p) >= 5:
            swaps.append({"filename": p[0], "type": p[1], "sizeKiB": int(p[2]), "usedKiB": int(p[3]),
                          "priority": int(p[4])})
    t["swaps"] = swaps

    mi = {}
    for line in text(files, "meminfo.txt").splitlines():
        m = re.match(r"^(\S+):\s+(\d+)", line)
        if m:
            mi[m.group(1)] = int(m.group(2))
    t["meminfo"] = mi

    ks_text = text(files, "kallsyms.txt")
    wanted = SYMBOLS_WANTED[arch]
    ks = {}
    for line in ks_text.splitlines():
        p = line.split()
        if len(p) == 3 and p[2] in wanted and p[2] not in ks:
            ks[p[2]] = p[0].lower()
    missing = [n for n in wanted if n not in ks]
    t["kallsyms"] = ks
    t["kallsymsMissing"] = missing
    smap_text = None
    if arch == "x86_64":
        if "_text" in missing:
            fail("guest kallsyms has no _text (addresses hidden?)")
        offset = int(ks["_text"], 16) - LINK_TEXT
        t["systemMapSource"] = "derived from the guest's /proc/kallsyms: core-kernel symbols minus the KASLR offset"
    else:
        if not a.system_map:
            fail(f"{arch}: a link-time System.map (Debian's -dbg package) is needed: the kernel's kallsyms lists functions only")
        smap_text = open(a.system_map).read()
        link = parse_system_map(smap_text)
        anchor = next((n for n in ("_text", "_stext") if n in ks and n in link), None)
        if anchor is None:
            fail("neither _text nor _stext is in both the guest's kallsyms and the System.map")
        offset = int(ks[anchor], 16) - link[anchor]
        t["kaslrOffsetFrom"] = anchor
        t["systemMapSource"] = f"Debian's {os.path.basename(a.system_map)} (linux-image-*-dbg), link-time addresses"
        # Every core symbol the guest's kallsyms names once must sit at its map address plus the offset.
        t["systemMapCheck"] = check_system_map(ks_text, link, offset, arch)
    t["kaslrOffset"] = shex(offset)
    symbols, sources = {}, {}
    for n in wanted:
        if n in ks:
            symbols[n], sources[n] = ks[n], "kallsyms"
        elif smap_text is not None and n in link:
            symbols[n], sources[n] = f"{(link[n] + offset) % (1 << 64):x}", "System.map+kaslrOffset"
    t["symbols"] = symbols
    t["symbolSources"] = sources

    text_addr = int(symbols["_text"], 16) if "_text" in symbols else None
    loads, ram, pob, phys_base, textl = parse_kcore(files, arch, text_addr)
    t["pageOffsetBase"] = None if pob is None or arch != "x86_64" else f"0x{pob:x}"
    t["physBase"] = None if phys_base is None else (f"0x{phys_base:x}" if phys_base >= 0 else f"-0x{-phys_base:x}")
    t["ramRanges"] = [[f"0x{s:x}", f"0x{e:x}"] for s, e in ram]
    t["kcoreLoads"] = [{k: f"0x{v:x}" for k, v in l.items()} for l in loads]
    t["kernelText"] = None if textl is None else {k: f"0x{v:x}" for k, v in textl.items()}
    t["directMapOffset"] = None if pob is None else f"0x{pob:x}"
    t["iomemSystemRam"] = [[f"0x{s:x}", f"0x{e:x}"] for s, e in iomem_ram(files.get("iomem.txt", b"").decode())]
    t["vmcoreinfo"], t["vmcoreinfoRead"] = guest_vmcoreinfo(files)
    vmci = vmcoreinfo_fields(t["vmcoreinfo"])
    t["paging"] = paging_truth(arch, paging, vmci, a.config, t)
    if t["pagingLevels"] is None:
        t["pagingLevels"] = t["paging"]["levels"]
    t["pageOffset"] = page_offset(arch, t["paging"], pob)
    if arch == "aarch64":
        # __va(pa) = (pa - PHYS_OFFSET) | PAGE_OFFSET, so the RAM segments' vaddr - paddr = PAGE_OFFSET - PHYS_OFFSET;
        # the kernel image is mapped at pa + kimage_voffset.
        po = int(t["pageOffset"], 16)
        phys_offset = to_signed(po - pob) if pob is not None else None
        t["physOffset"] = None if phys_offset is None else shex(phys_offset)
        kv = (textl["vaddr"] - textl["paddr"]) % (1 << 64) if textl else None
        t["kimageVoffset"] = None if kv is None else f"0x{kv:x}"
        for key, got, want in (("NUMBER(PHYS_OFFSET)", phys_offset, vmci.get("NUMBER(PHYS_OFFSET)")),
                               ("NUMBER(kimage_voffset)", kv, vmci.get("NUMBER(kimage_voffset)"))):
            if got is not None and want is not None and got % (1 << 64) != int(want, 16) % (1 << 64):
                fail(f"/proc/kcore gives {key} {got:#x}, the guest's VMCOREINFO {want}")
    if vmci.get("KERNELOFFSET") is not None and int(vmci["KERNELOFFSET"], 16) != offset % (1 << 64):
        fail(f"KASLR offset {t['kaslrOffset']} disagrees with the guest's VMCOREINFO KERNELOFFSET={vmci['KERNELOFFSET']}")

    raw = text(files, "dmesg.raw")
    t["dmesg"] = re.sub(r"(?m)^<\d+>", "", raw)
    t["kmsgMarker"] = text(files, "kmsg-marker.txt").strip()
    if t["kmsgMarker"] not in t["dmesg"]:
        fail("the kmsg marker is not in the guest's dmesg")

    procs = make_processes(files)
    t["processes"] = procs
    by_pid = {p["pid"]: p for p in procs}

    roles = {}
    for line in text(files, "roles.txt").splitlines():
        name, pid = line.split()
        roles[name] = int(pid)
    parent = roles.get("parent")
    kids = [p["pid"] for p in procs if p["ppid"] == parent and p["pid"] != parent]
    roles["child"] = kids[0] if kids else None
    roles["init"] = 1
    roles["collector"] = int(text(files, "collector.txt").strip())
    if roles.get("tty") in by_pid and by_pid[roles["tty"]]["ttyNr"] == 0:
        roles["tty"] = None  # the controlling-terminal setup did not take
    for name, pid in roles.items():
        if pid is not None and pid not in by_pid:
            fail(f"workload process {name} (pid {pid}) is not in the truth")
    t["roles"] = roles

    fpid = roles["files"]
    fds = []
    for line in files.get(f"proc/{fpid}/fds", b"").decode("utf-8", "surrogateescape").splitlines():
        fd, path = line.split("\t", 1)
        info = status_fields(files.get(f"proc/{fpid}/fdinfo/{fd}", b"").decode())
        fds.append({"fd": int(fd), "path": path, "flags": info.get("flags"),
                    "pos": int(info["pos"]) if "pos" in info else None})
    t["files"] = {"pid": fpid, "fds": sorted(fds, key=lambda x: x["fd"])}

    t["swappedPages"] = swapped_pages(files, by_pid, a.swap, t["paging"]["pageSize"])
    n_swapped = sum(1 for p in t["swappedPages"] if p["swapped"])
    if a.expect_pressure:
        if n_swapped == 0:
            fail("memory pressure was asked for, but no argv/env page went to swap")
        kept = [r for r in ("argv", "files") if roles.get(r) not in {p["pid"] for p in t["swappedPages"]}]
        if not kept:
            fail("every workload process was paged out; one must keep its argv in RAM")
    t["swapUuid"] = a.swap_uuid
    t["swapLabel"] = a.swap_label

    if t["pagingLevels"] != a.expect_levels:
        fail(f"variant {a.variant} expects {a.expect_levels}-level paging, the guest proved "
             f"{t['pagingLevels']} (mmap probe {t['pagingProbeMmap']}, la57 in cpuinfo: {t['cpuHasLa57']}, "
             f"paging {t['paging']})")

    with open(os.path.join(a.outdir, "truth.json"), "w") as fo:
        json.dump(t, fo, indent=1, ensure_ascii=False)
        fo.write("\n")
    with open(os.path.join(a.outdir, "System.map"), "w") as fo:
        fo.write(derive_system_map(ks_text, offset) if smap_text is None else smap_text)
    print(f"make-test-dumps:   truth: {arch}, {len(procs)} processes, {t['pagingLevels']}-level paging, "
          f"KASLR offset {t['kaslrOffset']}, {n_swapped} argv/env pages in swap (verified in swap.img), "
          f"loadavg {la.split()[0]} (at stop: "
          f"{t['loadavgAtStop']['loadavg'].split()[0] if t['loadavgAtStop'] else 'none'}), tty role {'ok' if roles['tty'] else 'none'}", file=sys.stderr)


def shex(v):
    return f"0x{v:x}" if v >= 0 else f"-0x{-v:x}"


def to_signed(v):
    v %= 1 << 64
    return v - (1 << 64) if v >> 63 else v


def parse_system_map(smap_text):
    """name -> address of the first entry of each name in a System.map."""
    link = {}
    for line in smap_text.splitlines():
        p = line.split()
        if len(p) >= 3 and p[2] not in link:
            try:
                link[p[2]] = int(p[0], 16)
            except ValueError:
                pass
    return link


def check_system_map(ks_text, link, offset, arch):
    """Compare every core-kernel symbol that the guest's kallsyms names exactly once with the map + offset."""
    mask = (1 << 32) - 1 if arch == "i386" else (1 << 64) - 1
    seen, dup = {}, set()
    for line in ks_text.splitlines():
        p = line.split()
        if len(p) != 3:
            continue  # module symbols have a fourth column
        if p[2] in seen:
            dup.add(p[2])
        seen[p[2]] = int(p[0], 16)
    compared = agree = 0
    bad = []
    for n, addr in seen.items():
        if n in dup or n not in link:
            continue
        compared += 1
        if (link[n] + offset) & mask == addr:
            agree += 1
        elif len(bad) < 5:
            bad.append(f"{n}: kallsyms {addr:#x}, map {link[n]:#x}")
    if compared < 1000 or agree < compared * 0.99:
        fail(f"the System.map does not match the guest's kallsyms at KASLR offset {shex(offset)}: "
             f"{agree} of {compared} agree; e.g. {bad}")
    return {"compared": compared, "agree": agree, "disagreeExamples": bad}


def iomem_ram(txt):
    """Top-level "System RAM" ranges of /proc/iomem, end exclusive."""
    out = []
    for line in txt.splitlines():
        if line.startswith(" ") or ":" not in line:
            continue
        rng, name = line.split(":", 1)
        if name.strip() == "System RAM" and "-" in rng:
            lo, hi = (int(x, 16) for x in rng.strip().split("-"))
            out.append((lo, hi + 1))
    return out


def guest_vmcoreinfo(files):
    """The VMCOREINFO text the guest read from its own memory, and where it came from (or why it is missing)."""
    info = dict(l.split("=", 1) for l in files.get("vmcoreinfo.txt", b"error=not recorded").decode().splitlines()
                if "=" in l)
    note = files.get("vmcoreinfo.note")
    if not note or "error" in info:
        return None, info
    namesz, descsz, _ = struct.unpack_from("<III", note, 0)
    name = note[12:12 + namesz].rstrip(b"\0")
    if name != b"VMCOREINFO":
        return None, dict(info, error=f"the note at {info.get('paddr')} is named {name!r}")
    desc = note[12 + ((namesz + 3) & ~3):][:descsz]
    return desc.split(b"\0")[0].decode("utf-8", "replace"), info


def vmcoreinfo_fields(txt):
    return dict(l.split("=", 1) for l in (txt or "").splitlines() if "=" in l)


def config_values(path):
    vals = {}
    if path and os.path.exists(path):
        for line in open(path):
            m = re.match(r"^(CONFIG_\w+)=(.*)$", line.strip())
            if m:
                vals[m.group(1)] = m.group(2).strip('"')
    return vals


def paging_truth(arch, probe, vmci, config_path, t):
    """What the guest (and the booted kernel's own config) says about paging: truth.json "paging"."""
    cfg = config_values(config_path)
    page_size = int(probe.get("pagesize", "4096"))
    out = {"pageSize": page_size, "pageSizeSource": "sysconf(_SC_PAGESIZE) in the guest (= getconf PAGESIZE)"}
    if "PAGESIZE" in vmci and int(vmci["PAGESIZE"]) != page_size:
        fail(f"the guest's page size {page_size} disagrees with its VMCOREINFO PAGESIZE={vmci['PAGESIZE']}")
    cfg_levels = int(cfg["CONFIG_PGTABLE_LEVELS"]) if "CONFIG_PGTABLE_LEVELS" in cfg else None
    out["configPgtableLevels"] = cfg_levels
    if arch == "x86_64":
        out["levels"] = t["pagingLevels"]
        out["levelsSource"] = "mmap probe in the guest (an address at or above 1 << 47 needs 5 levels)"
    elif arch == "aarch64":
        cfg_va = int(cfg["CONFIG_ARM64_VA_BITS"]) if "CONFIG_ARM64_VA_BITS" in cfg else None
        vm_va = int(vmci["NUMBER(VA_BITS)"]) if "NUMBER(VA_BITS)" in vmci else None
        if cfg_va and vm_va and cfg_va != vm_va:
            fail(f"CONFIG_ARM64_VA_BITS={cfg_va} but the guest's VMCOREINFO says NUMBER(VA_BITS)={vm_va}")
        va = vm_va or cfg_va
        if va is None:
            fail("aarch64: neither the guest's VMCOREINFO nor the kernel config gives VA_BITS")
        shift = page_size.bit_length() - 1
        levels = (va - 4) // (shift - 3)  # ARM64_HW_PGTABLE_LEVELS(va_bits)
        probe_bits = int(probe["mmapbits"]) if "mmapbits" in probe else None
        out.update({"vaBits": va, "vaBitsSource": "guest VMCOREINFO NUMBER(VA_BITS)" if vm_va else "kernel config",
                    "configVaBits": cfg_va, "vmcoreinfoVaBits": vm_va, "userVaProbeBits": probe_bits,
                    "levels": levels, "levelsSource": "ARM64_HW_PGTABLE_LEVELS(vaBits) for the guest's page size"})
        if cfg_levels is not None and cfg_levels != levels:
            fail(f"aarch64: {levels} levels from VA_BITS {va} and page size {page_size}, config says {cfg_levels}")
        if probe_bits is not None and probe_bits > va:
            fail(f"aarch64: mmap handed out a {probe_bits}-bit address with VA_BITS {va}")
    elif arch == "i386":
        cfg_pae = cfg.get("CONFIG_X86_PAE") == "y"
        vm_pae = ("CONFIG_X86_PAE" in vmci) if vmci else None
        if vm_pae is not None and vm_pae != cfg_pae:
            fail(f"i386: config says PAE={cfg_pae}, the guest's VMCOREINFO {'has' if vm_pae else 'lacks'} CONFIG_X86_PAE")
        pae = vm_pae if vm_pae is not None else cfg_pae
        out.update({"pae": pae,
                    "paeSource": "guest VMCOREINFO (only a PAE kernel writes CONFIG_X86_PAE=y)"
                    if vm_pae is not None else "kernel config CONFIG_X86_PAE",
                    "configPae": cfg_pae, "vmcoreinfoPae": vm_pae, "levels": 3 if pae else 2})
        if cfg_levels is not None and cfg_levels != out["levels"]:
            fail(f"i386: PAE={pae} means {out['levels']} levels, config says {cfg_levels}")
    return out


def page_offset(arch, paging, direct_map_offset):
    """PAGE_OFFSET, the start of the direct (linear) map."""
    if arch == "aarch64":
        return f"0x{(-(1 << paging['vaBits'])) % (1 << 64):x}"  # _PAGE_OFFSET(VA_BITS) = -(1 << VA_BITS)
    return None if direct_map_offset is None else f"0x{direct_map_offset:x}"  # x86: RAM segments' vaddr - paddr


PROC_STAT_FIELDS = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal", "guest", "guest_nice"]


def proc_stat_at_stop(at_stop):
    """procStatAtStop from a loadavgAtStop record (qmp_dump.py): the cpu lines it carried, or None."""

    def one(rec):
        stat = rec.get("procStat") if rec else None
        if not stat or "cpu" not in stat:
            return None
        cpus = sorted((int(k[3:]), v) for k, v in stat.items() if k != "cpu")
        return {"line": rec["line"], "uptimeSeconds": rec["uptimeSeconds"], "userHz": 100,
                "fields": PROC_STAT_FIELDS, "total": stat["cpu"],
                "cpus": [{"cpu": c, "values": v} for c, v in cpus]}

    last = one(at_stop)
    if last:
        last["previous"] = one(at_stop.get("previous"))
    return last


def swapped_pages(files, by_pid, swap_img, page_size=4096):
    """Pagemap records of the paged-out argv/env pages, each checked against swap.img."""
    out = []
    swap = open(swap_img, "rb") if swap_img else None
    for line in files.get("pagemap.txt", b"").decode().splitlines():
        if not line or line.startswith("#"):
            continue
        pid, role, va, entry, has_arg, has_env = line.split()
        pid, va, e = int(pid), int(va, 16), int(entry, 16)
        present, swapped = bool(e >> 63 & 1), bool(e >> 62 & 1)
        rec = {"pid": pid, "role": role, "va": f"0x{va:x}", "what": "argv" if has_arg == "1" else "env",
               "containsArgv": has_arg == "1", "containsEnv": has_env == "1",
               "present": present, "swapped": swapped, "pagemapEntry": f"0x{e:016x}",
               "swapType": (e & 0x1F) if swapped else None,
               "swapOffset": ((e >> 5) & ((1 << 50) - 1)) if swapped else None,
               "pfn": (e & ((1 << 55) - 1)) if present else None}
        if swapped and swap:
            # Overlay what the guest read from cmdline/environ on this page and compare.
            p = by_pid[pid]
            swap.seek(rec["swapOffset"] * page_size)
            page = swap.read(page_size)
            checked = 0
            for start, data in ((int(p["argStart"], 16), bytes.fromhex(p["cmdlineHex"])),
                                (int(p["envStart"], 16), bytes.fromhex(p["environHex"]))):
                lo, hi = max(va, start), min(va + page_size, start + len(data))
                if lo < hi:
                    if page[lo - va:hi - va] != data[lo - start:hi - start]:
                        fail(f"swap.img page at offset {rec['swapOffset']} does not hold pid {pid}'s "
                             f"argv/env bytes for VA {va:#x}")
                    checked += hi - lo
            rec["verifiedBytes"] = checked
        out.append(rec)
    return out


def cmd_mdf_input(a):
    t = json.load(open(a.truth))
    if not t.get("pageOffsetBase") or not t.get("ramRanges"):
        fail("truth has no pageOffsetBase/ramRanges (no /proc/kcore in the guest?)")
    print(" ".join([t["pageOffsetBase"]] + [f"{s}:{e}" for s, e in t["ramRanges"]]))


# ---------------------------------------------------------------- dump inspection

KDUMP_PREFIX = 1 << 18  # the header block and the sub-header block, for block sizes up to 128 KiB (QEMU's aarch64: 64 KiB)


def flattened_prefix(path, want=KDUMP_PREFIX):
    """Rebuild the first `want` bytes of the file a flattened stream describes."""
    buf = bytearray(want)
    with open(path, "rb") as f:
        f.seek(4096)  # the flattened header is one 4 KiB block
        while True:
            h = f.read(16)
            if len(h) < 16:
                break
            off, size = struct.unpack(">qq", h)
            if off == -1 and size == -1:
                break
            if off < want:
                data = f.read(size)
                n = min(size, want - off)
                buf[off:off + n] = data[:n]
            else:
                f.seek(size, 1)
    return bytes(buf)


# The kdump header's layout follows a word size (QEMU's DiskDumpHeader32/64 after the ELF class it
# chose, makedumpfile's disk_dump_header on a 32- or 64-bit build): status and block_size sit at 412
# after a 10-byte timestamp in the 32-bit layout, at 424 after a 22-byte one in the 64-bit layout.


def kdump_header_bits(hdr):
    """32 or 64: the layout whose block size (a power of two, 1 KiB to 1 MiB) and sub-header size (1 to 4 blocks)
    make sense.  utsname.machine cannot tell: QEMU 7.2 writes the 64-bit header with machine "i686" for an
    i386 guest whose dump is ELF64 (its BIOS ROM ends at 4 GiB), and "Unknown" for aarch64."""
    for bits, off in ((64, 428), (32, 416)):
        block_size, sub_blocks = struct.unpack_from("<iI", hdr, off)
        if 1024 <= block_size <= 1 << 20 and block_size & (block_size - 1) == 0 and 1 <= sub_blocks <= 4:
            return bits
    return 64


def describe_kdump(hdr):
    version = struct.unpack_from("<i", hdr, 8)[0]
    machine = hdr[12 + 4 * 65:12 + 5 * 65].split(b"\0")[0].decode("ascii", "replace")
    bits = kdump_header_bits(hdr)
    status, block_size = struct.unpack_from("<Ii", hdr, 412 if bits == 32 else 424)
    comp = [name for bit, name in COMPRESSION if status & bit]
    sub = hdr[block_size:block_size + 104]
    if bits == 64:
        phys_base, level, split = struct.unpack_from("<qii", sub, 0)
        off_vmci, size_vmci = struct.unpack_from("<qq", sub, 32) if version >= 3 else (0, 0)
        start64, end64, max64 = struct.unpack_from("<qqq", sub, 80) if version >= 6 else (None, None, None)
    else:  # KdumpSubHeader32 (packed): 32-bit phys_base/pfns, 64-bit file offsets
        phys_base, level, split = struct.unpack_from("<iii", sub, 0)
        off_vmci, size_vmci = struct.unpack_from("<qI", sub, 20) if version >= 3 else (0, 0)
        start64, end64, max64 = struct.unpack_from("<qqq", sub, 56) if version >= 6 else (None, None, None)
    return {"compression": comp[0] if comp else "none", "status": status, "headerVersion": version,
            "blockSize": block_size, "dumpLevel": level, "split": bool(split), "vmcoreinfo": size_vmci > 0,
            "subHeaderPhysBase": phys_base, "startPfn": start64, "endPfn": end64, "maxMapnr": max64,
            "utsMachine": machine, "headerBits": bits}


ELF_MACHINES = {3: "EM_386", 62: "EM_X86_64", 183: "EM_AARCH64"}


def describe_elf(path):
    with open(path, "rb") as f:
        eh = f.read(64)
        cls = eh[4]  # 1 = ELFCLASS32, 2 = ELFCLASS64
        machine, = struct.unpack_from("<H", eh, 18)
        if cls == 2:
            phoff, = struct.unpack_from("<Q", eh, 32)
            phentsize, phnum = struct.unpack_from("<HH", eh, 54)
            fmt = "<IIQQQQQQ"  # type flags offset vaddr paddr filesz memsz align
        else:
            phoff, = struct.unpack_from("<I", eh, 28)
            phentsize, phnum = struct.unpack_from("<HH", eh, 42)
            fmt = "<IIIIIIII"  # type offset vaddr paddr filesz memsz flags align
        f.seek(phoff)
        phdrs = []
        for _ in range(phnum):
            r = struct.unpack(fmt, f.read(struct.calcsize(fmt)))
            # as (type, flags, offset, vaddr, paddr, filesz, memsz, align) whatever the class
            phdrs.append(r if cls == 2 else (r[0], r[6], r[1], r[2], r[3], r[4], r[5], r[7]))
        vmci = False
        for p in phdrs:
            if p[0] != 4:
                continue
            f.seek(p[2])
            notes = f.read(p[5])
            i = 0
            while i + 12 <= len(notes):
                nsz, dsz, _ = struct.unpack_from("<III", notes, i)
                name = notes[i + 12:i + 12 + nsz].rstrip(b"\0")
                if name == b"VMCOREINFO":
                    vmci = True
                i += 12 + ((nsz + 3) & ~3) + ((dsz + 3) & ~3)
    loads = [p for p in phdrs if p[0] == 1]
    return {"vmcoreinfo": vmci, "programHeaderOffset": phoff, "loadSegments": len(loads),
            "vaddrIsPhysical": all(p[3] == p[4] for p in loads),
            "elfClass": 64 if cls == 2 else 32, "elfMachine": ELF_MACHINES.get(machine, str(machine))}


def describe(path):
    with open(path, "rb") as f:
        head = f.read(KDUMP_PREFIX)
    if head[:4] == b"\x7fELF":
        d = {"format": "elf", "flattened": False, "compression": "none"}
        d.update(describe_elf(path))
        return d
    if head[:12] == b"makedumpfile" and head[12:16] == b"\0\0\0\0":
        inner = flattened_prefix(path)
        if inner[:8] not in (b"KDUMP   ", b"DISKDUMP"):
            fail(f"{path}: flattened stream without a kdump header")
        d = {"format": "kdump", "flattened": True}
        d.update(describe_kdump(inner))
        return d
    if head[:8] in (b"KDUMP   ", b"DISKDUMP"):
        d = {"format": "kdump", "flattened": False}
        d.update(describe_kdump(head))
        return d
    fail(f"{path}: unknown dump format (first bytes {head[:16].hex()})")


def cmd_kdump_compression(a):
    d = describe(a.file)
    print(d.get("compression", "none"))


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def cmd_manifest(a):
    meta = json.load(open(a.meta))
    truth = json.load(open(os.path.join(a.dir, "truth.json")))
    entries = []
    for line in open(a.files):
        if not line.strip():
            continue
        name, producer, level, split_set, split_index, derived, command = line.rstrip("\n").split("\t")
        path = os.path.join(a.dir, name)
        if not os.path.exists(path):
            continue
        d = describe(path)
        e = {"name": name, "format": d["format"], "flattened": d["flattened"], "producer": producer,
             "compression": d["compression"],
             # kdump files carry their level in the sub-header (QEMU always writes 1);
             # ELF files have none, so it is the -d asked for (null for QEMU's).
             "dumpLevel": d["dumpLevel"] if d["format"] == "kdump" else (int(level) if level != "-" else None),
             "vmcoreinfo": d["vmcoreinfo"], "size": os.path.getsize(path), "sha256": sha256(path),
             "command": command,
             "splitSet": split_set if split_set != "-" else None,
             "splitIndex": int(split_index) if split_index != "-" else None,
             "derivedFrom": derived if derived != "-" else None}
        # Details read from the file itself, for tests that want them.
        e["details"] = {k: v for k, v in d.items() if k not in ("format", "flattened", "compression", "vmcoreinfo",
                                                                 "dumpLevel")}
        entries.append(e)
    m = {
        "schemaVersion": 1,
        "variant": meta["variant"],
        # "x86_64", "aarch64" or "i386"; readers take a manifest without it for x86_64
        "architecture": truth.get("architecture", "x86_64"),
        "kernel": meta["kernel"],
        "qemu": meta["qemu"],
        "makedumpfile": meta["makedumpfile"],
        "kaslr": "nokaslr" not in truth["procCmdline"].split(),
        "kaslrOffset": truth["kaslrOffset"],
        "pagingLevels": truth["pagingLevels"],
        "paging": truth.get("paging"),
        "memoryPressure": meta["memoryPressure"],
        "truth": "truth.json", "systemMap": "System.map", "config": "config", "swapImage": "swap.img",
        "vmlinuz": "vmlinuz", "console": "console.log",
        "systemMapSource": truth.get("systemMapSource"),
        # Present only for kernels built without CONFIG_DEBUG_INFO_BTF: pahole's encoding of the -dbg vmlinux.
        **({"btf": "vmlinux.btf", "btfSource": meta["btfSource"]} if meta.get("btfSource") else {}),
        "files": entries,
        "skipped": meta.get("skipped", []),
        "notes": meta.get("notes", []),
    }
    with open(os.path.join(a.dir, "manifest.json"), "w") as fo:
        json.dump(m, fo, indent=1)
        fo.write("\n")


def cmd_check(a):
    try:
        m = json.load(open(os.path.join(a.vdir, "manifest.json")))
    except (OSError, ValueError):
        sys.exit(1)
    names = [f["name"] for f in m.get("files", [])] + [m[k] for k in ("truth", "systemMap", "config", "swapImage",
                                                                       "vmlinuz", "console")]
    if m.get("btf"):
        names.append(m["btf"])
    for f in m.get("files", []):
        p = os.path.join(a.vdir, f["name"])
        if not os.path.isfile(p) or os.path.getsize(p) != f["size"]:
            sys.exit(1)
    sys.exit(0 if all(os.path.isfile(os.path.join(a.vdir, n)) for n in names) else 1)


def cmd_index(a):
    # "variants" lists x86-64 variants only, as it always did (readers written before the other architectures
    # assume x86-64); "foreignVariants" the others.  "root" is the x86-64 kernel's lab dir, "roots" every lab dir
    # of this lab version (one per kernel).
    arch = {}
    for v in a.vdirs:
        try:
            arch[v] = json.load(open(os.path.join(v, "manifest.json"))).get("architecture", "x86_64")
        except (OSError, ValueError):
            arch[v] = "x86_64"
    idx = {"schemaVersion": 1, "root": os.path.abspath(a.root),
           "variants": [os.path.abspath(v) for v in a.vdirs if arch[v] == "x86_64"],
           "foreignVariants": [os.path.abspath(v) for v in a.vdirs if arch[v] != "x86_64"],
           "roots": [os.path.abspath(r) for r in (a.roots or [a.root])]}
    tmp = os.path.join(a.base, "index.json.tmp")
    with open(tmp, "w") as fo:
        json.dump(idx, fo, indent=1)
        fo.write("\n")
    os.replace(tmp, os.path.join(a.base, "index.json"))


# ---------------------------------------------------------------- modules

def module_name(path):
    base = os.path.basename(path)
    base = re.sub(r"\.ko(\.xz|\.zst|\.gz)?$", "", base)
    return base.replace("-", "_")


def cmd_modules(a):
    import gzip
    import lzma
    import subprocess
    moddir = os.path.join(a.root, "lib", "modules", a.release)
    builtin = set()
    bpath = os.path.join(moddir, "modules.builtin")
    if os.path.exists(bpath):
        builtin = {module_name(l.strip()) for l in open(bpath) if l.strip()}
    deps = {}
    for line in open(os.path.join(moddir, "modules.dep")):
        if ":" in line:
            mod, rest = line.split(":", 1)
            deps[module_name(mod)] = (mod, rest.split())
    order = []

    def visit(name, chain=()):
        if name in builtin:
            print(f"make-test-dumps:   module {name} is built in", file=sys.stderr)
            return
        if name in order:
            return
        if name not in deps:
            fail(f"module {name} not found in {moddir}/modules.dep")
        if name in chain:
            fail(f"module dependency loop at {name}")
        # modules.dep lists dependencies with the one to load first at the end.
        for d in reversed(deps[name][1]):
            visit(module_name(d), chain + (name,))
        order.append(name)

    for n in a.names:
        visit(n.replace("-", "_"))
    os.makedirs(a.out, exist_ok=True)
    for name in order:
        src = os.path.join(moddir, deps[name][0])
        if src.endswith(".xz"):
            data = lzma.open(src).read()
        elif src.endswith(".gz"):
            data = gzip.open(src).read()
        elif src.endswith(".zst"):
            data = subprocess.run(["zstd", "-dc", src], check=True, stdout=subprocess.PIPE).stdout
        else:
            data = open(src, "rb").read()
        with open(os.path.join(a.out, name + ".ko"), "wb") as fo:
            fo.write(data)
    with open(os.path.join(a.out, "load.list"), "w") as fo:
        fo.write("".join(n + ".ko\n" for n in order))
    print(f"make-test-dumps:   modules: {' '.join(order) or '(all built in)'}", file=sys.stderr)


def main():
    ap = argparse.ArgumentParser()
    sp = ap.add_subparsers(dest="cmd", required=True)
    p = sp.add_parser("truth")
    p.add_argument("--tar", required=True)
    p.add_argument("--outdir", required=True)
    p.add_argument("--variant", required=True)
    p.add_argument("--swap", required=True)
    p.add_argument("--swap-uuid", required=True)
    p.add_argument("--swap-label", required=True)
    p.add_argument("--expect-levels", type=int, required=True)
    p.add_argument("--expect-pressure", action="store_true")
    p.add_argument("--qmp-result", help="qmp_dump.py's result file (for loadavgAtStop)")
    p.add_argument("--arch", default="x86_64", choices=sorted(SYMBOLS_WANTED))
    p.add_argument("--config", help="the booted kernel's config (from its .deb)")
    p.add_argument("--system-map", help="link-time System.map (Debian's -dbg package); needed except on x86-64")
    p.set_defaults(fn=cmd_truth)
    p = sp.add_parser("mdf-input")
    p.add_argument("truth")
    p.set_defaults(fn=cmd_mdf_input)
    p = sp.add_parser("kdump-compression")
    p.add_argument("file")
    p.set_defaults(fn=cmd_kdump_compression)
    p = sp.add_parser("manifest")
    p.add_argument("--dir", required=True)
    p.add_argument("--files", required=True)
    p.add_argument("--meta", required=True)
    p.set_defaults(fn=cmd_manifest)
    p = sp.add_parser("check")
    p.add_argument("vdir")
    p.set_defaults(fn=cmd_check)
    p = sp.add_parser("index")
    p.add_argument("--base", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--roots", action="append", help="a lab dir of this version (repeatable; default: --root)")
    p.add_argument("vdirs", nargs="*")
    p.set_defaults(fn=cmd_index)
    p = sp.add_parser("modules")
    p.add_argument("--root", required=True)
    p.add_argument("--release", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("names", nargs="+")
    p.set_defaults(fn=cmd_modules)
    a = ap.parse_args()
    a.fn(a)


if __name__ == "__main__":
    main()
