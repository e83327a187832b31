#!/usr/bin/env bash
# Live migration of running VMs between RMs, with real QEMU VMs: a loading VM from one chamber
# to another and an active VM (activated from a mapped snapshot) between production RMs keep
# their boot, RAM counter and disk, answer at their new address, and leave no QEMU behind at
# the origin; a probe measures how long the guest did not answer. Both streams are QEMU's own
# TLS with the RMs' migration certificates (docs/tls.md "Migration streams"): QEMU's migration
# parameters, read back by the driver, show it on both sides, no TLS file stays behind, no QEMU
# holds a PEM file open, and a migration certificate is refused on the control channel. Failures: a destination
# whose node dies once its QEMU waits, a destination RM that is down, an origin whose node dies
# before sending, bad input: the VM runs on at its origin, with its old address, never twice.
source "$(dirname "$0")/lib.sh"

cluster_up --production 2 --chambers 3
vmx image build tiny-http >/dev/null
vmx vm create l1 --image tiny-http >/dev/null
vmx vm boot l1 --rm chamber1 >/dev/null
addr=$(vm_field l1 address)
wait_until 90 guest_get "$addr" /health >/dev/null || fail "l1 answers after boot"
guest_post "$addr" "/mark?value=live-$$" >/dev/null
guest_post "$addr" "/ram?mb=10" >/dev/null
id0=$(guest_get "$addr" /id)
boot_id=$(jq -r .boot_id <<<"$id0")
pid0=$(vm_field l1 pid)

# ---- a loading VM, chamber1 -> chamber2, probed all along
probe_log=$TEST_DIR/probe.log
( end=$((SECONDS + 30)); while [ $SECONDS -lt $end ] && [ ! -f "$TEST_DIR/probe.stop" ]; do
        a=$("$VMATRIX" vm show l1 --json 2>/dev/null | jq -r .address)
        if curl -sf --max-time 1 -o /dev/null "http://$a/health"; then echo "ok $(date +%s%N)"; else echo "down $(date +%s%N)"; fi
done >"$probe_log" ) &
probe=$!
sleep 0.5
out=$(vmx vm migrate l1 --to chamber2 --live --json) || fail "live migrate l1 to chamber2"
sleep 0.5
touch "$TEST_DIR/probe.stop"
wait "$probe"
check_eq "the result names the live method" "$(jq -r .method <<<"$out")" live
check "the result has downtime_ms" test "$(jq '.downtime_ms | type' <<<"$out")" = '"number"'
log "live migration: $(jq -c '{seconds, downtime_ms, total_ms, bytes_transferred}' <<<"$out")"
log "probe: $(grep -c '^ok' "$probe_log") answers, $(grep -c '^down' "$probe_log") misses"
check_eq "l1 is on chamber2" "$(vm_field l1 rm)" chamber2
check_eq "l1 is still loading" "$(vm_field l1 state)" loading
addr=$(vm_field l1 address)
id1=$(guest_get "$addr" /id || echo '{}')
check_eq "same boot after a live migration" "$(jq -r .boot_id <<<"$id1")" "$boot_id"
check "the RAM counter continued" test "$(jq .hits <<<"$id1")" -gt "$(jq .hits <<<"$id0")"
check_eq "the disk mark moved with it" "$(jq -r .disk_mark <<<"$id1")" "live-$$"
check "the origin's QEMU is gone" wait_until 10 proc_gone "$pid0"

# ---- it went over TLS, each QEMU holding its RM's migration identity
logs=$VMATRIX_CLUSTER_DIR/logs
check "chamber1's QEMU sent over TLS, to chamber2's certificate only" grep -q \
        "outgoing migration over TLS: tls-creds vmx-live-tls, tls-hostname chamber2.migration.vmatrix" "$logs/chamber1.log"
check "chamber2's QEMU took TLS only, from chamber1's certificate only" grep -qF \
        "incoming migration over TLS only: tls-creds vmx-live-tls, tls-authz vmx-live-authz (OU=migration,CN=chamber1)" \
        "$logs/chamber2.log"
for rm in chamber1 chamber2; do
        mc=$VMATRIX_CLUSTER_DIR/nodes/$rm/tls/migration-cert.pem
        check_eq "$rm's migration certificate: its subject" \
                "$(openssl x509 -in "$mc" -noout -subject -nameopt RFC2253 2>/dev/null)" "subject=CN=$rm,OU=migration"
        check "$rm's migration certificate names $rm.migration.vmatrix, not $rm.rm.vmatrix" sh -c \
                "openssl x509 -in '$mc' -noout -ext subjectAltName | grep -q 'DNS:$rm.migration.vmatrix' &&
                 ! openssl x509 -in '$mc' -noout -ext subjectAltName | grep -q '$rm.rm.vmatrix'"
        check "$rm's migration certificate lives a day at most" sh -c \
                "openssl x509 -in '$mc' -noout -checkend 3600 >/dev/null && ! openssl x509 -in '$mc' -noout -checkend 86400 >/dev/null"
        check_eq "$rm's migration key is 0600" "$(stat -c %a "$VMATRIX_CLUSTER_DIR/nodes/$rm/tls/migration-key.pem")" 600
done
check_eq "no TLS file left in a run directory" "$(find "$VMATRIX_CLUSTER_DIR/nodes" -name tls-migrate | wc -l)" 0
pid1=$(vm_field l1 pid)
check_eq "the destination's QEMU holds no PEM file open" \
        "$(ls -l "/proc/$pid1/fd" 2>/dev/null | grep -c '\.pem' || true)" 0
check "the destination's QEMU command line names no PEM file" sh -c "! tr '\\0' ' ' </proc/$pid1/cmdline | grep -q 'pem'"
# a migration certificate is no RM: refused at a node's port and on the Oracle's node channel
ch1_mig=(--cert "$VMATRIX_CLUSTER_DIR/nodes/chamber1/tls/migration-cert.pem"
         --key "$VMATRIX_CLUSTER_DIR/nodes/chamber1/tls/migration-key.pem")
addr2=$("$VMATRIX" rm list --json | jq -r '.[] | select(.name == "chamber2") | .address')
check_eq "chamber1's migration certificate at chamber2's port (403)" "$(curl -q -s -o /dev/null -w '%{http_code}' \
        --max-time 10 --cacert "$VMATRIX_CLUSTER_DIR/ca.pem" "${ch1_mig[@]}" \
        --connect-to "chamber2.rm.vmatrix:${addr2##*:}:${addr2%:*}:${addr2##*:}" "https://chamber2.rm.vmatrix:${addr2##*:}/v1/vms")" 403
nc_host=$(jq -r '.oracle.address' "$VMATRIX_CLUSTER_DIR/cluster.json")
nc_port=$(jq -r '.oracle.node_port' "$VMATRIX_CLUSTER_DIR/cluster.json")
check_eq "chamber1's migration certificate for its heartbeat (403)" "$(curl -q -s -o /dev/null -w '%{http_code}' \
        --max-time 10 --cacert "$VMATRIX_CLUSTER_DIR/ca.pem" "${ch1_mig[@]}" \
        --connect-to "oracle.vmatrix:$nc_port:$nc_host:$nc_port" -H 'Content-Type: application/json' \
        -d '{"role":"chamber","address":"10.9.9.9:7070","vms":[]}' "https://oracle.vmatrix:$nc_port/v1/rms/chamber1/heartbeat")" 403

# ---- an active VM started from a mapped snapshot, prod1 -> prod2
vmx vm hibernate l1 >/dev/null
vmx vm activate l1 --rm prod1 >/dev/null
addr=$(vm_field l1 address)
guest_post "$addr" "/mark?value=active-$$" >/dev/null
hits=$(guest_get "$addr" /id | jq .hits)
out=$(vmx vm migrate l1 --to prod2 --live --json) || fail "live migrate the active l1 to prod2"
check_eq "l1 is active on prod2" "$(vm_field l1 state)/$(vm_field l1 rm)" active/prod2
addr=$(vm_field l1 address)
id2=$(guest_get "$addr" /id || echo '{}')
check_eq "same boot after the second live migration" "$(jq -r .boot_id <<<"$id2")" "$boot_id"
check "the RAM counter continued again" test "$(jq .hits <<<"$id2")" -gt "$hits"
check_eq "the newer disk mark moved with it" "$(jq -r .disk_mark <<<"$id2")" "active-$$"
# it owns its RAM now: a deactivation saves device state only and keeps everything
vmx vm deactivate l1 >/dev/null || fail "deactivate after a live migration"
vmx vm activate l1 --rm prod1 >/dev/null || fail "activate after a live migration"
addr=$(vm_field l1 address)
check_eq "after deactivate+activate: the disk mark" "$(guest_get "$addr" /id | jq -r .disk_mark)" "active-$$"

# ---- bad input
check_refused "live to a chamber for an active VM" "production" vm migrate l1 --to chamber3 --live
check_refused "live to its own RM" "already" vm migrate l1 --to prod1 --live
check_refused "live to an unknown RM" "no RM" vm migrate l1 --to nosuch --live
check_refused "live with a method" "method" vm migrate l1 --to prod2 --live --method full
vmx vm deactivate l1 >/dev/null
check_refused "live of a stored VM" "cannot migrate" vm migrate l1 --to prod2 --live

# ---- failures: the VM runs on at its origin
vmx vm boot l1 --rm chamber1 >/dev/null
addr=$(vm_field l1 address)
wait_until 30 guest_get "$addr" /health >/dev/null
pid=$(vm_field l1 pid)
VMATRIX_CRASH_AT=node-live-receive-started vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber3 >/dev/null
check_refused "a destination whose node dies fails the migration" "chamber3" vm migrate l1 --to chamber3 --live
check_eq "after a dead destination: l1 is on chamber1" "$(vm_field l1 rm)" chamber1
check_eq "after a dead destination: loading" "$(vm_field l1 state)" loading
check_eq "after a dead destination: same address" "$(vm_field l1 address)" "$addr"
check_eq "after a dead destination: the same QEMU" "$(vm_field l1 pid)" "$pid"
check "after a dead destination: it answers" guest_get "$addr" /health
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber3 >/dev/null

kill -STOP "$(cat "$VMATRIX_CLUSTER_DIR/pids/chamber2.pid")" 2>/dev/null
check "an RM marked down" wait_until 20 sh -c "$VMATRIX rm list --json | jq -e '.[] | select(.name == \"chamber2\" and .state == \"down\")' >/dev/null"
check_refused "a destination RM that is down" "down" vm migrate l1 --to chamber2 --live
kill -CONT "$(cat "$VMATRIX_CLUSTER_DIR/pids/chamber2.pid")" 2>/dev/null
check "it still answers" guest_get "$addr" /health

VMATRIX_CRASH_AT=node-live-send-before vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber1 >/dev/null
check_refused "an origin whose node dies before sending" "chamber1|failed|connection|reach" vm migrate l1 --to chamber3 --live
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber1 >/dev/null
check_eq "after a dead origin node: l1 is still on chamber1" "$(vm_field l1 rm)" chamber1
check "after a dead origin node: its QEMU runs on" proc_alive "$pid"
check "after a dead origin node: it answers" guest_get "$addr" /health
running=0
for p in $(pgrep -f "guest=l1" || true); do proc_alive "$p" && tr '\0' ' ' <"/proc/$p/cmdline" | grep -q "$TEST_DIR" && running=$((running + 1)); done
check_eq "l1 runs exactly once" "$running" 1
vmx vm migrate l1 --to chamber3 --live >/dev/null || fail "a live migration after the failures"
check_eq "l1 made it to chamber3 in the end" "$(vm_field l1 rm)" chamber3
check "l1 answers on chamber3" guest_get "$(vm_field l1 address)" /health

vmx cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no QEMU left" wait_until 10 no_qemu_left
finish
