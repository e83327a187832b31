#!/bin/sh
# Real-QEMU smoke test of the vmm_qemu driver: runs build/src/vmm/qemu-driver-smoke in a fresh
# work directory and makes sure no QEMU it started survives, even when it fails (smoke-lib.sh,
# shared with qemu-live-smoke.sh).
#   tests/system/qemu-driver-smoke.sh [KERNEL [INITRD]]
# KERNEL (or $SMOKE_KERNEL, else the first /boot/vmlinuz-*) is booted with -kernel; without
# one the VM is diskless and sits in SeaBIOS. With INITRD (or $SMOKE_INITRD) of the tiny-http
# guest (guest/tiny-http) a real guest is also booted, saved, restored, driven through its
# guest agent and balloon, and powered off.
# Exit 77 (skip) without qemu-system-x86_64.
set -u
# shellcheck source=smoke-lib.sh source-path=SCRIPTDIR
. "$(dirname "$0")/smoke-lib.sh"
smoke_need qemu-system-x86_64
smoke_bin qemu-driver-smoke
kernel=${1:-${SMOKE_KERNEL:-$(ls /boot/vmlinuz-* 2>/dev/null | head -n 1)}}
initrd=${2:-${SMOKE_INITRD:-}}

smoke_workdir vmx-smoke
smoke_run "$work" ${kernel:+"$kernel"} ${initrd:+"$initrd"}
