#!/usr/bin/env bash
# make-test-dumps.sh: build the "dump lab", real Linux crash dumps with ground truth,
# for the integration tests.
#
# It boots Debian's own kernel (downloaded with apt-get download, never installed) under
# QEMU/TCG with a tiny busybox initramfs that runs a known workload, records the ground
# truth from the guest's /proc, takes QEMU's own dumps over QMP, and filters them with
# makedumpfile into every format this machine can make.  Everything is cached: a
# variant whose manifest and files exist is reused without booting anything.
# Besides Debian's x86-64 kernel it boots its arm64 and i386 kernels (the same workload
# and truth; QEMU's dumps only, since makedumpfile here analyses x86-64 kernels only).
#
# Usage: scripts/make-test-dumps.sh [--variants LIST] [--mem SIZE] [--smp N]
#                                   [--no-pressure] [--cloud] [--force] [--prune] [--timeout SEC]
#   --variants LIST  comma-separated, from the names below (all by default)
#                    default      x86-64: 4-level paging, KASLR on, -device vmcoreinfo, memory pressure
#                    la57         x86-64: -cpu qemu64,+la57 (5-level paging, checked in the guest)
#                    nokaslr      x86-64: kernel argument nokaslr
#                    novmcoreinfo x86-64: no -device vmcoreinfo (the dumps carry no VMCOREINFO)
#                    arm64        Debian's arm64 kernel, qemu-system-aarch64 -M virt -cpu cortex-a57:
#                                 4 KiB pages, 48-bit VA (4 levels), KASLR on, -device vmcoreinfo
#                    i386-pae     Debian's 686-pae kernel, qemu-system-i386 -cpu qemu32: PAE (3 levels)
#                    i386         Debian's 686 kernel, qemu-system-i386 -cpu qemu32: no PAE (2 levels)
#   --mem SIZE       guest memory (default 256M)
#   --smp N          guest CPUs (default 2)
#   --no-pressure    do not push argv/env pages out to swap
#   --cloud          use Debian's -cloud-amd64 kernel flavour (x86-64 variants)
#   --force          regenerate the chosen variants even if cached
#   --prune          delete <release>-<hash> dirs of other lab versions (kept by default:
#                    other checkouts of the repository may still point at them)
#   --timeout SEC    how long to wait for the guest to be ready (default 600)
#
# Output: $KVM_TEST_DUMPS (default ${XDG_CACHE_HOME:-$HOME/.cache}/kvm-test-dumps)
#   debs/                          downloaded .deb files (kept), System.map-* and vmlinux-*.btf
#                                  from -dbg packages
#   <release>-<hash>/<variant>/    dumps, swap.img, System.map, config, vmlinuz,
#                                  truth.json, manifest.json, console.log, logs/,
#                                  vmlinux.btf (kernels without CONFIG_DEBUG_INFO_BTF: pahole's)
#                                  (one <release> per kernel: 6.1.0-N-amd64, -arm64, -686-pae, -686)
#   index.json                     {"schemaVersion":1,"root":<the x86-64 kernel's dir>,
#                                   "variants":[x86-64 variant dirs],"foreignVariants":[the others],
#                                   "roots":[every <release>-<hash> dir of this lab version]}
# <hash> covers this script and scripts/lab/, so editing the lab regenerates the dumps.
set -euo pipefail
export PYTHONDONTWRITEBYTECODE=1 LC_ALL=C

SELF=$(readlink -f "${BASH_SOURCE[0]}")
SCRIPTS=$(dirname "$SELF")
LAB=$SCRIPTS/lab

say() { echo "make-test-dumps: $*"; }
die() {
    echo "make-test-dumps: ERROR: $*" >&2
    exit 1
}
usage() {
    sed -n '2,/^set -euo/p' "$SELF" | sed '$d' | sed 's/^# \{0,1\}//'
}

# ------------------------------------------------------------------ options
VARIANTS=default,la57,nokaslr,novmcoreinfo,arm64,i386-pae,i386
MEM=256M
SMP=2
PRESSURE=1
CLOUD=0
FORCE=0
PRUNE=0
TIMEOUT=600
while (($#)); do
    case $1 in
        --variants) VARIANTS=${2:?--variants needs a list}; shift 2 ;;
        --variants=*) VARIANTS=${1#*=}; shift ;;
        --mem) MEM=${2:?--mem needs a size}; shift 2 ;;
        --mem=*) MEM=${1#*=}; shift ;;
        --smp) SMP=${2:?--smp needs a number}; shift 2 ;;
        --smp=*) SMP=${1#*=}; shift ;;
        --timeout) TIMEOUT=${2:?--timeout needs seconds}; shift 2 ;;
        --timeout=*) TIMEOUT=${1#*=}; shift ;;
        --no-pressure) PRESSURE=0; shift ;;
        --cloud) CLOUD=1; shift ;;
        --force) FORCE=1; shift ;;
        --prune) PRUNE=1; shift ;;
        -h | --help) usage; exit 0 ;;
        *) die "unknown option $1 (see --help)" ;;
    esac
done
[[ $MEM =~ ^[0-9]+[MG]$ ]] || die "--mem must look like 256M or 1G, not '$MEM'"
[[ $SMP =~ ^[1-9][0-9]*$ ]] || die "--smp must be a positive number, not '$SMP'"
[[ $TIMEOUT =~ ^[1-9][0-9]*$ ]] || die "--timeout must be a number of seconds"
IFS=, read -r -a VARIANT_LIST <<<"$VARIANTS"
((${#VARIANT_LIST[@]})) || die "--variants is empty"
# Each variant boots one kernel flavour: amd64 (or cloud-amd64), arm64, 686-pae or 686.
variant_flavour() {
    case $1 in
        default | la57 | nokaslr | novmcoreinfo) echo amd64 ;;
        arm64) echo arm64 ;;
        i386-pae) echo 686-pae ;;
        i386) echo 686 ;;
        *) return 1 ;;
    esac
}
FLAVOURS=()
for v in "${VARIANT_LIST[@]}"; do
    f=$(variant_flavour "$v") || die "unknown variant '$v'"
    [[ " ${FLAVOURS[*]} " == *" $f "* ]] || FLAVOURS+=("$f")
done
[[ $(id -u) == 0 ]] || die "run as root (apt-get is needed to install the host tools)"

# Constants the truth and the tests rely on.
SWAP_UUID=4b564d54-5357-4150-8000-000000000001 # "KVMTSWAP"
SWAP_LABEL=kvmswap
SWAP_SIZE=64M
TRUTH_DISK_SIZE=64M # whole /proc/kallsyms (~4 MB) + per-pid files
SETTLE=35           # seconds the workload runs before the truth (load average > 0)
PRESSURE_ROLES=longArgv,bigEnv,nonRoot # "argv" and the rest keep their argv in RAM
MODULES=(qemu_fw_cfg virtio_ring virtio_pci_modern_dev virtio_pci_legacy_dev virtio virtio_pci virtio_blk)

# Per flavour: Debian architecture, the architecture's name in manifests ("architecture"),
# the kernel meta-package, QEMU, machine, CPU, console, the C compiler for the guest helper,
# and the paging levels the variant promises (checked against what the guest says).
declare -A FL_DEBARCH=([amd64]=amd64 [arm64]=arm64 [686-pae]=i386 [686]=i386)
declare -A FL_ARCH=([amd64]=x86_64 [arm64]=aarch64 [686-pae]=i386 [686]=i386)
declare -A FL_QEMU=([amd64]=qemu-system-x86_64 [arm64]=qemu-system-aarch64 [686-pae]=qemu-system-i386 [686]=qemu-system-i386)
declare -A FL_MACHINE=([amd64]=pc [arm64]=virt [686-pae]=pc [686]=pc)
declare -A FL_CPU=([amd64]=qemu64 [arm64]=cortex-a57 [686-pae]=qemu32 [686]=qemu32)
declare -A FL_CONSOLE=([amd64]=ttyS0 [arm64]=ttyAMA0 [686-pae]=ttyS0 [686]=ttyS0)
declare -A FL_CC=([amd64]=gcc [arm64]=aarch64-linux-gnu-gcc [686-pae]=i686-linux-gnu-gcc [686]=i686-linux-gnu-gcc)
declare -A FL_LEVELS=([amd64]=4 [arm64]=4 [686-pae]=3 [686]=2)

# ------------------------------------------------------------------ host tools
# shellcheck source=lab/deps.sh
. "$LAB/deps.sh"
DEBARCHES=()
for f in "${FLAVOURS[@]}"; do
    [[ " ${DEBARCHES[*]} " == *" ${FL_DEBARCH[$f]} "* ]] || DEBARCHES+=("${FL_DEBARCH[$f]}")
done
ensure_host_packages "${DEBARCHES[@]}" || die "could not install the host packages"
for t in qemu-system-x86_64 makedumpfile cpio depmod gcc python3 mkswap flock; do
    command -v "$t" >/dev/null || die "$t is not on PATH after installing the host packages"
done
for f in "${FLAVOURS[@]}"; do
    for t in "${FL_QEMU[$f]}" "${FL_CC[$f]}"; do
        command -v "$t" >/dev/null || die "$t is not on PATH after installing the host packages"
    done
    ensure_foreign_arch "${FL_DEBARCH[$f]}" || die "dpkg --add-architecture ${FL_DEBARCH[$f]} failed"
done

BASE=${KVM_TEST_DUMPS:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/kvm-test-dumps}
mkdir -p "$BASE/debs"
BASE=$(cd "$BASE" && pwd)
# One run at a time per cache (a concurrent run would fight over the same files).
exec 9>"$BASE/.lock"
flock -w 3600 9 || die "another make-test-dumps run holds $BASE/.lock"

# ------------------------------------------------------------------ kernels
# Cache key: every file of the lab, by name and content.
HASH=$(
    cd "$SCRIPTS/.."
    {
        echo scripts/make-test-dumps.sh
        find scripts/lab -type f ! -name '*.pyc' ! -path '*/__pycache__/*' | sort
    } | while read -r f; do sha256sum "$f"; done | sha256sum | cut -c1-12
)

# The kernel each flavour's meta-package depends on (Debian's current 6.1 image in the archive).
declare -A FL_KPKG FL_KREL FL_KVER FL_DIR FL_PREPARED
resolve_kernel() {
    apt-cache depends "$1" 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^linux-image-/ {print $2; exit}'
}
setup_flavour() {
    local f=$1 meta kpkg
    meta=linux-image-$f
    [[ $f == amd64 ]] && ((CLOUD)) && meta=linux-image-cloud-amd64
    [[ ${FL_DEBARCH[$f]} != "$(dpkg --print-architecture)" ]] && meta+=":${FL_DEBARCH[$f]}"
    kpkg=$(resolve_kernel "$meta")
    if [[ -z $kpkg ]]; then
        apt_update_once
        kpkg=$(resolve_kernel "$meta")
    fi
    [[ -n $kpkg ]] || die "cannot resolve the kernel package that $meta depends on"
    FL_KPKG[$f]=$kpkg                         # linux-image-6.1.0-50-arm64:arm64 (apt's name)
    FL_KREL[$f]=${kpkg#linux-image-}
    FL_KREL[$f]=${FL_KREL[$f]%%:*}            # 6.1.0-50-arm64
    FL_KVER[$f]=$(apt_candidate "$kpkg")
    FL_DIR[$f]=$BASE/${FL_KREL[$f]}-$HASH
    FL_PREPARED[$f]=0
    mkdir -p "${FL_DIR[$f]}"
    say "kernel ${FL_KPKG[$f]} ${FL_KVER[$f]}; lab $HASH; output ${FL_DIR[$f]}"
}
# The x86-64 kernel's dir is index.json's "root", so it is resolved even when no x86-64 variant is asked for.
for f in amd64 "${FLAVOURS[@]}"; do
    [[ -n ${FL_DIR[$f]:-} ]] || setup_flavour "$f"
done
DIR=${FL_DIR[amd64]}

SUFFIX=""
[[ $MEM != 256M ]] && SUFFIX+="-mem$MEM"
[[ $SMP != 2 ]] && SUFFIX+="-smp$SMP"
((PRESSURE)) || SUFFIX+="-nopressure"

# ------------------------------------------------------------------ guest image (built once per flavour and run, lazily)
prepare_guest() {
    local f=$1
    ((FL_PREPARED[$f])) && return 0
    local build=${FL_DIR[$f]}/build krel=${FL_KREL[$f]} debarch=${FL_DEBARCH[$f]}
    local kroot=$build/kernel kdeb bdeb tree bb=busybox-static cc
    [[ $debarch != "$(dpkg --print-architecture)" ]] && bb+=":$debarch"
    kdeb=$(fetch_deb "${FL_KPKG[$f]}" "$BASE/debs") || die "cannot download ${FL_KPKG[$f]}"
    bdeb=$(fetch_deb "$bb" "$BASE/debs") || die "cannot download $bb"
    rm -rf "$build"
    mkdir -p "$kroot" "$build/busybox"
    say "unpacking $(basename "$kdeb") and $(basename "$bdeb")"
    dpkg -x "$kdeb" "$kroot"
    dpkg -x "$bdeb" "$build/busybox"
    [[ -f $kroot/boot/vmlinuz-$krel ]] || die "no /boot/vmlinuz-$krel in $kdeb"
    cp "$kroot/boot/vmlinuz-$krel" "$build/vmlinuz"
    cp "$kroot/boot/config-$krel" "$build/config"
    if [[ ${FL_ARCH[$f]} != x86_64 ]]; then
        # Debian's image ships a placeholder System.map, and these kernels' kallsyms lists
        # functions only (KALLSYMS_ALL=n): the real map comes from the -dbg package.
        # Without CONFIG_DEBUG_INFO_BTF (Debian's 686 kernels) pahole encodes BTF from the -dbg
        # vmlinux's DWARF, so the type-driven walkers can run on these dumps (tests pass --btf).
        local files want_btf=0
        grep -q '^CONFIG_DEBUG_INFO_BTF=y' "$build/config" || want_btf=1
        files=$(fetch_dbg_files "$krel" "$debarch" "$BASE/debs" "$want_btf") || die "cannot get the -dbg files of $krel"
        cp "$(sed -n 1p <<<"$files")" "$build/System.map.dbg"
        ((want_btf)) && cp "$(sed -n 2p <<<"$files")" "$build/vmlinux.btf"
    fi
    # The package has no modules.dep (depmod runs at install time): make one.
    depmod -b "$kroot" "$krel"

    tree=$build/initramfs
    mkdir -p "$tree"/{bin,dev,proc,sys,tmp,run,truth,etc,lib/modules/kvmlab}
    cp "$build/busybox/bin/busybox" "$tree/bin/busybox"
    ln -s busybox "$tree/bin/sh" # /init's #!/bin/sh; the rest is busybox --install at boot
    cc=${FL_CC[$f]}
    say "compiling the guest helper ($cc -static)"
    # 64-bit file offsets on i386 too (/proc/kcore is read with pread).
    "$cc" -static -O2 -pthread -Wall -D_FILE_OFFSET_BITS=64 -o "$tree/bin/kvmlab" "$LAB/kvmlab.c"
    install -m 755 "$LAB/init.sh" "$tree/init"
    python3 "$LAB/labtool.py" modules --root "$kroot" --release "$krel" --out "$tree/lib/modules/kvmlab" \
        "${MODULES[@]}"
    (cd "$tree" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$build/initrd-base.cpio.gz"
    rm -rf "$kroot" "$build/busybox" # ~400 MB we no longer need
    FL_PREPARED[$f]=1
}

qemu_version() { "$1" --version | sed -n '1s/.*version \([0-9.]*\).*/\1/p'; }
MDF_VERSION=$(makedumpfile -v 2>&1 | sed -n 's/^makedumpfile: version \([0-9.]*\).*/\1/p' | head -n1)

# ------------------------------------------------------------------ one variant
# Writes everything into $vdir.tmp and renames it at the end, so an interrupted
# run never leaves a directory that looks complete.
build_variant() {
    local variant=$1 vdir=$2 fl
    fl=$(variant_flavour "$variant")
    local tmp=$vdir.tmp t0=$SECONDS arch=${FL_ARCH[$fl]} build=${FL_DIR[$fl]}/build krel=${FL_KREL[$fl]}
    local qemu_bin=${FL_QEMU[$fl]} machine=${FL_MACHINE[$fl]} cpu=${FL_CPU[$fl]} levels=${FL_LEVELS[$fl]}
    local append="console=${FL_CONSOLE[$fl]},115200 panic=-1 oops=panic" vmcoreinfo=1 qemu_version
    case $variant in
        la57) cpu=qemu64,+la57 levels=5 ;;
        nokaslr) append+=" nokaslr" ;;
        novmcoreinfo) vmcoreinfo=0 ;;
    esac
    qemu_version=$(qemu_version "$qemu_bin")
    prepare_guest "$fl"
    rm -rf "$tmp"
    mkdir -p "$tmp/logs"
    : >"$tmp/logs/notes.txt"
    : >"$tmp/logs/skipped.tsv"
    note() { echo "$*" >>"$tmp/logs/notes.txt"; }
    # skip WHAT WHY: a dump (or step) this variant does not have, and why (manifest "skipped").
    skip() { printf '%s\t%s\n' "$1" "$2" >>"$tmp/logs/skipped.tsv"; }

    # Per-variant settings ride in a second cpio archive appended to the initrd.
    local conf=$tmp/logs/conf
    mkdir -p "$conf/etc"
    {
        echo "SETTLE=$SETTLE"
        if ((PRESSURE)); then echo "PRESSURE_ROLES=$PRESSURE_ROLES"; else echo "PRESSURE_ROLES="; fi
    } >"$conf/etc/kvmlab.conf"
    (cd "$conf" && find . | cpio -o -H newc -R 0:0 --quiet | gzip -6) >"$tmp/logs/conf.cpio.gz"
    cat "$build/initrd-base.cpio.gz" "$tmp/logs/conf.cpio.gz" >"$tmp/logs/initrd.img"
    rm -rf "$conf" "$tmp/logs/conf.cpio.gz"

    # Swap disk: formatted here with a known UUID/label; the guest swaps onto it
    # and the host reads swapped pages back at offset * 4096.
    truncate -s "$SWAP_SIZE" "$tmp/swap.img"
    mkswap -U "$SWAP_UUID" -L "$SWAP_LABEL" "$tmp/swap.img" >/dev/null 2>&1 || die "mkswap failed"
    truncate -s "$TRUTH_DISK_SIZE" "$tmp/logs/truth.img"
    cp "$build/vmlinuz" "$tmp/vmlinuz"
    cp "$build/config" "$tmp/config"
    local smap=()
    [[ -f $build/System.map.dbg ]] && smap=(--system-map "$build/System.map.dbg")
    local btf_source=""
    if [[ -f $build/vmlinux.btf ]]; then
        cp "$build/vmlinux.btf" "$tmp/vmlinux.btf"
        btf_source="$(pahole --version) --btf_encode_detached from vmlinux-$krel of ${FL_KPKG[$fl]%%:*}-dbg: the kernel is built without CONFIG_DEBUG_INFO_BTF"
    fi

    # -device vmcoreinfo needs fw_cfg with DMA: the pc and virt machines both have it.
    local qemu=("$qemu_bin" -accel tcg -machine "$machine" -m "$MEM" -smp "$SMP" -cpu "$cpu"
        -kernel "$tmp/vmlinuz" -initrd "$tmp/logs/initrd.img" -append "$append")
    ((vmcoreinfo)) && qemu+=(-device vmcoreinfo)
    qemu+=(-drive "file=$tmp/swap.img,if=none,id=swap,format=raw" -device virtio-blk-pci,drive=swap
        -drive "file=$tmp/logs/truth.img,if=none,id=truth,format=raw" -device virtio-blk-pci,drive=truth
        -nic none -display none -serial "file:$tmp/console.log"
        -qmp "unix:$tmp/logs/qmp.sock,server=on,wait=off" -no-reboot)
    wait_for_other_qemu "$variant"
    say "[$variant] booting $krel under $qemu_bin/TCG (machine $machine, cpu $cpu, $MEM, $SMP CPUs; workload runs ${SETTLE}s)"
    python3 "$LAB/qmp_dump.py" --console "$tmp/console.log" --qmp "$tmp/logs/qmp.sock" --outdir "$tmp" \
        --result "$tmp/logs/qmp-result.json" --qemu-log "$tmp/logs/qemu.log" --timeout "$TIMEOUT" \
        -- "${qemu[@]}" || die "[$variant] QEMU run failed (see $tmp/console.log)"
    rm -f "$tmp/logs/qmp.sock"

    say "[$variant] recording the truth"
    local pflag=()
    ((PRESSURE)) && pflag=(--expect-pressure)
    python3 "$LAB/labtool.py" truth --tar "$tmp/logs/truth.img" --outdir "$tmp" --variant "$variant" \
        --swap "$tmp/swap.img" --swap-uuid "$SWAP_UUID" --swap-label "$SWAP_LABEL" --expect-levels "$levels" \
        --qmp-result "$tmp/logs/qmp-result.json" --arch "$arch" --config "$tmp/config" "${smap[@]}" "${pflag[@]}" ||
        die "[$variant] the truth is incomplete or contradicts the variant"
    rm -f "$tmp/logs/truth.img"

    # files.tsv: name producer dumpLevel splitSet splitIndex derivedFrom command
    local tsv=$tmp/logs/files.tsv f fmt
    : >"$tsv"
    row() { printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >>"$tsv"; }
    local caps
    caps=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))["dumpCapability"]))' \
        "$tmp/logs/qmp-result.json")
    for fmt in $caps; do
        case $fmt in
            elf) row qemu.elf qemu - - - - "dump-guest-memory elf (paging=false)" ;;
            kdump-raw-*) row "qemu-$fmt.kdump" qemu - - - - "dump-guest-memory $fmt (paging=false)" ;;
            kdump-*)
                row "qemu-$fmt.flat" qemu - - - - "dump-guest-memory $fmt (paging=false)"
                # QEMU 7.2 writes kdump-* flattened; -R restores the plain kdump file.
                makedumpfile -R "$tmp/qemu-$fmt.kdump" <"$tmp/qemu-$fmt.flat" >>"$tmp/logs/makedumpfile.log" 2>&1 ||
                    die "[$variant] makedumpfile -R of qemu-$fmt.flat failed"
                row "qemu-$fmt.kdump" qemu - - - "qemu-$fmt.flat" "makedumpfile -R qemu-$fmt.kdump < qemu-$fmt.flat"
                ;;
        esac
    done
    for fmt in kdump-lzo kdump-snappy; do
        [[ " $caps " == *" $fmt "* ]] || note "QEMU $qemu_version does not offer dump format $fmt"
        [[ " $caps " == *" $fmt "* ]] || skip "qemu-$fmt.flat" "QEMU $qemu_version ($qemu_bin) does not offer dump format $fmt"
    done

    local zstd_works=false mdf_filtered=(mdf-c-d31.kdump mdf-c-d1.kdump mdf-l-d31.kdump mdf-l-d1.kdump mdf-p-d31.kdump
        mdf-z-d31.kdump mdf-E-d31.elf mdf-F-c-d31.flat mdf-split-c-d31.1.kdump mdf-split-c-d31.2.kdump) m why
    if [[ $arch != x86_64 ]]; then
        # Debian's makedumpfile is built for this host's architecture only (it analyses an
        # x86-64 kernel's memory); -R above only re-assembles a flattened file and works for any.
        # Ask it once anyway (on QEMU's kdump file: its ELF trips over the layout problem first), and keep its words.
        local probe=qemu.elf
        [[ -f $tmp/qemu-kdump-zlib.kdump ]] && probe=qemu-kdump-zlib.kdump
        why=$(makedumpfile -c -d 31 "$tmp/$probe" "$tmp/logs/mdf-probe.kdump" 2>&1 |
            grep -v -e '^$' -e 'makedumpfile Failed' | head -n 2 | tr '\n' ' ' || true)
        rm -f "$tmp/logs/mdf-probe.kdump"
        for m in "${mdf_filtered[@]}"; do
            skip "$m" "makedumpfile $MDF_VERSION on this x86-64 host analyses x86-64 kernels only (makedumpfile -c -d 31 $probe says: ${why:-nothing})"
        done
        note "no makedumpfile-filtered dumps: makedumpfile $MDF_VERSION here is an x86-64 build and cannot process $arch dumps; only QEMU's own dumps (and makedumpfile -R of the flattened one) exist"
        if [[ -f $tmp/qemu.elf ]]; then
            local elf
            elf=$(python3 -c 'import sys; sys.path.insert(0, sys.argv[1]); import labtool; d = labtool.describe(sys.argv[2]); print("ELF%s %s" % (d["elfClass"], d["elfMachine"]))' "$LAB" "$tmp/qemu.elf")
            note "qemu.elf is $elf, as $qemu_bin $qemu_version writes it for this guest"
            [[ $arch == i386 && $elf == ELF64* ]] &&
                note "QEMU writes an i386 guest's dump as ELF64 (and its kdump file with the 64-bit header) when a guest-physical block ends above 4 GiB - 1: the pc machine's BIOS ROM ends at 4 GiB"
        fi
    elif ((vmcoreinfo)); then
        make_filtered_dumps "$variant" "$tmp" "$tsv" && zstd_works=true
    else
        note "no VMCOREINFO in this variant: makedumpfile cannot filter it, so only QEMU's own dumps exist"
        for m in "${mdf_filtered[@]}"; do
            skip "$m" "no VMCOREINFO in the dump (no -device vmcoreinfo): makedumpfile needs it to filter"
        done
    fi
    find "$tmp" -maxdepth 1 -type f -exec chmod 644 {} +

    say "[$variant] writing the manifest"
    VARIANT=$variant KPKG=${FL_KPKG[$fl]} KREL=$krel KVER=${FL_KVER[$fl]} FLAVOUR=${krel#*.*.*-*-} DEBARCH=${FL_DEBARCH[$fl]} \
        QEMU_VERSION=$qemu_version QEMU_BIN=$qemu_bin MACHINE=$machine CPU=$cpu MEM=$MEM SMP=$SMP \
        VMCOREINFO=$vmcoreinfo MDF_VERSION=$MDF_VERSION ZSTD_WORKS=$zstd_works PRESSURE=$PRESSURE BTF_SOURCE=$btf_source \
        python3 - "$tmp/logs/qmp-result.json" "$tmp/logs/notes.txt" "$tmp/logs/meta.json" "$tmp/logs/skipped.tsv" <<'EOF'
import json, os, sys
e = os.environ
caps = json.load(open(sys.argv[1]))["dumpCapability"]
notes = [l.rstrip("\n") for l in open(sys.argv[2]) if l.strip()]
skipped = [dict(zip(("name", "why"), l.rstrip("\n").split("\t", 1))) for l in open(sys.argv[4]) if l.strip()]
meta = {
    "variant": e["VARIANT"],
    "kernel": {"release": e["KREL"], "package": e["KPKG"].split(":")[0], "packageVersion": e["KVER"],
               "flavour": e["FLAVOUR"], "debianArchitecture": e["DEBARCH"]},
    "qemu": {"version": e["QEMU_VERSION"], "binary": e["QEMU_BIN"], "machine": e["MACHINE"], "cpu": e["CPU"],
             "memory": e["MEM"], "smp": int(e["SMP"]),
             "vmcoreinfoDevice": e["VMCOREINFO"] == "1", "dumpCapability": caps},
    "makedumpfile": {"version": e["MDF_VERSION"], "zstdWorks": e["ZSTD_WORKS"] == "true"},
    "memoryPressure": e["PRESSURE"] == "1",
    "btfSource": e["BTF_SOURCE"] or None,
    "skipped": skipped,
    "notes": notes,
}
json.dump(meta, open(sys.argv[3], "w"), indent=1)
EOF
    python3 "$LAB/labtool.py" manifest --dir "$tmp" --files "$tsv" --meta "$tmp/logs/meta.json" ||
        die "[$variant] could not write the manifest"
    rm -f "$tmp/logs/initrd.img"
    rm -rf "$vdir"
    mv "$tmp" "$vdir"
    say "[$variant] built in $((SECONDS - t0)) s"
}

# makedumpfile outputs.  Returns 0 if a real zstd dump was made.
make_filtered_dumps() {
    local variant=$1 tmp=$2 tsv=$3
    local log=$tmp/logs/makedumpfile.log in=$tmp/logs/mdf-input.elf args zstd=1
    # makedumpfile 1.7.2 cannot use QEMU 7.2's dumps as they are (see elf_for_makedumpfile.py):
    # give it QEMU's ELF rewritten like /proc/vmcore, using the guest's page_offset_base.
    read -r -a args <<<"$(python3 "$LAB/labtool.py" mdf-input "$tmp/truth.json")"
    python3 "$LAB/elf_for_makedumpfile.py" "$tmp/qemu.elf" "${args[@]:0:1}" "$in" "${args[@]:1}" ||
        die "[$variant] could not prepare makedumpfile's input"
    say "[$variant] makedumpfile: -c/-l/-p with -d 31 and -d 1, -z, -E, -F, --split"

    # try NAME EXPECTED-COMPRESSION LEVEL [UNCOMPRESSED-NAME] -- OPTION...: run makedumpfile
    # and keep the file only if its header names the compression asked for.  A build
    # without snappy/zstd (Debian's 1.7.2) accepts -p/-z, warns, and writes the pages
    # uncompressed: such a file is kept under UNCOMPRESSED-NAME when one is given (an
    # uncompressed kdump file is a case readers must handle too), else dropped.
    try() {
        local name=$1 want=$2 level=$3 plain=""
        shift 3
        if [[ $1 != -- ]]; then plain=$1; shift; fi
        shift
        local cmd="makedumpfile $* mdf-input $name" got
        echo "+ $cmd" >>"$log"
        if ! makedumpfile "$@" "$in" "$tmp/$name" >>"$log" 2>&1; then
            rm -f "$tmp/$name"
            note "makedumpfile $* failed: $(grep -v '^$' "$log" | tail -n 2 | tr '\n' ' ')"
            return 1
        fi
        got=$(python3 "$LAB/labtool.py" kdump-compression "$tmp/$name")
        if [[ $got == "$want" ]]; then
            row "$name" makedumpfile "$level" - - - "$cmd"
            return 0
        fi
        if [[ $got == none && -n $plain ]]; then
            mv "$tmp/$name" "$tmp/$plain"
            row "$plain" makedumpfile "$level" - - - "makedumpfile $* mdf-input $plain"
            note "makedumpfile $* wrote an uncompressed kdump file (no $want support in this build): kept as $plain"
        else
            rm -f "$tmp/$name"
            note "makedumpfile $* wrote a file with compression '$got', not $want: dropped"
        fi
        return 1
    }
    try mdf-c-d31.kdump zlib 31 -- -c -d 31 || die "[$variant] makedumpfile -c -d 31 failed (see $log)"
    try mdf-c-d1.kdump zlib 1 -- -c -d 1 || die "[$variant] makedumpfile -c -d 1 failed (see $log)"
    try mdf-l-d31.kdump lzo 31 -- -l -d 31 || true
    try mdf-l-d1.kdump lzo 1 -- -l -d 1 || true
    try mdf-p-d31.kdump snappy 31 mdf-none-d31.kdump -- -p -d 31 || true
    if [[ -f $tmp/mdf-p-d31.kdump ]]; then
        try mdf-p-d1.kdump snappy 1 -- -p -d 1 || true
    else
        note "makedumpfile -p -d 1 skipped: -p -d 31 gave no snappy file"
    fi
    try mdf-z-d31.kdump zstd 31 -- -z -d 31 || zstd=0

    echo "+ makedumpfile -E -d 31" >>"$log"
    makedumpfile -E -d 31 "$in" "$tmp/mdf-E-d31.elf" >>"$log" 2>&1 || die "[$variant] makedumpfile -E failed"
    row mdf-E-d31.elf makedumpfile 31 - - - "makedumpfile -E -d 31 mdf-input mdf-E-d31.elf"

    echo "+ makedumpfile -F -c -d 31" >>"$log"
    makedumpfile -F -c -d 31 "$in" >"$tmp/mdf-F-c-d31.flat" 2>>"$log" || die "[$variant] makedumpfile -F failed"
    row mdf-F-c-d31.flat makedumpfile 31 - - - "makedumpfile -F -c -d 31 mdf-input > mdf-F-c-d31.flat"

    # The default split block (1 GiB) is bigger than the guest, which would put every
    # page into the first file; 1 MiB blocks split the pages about evenly.
    echo "+ makedumpfile --split" >>"$log"
    makedumpfile --split --splitblock-size 1024 -c -d 31 "$in" "$tmp/mdf-split-c-d31.1.kdump" \
        "$tmp/mdf-split-c-d31.2.kdump" >>"$log" 2>&1 || die "[$variant] makedumpfile --split failed"
    local i
    for i in 1 2; do
        row "mdf-split-c-d31.$i.kdump" makedumpfile 31 mdf-split-c-d31 $((i - 1)) - \
            "makedumpfile --split --splitblock-size 1024 -c -d 31 mdf-input mdf-split-c-d31.1.kdump mdf-split-c-d31.2.kdump"
    done
    rm -f "$in"
    if grep -q 'kernel version is not supported' "$log"; then
        note "makedumpfile $MDF_VERSION warns 'The kernel version is not supported' for $krel (it knows kernels up to 6.0) but completes"
    fi
    note "makedumpfile input: QEMU's ELF rewritten like /proc/vmcore (program headers after the ELF header, p_vaddr = page_offset_base + p_paddr, System RAM only), because makedumpfile $MDF_VERSION misreads QEMU $qemu_version's ELF layout and the phys_base in its kdump sub-header"
    ((zstd))
}

# ------------------------------------------------------------------ main
# One QEMU at a time on this machine: another checkout (or engineer) may be making its dumps.
wait_for_other_qemu() {
    local waited=0
    while pgrep '^qemu-system' >/dev/null; do
        ((waited % 60 == 0)) && say "[$1] another QEMU is running ($(pgrep -l '^qemu-system' | tr '\n' ' ')); waiting"
        ((waited < 7200)) || die "[$1] another QEMU has been running for two hours"
        sleep 10
        waited=$((waited + 10))
    done
}

VDIRS=()
for v in "${VARIANT_LIST[@]}"; do
    fl=$(variant_flavour "$v")
    sfx=$SUFFIX
    [[ $fl == amd64 ]] && ((CLOUD)) && sfx+="-cloud"
    vdir=${FL_DIR[$fl]}/$v$sfx
    if ((FORCE)); then
        rm -rf "$vdir"
    fi
    if python3 "$LAB/labtool.py" check "$vdir"; then
        say "[$v$sfx] cached: reusing $vdir"
    else
        build_variant "$v" "$vdir"
    fi
    VDIRS+=("$vdir")
done
for fl in "${!FL_DIR[@]}"; do
    rm -rf "${FL_DIR[$fl]}/build"
done

# Old lab versions: with --prune, drop <release>-<hash> dirs of other hashes (debs stay).
# Not by default: another checkout (another branch's lab) may still use them.
for d in "$BASE"/*-*; do
    ((PRUNE)) || break
    [[ -d $d && $d != "$DIR" ]] || continue
    [[ $(basename "$d") =~ -[0-9a-f]{12}$ ]] || continue
    [[ $(basename "$d") == *-"$HASH" ]] && continue
    say "removing old lab output $d"
    rm -rf "$d"
done

# Every dir of this lab version (one per kernel), so that readers also find variants made by earlier runs.
ROOTS=()
for d in "$BASE"/*-"$HASH"; do
    [[ -d $d ]] && ROOTS+=(--roots "$d")
done
python3 "$LAB/labtool.py" index --base "$BASE" --root "$DIR" "${ROOTS[@]}" "${VDIRS[@]}"
for vdir in "${VDIRS[@]}"; do
    say "variant $(basename "$vdir"): $vdir ($(du -sh "$vdir" | cut -f1))"
done
say "index: $BASE/index.json"
