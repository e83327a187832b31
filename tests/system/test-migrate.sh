#!/usr/bin/env bash
# Migration of a suspended VM between RMs and the deduplicating Nest, with real QEMU VMs:
# round-robin through four RMs and back uncached, then cached (almost no bytes move), then after
# `POST /fill?mb=50` in the guest (about the changed bytes move), resuming with the same boot_id,
# RAM counter and disk mark; the destination killed mid-transfer and a silent destination (the VM
# stays usable at its origin); two migrations at once; a corrupted chunk in the Nest detected.
source "$(dirname "$0")/lib.sh"

cluster_up --production 0 --chambers 4
vmx image build tiny-http >/dev/null
vmx vm create m1 --image tiny-http >/dev/null
vmx vm boot m1 --rm chamber1 >/dev/null
addr=$(vm_field m1 address)
wait_until 90 guest_get "$addr" /health >/dev/null || fail "m1 answers after boot"
guest_post "$addr" "/mark?value=mig-$$" >/dev/null
id0=$(guest_get "$addr" /id)
boot_id=$(jq -r .boot_id <<<"$id0")
hits0=$(jq .hits <<<"$id0")
vmx vm suspend m1 >/dev/null

migrate() { vmx vm migrate m1 --to "$1" ${2:+--method "$2"} --json; }
round() { # round LABEL: chamber2 -> 3 -> 4 -> 1, printing bytes moved per hop; sets MOVED and TOTAL
        MOVED=0
        for to in chamber2 chamber3 chamber4 chamber1; do
                out=$(migrate "$to") || { fail "$1: migrate to $to"; continue; }
                b=$(jq .bytes_transferred <<<"$out")
                TOTAL=$(jq .bytes_total <<<"$out")
                MOVED=$((MOVED + b))
                log "$1: to $to moved $b of $TOTAL bytes in $(jq .seconds <<<"$out") s"
                check_eq "$1: m1 is on $to" "$(vm_field m1 rm)" "$to"
                check_eq "$1: m1 is still suspended" "$(vm_field m1 state)" suspended
        done
}
round uncached
check "uncached: each hop moved bytes" test "$MOVED" -gt 0
round cached
check "cached: a round moved under 1% of one bundle" test "$((MOVED * 100))" -lt "$TOTAL"

# changes in the guest: 50 MiB of random data on its disk
vmx vm resume m1 >/dev/null
addr=$(vm_field m1 address)
guest_post "$addr" "/fill?mb=50" >/dev/null || fail "fill 50 MiB"
vmx vm suspend m1 >/dev/null
out=$(migrate chamber2)
moved=$(jq .bytes_transferred <<<"$out")
log "after a 50 MiB write: moved $moved of $(jq .bytes_total <<<"$out") bytes"
check "after writing 50 MiB, a hop moves at least the new data" test "$moved" -ge $((50 * 1024 * 1024))
check "after writing 50 MiB, a hop moves at most 50 MiB + 64 MiB of changed RAM" test "$moved" -le $((114 * 1024 * 1024))
out=$(migrate chamber1 full)
check_eq "the full method moves whole files" "$(jq .bytes_transferred <<<"$out")" "$(jq .bytes_total <<<"$out")"

vmx vm resume m1 >/dev/null
addr=$(vm_field m1 address)
id1=$(guest_get "$addr" /id || echo '{}')
check_eq "after eleven hops: the same boot" "$(jq -r .boot_id <<<"$id1")" "$boot_id"
check "the RAM counter continued" test "$(jq .hits <<<"$id1")" -gt "$hits0"
check_eq "the disk mark is kept" "$(jq -r .disk_mark <<<"$id1")" "mig-$$"
vmx vm suspend m1 >/dev/null

# ---- bad requests
check_refused "migrate to where it is" "already" vm migrate m1 --to chamber1
check_refused "migrate to an unknown RM" "no RM" vm migrate m1 --to nowhere
check_refused "an unknown method" "method" vm migrate m1 --to chamber2 --method teleport
vmx vm create m2 --image tiny-http >/dev/null
check_refused "migrate a stored VM" "cannot migrate" vm migrate m2 --to chamber2

# ---- two migrations of one VM at once
vmx vm migrate m1 --to chamber2 --no-wait >/dev/null
check_refused "a second migration while one runs" "another operation|migrating" vm migrate m1 --to chamber3
wait_until 60 bash -c "[ \"\$(\"$VMATRIX\" vm show m1 --json | jq -r .state)\" = suspended ]" || fail "first migration ended"
check_eq "the first migration went through" "$(vm_field m1 rm)" chamber2

# ---- the destination killed in the middle of the transfer
v0=$(vm_field m1 version)
VMATRIX_CRASH_AT=node-receive-mid vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber3 >/dev/null
check_refused "a migration to a destination that dies fails" "chamber3" vm migrate m1 --to chamber3
check_eq "the VM stays at its origin" "$(vm_field m1 rm)" chamber2
check_eq "still suspended" "$(vm_field m1 state)" suspended
check "its version moved on (never back)" test "$(vm_field m1 version)" -gt "$v0"
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber3 >/dev/null

# ---- a destination that stops answering: no heartbeat for 10 s, the Oracle gives up
VMATRIX_STALL_AT=node-receive-mid vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber4 >/dev/null
check_refused "a silent destination is given up" "heartbeat" vm migrate m1 --to chamber4
check_eq "the VM stays at its origin after silence" "$(vm_field m1 rm)" chamber2
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber4 >/dev/null

# ---- a killed origin: the migration fails, and the VM is usable where it was once its RM is back
kill -9 "$(cat "$VMATRIX_CLUSTER_DIR/pids/chamber2.pid")"
check_refused "a migration from a dead origin fails" "chamber2" vm migrate m1 --to chamber3
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber2 >/dev/null
check_eq "the VM stays at its origin after the origin died" "$(vm_field m1 rm)" chamber2

# ---- a full disk at the destination: clear error, nothing half-made, the VM stays
if [ "$(id -u)" = 0 ]; then
        full="$VMATRIX_CLUSTER_DIR/nodes/chamber3"
        kill -9 "$(cat "$VMATRIX_CLUSTER_DIR/pids/chamber3.pid")"
        rm -rf "$full" && mkdir -p "$full" && mount -t tmpfs -o size=24m tmpfs "$full"
        vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber3 >/dev/null
        check_refused "a migration to a full disk fails" "space|chamber3" vm migrate m1 --to chamber3
        check_eq "the VM stays at its origin after a full disk" "$(vm_field m1 rm)" chamber2
        kill -9 "$(cat "$VMATRIX_CLUSTER_DIR/pids/chamber3.pid")"
        sleep 0.5
        umount "$full" || umount -l "$full"
        vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber3 >/dev/null
        out=$(vmx vm migrate m1 --to chamber3 --json)
        check_eq "once the disk has room the migration works" "$(vm_field m1 rm)" chamber3
fi

vmx vm resume m1 >/dev/null
addr=$(vm_field m1 address)
check_eq "after the failed migrations: the same boot" "$(guest_get "$addr" /id | jq -r .boot_id)" "$boot_id"

# ---- the Nest: shared chunks, and a corrupted chunk detected
stats=$(vmx nest stats --json)
log "nest: $(jq -c . <<<"$stats")"
check "the Nest stores less than it holds logically" test "$(jq .stored_bytes <<<"$stats")" -lt "$(jq .logical_bytes <<<"$stats")"
holder=$(vm_field m1 rm)
vmx vm hibernate m1 >/dev/null
url=$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")
store="$VMATRIX_CLUSTER_DIR/oracle/nest/store"
chunk=$(find "$store/chunks" -type f -size +10k -print -quit)
id="$(basename "$(dirname "$chunk")")$(basename "$chunk")"
check_eq "a stored chunk is served" "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/chunks/$id")" 200
printf 'XXXXXXXX' | dd of="$chunk" bs=1 seek=100 conv=notrunc status=none
check_eq "a corrupted chunk is detected and never served" "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/chunks/$id")" 404
check "it was moved to quarantine" test -n "$(ls -A "$store/quarantine" 2>/dev/null)"
# the RM that saved m1 holds every chunk of it in its cache: m1 boots from there, and its next
# save into the Nest sends the chunk the Nest lost, so the Nest heals from that other copy
vmx vm boot m1 --rm "$holder" >/dev/null
addr=$(vm_field m1 address)
check_eq "the VM resumes from the RM's copy" "$(guest_get "$addr" /id | jq -r .boot_id)" "$boot_id"
vmx vm hibernate m1 >/dev/null
check_eq "the Nest has the chunk again, from the RM's copy" \
        "$(curl -s -o /dev/null -w '%{http_code}' "$url/v1/chunks/$id")" 200

# ---- a corrupted chunk in an RM's cache: detected, never used, fetched again from the Nest
# (the cache keeps chunks as records in segment files: "VXR1", the id, then the chunk; see
# src/nest/segment.h)
data="$VMATRIX_CLUSTER_DIR/nodes/$holder"
cache="$data/cache"
nv=$(vm_field m1 nest_version)
manifest="$cache/manifests/m1/$nv/disk.json"
cid=$(jq -r '[.chunks[] | select(.[0] != "zero")][0][0]' "$manifest" 2>/dev/null || echo "")
seg="" off=-1
for f in "$cache"/segments/*.seg; do
        [ -n "$cid" ] && [ -f "$f" ] || continue
        # the record's byte offset: where "VXR1" and the id are in the file (perl is essential
        # in Debian; a hex dump of a 256 MiB segment through awk took minutes)
        off=$(perl -e 'local $/; open my $f, "<:raw", $ARGV[0] or die; my $d = <$f>;
                print index($d, "VXR1" . pack("H*", $ARGV[1]))' "$f" "$cid")
        if [ "$off" -ge 0 ]; then
                seg=$f
                break
        fi
done
if [ -n "$seg" ]; then
        # inside the record's chunk: 44 bytes of record header, 8 of chunk header
        printf 'XXXXXXXX' | dd of="$seg" bs=1 seek=$((off + 44 + 8 + 20)) conv=notrunc status=none
        # the disk saved here last would be used as it is: make the node rebuild it from its cache
        rm -f "$data"/staged/*.qcow2
        vmx vm boot m1 --rm "$holder" >/dev/null
        addr=$(vm_field m1 address)
        check_eq "a VM boots although its RM's cached chunk was corrupt" "$(guest_get "$addr" /id | jq -r .boot_id)" "$boot_id"
        check "the corrupt cached chunk was detected and fetched again" \
                grep -q "cached chunks were corrupt; fetching them again" "$VMATRIX_CLUSTER_DIR/logs/$holder.log"
else
        fail "found the first chunk of m1's disk in $holder's segment files ($manifest)"
fi

vmx cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no QEMU left" no_qemu_left
check "no namespace or bridge left" no_netns_left
finish
