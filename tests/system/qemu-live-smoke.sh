#!/bin/sh
# Real-QEMU check of live migration in the vmm_qemu driver: runs build/src/vmm/qemu-live-smoke
# in a fresh work directory with the tiny-http guest and makes sure no QEMU it started
# survives, even when it fails (smoke-lib.sh, shared with qemu-driver-smoke.sh).
#   tests/system/qemu-live-smoke.sh
# The guest comes from $BUILD/guest/tiny-http (make guest). Exit 77 (skip) without
# qemu-system-x86_64, qemu-img or the guest.
set -u
# shellcheck source=smoke-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/smoke-lib.sh"
smoke_need qemu-system-x86_64 qemu-img
guest=$build/guest/tiny-http
if [ ! -f "$guest/vmlinuz" ] || [ ! -f "$guest/initrd.img" ] || [ ! -f "$guest/cmdline" ]; then
        echo "SKIP: no tiny-http guest in $guest (build it first)"
        exit 77
fi
smoke_bin qemu-live-smoke

# the guests' memory files are /dev/shm/vmx-live-smoke-PID-* (PID: the test program's)
# shellcheck disable=SC2317 # called by smoke_cleanup
smoke_cleanup_extra() { [ -z "$smoke_pid" ] || rm -f /dev/shm/vmx-live-smoke-"$smoke_pid"-*; }
smoke_workdir vmx-live
smoke_run "$work" "$guest/vmlinuz" "$guest/initrd.img" "$(cat "$guest/cmdline")"
