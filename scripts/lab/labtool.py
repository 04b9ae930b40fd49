#!/usr/bin/env python3
"""Host-side helpers of the dump lab (called by scripts/make-test-dumps.sh).

  labtool.py truth    --tar truth.img --outdir VDIR --variant NAME --swap swap.img
                      --swap-uuid UUID --swap-label LABEL --expect-levels 4|5 [--expect-pressure]
                      [--qmp-result qmp-result.json]
      Turn the guest's raw truth (a tar stream on a raw disk) into VDIR/truth.json and
      derive VDIR/System.map; check what the variant promises (paging levels, pages
      really in swap and, in swap.img, holding the argv/env bytes the guest recorded).
      loadavgAtStop and procStatAtStop come from qmp_dump.py's result file (the guest's
      console, read at `stop`).
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


def parse_kcore(files):
    loads = []
    for line in text(files, "kcore-phdrs.txt").splitlines():
        v, p, sz = (int(x, 16) for x in line.split())
        loads.append({"vaddr": v, "paddr": p, "size": sz})
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
    return loads, sorted(ram), pob, phys_base


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

    paging = dict(l.split("=", 1) for l in text(files, "paging.txt").splitlines() if "=" in l)
    t["pagingLevels"] = int(paging["levels"])
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
    ks = {}
    for line in ks_text.splitlines():
        p = line.split()
        if len(p) == 3 and p[2] in KALLSYMS_WANTED and p[2] not in ks:
            ks[p[2]] = p[0].lower()
    missing = [n for n in KALLSYMS_WANTED if n not in ks]
    if "_text" in missing:
        fail("guest kallsyms has no _text (addresses hidden?)")
    t["kallsyms"] = ks
    t["kallsymsMissing"] = missing
    offset = int(ks["_text"], 16) - LINK_TEXT
    t["kaslrOffset"] = f"0x{offset:x}" if offset >= 0 else f"-0x{-offset:x}"

    loads, ram, pob, phys_base = parse_kcore(files)
    t["pageOffsetBase"] = None if pob is None else f"0x{pob:x}"
    t["physBase"] = None if phys_base is None else (f"0x{phys_base:x}" if phys_base >= 0 else f"-0x{-phys_base:x}")
    t["ramRanges"] = [[f"0x{s:x}", f"0x{e:x}"] for s, e in ram]
    t["kcoreLoads"] = [{k: f"0x{v:x}" for k, v in l.items()} for l in loads]

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

    t["swappedPages"] = swapped_pages(files, by_pid, a.swap)
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
             f"{t['pagingLevels']} (mmap probe {t['pagingProbeMmap']}, la57 in cpuinfo: {t['cpuHasLa57']})")

    with open(os.path.join(a.outdir, "truth.json"), "w") as fo:
        json.dump(t, fo, indent=1, ensure_ascii=False)
        fo.write("\n")
    with open(os.path.join(a.outdir, "System.map"), "w") as fo:
        fo.write(derive_system_map(ks_text, offset))
    print(f"make-test-dumps:   truth: {len(procs)} processes, {t['pagingLevels']}-level paging, "
          f"KASLR offset {t['kaslrOffset']}, {n_swapped} argv/env pages in swap (verified in swap.img), "
          f"loadavg {la.split()[0]} (at stop: "
          f"{t['loadavgAtStop']['loadavg'].split()[0] if t['loadavgAtStop'] else 'none'}), tty role {'ok' if roles['tty'] else 'none'}", file=sys.stderr)


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


def swapped_pages(files, by_pid, swap_img):
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
            swap.seek(rec["swapOffset"] * 4096)
            page = swap.read(4096)
            checked = 0
            for start, data in ((int(p["argStart"], 16), bytes.fromhex(p["cmdlineHex"])),
                                (int(p["envStart"], 16), bytes.fromhex(p["environHex"]))):
                lo, hi = max(va, start), min(va + 4096, start + len(data))
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

def flattened_prefix(path, want=8192):
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


def describe_kdump(hdr):
    status, block_size = struct.unpack_from("<Ii", hdr, 424)
    version = struct.unpack_from("<i", hdr, 8)[0]
    comp = [name for bit, name in COMPRESSION if status & bit]
    sub = hdr[block_size:block_size + 104]
    phys_base, level, split = struct.unpack_from("<qii", sub, 0)
    off_vmci, size_vmci = struct.unpack_from("<qq", sub, 32) if version >= 3 else (0, 0)
    start64, end64, max64 = struct.unpack_from("<qqq", sub, 80) if version >= 6 else (None, None, None)
    return {"compression": comp[0] if comp else "none", "status": status, "headerVersion": version,
            "blockSize": block_size, "dumpLevel": level, "split": bool(split), "vmcoreinfo": size_vmci > 0,
            "subHeaderPhysBase": phys_base, "startPfn": start64, "endPfn": end64, "maxMapnr": max64,
            "utsMachine": hdr[12 + 4 * 65:12 + 5 * 65].split(b"\0")[0].decode("ascii", "replace")}


def describe_elf(path):
    with open(path, "rb") as f:
        eh = f.read(64)
        phoff, = struct.unpack_from("<Q", eh, 32)
        phentsize, phnum = struct.unpack_from("<HH", eh, 54)
        f.seek(phoff)
        phdrs = [struct.unpack("<IIQQQQQQ", f.read(56)) for _ in range(phnum)]
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
            "vaddrIsPhysical": all(p[3] == p[4] for p in loads)}


def describe(path):
    with open(path, "rb") as f:
        head = f.read(8192)
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
        "kernel": meta["kernel"],
        "qemu": meta["qemu"],
        "makedumpfile": meta["makedumpfile"],
        "kaslr": "nokaslr" not in truth["procCmdline"].split(),
        "kaslrOffset": truth["kaslrOffset"],
        "pagingLevels": truth["pagingLevels"],
        "memoryPressure": meta["memoryPressure"],
        "truth": "truth.json", "systemMap": "System.map", "config": "config", "swapImage": "swap.img",
        "vmlinuz": "vmlinuz", "console": "console.log",
        "files": entries,
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
    for f in m.get("files", []):
        p = os.path.join(a.vdir, f["name"])
        if not os.path.isfile(p) or os.path.getsize(p) != f["size"]:
            sys.exit(1)
    sys.exit(0 if all(os.path.isfile(os.path.join(a.vdir, n)) for n in names) else 1)


def cmd_index(a):
    idx = {"schemaVersion": 1, "root": os.path.abspath(a.root), "variants": [os.path.abspath(v) for v in a.vdirs]}
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
