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
# util-linux for mkswap and flock.
LAB_HOST_PACKAGES=(qemu-system-x86 makedumpfile cpio kmod xz-utils zstd python3 gcc libc6-dev util-linux)
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

# The link-time System.map of a Debian kernel, from its -dbg package (Debian's image package
# ships a one-line placeholder).  The -dbg .deb is large (~800 MB), but System.map comes
# early in its data archive: extract just that file and delete the .deb, keeping
# DIR/System.map-<release>_<version>.  Prints the map's path.
fetch_dbg_system_map() {
    local krel=$1 arch=$2 dir=$3 pkg ver map deb
    pkg=linux-image-$krel-dbg:$arch
    ver=$(apt_candidate "$pkg")
    [[ -n $ver ]] || { echo "make-test-dumps: ERROR: apt does not know package $pkg" >&2; return 1; }
    map=$dir/System.map-${krel}_${ver//:/%3a}
    if [[ ! -s $map ]]; then
        deb=$(fetch_deb "$pkg" "$dir") || return 1
        echo "make-test-dumps: extracting System.map-$krel from $(basename "$deb")" >&2
        # tar stops reading at the first match (--occurrence); dpkg-deb then gets SIGPIPE.
        dpkg-deb --fsys-tarfile "$deb" 2>/dev/null |
            tar -xO --occurrence=1 "./usr/lib/debug/boot/System.map-$krel" >"$map.tmp" || true
        [[ -s $map.tmp ]] || { echo "make-test-dumps: ERROR: no System.map-$krel in $deb" >&2; rm -f "$map.tmp"; return 1; }
        mv "$map.tmp" "$map"
        rm -f "$deb"
    fi
    echo "$map"
}
