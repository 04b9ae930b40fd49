#!/usr/bin/env bash
# Sets everything up, makes (or reuses) a real crash dump of a real Debian kernel, and runs kmem on it:
# the dump inventory, `kmem info`, the kernel banner read through the dump's page tables, the processes and the
# end of the kernel log; then libkvm.so from C (the README example and a small ps).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

require_dotnet
say "making or reusing a real sample dump (first run boots Debian's kernel under QEMU: a few minutes)"
scripts/make-test-dumps.sh --variants default >&2
dir=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["variants"][0])' "$KVM_TEST_DUMPS/index.json")

say "building kmem"
dotnet build src/Kvm.Cli -c Release -warnaserror -v quiet -nologo >/dev/null
kmem=src/Kvm.Cli/bin/Release/net10.0/kmem

echo "== dump inventory: $dir"
python3 - "$dir/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
print(f"kernel {m['kernel']['release']}  KASLR offset {m['kaslrOffset']}  {m['pagingLevels']}-level paging  QEMU {m['qemu']['version']}  makedumpfile {m['makedumpfile']['version']}")
for f in m["files"]:
    lvl = "-" if f.get("dumpLevel") is None else f"-d {f['dumpLevel']}"
    kind = f["format"] + (" (flattened)" if f["flattened"] else "")
    split = f" split {f['splitIndex']+1}" if f.get("splitSet") else ""
    print(f"  {f['name']:<28} {kind:<18} {f['compression']:<7} {lvl:<6} {f['size']/1048576:8.1f} MiB{split}")
PY

echo
echo "== kmem -M $dir/mdf-c-d31.kdump info"
"$kmem" -M "$dir/mdf-c-d31.kdump" info
echo
echo "== kmem -M qemu.elf read linux_banner (no namelist: symbols from the dump itself)"
"$kmem" -M "$dir/qemu.elf" nlist init_uts_ns _stext
echo
echo "== kmem -M qemu-kdump-zlib.flat -N System.map read linux_banner 160"
"$kmem" -M "$dir/qemu-kdump-zlib.flat" -N "$dir/System.map" read linux_banner 160
echo
echo "== kmem -M qemu.elf -N System.map vtop init_task"
"$kmem" -M "$dir/qemu.elf" -N "$dir/System.map" vtop init_task
echo
echo "== kmem -M qemu.elf -S swap.img ps (no namelist)"
# Without a namelist the kernel's BTF is found only once symbols can be read from the image itself (kallsyms);
# until then, say so and show the same listing with System.map.
if ! "$kmem" -M "$dir/qemu.elf" -S "$dir/swap.img" ps; then
    echo "(this build needs a namelist to find the kernel's BTF: again with -N System.map)"
    "$kmem" -M "$dir/qemu.elf" -N "$dir/System.map" -S "$dir/swap.img" ps
fi
echo
echo "== kmem -M mdf-c-d31.kdump dmesg --tail 15 (no namelist: a bare dump suffices)"
"$kmem" -M "$dir/mdf-c-d31.kdump" dmesg --tail 15
echo
echo "== libkvm.so from C: install it, then build examples/kvm_banner.c (the README's example) and tests/native/ps.c with cc -lkvm"
apt_ensure gcc libc6-dev pkg-config
prefix="$PWD/artifacts/libkvm"
scripts/install-libkvm.sh --prefix "$prefix" >&2
mkdir -p artifacts/demo
for prog in examples/kvm_banner.c tests/native/ps.c; do
    cc -std=c11 -Wall -Wextra -Werror -I "$prefix/include" "$prog" -L "$prefix/lib" -Wl,-rpath,"$prefix/lib" -lkvm -o "artifacts/demo/$(basename "$prog" .c)"
done
echo "\$ kvm_banner mdf-c-d31.kdump"
artifacts/demo/kvm_banner "$dir/mdf-c-d31.kdump"
echo
echo "\$ ps -M qemu.elf -S swap.img   (kvm_openfiles + kvm_getprocs + kvm_getargv; last 12 lines)"
artifacts/demo/ps -M "$dir/qemu.elf" -S "$dir/swap.img" | tail -12 | cut -c1-160
