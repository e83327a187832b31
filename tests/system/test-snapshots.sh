#!/usr/bin/env bash
# Memory-mapped snapshots, flash clones and warm slots, with real QEMU VMs:
# - activation maps the snapshot's memory file and continues the same boot;
# - a VM's changes after activation survive its next deactivation, and never reach the stored
#   version its clones start from (the snapshot file is never written);
# - three clones answer with their own names, hostnames and different random seeds, and on the
#   same RM share the snapshot's pages; a clone is an ordinary VM afterwards (deactivate and
#   activate keep its changes);
# - warm slots: a production RM keeps one, an activation takes it, a slot killed behind the
#   node's back is replaced and the activation still works;
# - placement: an activation goes to the idle production RM that keeps the VM's snapshot;
# - bad input: clone counts beyond the free RMs or out of range, a VM without a snapshot, an
#   unknown VM; nothing is created by a refused clone.
source "$(dirname "$0")/lib.sh"

cluster_up --production 3 --chambers 1
vmx image build tiny-http >/dev/null
vmx vm create s1 --image tiny-http >/dev/null
vmx vm boot s1 >/dev/null
addr=$(vm_field s1 address)
wait_until 90 guest_get "$addr" /health >/dev/null || fail "s1 answers after boot"
guest_post "$addr" "/mark?value=before" >/dev/null
id0=$(guest_get "$addr" /id)
boot_id=$(jq -r .boot_id <<<"$id0")
seed0=$(jq -r .seed <<<"$id0")
vmx vm hibernate s1 >/dev/null
snap_version=$(vm_field s1 nest_version)

# ---- bad input: nothing is created
vms_before=$(vmx vm list --json | jq length)
check_refused "clone count beyond the free production RMs" "free production RMs" vm clone s1 --count 4
check_refused "clone count 0" "count" vm clone s1 --count 0
check_refused "clone count not a number" "count" vm clone s1 --count lots
check_refused "clone of an unknown VM" "no vm" vm clone nosuch --count 1
check_refused "clone onto a production RM with --rm" "chamber" vm clone s1 --count 1 --rm prod1
vmx vm create bare --image tiny-http >/dev/null
check_refused "clone of a VM without a snapshot" "pre-booted snapshot" vm clone bare --count 1
vmx vm delete bare >/dev/null
check_eq "a refused clone created nothing" "$(vmx vm list --json | jq length)" "$vms_before"

# ---- activation maps the snapshot and continues the same boot
vmx vm activate s1 --rm prod1 >/dev/null
addr=$(vm_field s1 address)
id1=$(guest_get "$addr" /id || echo '{}')
check_eq "activation continues the same boot" "$(jq -r .boot_id <<<"$id1")" "$boot_id"
check "the RAM counter continued" test "$(jq .hits <<<"$id1")" -gt "$(jq .hits <<<"$id0")"
pid=$(vm_field s1 pid)
check "its QEMU maps the snapshot's memory file copy-on-write" \
        grep -q "cluster/nodes/prod1/memory/" "/proc/$pid/maps"
snap_file=$(grep -o "/[^ ]*/cluster/nodes/prod1/memory/[0-9a-f]*" "/proc/$pid/maps" | head -n 1)
snap_sum=$(sha256sum "$snap_file" | cut -d' ' -f1)

# changes after activation: RAM and disk
guest_post "$addr" "/mark?value=after" >/dev/null
guest_post "$addr" "/ram?mb=8" >/dev/null
hits_after=$(guest_get "$addr" /id | jq .hits)

# clones start from the stored snapshot, not from the changed VM
out=$(vmx vm clone s1 --count 2 --json) || fail "clone s1 --count 2"
clones=$(jq -r '.clones[].name' <<<"$out" | tr '\n' ' ')
check_eq "two clones were made" "$(jq '.clones | length' <<<"$out")" 2
declare -A seen_seed=()
for c in $clones; do
        a=$(vm_field "$c" address)
        id=$(guest_get "$a" /id || echo '{}')
        check_eq "$c answers with its own name" "$(jq -r .vm <<<"$id")" "$c"
        check_eq "$c has its own hostname" "$(jq -r .hostname <<<"$id")" "$c"
        check_eq "$c continues the snapshot's boot" "$(jq -r .boot_id <<<"$id")" "$boot_id"
        check_eq "$c sees the snapshot's disk, not the parent's later write" "$(jq -r .disk_mark <<<"$id")" before
        check "$c did not get the parent's later RAM counter" test "$(jq .hits <<<"$id")" -lt "$hits_after"
        s=$(jq -r .seed <<<"$id")
        check "$c has a new random seed" test -n "$s" -a "$s" != "$seed0" -a -z "${seen_seed[$s]:-}"
        seen_seed[$s]=1
        check_eq "$c is active" "$(vm_field "$c" state)" active
done
check "clones have their own MAC addresses" \
        test "$(for c in $clones s1; do vm_field "$c" mac; done | sort -u | wc -l)" = 3

# the parent's changes survive its deactivation; the snapshot file was never written
vmx vm deactivate s1 >/dev/null
check_eq "the snapshot file is unchanged by the VM that mapped it" "$(sha256sum "$snap_file" | cut -d' ' -f1)" "$snap_sum"
check "deactivation made a new version" test "$(vm_field s1 nest_version)" -gt "$snap_version"
vmx vm activate s1 --rm prod1 >/dev/null 2>&1 || vmx vm activate s1 >/dev/null
addr=$(vm_field s1 address)
id2=$(guest_get "$addr" /id || echo '{}')
check_eq "after deactivate+activate: the same boot" "$(jq -r .boot_id <<<"$id2")" "$boot_id"
check_eq "after deactivate+activate: the disk write is there" "$(jq -r .disk_mark <<<"$id2")" after
check "after deactivate+activate: the RAM counter went on" test "$(jq .hits <<<"$id2")" -gt "$hits_after"
check_eq "after deactivate+activate: still s1" "$(jq -r .vm <<<"$id2")" s1

# a clone is an ordinary VM: deactivate and activate keep its changes and identity
c1=$(cut -d' ' -f1 <<<"$clones")
a=$(vm_field "$c1" address)
guest_post "$a" "/mark?value=clone-own" >/dev/null
cseed=$(guest_get "$a" /id | jq -r .seed)
vmx vm deactivate "$c1" >/dev/null || fail "deactivate $c1"
vmx vm activate "$c1" >/dev/null || fail "activate $c1 again"
a=$(vm_field "$c1" address)
idc=$(guest_get "$a" /id || echo '{}')
check_eq "$c1 keeps its disk write over deactivate+activate" "$(jq -r .disk_mark <<<"$idc")" clone-own
check_eq "$c1 keeps its name" "$(jq -r .vm <<<"$idc")" "$c1"
check_eq "$c1 keeps its seed" "$(jq -r .seed <<<"$idc")" "$cseed"

# ---- clones on one chamber RM share the snapshot's pages
vmx vm deactivate s1 >/dev/null
out=$(vmx vm clone s1 --count 3 --rm chamber1 --json) || fail "clone s1 --count 3 --rm chamber1"
names=$(jq -r '.clones[].name' <<<"$out")
declare -A seeds=()
for c in $names; do
        a=$(vm_field "$c" address)
        id=$(guest_get "$a" /id || echo '{}')
        check_eq "$c on chamber1 answers with its own name" "$(jq -r .vm <<<"$id")" "$c"
        seeds[$(jq -r .seed <<<"$id")]=1
done
check_eq "three clones, three different random seeds" "${#seeds[@]}" 3
shared=0
for c in $names; do
        p=$(vm_field "$c" pid)
        grep -q "cluster/nodes/chamber1/memory/" "/proc/$p/maps" 2>/dev/null && shared=$((shared + 1))
done
check_eq "all three map the one snapshot file" "$shared" 3

# ---- the balloon: only VMs that own their RAM file; idle ones are reclaimed by themselves
c=$(head -n 1 <<<"$names")
check_refused "no balloon for a VM on a mapped snapshot" "copy-on-write" vm balloon "$c" --target 64
vmx vm create b1 --image tiny-http --memory 256 >/dev/null
vmx vm boot b1 --rm chamber1 >/dev/null
wait_until 90 guest_get "$(vm_field b1 address)" /health >/dev/null || fail "b1 answers after boot"
memfile=$VMATRIX_CLUSTER_DIR/nodes/chamber1/vms/b1/memory
kb0=$(du -k "$memfile" | cut -f1)
vmx vm balloon b1 --target 64 >/dev/null || fail "balloon b1 to 64 MiB"
check "the guest gives memory back" wait_until 20 sh -c "test \$($VMATRIX vm balloon b1 --json | jq .actual_mib) -lt 128"
check "the host file shrinks" test "$(du -k "$memfile" | cut -f1)" -lt $((kb0 - 100000))
check_refused "a balloon target below 64 MiB" "target_mib" vm balloon b1 --target 8
check_refused "a balloon target above the VM's RAM" "target_mib" vm balloon b1 --target 512
vmx vm balloon b1 --target 256 >/dev/null
check "the guest gets its memory back" wait_until 20 sh -c "test \$($VMATRIX vm balloon b1 --json | jq .actual_mib) -eq 256"
VMATRIX_RECLAIM_IDLE_S=2 vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber1 >/dev/null
check "an idle VM is reclaimed by itself" wait_until 30 sh -c "test \$($VMATRIX vm balloon b1 --json | jq .actual_mib) -lt 128"
# 3 s of guest CPU may take much longer under TCG on a loaded host: no short timeout here
curl -sf --max-time 120 "http://$(vm_field b1 address)/burn?ms=3000" >/dev/null || true
check "a busy VM gets its memory back" wait_until 20 sh -c "test \$($VMATRIX vm balloon b1 --json | jq .target_mib) -eq 256"
vmx vm stop b1 >/dev/null

# ---- warm slots
slot_pids() { cat "$VMATRIX_CLUSTER_DIR"/nodes/"$1"/slots/*/run/qemu.pid 2>/dev/null | sort -n; }
has_slot() { test -n "$(slot_pids "$1")"; }
busy_rm=$(vm_field "$c1" rm)
free_rm=""
for r in prod1 prod2 prod3; do
        [ "$(vmx vm list --json | jq --arg r "$r" '[.[] | select(.rm == $r)] | length')" = 0 ] && free_rm=$r && break
done
log "free production RM: $free_rm"
check "an idle production RM keeps a warm slot" wait_until 20 has_slot "$free_rm"
slot=$(slot_pids "$free_rm" | head -n 1)
kill -9 "$slot" 2>/dev/null
wait_until 10 proc_gone "$slot" || true
vmx vm activate s1 --rm "$free_rm" >/dev/null || fail "activation after its warm slot was killed"
a=$(vm_field s1 address)
check_eq "activation works when the warm slot died" "$(guest_get "$a" /id | jq -r .boot_id)" "$boot_id"
vmx vm deactivate s1 >/dev/null
check "the killed slot is replaced" wait_until 20 has_slot "$free_rm"
slot=$(slot_pids "$free_rm" | head -n 1)
vmx vm activate s1 --rm "$free_rm" >/dev/null || fail "activation into the warm slot"
check_eq "the activation ran in the warm slot's QEMU" "$(vm_field s1 pid)" "$slot"
a=$(vm_field s1 address)
check_eq "a slot-activated VM continues the same boot" "$(guest_get "$a" /id | jq -r .boot_id)" "$boot_id"
check "a busy RM starts no new slot" sh -c "sleep 1; test -z \"\$(cat $VMATRIX_CLUSTER_DIR/nodes/$free_rm/slots/*/run/qemu.pid 2>/dev/null | grep -vx $slot)\""

# a restarted node re-attaches its slot-activated VM and kills its unused slots
vmx cluster restart "$busy_rm" --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
vmx cluster restart "$free_rm" --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "after a node restart the slot-activated VM still runs" proc_alive "$slot"
a=$(vm_field s1 address)
check_eq "after a node restart it still answers" "$(guest_get "$a" /id | jq -r .vm)" s1
vmx vm deactivate s1 >/dev/null || fail "deactivate the slot-activated VM after a node restart"

# ---- placement: an activation goes to the idle RM that holds its snapshot, not the first idle one
for v in $(vmx vm list --json | jq -r '.[] | select(.state == "active") | .name'); do
        vmx vm deactivate "$v" >/dev/null || fail "deactivate $v to free its RM"
done
free_rms=()
for r in $(vmx rm list --json | jq -r '.[] | select(.role == "production") | .name'); do
        [ "$(vmx vm list --json | jq --arg r "$r" '[.[] | select(.rm == $r)] | length')" = 0 ] && free_rms+=("$r")
done
if [ ${#free_rms[@]} -ge 2 ]; then
        last=${free_rms[-1]}
        vmx vm activate s1 --rm "$last" >/dev/null
        vmx vm deactivate s1 >/dev/null
        sleep 2 # a heartbeat tells the Oracle which snapshots the RM keeps
        vmx vm activate s1 >/dev/null
        check_eq "an activation goes to the RM that keeps its snapshot" "$(vm_field s1 rm)" "$last"
        vmx vm deactivate s1 >/dev/null
else
        fail "two idle production RMs for the placement check: ${free_rms[*]}"
fi

# ---- a clone that never saved keeps working when its parent is hibernated again (twice: the
# parent's Nest versions and snapshot files move on), and its first save keeps its changes
out=$(vmx vm clone s1 --count 1 --json) || fail "clone s1 for the prune check"
late=$(jq -r '.clones[0].name' <<<"$out")
wait_until 60 test "$(vm_field "$late" state)" = active || fail "$late active"
a=$(vm_field "$late" address)
guest_post "$a" "/mark?value=late-own" >/dev/null || fail "mark $late's disk"
for round in 1 2; do
        vmx vm activate s1 >/dev/null && vmx vm deactivate s1 >/dev/null || fail "s1 hibernated again ($round)"
done
check_eq "an unsaved clone still serves after its parent was saved twice" "$(guest_get "$a" /id | jq -r .vm)" "$late"
vmx vm deactivate "$late" >/dev/null || fail "deactivate $late (its first save)"
vmx vm activate "$late" >/dev/null || fail "activate $late again"
a=$(vm_field "$late" address)
idl=$(guest_get "$a" /id)
check_eq "the clone's first save kept its name" "$(jq -r .vm <<<"$idl")" "$late"
check_eq "the clone's first save kept its disk write" "$(jq -r .disk_mark <<<"$idl")" late-own
vmx vm deactivate "$late" >/dev/null
vmx vm delete "$late" >/dev/null

vmx cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no QEMU left" wait_until 10 no_qemu_left
finish
