#!/usr/bin/env bash
# The core lifecycle with real QEMU VMs on a local cluster:
# create -> boot -> POST /mark -> hibernate -> activate -> deactivate -> activate,
# checking that activation resumes the same boot (boot_id, hits, disk mark), that versions only
# grow, that bad input is refused without changing anything, and that `cluster down` leaves
# no QEMU process or namespace behind.
source "$(dirname "$0")/lib.sh"

cluster_up --production 2 --chambers 1
check_eq "three RMs are up" "$(vmx rm list --json | jq '[.[] | select(.state == "up")] | length')" 3

vmx image build tiny-http >/dev/null
check "tiny-http image is listed" bash -c "\"$VMATRIX\" image list --json | jq -e '.[] | select(.name == \"tiny-http\")' >/dev/null"

vmx vm create web1 --image tiny-http --memory 128 >/dev/null
check_eq "a new VM is stored" "$(vm_field web1 state)" stored
v_created=$(vm_field web1 version)

# ---- bad input changes nothing
check_refused "duplicate name" "exists" vm create web1 --image tiny-http
check_refused "unknown image" "no image" vm create web2 --image nope
check_refused "invalid memory" "memory" vm create web2 --image tiny-http --memory 0
check_refused "invalid name" "name" vm create Web_2 --image tiny-http
check_refused "unknown vm" "no vm" vm activate ghost
check_refused "deactivate a stored vm" "cannot deactivate" vm deactivate web1
check_refused "unknown RM" "no RM|rm" vm boot web1 --rm nowhere
check_refused "boot on a production RM" "chamber" vm boot web1 --rm prod1
check_eq "refusals left the version alone" "$(vm_field web1 version)" "$v_created"
check_eq "refusals left the state alone" "$(vm_field web1 state)" stored
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{not json' "$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")/v1/vms")
check_eq "malformed JSON is a 400" "$code" 400
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{"name":"x1","image":"tiny-http","memory_mib":"lots"}' "$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")/v1/vms")
check_eq "a string for memory is a 400" "$code" 400

# ---- boot in the Loading Chambers
vmx vm boot web1 >/dev/null
check_eq "booted VM is loading" "$(vm_field web1 state)" loading
check_eq "booted VM is on the chamber" "$(vm_field web1 rm)" chamber1
addr=$(vm_field web1 address)
wait_until 60 guest_get "$addr" /health >/dev/null || fail "guest answers /health at $addr"
id1=$(guest_get "$addr" /id)
boot_id=$(jq -r .boot_id <<<"$id1")
check_eq "guest knows its name" "$(jq -r .vm <<<"$id1")" web1
guest_post "$addr" "/mark?value=m-$$" >/dev/null
hits_before=$(guest_get "$addr" /id | jq .hits)
v_loading=$(vm_field web1 version)
check "version grew on boot" test "$v_loading" -gt "$v_created"
pid=$(vm_field web1 pid)
check "a QEMU process runs the VM" kill -0 "$pid"

check_refused "a second boot while loading" "cannot boot" vm boot web1

# ---- the serial console: a shell on ttyS0, through the Oracle and the node
out=$( (sleep 0.5; echo 'echo answer=$((6*7))'; sleep 1) | timeout 30 "$VMATRIX" vm console web1 --attach || true)
check "the console runs a command in the guest" grep -q 'answer=42' <<<"$out"
check "the console log shows it too" bash -c "\"$VMATRIX\" vm console web1 --log | grep -q answer=42"

# ---- two consoles at once: QEMU's socket serves one client, the node shares it among them
# (node-console.c), so each sees what the other typed
( (sleep 1; echo 'echo first=$((6*7))'; sleep 3) | timeout 30 "$VMATRIX" vm console web1 --attach \
        >"$TEST_DIR/console-a" 2>&1 || true ) &
pa=$!
( (sleep 2; echo 'echo second=$((7*8))'; sleep 2) | timeout 30 "$VMATRIX" vm console web1 --attach \
        >"$TEST_DIR/console-b" 2>&1 || true ) &
pb=$!
wait "$pa" "$pb"
for c in a b; do
        check "two consoles: console $c sees both commands' output" \
                bash -c "tr -d '\r' <\"$TEST_DIR/console-$c\" | grep -q '^first=42' &&
                         tr -d '\r' <\"$TEST_DIR/console-$c\" | grep -q '^second=56'"
done

# ---- hibernate into the Nest
vmx vm hibernate web1 >/dev/null
check_eq "hibernated VM is stored" "$(vm_field web1 state)" stored
check_eq "hibernated VM is prebooted" "$(vm_field web1 prebooted)" true
check_eq "hibernated VM has no RM" "$(vm_field web1 rm)" null
check "its QEMU is gone" bash -c "! kill -0 $pid 2>/dev/null"
v_stored=$(vm_field web1 version)
check "version grew on hibernate" test "$v_stored" -gt "$v_loading"

# ---- activate on a production RM: the same boot continues
vmx vm activate web1 >/dev/null
check_eq "activated VM is active" "$(vm_field web1 state)" active
rm_active=$(vm_field web1 rm)
check "activated VM is on a production RM" grep -q '^prod' <<<"$rm_active"
addr=$(vm_field web1 address)
id2=$(guest_get "$addr" /id || echo '{}')
check_eq "activation resumed the same boot" "$(jq -r .boot_id <<<"$id2")" "$boot_id"
check "hits continue from before" test "$(jq .hits <<<"$id2")" -gt "$hits_before"
check_eq "disk mark kept" "$(jq -r .disk_mark <<<"$id2")" "m-$$"
v_active=$(vm_field web1 version)
check "version grew on activate" test "$v_active" -gt "$v_stored"

check_refused "activating an active VM" "cannot activate" vm activate web1
check_refused "deleting an active VM without --force" "force" vm delete web1

# ---- one VM per production RM
vmx vm create web2 --image tiny-http >/dev/null
check_refused "a stored VM has no console" "no console" vm console web2 --attach
check_refused "production RM already taken" "already runs" vm activate web2 --rm "$rm_active"

# ---- deactivate and activate again
vmx vm deactivate web1 >/dev/null
check_eq "deactivated VM is stored" "$(vm_field web1 state)" stored
check_eq "deactivated VM is prebooted" "$(vm_field web1 prebooted)" true
vmx vm activate web1 >/dev/null
addr=$(vm_field web1 address)
check_eq "second activation still the same boot" "$(guest_get "$addr" /id | jq -r .boot_id)" "$boot_id"

# ---- suspend / resume in place, stop, delete
vmx vm suspend web1 >/dev/null
check_eq "suspended" "$(vm_field web1 state)" suspended
vmx vm resume web1 >/dev/null
check_eq "resumed to active" "$(vm_field web1 state)" active
addr=$(vm_field web1 address)
check_eq "resume keeps the boot" "$(guest_get "$addr" /id | jq -r .boot_id)" "$boot_id"
vmx vm stop web1 >/dev/null
check_eq "stopped VM is stored" "$(vm_field web1 state)" stored
check_eq "stopped VM is not prebooted" "$(vm_field web1 prebooted)" false
vmx vm export web1 "$TEST_DIR/web1.qcow2" >/dev/null
check_eq "the exported disk is a standalone qcow2" \
        "$(qemu-img info --output=json "$TEST_DIR/web1.qcow2" | jq -r '.format + " " + (."backing-filename" // "none")')" "qcow2 none"
qemu-img convert -f qcow2 -O raw "$TEST_DIR/web1.qcow2" "$TEST_DIR/web1.raw"
check "the exported disk holds the guest's mark" grep -q "vmx-mark:m-$$" <(head -c 512 "$TEST_DIR/web1.raw")
rm -f "$TEST_DIR/web1.raw"
check_refused "exporting a VM that never reached the Nest" "no disk" vm export web2 "$TEST_DIR/web2.qcow2"
vmx vm boot web1 >/dev/null
addr=$(vm_field web1 address)
wait_until 60 guest_get "$addr" /health >/dev/null || true
id3=$(guest_get "$addr" /id || echo '{}')
check "a cold boot after stop is a new boot" test "$(jq -r .boot_id <<<"$id3")" != "$boot_id"
check_eq "the disk mark survived stop and boot" "$(jq -r .disk_mark <<<"$id3")" "m-$$"
vmx vm delete web1 --force >/dev/null
check_refused "a deleted VM is gone" "no vm" vm show web1

# ---- events recorded
check "events name the activation" bash -c "\"$VMATRIX\" events --json | jq -e '[.[] | select(.kind == \"activate\" and .vm == \"web1\")] | length >= 2' >/dev/null"

# ---- nothing survives cluster down
pids=$(cat "$VMATRIX_CLUSTER_DIR"/pids/*.pid)
vmx cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no QEMU left from this cluster" no_qemu_left
for p in $pids; do check "process $p is gone" proc_gone "$p"; done
check "no namespace or bridge of this cluster left" no_netns_left
finish
