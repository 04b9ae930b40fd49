# shellcheck shell=bash
# Host dependencies of the dump lab; sourced by scripts/make-test-dumps.sh.
# A fresh Debian 12 machine with only the .NET SDK must work, so everything the lab
# runs on the host is installed here, and `apt-get update` runs at most once per run
# (only when something is missing or apt's lists do not know a package yet).

LAB_APT_UPDATED=0

# A failed `apt-get update` is a warning, not the end: one index that fails to download
# (a mirror in the middle of a sync, say) leaves the others usable, and a package that
# stays unknown is reported by whoever looks it up.
apt_update_once() {
    if [[ $LAB_APT_UPDATED == 0 ]]; then
        echo "make-test-dumps: apt-get update" >&2
        LAB_APT_UPDATED=1
        if ! DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2; then
            echo "make-test-dumps: WARNING: apt-get update reported errors (see above); going on with the indexes it has" >&2
        fi
    fi
}

# Host packages: QEMU to boot the guest, makedumpfile for the filtered dumps, cpio to
# pack the initramfs, kmod for depmod, xz/zstd for compressed modules, python3 for the
# QMP driver and the truth/manifest tools, gcc + libc6-dev for the static guest helper,
# util-linux for mkswap and flock, dwarves for pahole (BTF for kernels built without it).
LAB_HOST_PACKAGES=(qemu-system-x86 makedumpfile cpio kmod xz-utils zstd python3 gcc libc6-dev util-linux dwarves)
# Per guest architecture (Debian's name): QEMU and a cross compiler with its static C library
# for the guest helper.  qemu-system-x86 (above) also has qemu-system-i386.
declare -A LAB_ARCH_PACKAGES=(
    [amd64]=""
    [arm64]="qemu-system-arm gcc-aarch64-linux-gnu libc6-dev-arm64-cross"
    [i386]="gcc-i686-linux-gnu libc6-dev-i386-cross"
)

# ensure_host_packages [DEBIAN-ARCH...]: the common packages and those of each guest architecture.
ensure_host_packages() {
    local missing=() p a
    local want=("${LAB_HOST_PACKAGES[@]}")
    for a in "$@"; do
        # shellcheck disable=SC2206 # word lists
        want+=(${LAB_ARCH_PACKAGES[$a]})
    done
    for p in "${want[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$p")
        fi
    done
    if ((${#missing[@]})); then
        echo "make-test-dumps: installing ${missing[*]}" >&2
        apt_update_once || return 1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || return 1
    fi
}

# Let apt download another architecture's packages (the guest kernel and busybox; nothing
# of that architecture is ever installed).  Adding one makes the next apt_update_once run.
ensure_foreign_arch() {
    local arch=$1
    [[ $arch == "$(dpkg --print-architecture)" ]] && return 0
    # (no `| grep -q` here: under pipefail an early grep exit can SIGPIPE dpkg and read as "missing")
    [[ " $(dpkg --print-foreign-architectures | tr '\n' ' ') " == *" $arch "* ]] && return 0
    echo "make-test-dumps: dpkg --add-architecture $arch (to apt-get download its kernel and busybox)" >&2
    dpkg --add-architecture "$arch" || return 1
    LAB_APT_UPDATED=0
}

# The version apt would download for a package ("" if apt does not know it).
apt_candidate() {
    apt-cache show --no-all-versions "$1" 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}

# Download (never install) a package's .deb into a cache dir; print its path.
# PKG may carry an architecture (busybox-static:arm64).
fetch_deb() {
    local pkg=$1 dir=$2 ver file name=${1%%:*} arch
    arch=$([[ $1 == *:* ]] && echo "${1#*:}" || dpkg --print-architecture)
    ver=$(apt_candidate "$pkg")
    if [[ -z $ver ]]; then
        apt_update_once || return 1
        ver=$(apt_candidate "$pkg")
    fi
    [[ -n $ver ]] || { echo "make-test-dumps: ERROR: apt does not know package $pkg" >&2; return 1; }
    # apt-get download names files pkg_version_arch.deb with ':' (epoch) escaped as %3a.
    file=$(compgen -G "$dir/${name}_${ver//:/%3a}_${arch}.deb" | head -n1 || true)
    if [[ -z $file ]]; then
        echo "make-test-dumps: downloading $pkg $ver" >&2
        # apt-get download writes into the current dir; as root it warns that the
        # _apt sandbox user cannot write there, which is harmless.
        (cd "$dir" && apt-get download -qq "$pkg=$ver" 2>&1 | grep -v 'unsandboxed' >&2 || true)
        file=$(compgen -G "$dir/${name}_${ver//:/%3a}_${arch}.deb" | head -n1 || true)
        [[ -n $file ]] || { echo "make-test-dumps: ERROR: apt-get download $pkg=$ver failed" >&2; return 1; }
    fi
    echo "$file"
}

# Files from a Debian kernel's -dbg package: its link-time System.map (Debian's image package
# ships a one-line placeholder) and, with WANT_BTF=1, BTF encoded by pahole from the vmlinux's
# DWARF, for kernels built without CONFIG_DEBUG_INFO_BTF (Debian's 686 and 686-pae).  The -dbg
# .deb is large (~800 MB): extract just these, keep DIR/System.map-<release>_<version> and
# DIR/vmlinux-<release>_<version>.btf, and delete the .deb and the vmlinux.
# Usage: fetch_dbg_files KREL ARCH DIR WANT_BTF; prints the map's path, then the BTF's (or "").
fetch_dbg_files() {
    local krel=$1 arch=$2 dir=$3 want_btf=$4 pkg ver map btf deb x
    pkg=linux-image-$krel-dbg:$arch
    ver=$(apt_candidate "$pkg")
    [[ -n $ver ]] || { echo "make-test-dumps: ERROR: apt does not know package $pkg" >&2; return 1; }
    map=$dir/System.map-${krel}_${ver//:/%3a}
    btf=$dir/vmlinux-${krel}_${ver//:/%3a}.btf
    if [[ ! -s $map ]] || { [[ $want_btf == 1 ]] && [[ ! -s $btf ]]; }; then
        deb=$(fetch_deb "$pkg" "$dir") || return 1
        x=$(mktemp -d "$dir/dbg.XXXXXX")
        local members=("./usr/lib/debug/boot/System.map-$krel")
        [[ $want_btf == 1 ]] && members+=("./usr/lib/debug/boot/vmlinux-$krel")
        echo "make-test-dumps: extracting ${members[*]##*/} from $(basename "$deb")" >&2
        # tar stops reading once it has every member (--occurrence); dpkg-deb then gets SIGPIPE.
        dpkg-deb --fsys-tarfile "$deb" 2>/dev/null | tar -x -C "$x" --occurrence=1 "${members[@]}" || true
        [[ -s $x/usr/lib/debug/boot/System.map-$krel ]] ||
            { echo "make-test-dumps: ERROR: no System.map-$krel in $deb" >&2; rm -rf "$x"; return 1; }
        mv "$x/usr/lib/debug/boot/System.map-$krel" "$map"
        if [[ $want_btf == 1 ]]; then
            [[ -s $x/usr/lib/debug/boot/vmlinux-$krel ]] ||
                { echo "make-test-dumps: ERROR: no vmlinux-$krel in $deb" >&2; rm -rf "$x"; return 1; }
            # The flags Linux 6.1's scripts/pahole-flags.sh passes to pahole 1.22+.
            echo "make-test-dumps: encoding BTF for $krel with $(pahole --version)" >&2
            pahole --btf_gen_floats -j --btf_encode_detached="$btf.tmp" "$x/usr/lib/debug/boot/vmlinux-$krel" >&2 ||
                { echo "make-test-dumps: ERROR: pahole could not encode BTF for $krel" >&2; rm -rf "$x" "$btf.tmp"; return 1; }
            mv "$btf.tmp" "$btf"
        fi
        rm -rf "$x"
        rm -f "$deb"
    fi
    echo "$map"
    if [[ $want_btf == 1 ]]; then echo "$btf"; else echo ""; fi
}
