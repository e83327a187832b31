#!/bin/bash
# Builds the tiny-http guest image (DESIGN.md §6): OUTDIR/vmlinuz and OUTDIR/initrd.img, plus
# OUTDIR/build-info (what went in). The kernel is Debian's cloud kernel, fetched with
# `apt-get download` (the only network use) and cached with the other .debs in OUTDIR/cache/;
# the initramfs is busybox-static, the few kernel modules the guest needs, and the guest
# scripts that sit next to this file (init, inittab, http-serve, http-handler, agent,
# console-shell, power-button). Idempotent: does nothing when the outputs are newer than every
# input.
#
# Usage: build.sh OUTDIR          (root is not required: the archive records owner 0:0 itself)
# Host packages (Debian): apt, dpkg, cpio, gzip, kmod, xz-utils, busybox-static.
#   (busybox-static is optional: without it the .deb is downloaded and unpacked instead.)
# Rebuilding against a newer kernel: `apt-get update`, then run this again; the Debian cloud
# kernel metapackage is resolved afresh on every run (locally, via apt-cache).
set -euo pipefail

readonly META_PKG=linux-image-cloud-amd64
# Recommended kernel command line, written to OUTDIR/cmdline; the VMM appends vmx.name=NAME.
# Each parameter only trims boot work that costs seconds under TCG (measured, see README.md):
#   nokaslr            no relocation of the decompressed kernel
#   noreplace-smp      keep LOCK prefixes on 1 vCPU instead of patching thousands of them
#   cryptomgr.notests  skip the crypto self-tests run at boot
readonly CMDLINE="console=tty0 console=ttyS0 nokaslr noreplace-smp cryptomgr.notests"
# Modules loaded in the guest; their dependencies are added and ordered automatically.
# virtio_console: the agent's virtio-serial port; virtio_balloon: the balloon and free page
# reporting.
readonly MODULES=(virtio_pci virtio_blk virtio_net virtio_console virtio_balloon button evdev)
# Guest files: source name in this directory -> path inside the initramfs.
readonly -A GUEST_FILES=(
        [init]=init
        [inittab]=etc/inittab
        [http-serve]=usr/libexec/vmx/http-serve
        [http-handler]=usr/libexec/vmx/http-handler
        [agent]=usr/libexec/vmx/agent
        [console-shell]=usr/libexec/vmx/console-shell
        [power-button]=etc/acpi/PWRF/00000080
)

die() { echo "build.sh: error: $*" >&2; exit 1; }
log() { echo "build.sh: $*" >&2; }

[[ $# -eq 1 ]] || { echo "usage: $0 OUTDIR" >&2; exit 2; }
for tool in apt-get apt-cache dpkg-deb dpkg-query cpio gzip depmod modprobe xz; do
        command -v "$tool" >/dev/null || die "missing $tool (see the package list at the top of $0)"
done

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
OUT=$(realpath -m "$1")
CACHE=$OUT/cache
mkdir -p "$CACHE"

# cached_deb PKG: prints the path of PKG's .deb in the cache, downloading the candidate version
# when it is not there yet. Without apt lists (offline, no `apt-get update`), falls back to
# the newest cached .deb of PKG.
cached_deb() {
        local pkg=$1 ver deb
        ver=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null | sed -n 's/^Version: //p' | head -n1) || true
        if [[ -n $ver ]]; then
                # apt-get download writes the epoch colon as %3a.
                deb=$(compgen -G "$CACHE/${pkg}_${ver//:/%3a}_*.deb" | head -n1 || true)
                if [[ -z $deb ]]; then
                        log "downloading $pkg $ver"
                        (cd "$CACHE" && apt-get download -q -o APT::Sandbox::User=root "$pkg=$ver" >&2) \
                                || die "apt-get download $pkg=$ver failed"
                        deb=$(compgen -G "$CACHE/${pkg}_${ver//:/%3a}_*.deb" | head -n1 || true)
                fi
        else
                deb=$(compgen -G "$CACHE/${pkg}_*.deb" | sort -V | tail -n1 || true)
        fi
        [[ -n $deb && -f $deb ]] || die "no .deb for $pkg (run apt-get update?)"
        echo "$deb"
}

# Resolve the metapackage to the concrete kernel package, e.g. linux-image-6.1.0-56-cloud-amd64.
KPKG=$(apt-cache depends "$META_PKG" 2>/dev/null |
        sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-cloud-amd64\)$/\1/p' | head -n1) || true
if [[ -z $KPKG ]]; then
        KPKG=$(compgen -G "$CACHE/linux-image-[0-9]*-cloud-amd64_*.deb" | sort -V | tail -n1 || true)
        [[ -n $KPKG ]] || die "cannot resolve $META_PKG (run apt-get update)"
        KPKG=$(basename "${KPKG%%_*}")
        log "apt-cache cannot resolve $META_PKG; using cached $KPKG"
fi
KDEB=$(cached_deb "$KPKG")

# busybox: the host's static binary when busybox-static is installed, else from its .deb.
if [[ $(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null) == "install ok installed" ]]; then
        BUSYBOX_SRC=/bin/busybox
else
        BUSYBOX_SRC=$(cached_deb busybox-static)
fi

INPUTS=("${BASH_SOURCE[0]}" "$KDEB" "$BUSYBOX_SRC")
for f in "${!GUEST_FILES[@]}"; do INPUTS+=("$HERE/$f"); done
INFO="kernel_deb=$(basename "$KDEB") busybox=$BUSYBOX_SRC cmdline=$CMDLINE"

# Up to date: both outputs exist, were built from the same kernel/busybox, and are newer than
# every input.
if [[ -f $OUT/vmlinuz && -f $OUT/initrd.img && -f $OUT/build-info && -f $OUT/cmdline ]] &&
   grep -qxF "inputs: $INFO" "$OUT/build-info" &&
   [[ -z $(find "${INPUTS[@]}" -newer "$OUT/initrd.img" -print -quit) ]] &&
   [[ -z $(find "${INPUTS[@]}" -newer "$OUT/vmlinuz" -print -quit) ]]; then
        log "up to date: $OUT"
        exit 0
fi

WORK=$(mktemp -d "$OUT/.work.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

# --- kernel ------------------------------------------------------------------------------
log "unpacking $(basename "$KDEB")"
dpkg-deb -x "$KDEB" "$WORK/kernel"
KDIR=$(compgen -G "$WORK/kernel/lib/modules/*" | head -n1 || true)
[[ -n $KDIR ]] || die "$KDEB has no lib/modules"
KVER=$(basename "$KDIR")
[[ -f $WORK/kernel/boot/vmlinuz-$KVER ]] || die "$KDEB has no boot/vmlinuz-$KVER"

# Load order with dependencies first (virtio_ring before virtio before virtio_pci ...), from
# kmod's own resolver run on the unpacked tree.
depmod -b "$WORK/kernel" "$KVER"
mapfile -t MODPATHS < <(modprobe -d "$WORK/kernel" -S "$KVER" --show-depends -a "${MODULES[@]}" |
        awk '$1 == "insmod" && !seen[$2]++ { print $2 }')
[[ ${#MODPATHS[@]} -ge ${#MODULES[@]} ]] || die "module resolution failed for: ${MODULES[*]}"

# --- initramfs tree ----------------------------------------------------------------------
ROOT=$WORK/root
mkdir -p "$ROOT"/{bin,sbin,usr/bin,usr/sbin,usr/libexec/vmx,etc/acpi/PWRF,proc,sys,dev,run,tmp,root}
chmod 1777 "$ROOT/tmp"
chmod 0700 "$ROOT/root"

if [[ $BUSYBOX_SRC == *.deb ]]; then
        dpkg-deb -x "$BUSYBOX_SRC" "$WORK/busybox"
        install -m 0755 "$WORK/busybox/bin/busybox" "$ROOT/bin/busybox"
else
        install -m 0755 "$BUSYBOX_SRC" "$ROOT/bin/busybox"
fi
# One symlink per applet, at the path busybox itself suggests (bin/sh, sbin/poweroff, ...).
"$ROOT/bin/busybox" --list-full | while read -r applet; do
        [[ -e $ROOT/$applet ]] || ln -s /bin/busybox "$ROOT/$applet"
done

# Modules, uncompressed (decompressing here keeps the guest independent of busybox's
# decompression support; the whole cpio is gzipped anyway), plus the load order for /init and
# a modules.dep so `modprobe` also works from the console.
MODDIR=$ROOT/lib/modules/$KVER
for src in "${MODPATHS[@]}"; do
        rel=${src#"$KDIR"/}
        dst=$MODDIR/${rel%.xz}
        mkdir -p "$(dirname "$dst")"
        case $src in
        *.ko)    cp "$src" "$dst" ;;
        *.ko.xz) xz -dc "$src" >"$dst" ;;
        *)       die "unsupported module compression: $src" ;;
        esac
        echo "${rel%.xz}" >>"$MODDIR/vmx-load-order"
done
for f in modules.builtin modules.builtin.modinfo; do
        [[ ! -f $KDIR/$f ]] || cp "$KDIR/$f" "$MODDIR/"
done
cp "$MODDIR/vmx-load-order" "$MODDIR/modules.order"
depmod -b "$ROOT" "$KVER"

for f in "${!GUEST_FILES[@]}"; do
        install -D -m 0755 "$HERE/$f" "$ROOT/${GUEST_FILES[$f]}"
done
chmod 0644 "$ROOT/etc/inittab"

# --- outputs (written aside, then renamed, so a failed build never leaves half a file) ----
# Fixed timestamps, sorted names, no inode numbers: the same inputs give the same bytes.
find "$ROOT" -exec touch -h -d @0 {} +
(cd "$ROOT" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --reproducible --quiet) | gzip -9 -n >"$WORK/initrd.img"
cp "$WORK/kernel/boot/vmlinuz-$KVER" "$WORK/vmlinuz"
BUSYBOX_VERSION=$("$ROOT/bin/busybox" 2>&1 | head -n1) || true
{
        echo "inputs: $INFO"
        echo "kernel_version: $KVER"
        echo "kernel_package: $KPKG $(dpkg-deb -f "$KDEB" Version)"
        echo "busybox: $BUSYBOX_VERSION"
        echo "modules: $(sed 's,.*/,,; s,\.ko$,,' "$MODDIR/vmx-load-order" | tr '\n' ' ')"
} >"$WORK/build-info"
echo "$CMDLINE" >"$WORK/cmdline"
mv "$WORK/cmdline" "$OUT/cmdline"
mv "$WORK/vmlinuz" "$OUT/vmlinuz"
mv "$WORK/initrd.img" "$OUT/initrd.img"
mv "$WORK/build-info" "$OUT/build-info"
log "built $OUT/vmlinuz ($KVER) and $OUT/initrd.img ($(stat -c %s "$OUT/initrd.img") bytes)"
