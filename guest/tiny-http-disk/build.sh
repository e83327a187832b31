#!/bin/bash
# Builds OUTDIR/tiny-http.raw: the tiny-http guest (guest/tiny-http) as a raw disk image that a
# PC BIOS (QEMU's SeaBIOS) boots, for testing `vmatrix image import` end to end.
#
# Layout (32 MiB by default): an MBR with syslinux's mbr.bin and one active FAT16 partition
# from 1 MiB to the end, holding syslinux (ldlinux.sys, ldlinux.c32), syslinux.cfg, and
# TINY_HTTP_DIR's vmlinuz and initrd.img. SeaBIOS runs the MBR of the first hard disk (with
# `-nodefaults` and no `-boot` option the virtio-blk disk is the only boot device); mbr.bin
# chains to the active partition's syslinux, which loads the kernel and initrd over BIOS disk
# calls and boots them with TINY_HTTP_DIR/cmdline plus:
#   quiet init_on_free=1   what the Oracle adds for the built-in tiny-http image (oracle-nest.c)
#   vmx.disk=none          /dev/vda is this boot disk: the guest must not use it as its raw
#                          data disk (POST /mark and /fill would overwrite the MBR and FAT)
# There is no vmx.name= (the VM's name is unknown when the image is built): the guest calls
# itself "unnamed" in GET /id.
#
# Nothing is mounted and no loop device is used: the partition is made in a file with
# mkfs.vfat, filled with mtools (syslinux's installer uses mtools too), then copied into the
# image behind an MBR written by sfdisk. Root is not needed. Idempotent: does nothing when
# the image is newer than every input.
#
# Usage: build.sh OUTDIR TINY_HTTP_DIR      (TINY_HTTP_DIR: output of guest/tiny-http/build.sh)
# Env:   DISK_MIB (default 32) — the image size
# Host packages (Debian): syslinux, syslinux-common, mtools, dosfstools, fdisk (sfdisk),
#   coreutils.
set -euo pipefail

readonly MBR_BIN=/usr/lib/syslinux/mbr/mbr.bin # syslinux-common
readonly PART_START=2048                       # sectors: the partition starts at 1 MiB
readonly DISK_MIB=${DISK_MIB:-32}
readonly EXTRA_CMDLINE="quiet init_on_free=1 vmx.disk=none"

die() { echo "tiny-http-disk/build.sh: error: $*" >&2; exit 1; }
log() { echo "tiny-http-disk/build.sh: $*" >&2; }

[[ $# -eq 2 ]] || { echo "usage: $0 OUTDIR TINY_HTTP_DIR" >&2; exit 2; }
for tool in syslinux mcopy mdir mkfs.vfat sfdisk dd truncate; do
        command -v "$tool" >/dev/null || die "missing $tool (see the package list at the top of $0)"
done
[[ -f $MBR_BIN ]] || die "missing $MBR_BIN (package syslinux-common)"
[[ $DISK_MIB =~ ^[0-9]+$ && $DISK_MIB -ge 16 && $DISK_MIB -le 2047 ]] || die "DISK_MIB must be a number in 16..2047 (FAT16)"

OUT=$(realpath -m "$1")
GUEST=$(realpath -m "$2")
for f in vmlinuz initrd.img cmdline; do
        [[ -f $GUEST/$f ]] || die "$GUEST/$f missing (build it with guest/tiny-http/build.sh $GUEST)"
done
IMAGE=$OUT/tiny-http.raw
mkdir -p "$OUT"

CMDLINE="$(tr '\n' ' ' <"$GUEST/cmdline" | sed 's/ *$//') $EXTRA_CMDLINE"
INPUTS=("${BASH_SOURCE[0]}" "$GUEST/vmlinuz" "$GUEST/initrd.img" "$GUEST/cmdline" "$MBR_BIN" "$(command -v syslinux)")
INFO="size_mib=$DISK_MIB cmdline=$CMDLINE"

# Up to date: built with the same size and command line, and newer than every input.
if [[ -f $IMAGE && -f $OUT/build-info ]] && grep -qxF "inputs: $INFO" "$OUT/build-info" &&
   [[ -z $(find "${INPUTS[@]}" -newer "$IMAGE" -print -quit) ]]; then
        log "up to date: $IMAGE"
        exit 0
fi

WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export MTOOLS_SKIP_CHECK=1 # mtools: do not insist on a floppy-like geometry

# --- the FAT partition, as a file of its own ----------------------------------------------
PART=$WORK/part.img
PART_SECTORS=$((DISK_MIB * 2048 - PART_START))
# -h: hidden sectors = the partition's start, which syslinux's boot sector adds to its LBAs;
# -i: a fixed volume serial, so equal inputs give an equal file system.
mkfs.vfat -C -F 16 -n TINYHTTP -i 766d7831 -h "$PART_START" "$PART" $((PART_SECTORS / 2)) >/dev/null
cat >"$WORK/syslinux.cfg" <<EOF
# tiny-http guest, BIOS boot (guest/tiny-http-disk/build.sh)
SERIAL 0 115200
PROMPT 0
TIMEOUT 0
DEFAULT tiny-http
LABEL tiny-http
        LINUX /vmlinuz
        INITRD /initrd.img
        APPEND $CMDLINE
EOF
syslinux --install "$PART"
mcopy -i "$PART" "$GUEST/vmlinuz" "$GUEST/initrd.img" "$WORK/syslinux.cfg" ::/ ||
        die "the guest does not fit in a $DISK_MIB MiB image (set DISK_MIB)"

# --- the disk: MBR (boot code + one active partition), then the partition ----------------
truncate -s "${DISK_MIB}M" "$WORK/disk.raw"
sfdisk --quiet --no-reread --no-tell-kernel "$WORK/disk.raw" <<EOF
label: dos
label-id: 0x766d7831
start=$PART_START, size=$PART_SECTORS, type=6, bootable
EOF
# mbr.bin is the 440 bytes of boot code before the disk signature and the partition table.
dd if="$MBR_BIN" of="$WORK/disk.raw" bs=440 count=1 conv=notrunc status=none
dd if="$PART" of="$WORK/disk.raw" bs=1M seek=$((PART_START / 2048)) conv=notrunc,sparse status=none

{
        echo "inputs: $INFO"
        echo "kernel: $(basename "$GUEST/vmlinuz") $(stat -c %s "$GUEST/vmlinuz") bytes"
        echo "initrd: $(basename "$GUEST/initrd.img") $(stat -c %s "$GUEST/initrd.img") bytes"
        echo "syslinux: $(syslinux --version 2>&1 | head -n1)"
        echo "files: $(mdir -a -b -i "$PART" ::/ | tr '\n' ' ')"
} >"$WORK/build-info"
mv "$WORK/build-info" "$OUT/build-info"
mv "$WORK/disk.raw" "$IMAGE"
log "built $IMAGE ($DISK_MIB MiB)"
