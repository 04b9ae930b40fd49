#!/bin/sh
# /init of the dump-lab initramfs: busybox sh runs as PID 1.
# It loads the virtio modules, turns on swap on the first virtio disk, starts the
# known workload and hands over to `kvmlab collect`, which records the ground
# truth, writes it as a tar stream to the second virtio disk, prints
# "KVMTEST-READY" on the serial console and then, forever, prints a
# "KVMTEST-LOADAVG ..." line every ~100 ms (the host's loadavgAtStop and procStatAtStop).
# PID 1 must never exit (that would panic the kernel), so every failure path
# prints "KVMTEST-FAILED ..." (the host stops waiting when it sees it) and sleeps.

/bin/busybox --install -s /bin
export PATH=/bin

fail() {
    echo "KVMTEST-FAILED $*"
    while :; do sleep 3600; done
}

mount -t proc proc /proc || fail "mount /proc"
mount -t sysfs sysfs /sys || fail "mount /sys"
mount -t devtmpfs devtmpfs /dev || fail "mount /dev"
mkdir -p /tmp /run /truth

# Per-variant settings (PRESSURE_ROLES, SETTLE) come from a small cpio archive
# that the host appends to the initrd.
. /etc/kvmlab.conf || fail "no /etc/kvmlab.conf"

# A distinctive nodename, so that readers can check utsname in the dump.
hostname kvmtest-guest

echo "kvmlab: loading modules"
while read -r m; do
    [ -n "$m" ] || continue
    insmod "/lib/modules/kvmlab/$m" || fail "insmod $m"
done < /lib/modules/kvmlab/load.list

# virtio_blk probes asynchronously: wait (up to 30 s) for both disks.
i=0
while [ ! -b /dev/vda ] || [ ! -b /dev/vdb ]; do
    i=$((i + 1))
    [ "$i" -le 300 ] || fail "virtio disks /dev/vda and /dev/vdb did not appear"
    usleep 100000
done

# /dev/vda was formatted by the host (mkswap with a fixed UUID and label kvmswap).
swapon /dev/vda || fail "swapon /dev/vda"

uname -a > /truth/uname-a.txt

echo "kvmlab: starting workload"
kvmlab workload /run/roles || fail "workload"

echo "kvmlab: collecting truth (settle ${SETTLE}s, pressure on '${PRESSURE_ROLES}')"
# Does not return on success: it prints KVMTEST-READY, then KVMTEST-LOADAVG lines forever.
kvmlab collect --roles /run/roles --tar /dev/vdb --dir /truth --settle "$SETTLE" --pressure "$PRESSURE_ROLES" \
    || fail "collect"
fail "collect returned"
