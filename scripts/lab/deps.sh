# shellcheck shell=bash
# Host dependencies of the dump lab; sourced by scripts/make-test-dumps.sh.
# A fresh Debian 12 machine with only the .NET SDK must work, so everything the lab
# runs on the host is installed here, and `apt-get update` runs at most once per run
# (only when something is missing or apt's lists do not know a package yet).

LAB_APT_UPDATED=0

apt_update_once() {
    if [[ $LAB_APT_UPDATED == 0 ]]; then
        echo "make-test-dumps: apt-get update" >&2
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || return 1
        LAB_APT_UPDATED=1
    fi
}

# Host packages: QEMU to boot the guest, makedumpfile for the filtered dumps, cpio to
# pack the initramfs, kmod for depmod, xz/zstd for compressed modules, python3 for the
# QMP driver and the truth/manifest tools, gcc + libc6-dev for the static guest helper,
# util-linux for mkswap and flock.
LAB_HOST_PACKAGES=(qemu-system-x86 makedumpfile cpio kmod xz-utils zstd python3 gcc libc6-dev util-linux)

ensure_host_packages() {
    local missing=() p
    for p in "${LAB_HOST_PACKAGES[@]}"; do
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

# The version apt would download for a package ("" if apt does not know it).
apt_candidate() {
    apt-cache show --no-all-versions "$1" 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}

# Download (never install) a package's .deb into a cache dir; print its path.
fetch_deb() {
    local pkg=$1 dir=$2 ver file
    ver=$(apt_candidate "$pkg")
    if [[ -z $ver ]]; then
        apt_update_once || return 1
        ver=$(apt_candidate "$pkg")
    fi
    [[ -n $ver ]] || { echo "make-test-dumps: ERROR: apt does not know package $pkg" >&2; return 1; }
    # apt-get download names files pkg_version_arch.deb with ':' (epoch) escaped as %3a.
    file=$(compgen -G "$dir/${pkg}_${ver//:/%3a}_*.deb" | head -n1 || true)
    if [[ -z $file ]]; then
        echo "make-test-dumps: downloading $pkg $ver" >&2
        # apt-get download writes into the current dir; as root it warns that the
        # _apt sandbox user cannot write there, which is harmless.
        (cd "$dir" && apt-get download -qq "$pkg=$ver" 2>&1 | grep -v 'unsandboxed' >&2 || true)
        file=$(compgen -G "$dir/${pkg}_${ver//:/%3a}_*.deb" | head -n1 || true)
        [[ -n $file ]] || { echo "make-test-dumps: ERROR: apt-get download $pkg=$ver failed" >&2; return 1; }
    fi
    echo "$file"
}
