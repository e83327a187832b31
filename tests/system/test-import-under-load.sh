#!/usr/bin/env bash
# Issue 10's trial: a disk image of 1 GiB is imported while two VMs serve under a wrk probe.
# The import chunks and hashes for seconds; the Oracle must keep hearing its RMs meanwhile:
# no VM changes state or version, no RM goes down, no request fails. Then image delete.
source "$(dirname "$0")/lib.sh"

cluster_up --production 1 --chambers 1
vmx image build tiny-http >/dev/null
vmx vm create web1 --image tiny-http >/dev/null
vmx vm create web2 --image tiny-http >/dev/null
vmx vm boot web1 >/dev/null
vmx vm boot web2 >/dev/null
a1=$(vm_field web1 address)
wait_until 90 guest_get "$a1" /health >/dev/null || fail "web1 answers after boot"
vmx vm hibernate web1 >/dev/null
vmx vm activate web1 >/dev/null
a1=$(vm_field web1 address)
a2=$(vm_field web2 address)
check "web1 serves (active)" wait_until 30 guest_get "$a1" /health >/dev/null
check "web2 serves (loading)" wait_until 90 guest_get "$a2" /health >/dev/null
before=$(vmx vm list --json | jq -c '[.[] | {name, state, version, rm}] | sort_by(.name)')
events_before=$(vmx events --json | jq 'length')

# 1 GiB: 256 MiB of random data (work for the chunker, hash and compressor) and zeros
head -c 256M /dev/urandom >"$TEST_DIR/big.raw"
truncate -s 1G "$TEST_DIR/big.raw"

wrk_run() { wrk -t1 -c2 -d"$2"s --timeout 5s "http://$1/id" >"$3" 2>&1; }
wrk_run "$a1" 25 "$TEST_DIR/wrk1.txt" &
w1=$!
wrk_run "$a2" 25 "$TEST_DIR/wrk2.txt" &
w2=$!
sleep 2
start=$SECONDS
check "the 1 GiB image imports" vmx image import "$TEST_DIR/big.raw" --name big --format raw --json >/dev/null
log "import took $((SECONDS - start)) s"
wait "$w1" "$w2" || true

after=$(vmx vm list --json | jq -c '[.[] | {name, state, version, rm}] | sort_by(.name)')
check_eq "no VM changed state, version or RM" "$after" "$before"
changes=$(vmx events --json | jq --argjson n "$events_before" '[.[$n:][] | select(.kind == "failed" or .kind == "rm-down" or .kind == "isolation")] | length')
check_eq "no failure, rm-down or isolation event" "$changes" 0
for f in wrk1 wrk2; do
        reqs=$(awk '/requests in/ {print $1}' "$TEST_DIR/$f.txt")
        check "$f: the probe made requests" test "${reqs:-0}" -gt 0
        check "$f: no socket error" bash -c "! grep -q 'Socket errors' '$TEST_DIR/$f.txt'"
        check "$f: no non-2xx answer" bash -c "! grep -q 'Non-2xx' '$TEST_DIR/$f.txt'"
done
gap=$(vmx rm list --json | jq '[.[].heartbeat_gap_max_s] | max')
log "longest heartbeat gap the Oracle saw: $gap s"
check "web1 still serves" guest_get "$a1" /health >/dev/null
check "web2 still serves" guest_get "$a2" /health >/dev/null
rm -f "$TEST_DIR/big.raw"

# image delete: refused while a VM uses the image, done when nothing does
check_refused "an image in use is not deleted" "used by vm" image delete tiny-http
check "an unused image is deleted" vmx image delete big --json >/dev/null
check_eq "it is gone from the list" "$(vmx image list --json | jq '[.[] | select(.name == "big")] | length')" 0
check_refused "deleting it again: no such image" "no image named" image delete big
check_refused "an invalid name" "name" image delete Bad_Name
qemu-img create -q -f raw "$TEST_DIR/small.raw" 16M
check "a new image may take the name" vmx image import "$TEST_DIR/small.raw" --name big --format raw --json >/dev/null
finish
