#!/bin/sh
# Real-QEMU smoke test of the vmm_qemu driver: runs build/src/vmm/qemu-driver-smoke in a fresh
# work directory and makes sure no QEMU it started survives, even when it fails.
#   tests/system/qemu-driver-smoke.sh [KERNEL [INITRD]]
# KERNEL (or $SMOKE_KERNEL, else the first /boot/vmlinuz-*) is booted with -kernel; without
# one the VM is diskless and sits in SeaBIOS. With INITRD (or $SMOKE_INITRD) of the tiny-http
# guest (guest/tiny-http) a real guest is also booted, saved, restored, driven through its
# guest agent and balloon, and powered off.
# Exit 77 (skip) without qemu-system-x86_64.
set -u
here=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD:-$here/build}
bin=$build/src/vmm/qemu-driver-smoke
if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
        echo "SKIP: qemu-system-x86_64 not found"
        exit 77
fi
[ -x "$bin" ] || { echo "missing $bin: run ninja -C $build" >&2; exit 1; }
kernel=${1:-${SMOKE_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | head -n 1)}}
initrd=${2:-${SMOKE_INITRD:-}}

work=$(mktemp -d /tmp/vmx-smoke-XXXXXX)
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
cleanup() { leftovers; rm -rf "$work"; }
trap cleanup EXIT INT TERM

"$bin" "$work" ${kernel:+"$kernel"} ${initrd:+"$initrd"}
rc=$?
if ! leftovers; then
        echo "FAIL: QEMU processes were left running" >&2
        rc=1
fi
exit $rc
