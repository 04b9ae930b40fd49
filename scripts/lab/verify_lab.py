#!/usr/bin/env python3
"""Sanity-check a generated dump lab: verify_lab.py [INDEX.json]

Reads $KVM_TEST_DUMPS/index.json (or the given one) and, for every variant (x86-64 and
foreign), checks that the files exist, the truth says what the workload promised, the
swapped pages really are in swap.img, each dump's header says what the manifest claims
(ELF machine included), and (with a plain byte search, no parsing) that QEMU's ELF dump
holds the in-RAM argv and the kmsg marker.
Prints one line per check group; exits 1 on the first failure.
"""
import json
import mmap
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True
import labtool  # noqa: E402  (describe() reads dump headers)


def check(cond, msg):
    if not cond:
        print(f"verify: FAIL: {msg}")
        sys.exit(1)


def argv_of(p):
    return bytes.fromhex(p["cmdlineHex"]).split(b"\0")[:-1]


# What each variant promises about paging (levels; for arm64 also page size and VA bits; for i386 PAE).
FOREIGN = {"arm64": ("aarch64", 4), "i386-pae": ("i386", 3), "i386": ("i386", 2)}
ELF_MACHINE = {"x86_64": "EM_X86_64", "aarch64": "EM_AARCH64", "i386": "EM_386"}


def verify_variant(vdir):
    name = os.path.basename(vdir)
    m = json.load(open(os.path.join(vdir, "manifest.json")))
    t = json.load(open(os.path.join(vdir, "truth.json")))
    arch = m.get("architecture", "x86_64")
    base = m["variant"]
    check(t.get("architecture", "x86_64") == arch, f"{name}: truth says {t.get('architecture')}, manifest {arch}")
    check(FOREIGN.get(base, ("x86_64",))[0] == arch, f"{name}: variant {base} is not an {arch} variant")
    for key in ("truth", "systemMap", "config", "swapImage", "vmlinuz", "console"):
        check(os.path.isfile(os.path.join(vdir, m[key])), f"{name}: {m[key]} missing")
    procs = {p["pid"]: p for p in t["processes"]}
    r = t["roles"]

    # Workload as promised.
    a = argv_of(procs[r["argv"]])
    check(a[0] == b"kvmtest-argv" and b"" in a and "ünïcödé-✓".encode() in a
          and any(b"\xff\xfe" in x for x in a), f"{name}: argv role argv {a}")
    check(len(bytes.fromhex(procs[r["longArgv"]]["cmdlineHex"])) > 4096, f"{name}: long argv too short")
    env = bytes.fromhex(procs[r["bigEnv"]]["environHex"]).split(b"\0")[:-1]
    check(len(env) >= 60 and all(e.startswith(b"KVMTEST_VAR_") for e in env), f"{name}: big env")
    check(procs[r["nonRoot"]]["uid"] == [1234] * 4 and procs[r["nonRoot"]]["gid"] == [5678] * 4, f"{name}: uid/gid")
    check(procs[r["child"]]["ppid"] == r["parent"], f"{name}: child's parent")
    check(procs[r["threaded"]]["numThreads"] == 3 and len(procs[r["threaded"]]["threads"]) == 3, f"{name}: threads")
    check(procs[r["niced"]]["nice"] == 5, f"{name}: nice")
    check(procs[r["spinner"]]["state"] == "R", f"{name}: spinner not running")
    fds = {f["fd"]: f for f in t["files"]["fds"]}
    check(fds[3]["path"] == "/tmp/kvmtest-a.txt" and fds[3]["pos"] == 7 and fds[4]["path"] == "/tmp/kvmtest-b.txt"
          and fds[5]["path"] == "/tmp" and fds[7]["path"].startswith("pipe:") and fds[9]["path"] == "/dev/null",
          f"{name}: fds {fds}")
    check(t["loadavgValues"][0] > 0, f"{name}: load average is 0")
    at = t.get("loadavgAtStop")
    check(isinstance(at, dict) and isinstance(at.get("values"), list) and len(at["values"]) == 3
          and all(isinstance(x, (int, float)) for x in at["values"]) and at["values"][0] > 0
          and isinstance(at.get("uptimeSeconds"), (int, float)) and at["uptimeSeconds"] >= t["uptimeSeconds"],
          f"{name}: loadavgAtStop missing or malformed: {at}")
    ps = t.get("procStatAtStop")
    check(isinstance(ps, dict) and ps.get("uptimeSeconds") == at["uptimeSeconds"] and ps.get("line") == at["line"]
          and len(ps.get("total", [])) == 10 and all(isinstance(x, int) and x >= 0 for x in ps["total"])
          and [c["cpu"] for c in ps.get("cpus", [])] == list(range(m["qemu"]["smp"]))
          and all(len(c["values"]) == 10 and all(isinstance(x, int) and x >= 0 for x in c["values"]) for c in ps["cpus"]),
          f"{name}: procStatAtStop missing, malformed or not one line per online CPU: {ps}")
    # The total line sums nanoseconds and truncates once, each cpuN line truncates its own, and the per-CPU loop
    # runs just after the total's (a tick or an idle period in progress can move on in between): the total and
    # the sum of the cpu lines differ by at most one tick per CPU.
    for i, f in enumerate(ps["fields"]):
        s = sum(c["values"][i] for c in ps["cpus"])
        check(abs(ps["total"][i] - s) <= len(ps["cpus"]), f"{name}: procStatAtStop {f}: total {ps['total'][i]}, cpu lines sum to {s}")
    check(all(sum(c["values"]) > 0 for c in ps["cpus"]), f"{name}: procStatAtStop has a CPU with no time at all")
    check(t["kmsgMarker"] in t["dmesg"], f"{name}: marker not in dmesg")
    print(f"verify: {name}: workload ok (tty role: {r['tty']}, loadavg {t['loadavg']}, "
          f"at stop {at['loadavg']} at uptime {at['uptimeSeconds']} s, /proc/stat cpu {' '.join(map(str, ps['total']))})")

    # Variant promises.
    want_levels = FOREIGN[base][1] if base in FOREIGN else 5 if base == "la57" else 4
    check(t["pagingLevels"] == want_levels and m["pagingLevels"] == want_levels, f"{name}: paging levels")
    check(t["paging"]["pageSize"] == 4096 and m["paging"] == t["paging"], f"{name}: page size / paging record")
    if base == "la57":
        check(t["cpuHasLa57"], f"{name}: no la57 in cpuinfo")
    if base == "nokaslr":
        check(t["kaslrOffset"] == "0x0" and not m["kaslr"], f"{name}: nokaslr has an offset")
    if base == "arm64":
        check(t["paging"]["vaBits"] == 48, f"{name}: VA bits {t['paging']['vaBits']}")
        check(m["kaslr"] and t["kaslrOffset"] != "0x0", f"{name}: KASLR did not move the kernel")
    if arch == "i386":
        check(t["paging"]["pae"] == (base == "i386-pae"), f"{name}: PAE is {t['paging']['pae']}")
    smap = open(os.path.join(vdir, "System.map")).read()
    check("[" not in smap, f"{name}: System.map has module symbols")
    if arch == "x86_64":
        check("ffffffff81000000 T _text\n" in smap, f"{name}: System.map _text not at link address")
    else:
        # Debian's -dbg map: every symbol the truth has sits at its map address plus the KASLR offset.
        link = {}
        for line in smap.splitlines():
            a, _, n = line.split()[:3]
            link.setdefault(n, int(a, 16))
        off = int(t["kaslrOffset"], 16)
        mask = (1 << (32 if arch == "i386" else 64)) - 1
        for n, a in t["symbols"].items():
            check((link[n] + off) & mask == int(a, 16), f"{name}: symbol {n} {a} is not System.map + KASLR offset")
        for n in ("init_task", "linux_banner", "swapper_pg_dir", "_stext", "init_uts_ns"):
            check(n in t["symbols"], f"{name}: truth has no address for {n}")
        check(t["systemMapCheck"]["agree"] == t["systemMapCheck"]["compared"],
              f"{name}: System.map and kallsyms disagree: {t['systemMapCheck']}")
    pg = t["paging"]
    extra = f", {pg['vaBits']}-bit VA" if "vaBits" in pg else f", PAE {pg['pae']}" if "pae" in pg else ""
    print(f"verify: {name}: {arch}, {t['pagingLevels']}-level paging ({pg['pageSize']}-byte pages{extra}), "
          f"KASLR offset {t['kaslrOffset']}, System.map ok")

    # Swapped pages: read them back from swap.img ourselves.
    sw = [p for p in t["swappedPages"] if p["swapped"]]
    if m["memoryPressure"]:
        check(sw, f"{name}: no swapped pages")
        with open(os.path.join(vdir, "swap.img"), "rb") as f:
            for p in sw:
                f.seek(p["swapOffset"] * t["paging"]["pageSize"])
                page = f.read(t["paging"]["pageSize"])
                proc = procs[p["pid"]]
                if p["what"] == "argv":
                    args = [x for x in argv_of(proc) if len(x) > 8]
                    check(any(x[:40] in page for x in args) or (b"kvmtest-long-arg-offset" in page),
                          f"{name}: swap page {p['swapOffset']} lacks argv text")
                else:
                    check(b"KVMTEST_VAR_" in page, f"{name}: swap page {p['swapOffset']} lacks env text")
        roles_out = {p["role"] for p in sw}
        check("argv" not in roles_out, f"{name}: the argv role was paged out")
        print(f"verify: {name}: {len(sw)} swapped argv/env pages found in swap.img ({', '.join(sorted(roles_out))})")

    # Every dump's header says what the manifest claims.
    for f in m["files"]:
        path = os.path.join(vdir, f["name"])
        check(os.path.getsize(path) == f["size"], f"{name}: {f['name']} size")
        d = labtool.describe(path)
        check(d["format"] == f["format"] and d["flattened"] == f["flattened"] and d["compression"] == f["compression"]
              and d["vmcoreinfo"] == f["vmcoreinfo"], f"{name}: {f['name']} header disagrees with manifest")
        if f["format"] == "kdump":
            check(d["dumpLevel"] == f["dumpLevel"], f"{name}: {f['name']} dump level")
        if f["splitSet"]:
            check(d["split"], f"{name}: {f['name']} not a split file")
        with open(path, "rb") as fh:
            magic = fh.read(16)
        expect = {"elf": b"\x7fELF"}.get(f["format"], b"makedumpfile" if f["flattened"] else b"KDUMP   ")
        check(magic.startswith(expect), f"{name}: {f['name']} magic {magic!r}")
        if f["format"] == "elf":
            check(d["elfMachine"] == ELF_MACHINE[arch], f"{name}: {f['name']} is {d['elfMachine']}, not {arch}")
    check(all(f["vmcoreinfo"] == m["qemu"]["vmcoreinfoDevice"] for f in m["files"]),
          f"{name}: VMCOREINFO presence does not follow the vmcoreinfo device")
    comps = sorted({(f["compression"], f["dumpLevel"]) for f in m["files"] if f["format"] == "kdump"},
                   key=str)
    print(f"verify: {name}: {len(m['files'])} dumps match their headers; kdump (compression, level): {comps}")

    # Plain byte search in QEMU's ELF (physical memory): in-RAM argv and the kmsg text.
    with open(os.path.join(vdir, "qemu.elf"), "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        needle = b"\0".join(argv_of(procs[r["argv"]])[:4])
        check(mm.find(needle) >= 0, f"{name}: argv role's argv not found in qemu.elf")
        check(mm.find(t["kmsgMarker"].encode()) >= 0, f"{name}: kmsg marker not found in qemu.elf")
    print(f"verify: {name}: qemu.elf holds the in-RAM argv and the kmsg marker")


def main():
    base = os.environ.get("KVM_TEST_DUMPS") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "kvm-test-dumps")
    index = sys.argv[1] if len(sys.argv) > 1 else os.path.join(base, "index.json")
    idx = json.load(open(index))
    variants = idx["variants"] + idx.get("foreignVariants", [])
    for v in variants:
        verify_variant(v)
    print(f"verify: all {len(variants)} variants ok")


if __name__ == "__main__":
    main()
