#!/usr/bin/env bash
# Builds libkvm.so (NativeAOT) and installs it with kvm.h and libkvm.pc.
#
#   scripts/install-libkvm.sh [--prefix DIR]     (default prefix: /usr/local)
#
# Installs DIR/lib/libkvm.so.1.0.0 with the links libkvm.so.1 (the soname) and libkvm.so (for -lkvm),
# DIR/include/kvm.h and DIR/lib/pkgconfig/libkvm.pc. Then:  cc prog.c -lkvm
# (for a prefix outside the linker's search path: cc -I DIR/include prog.c -L DIR/lib -Wl,-rpath,DIR/lib -lkvm,
# or `pkg-config --cflags --libs libkvm` with PKG_CONFIG_PATH=DIR/lib/pkgconfig).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/lib.sh"

prefix=/usr/local
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#--prefix=}; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (usage: install-libkvm.sh [--prefix DIR])" ;;
  esac
done

require_dotnet
# NativeAOT links with the system C toolchain; zlib is linked statically by the runtime.
apt_ensure gcc libc6-dev pkg-config

version=1.0.0
out="$root/artifacts/native"
say "building libkvm.so (NativeAOT) into $out"
dotnet publish "$root/src/Kvm.Native/Kvm.Native.csproj" -c Release -r linux-x64 -o "$out" -nologo -v quiet >/dev/null \
  || die "dotnet publish of src/Kvm.Native failed (run it by hand to see why)"
[ -f "$out/Kvm.Native.so" ] || die "the build did not produce $out/Kvm.Native.so"

mkdir -p "$prefix/lib/pkgconfig" "$prefix/include"
prefix=$(cd "$prefix" && pwd)
install -m 0755 "$out/Kvm.Native.so" "$prefix/lib/libkvm.so.$version"
ln -sfn "libkvm.so.$version" "$prefix/lib/libkvm.so.1"
ln -sfn "libkvm.so.1" "$prefix/lib/libkvm.so"
install -m 0644 "$root/src/Kvm.Native/include/kvm.h" "$prefix/include/kvm.h"
sed -e "s|@PREFIX@|$prefix|" -e "s|@VERSION@|$version|" "$root/src/Kvm.Native/libkvm.pc.in" > "$prefix/lib/pkgconfig/libkvm.pc"
chmod 0644 "$prefix/lib/pkgconfig/libkvm.pc"
if [ "$prefix" = /usr/local ] || [ "$prefix" = /usr ]; then
  ldconfig 2>/dev/null || true
fi
say "installed $prefix/lib/libkvm.so.$version, $prefix/include/kvm.h, $prefix/lib/pkgconfig/libkvm.pc"
