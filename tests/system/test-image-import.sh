#!/usr/bin/env bash
# Importing a user's BIOS-bootable disk image, end to end with real QEMU VMs: the tiny-http
# guest as a raw disk (guest/tiny-http-disk) is imported as raw and, converted by qemu-img, as
# qcow2; bad input is refused without leaving an image behind; a VM made from each image
# boots with the BIOS from its disk (no -kernel) to HTTP, is hibernated, activated (the same
# boot continues), deactivated and deleted. The qcow2 VM is also stopped and cold-booted from
# its disk saved in the Nest (a new boot).
#
# Env: VMATRIX, GUEST_DIR (see lib.sh); DISK_IMAGE, the raw image built by
# guest/tiny-http-disk/build.sh (built here from GUEST_DIR into the test directory if unset).
# The image's guest has no vmx.name (it is built once for any VM): it calls itself "unnamed",
# and with vmx.disk=none it keeps off its boot disk, so POST /mark answers 503.
source "$(dirname "$0")/lib.sh"

BOOT_TIMEOUT=120 # a cold boot under TCG on a busy host: firmware, syslinux, kernel, /init

if [ -z "${DISK_IMAGE:-}" ]; then
        "$(dirname "$0")/../../guest/tiny-http-disk/build.sh" "$TEST_DIR/disk" "$GUEST_DIR"
        DISK_IMAGE=$TEST_DIR/disk/tiny-http.raw
fi
[ -f "$DISK_IMAGE" ] || { log "no disk image at $DISK_IMAGE"; exit 1; }
disk_bytes=$(stat -c %s "$DISK_IMAGE")

cluster_up --production 1 --chambers 1
image_names() { vmx image list --json | jq -r '[.[].name] | sort | join(" ")'; }
image_meta() { vmx image list --json | jq -r --arg n "$1" ".[] | select(.name == \$n) | .meta.$2"; }

# ---- import the raw image, and the same disk as qcow2
imported=$(vmx image import "$DISK_IMAGE" --name tinydisk --format raw --json)
check_eq "import answers the image object" "$(jq -c '[.name, .kind, (.created_ms > 0)]' <<<"$imported")" '["tinydisk","disk",true]'
check_eq "raw image is a disk image" "$(vmx image list --json | jq -r '.[] | select(.name == "tinydisk") | .kind')" disk
check_eq "raw image's format" "$(image_meta tinydisk format)" raw
check_eq "raw image's virtual size" "$(image_meta tinydisk virtual_size)" "$disk_bytes"

qemu-img convert -f raw -O qcow2 "$DISK_IMAGE" "$TEST_DIR/tinydisk.qcow2"
vmx image import "$TEST_DIR/tinydisk.qcow2" --name tinydisk-q --format qcow2 >/dev/null
check_eq "qcow2 image's format" "$(image_meta tinydisk-q format)" qcow2
check_eq "qcow2 image's virtual size" "$(image_meta tinydisk-q virtual_size)" "$disk_bytes"
cp "$TEST_DIR/tinydisk.qcow2" "$TEST_DIR/Auto_Disk.qcow2"
vmx image import "$TEST_DIR/Auto_Disk.qcow2" >/dev/null
check_eq "without --name: the name comes from the file's" "$(image_names)" "auto-disk tinydisk tinydisk-q"
check_eq "without --format: a qcow2 file is recognised" "$(image_meta auto-disk format)" qcow2

# ---- bad input is refused and leaves no image behind
images_before=$(image_names)
head -c 1048576 /dev/urandom >"$TEST_DIR/junk.bin"
check_refused "a non-image file as qcow2" "not a qcow2 disk image" image import "$TEST_DIR/junk.bin" --name junk --format qcow2
printf 'hello\n' >"$TEST_DIR/hello.txt"
check_refused "a text file as qcow2" "not a qcow2 disk image" image import "$TEST_DIR/hello.txt" --name hello --format qcow2
check_refused "an existing name" "exists" image import "$DISK_IMAGE" --name tinydisk --format raw
check_refused "an existing name, other format" "exists" image import "$TEST_DIR/tinydisk.qcow2" --name tinydisk --format qcow2
check_refused "an invalid name" "name" image import "$DISK_IMAGE" --name Bad_Name --format raw
check_refused "an unknown format" "format" image import "$DISK_IMAGE" --name vmdk1 --format vmdk
qemu-img create -q -f qcow2 -F qcow2 -b "$TEST_DIR/tinydisk.qcow2" "$TEST_DIR/overlay.qcow2"
check_refused "a qcow2 with a backing file" "backing file" image import "$TEST_DIR/overlay.qcow2" --name overlay --format qcow2
qemu-img create -q -f qcow2 -o data_file="$TEST_DIR/df.raw" "$TEST_DIR/df.qcow2" 1M
check_refused "a qcow2 with an external data file" "data file" image import "$TEST_DIR/df.qcow2" --name df --format qcow2
check_refused "a missing file" "cannot read" image import "$TEST_DIR/nope.raw" --name nope --format raw
# the Oracle's own checks, without the CLI's
oracle=$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")
put_code() { curl -s -o /dev/null -w '%{http_code}' -X PUT --data-binary @"$1" "$oracle/v1/images/$2"; }
check_eq "PUT with an invalid name is a 400" "$(put_code "$TEST_DIR/hello.txt" 'Bad_Name?format=raw')" 400
check_eq "PUT with an unknown format is a 400" "$(put_code "$TEST_DIR/hello.txt" 'fmt1?format=vmdk')" 400
check_eq "PUT of a non-image as qcow2 is a 400" "$(put_code "$TEST_DIR/hello.txt" 'junk2?format=qcow2')" 400
check_eq "PUT over an existing image is a 409" "$(put_code "$TEST_DIR/hello.txt" 'tinydisk?format=raw')" 409
check_eq "refusals added no image" "$(image_names)" "$images_before"
check_eq "the existing image kept its format" "$(image_meta tinydisk format)" raw

# ---- a VM from each image: BIOS boot to HTTP, hibernate, activate, deactivate, delete
health_ok() { [ "$(guest_get "$1" /health 2>/dev/null)" = ok ]; }

# boot_to_http VM: boots VM in the chamber and waits for /health; sets ADDR, ID (its /id).
boot_to_http() {
        local vm=$1 t0=$SECONDS
        vmx vm boot "$vm" >/dev/null
        check_eq "$vm: booted VM is loading" "$(vm_field "$vm" state)" loading
        ADDR=$(vm_field "$vm" address)
        if wait_until "$BOOT_TIMEOUT" health_ok "$ADDR"; then
                pass "$vm: guest answers /health at $ADDR after $((SECONDS - t0)) s"
        else
                fail "$vm: guest answers /health at $ADDR within $BOOT_TIMEOUT s"
                vmx vm console "$vm" 2>/dev/null | tail -n 20 >&2 || true
        fi
        ID=$(guest_get "$ADDR" /id || echo '{}')
}

# qemu_argv VM: the QEMU command line of the VM's process, one word a line.
qemu_argv() { tr '\0' '\n' <"/proc/$(vm_field "$1" pid)/cmdline" 2>/dev/null; }

run_vm() { # run_vm VM IMAGE [cold]
        local vm=$1 image=$2 boot_id hits
        vmx vm create "$vm" --image "$image" --memory 128 >/dev/null
        check_eq "$vm: a new VM is stored" "$(vm_field "$vm" state)" stored
        boot_to_http "$vm"
        boot_id=$(jq -r '.boot_id // empty' <<<"$ID")
        check "$vm: /id has a boot_id" test -n "$boot_id"
        check_eq "$vm: the image's guest has no name" "$(jq -r .vm <<<"$ID")" unnamed
        check_eq "$vm: no disk mark" "$(jq -r .disk_mark <<<"$ID")" ""
        local argv
        argv=$(qemu_argv "$vm")
        check "$vm: QEMU boots the disk (no -kernel)" bash -c '[ -n "$1" ] && ! grep -qx -- -kernel <<<"$1"' _ "$argv"
        check "$vm: QEMU's disk is the VM's qcow2 overlay" grep -q 'driver=qcow2,node-name=disk0' <<<"$argv"
        check "$vm: the console shows syslinux" bash -c '"$1" vm console "$2" | grep -q SYSLINUX' _ "$VMATRIX" "$vm"
        code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "http://$ADDR/mark?value=x")
        check_eq "$vm: the guest leaves its boot disk alone (POST /mark)" "$code" 503
        hits=$(guest_get "$ADDR" /id | jq .hits)

        vmx vm hibernate "$vm" >/dev/null
        check_eq "$vm: hibernated VM is stored" "$(vm_field "$vm" state)" stored
        check_eq "$vm: hibernated VM is prebooted" "$(vm_field "$vm" prebooted)" true

        vmx vm activate "$vm" >/dev/null
        check_eq "$vm: activated VM is active" "$(vm_field "$vm" state)" active
        ADDR=$(vm_field "$vm" address)
        ID=$(guest_get "$ADDR" /id || echo '{}')
        check_eq "$vm: activation resumed the same boot" "$(jq -r .boot_id <<<"$ID")" "$boot_id"
        check "$vm: hits continue from before ($hits)" test "$(jq '.hits // 0' <<<"$ID")" -gt "$hits"
        check_eq "$vm: /health after activation" "$(guest_get "$ADDR" /health || true)" ok

        if [ "${3:-}" = cold ]; then
                # stop, then a cold boot from the VM's own disk, now in the Nest (a new overlay
                # rebased onto the node's copy of the image)
                vmx vm stop "$vm" >/dev/null
                check_eq "$vm: stopped VM is not prebooted" "$(vm_field "$vm" prebooted)" false
                # its disk out as one standalone qcow2, and back in as a new image that boots
                vmx vm export "$vm" "$TEST_DIR/$vm-export.qcow2" >/dev/null
                check_eq "$vm: export is standalone" \
                        "$(qemu-img info --output=json "$TEST_DIR/$vm-export.qcow2" | jq -r '."backing-filename" // "none"')" none
                vmx image import "$TEST_DIR/$vm-export.qcow2" --name "$vm-again" --format qcow2 >/dev/null
                vmx vm create "$vm-x" --image "$vm-again" >/dev/null
                boot_to_http "$vm-x"
                check "$vm: a VM from its exported disk boots and serves" test -n "$(jq -r '.boot_id // empty' <<<"$ID")"
                vmx vm delete "$vm-x" --force >/dev/null
                boot_to_http "$vm"
                local new_boot_id
                new_boot_id=$(jq -r '.boot_id // empty' <<<"$ID")
                check "$vm: a cold boot from the saved disk is a new boot" \
                        test -n "$new_boot_id" -a "$new_boot_id" != "$boot_id"
                vmx vm activate "$vm" >/dev/null
                check_eq "$vm: activated from loading" "$(vm_field "$vm" state)" active
                ADDR=$(vm_field "$vm" address)
                check_eq "$vm: the same boot after activation" "$(guest_get "$ADDR" /id | jq -r .boot_id)" "$new_boot_id"
        fi

        vmx vm deactivate "$vm" >/dev/null
        check_eq "$vm: deactivated VM is stored" "$(vm_field "$vm" state)" stored
        check_eq "$vm: deactivated VM is prebooted" "$(vm_field "$vm" prebooted)" true
        vmx vm delete "$vm" >/dev/null
        check_refused "$vm: a deleted VM is gone" "no vm" vm show "$vm"
}

run_vm d-raw tinydisk
run_vm d-qcow tinydisk-q cold

# ---- nothing survives cluster down
vmx cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no QEMU left from this cluster" no_qemu_left
check "no namespace or bridge of this cluster left" no_netns_left
finish
