#!/bin/sh
# Real-QEMU check of live migration in the vmm_qemu driver: runs build/src/vmm/qemu-live-smoke
# in a fresh work directory with the tiny-http guest and makes sure no QEMU it started
# survives, even when it fails.
#   tests/system/qemu-live-smoke.sh
# The guest comes from $BUILD/guest/tiny-http (make guest). Exit 77 (skip) without
# qemu-system-x86_64, qemu-img or the guest.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$here/build}
bin=$build/src/vmm/qemu-live-smoke
guest=$build/guest/tiny-http
for tool in qemu-system-x86_64 qemu-img; do
        if ! command -v $tool >/dev/null 2>&1; then
                echo "SKIP: $tool not found"
                exit 77
        fi
done
if [ ! -f "$guest/vmlinuz" ] || [ ! -f "$guest/initrd.img" ] || [ ! -f "$guest/cmdline" ]; then
        echo "SKIP: no tiny-http guest in $guest (build it first)"
        exit 77
fi
[ -x "$bin" ] || { echo "missing $bin: run ninja -C $build" >&2; exit 1; }

work=$(mktemp -d /tmp/vmx-live-XXXXXX)
# kill, by pid, any QEMU left in our work directory (pidfile and cmdline must both match)
leftovers() {
        found=0
        for pidfile in "$work"/*/qemu.pid; do
                [ -f "$pidfile" ] || continue
                pid=$(cat "$pidfile" 2>/dev/null) || continue
                if [ -n "$pid" ] && { tr '\0' ' ' < "/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$work/"; then
                        echo "leftover QEMU pid $pid ($pidfile): killing it" >&2
                        kill -9 "$pid" 2>/dev/null
                        found=1
                fi
        done
        return $found
}
pid=
# the guests' memory files are /dev/shm/vmx-live-smoke-PID-* (PID: the test program's)
cleanup() { leftovers; rm -rf "$work"; [ -z "$pid" ] || rm -f /dev/shm/vmx-live-smoke-"$pid"-*; }
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin" "$work" "$guest/vmlinuz" "$guest/initrd.img" "$(cat "$guest/cmdline")" &
pid=$!
wait $pid
rc=$?
if ! leftovers; then
        echo "FAIL: QEMU processes were left running" >&2
        rc=1
fi
exit $rc
