#!/usr/bin/env bash
# Failures at every step of an operation, with real QEMU VMs: a second operation while one runs,
# the Oracle killed during an activation (before and after the node acted), a node killed in the
# middle of a command, a QEMU that dies, and an RM that stops heartbeating. After each, the state
# must be consistent: versions only grow and a VM never runs twice.
source "$(dirname "$0")/lib.sh"

cluster_up --production 2 --chambers 1
vmx image build tiny-http >/dev/null
url=$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")

# QEMU processes of a VM across the whole cluster (its -name argument is the VM name).
# QEMUs of VM $1 in this test: started for it (-name guest=VM) or in a warm slot it took (its
# run directory on some RM links to the slot's).
qemu_count() {
        local n=0 p cmd runs="" r
        for r in "$VMATRIX_CLUSTER_DIR"/nodes/*/vms/"$1"/run; do
                [ -L "$r" ] && runs="$runs $(readlink -f "$r")/"
        done
        for p in $(pgrep -f "qemu-system" || true); do
                cmd=$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null) || continue
                grep -q "$TEST_DIR" <<<"$cmd" && proc_alive "$p" || continue
                if grep -qE -- "-name guest=$1( |$)" <<<"$cmd"; then
                        n=$((n + 1))
                else
                        for r in $runs; do grep -qF "$r" <<<"$cmd" && n=$((n + 1)) && break; done
                fi
        done
        echo $n
}
state_is() { [ "$(vm_field "$1" state)" == "$2" ]; }
not_transitional() { case "$(vm_field "$1" state)" in stored | loading | active | suspended | failed) return 0 ;; esac; return 1; }

# a pre-booted VM to play with
vmx vm create web1 --image tiny-http >/dev/null
vmx vm boot web1 >/dev/null
addr=$(vm_field web1 address)
wait_until 60 guest_get "$addr" /health >/dev/null || fail "web1 answers after boot"
boot_id=$(guest_get "$addr" /id | jq -r .boot_id)
vmx vm hibernate web1 >/dev/null

# ---- a second operation on a VM while one runs
vmx vm activate web1 --no-wait >/dev/null
check_refused "a second operation while one runs" "another operation|activating" vm deactivate web1
wait_until 60 not_transitional web1 || fail "activation finished"
check_eq "the first operation went through" "$(vm_field web1 state)" active
vmx vm deactivate web1 >/dev/null

# ---- the Oracle killed after the node restored the VM, before the commit
v0=$(vm_field web1 version)
VMATRIX_CRASH_AT=oracle-after-run vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" oracle >/dev/null
vmx vm activate web1 >/dev/null 2>&1 || true
oracle_pid=$(cat "$VMATRIX_CLUSTER_DIR/pids/oracle.pid")
wait_until 30 proc_gone "$oracle_pid" || fail "the Oracle died at its crash point"
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" oracle >/dev/null
wait_until 60 not_transitional web1 || fail "the re-driven activation finished"
check_eq "restart finished the activation" "$(vm_field web1 state)" active
check "version grew across the crash" test "$(vm_field web1 version)" -gt "$v0"
check_eq "exactly one QEMU runs web1" "$(qemu_count web1)" 1
addr=$(vm_field web1 address)
check_eq "it is the same boot" "$(guest_get "$addr" /id | jq -r .boot_id)" "$boot_id"
vmx vm deactivate web1 >/dev/null

# ---- the Oracle killed after recording the intent, before any node was asked
v0=$(vm_field web1 version)
VMATRIX_CRASH_AT=oracle-before-run vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" oracle >/dev/null
vmx vm activate web1 >/dev/null 2>&1 || true
oracle_pid=$(cat "$VMATRIX_CLUSTER_DIR/pids/oracle.pid")
wait_until 30 proc_gone "$oracle_pid" || fail "the Oracle died at its crash point"
check_eq "the intent was recorded" "$(curl -s "$url/v1/vms/web1" 2>/dev/null | jq -r .state 2>/dev/null || echo down)" down
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" oracle >/dev/null
wait_until 60 not_transitional web1 || fail "the re-driven activation finished"
check_eq "restart carried out the recorded activation" "$(vm_field web1 state)" active
check_eq "exactly one QEMU runs web1 (after intent crash)" "$(qemu_count web1)" 1
check "version grew" test "$(vm_field web1 version)" -gt "$v0"
vmx vm deactivate web1 >/dev/null

# ---- the Oracle down for longer than the RM heartbeat window: its return fences nobody
vmx vm activate web1 >/dev/null
qpid=$(vm_field web1 pid)
kill -9 "$(cat "$VMATRIX_CLUSTER_DIR/pids/oracle.pid")"
sleep 7
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" oracle >/dev/null
sleep 3
check_eq "an Oracle restart after a long outage keeps the VM active" "$(vm_field web1 state)" active
check "and its QEMU running" proc_alive "$qpid"
vmx vm deactivate web1 >/dev/null

# ---- a node killed in the middle of a restore: rolled back, nothing half-made
VMATRIX_CRASH_AT=node-run-before-start vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" prod1 >/dev/null
v0=$(vm_field web1 version)
check_refused "activation on a node that dies fails" "prod1" vm activate web1 --rm prod1
check_eq "the VM is back in the Nest" "$(vm_field web1 state)" stored
check_eq "still pre-booted" "$(vm_field web1 prebooted)" true
check "version grew on rollback" test "$(vm_field web1 version)" -gt "$v0"
check_eq "no QEMU runs web1" "$(qemu_count web1)" 0
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" prod1 >/dev/null
vmx vm activate web1 --rm prod1 >/dev/null
check_eq "activation works once the node is back" "$(vm_field web1 state)" active
addr=$(vm_field web1 address)
check_eq "same boot after the failed attempt" "$(guest_get "$addr" /id | jq -r .boot_id)" "$boot_id"

# ---- a QEMU that dies: the VM is failed at once, its disk is kept
guest_post "$addr" "/mark?value=before-crash" >/dev/null
pid=$(vm_field web1 pid)
kill -9 "$pid"
wait_until 10 state_is web1 failed || fail "a killed QEMU makes the VM failed within 10 s"
check_eq "crashed VM is failed" "$(vm_field web1 state)" failed
check "the failure is an event" bash -c "\"$VMATRIX\" events --json | jq -e '[.[] | select(.kind == \"failed\" and .vm == \"web1\")] | length >= 1' >/dev/null"
vmx vm stop web1 >/dev/null
check_eq "a failed VM can be stopped into the Nest" "$(vm_field web1 state)" stored
vmx vm boot web1 >/dev/null
addr=$(vm_field web1 address)
wait_until 60 guest_get "$addr" /health >/dev/null || true
check_eq "its disk mark survived the crash" "$(guest_get "$addr" /id | jq -r .disk_mark)" before-crash
vmx vm hibernate web1 >/dev/null

# ---- an RM that stops heartbeating: its VM fails and is fenced when the RM returns
vmx vm activate web1 --rm prod2 >/dev/null
qpid=$(vm_field web1 pid)
node_pid=$(cat "$VMATRIX_CLUSTER_DIR/pids/prod2.pid")
kill -9 "$node_pid"
wait_until 15 state_is web1 failed || fail "a silent RM makes its VM failed"
check_eq "the RM is down" "$(vmx rm list --json | jq -r '.[] | select(.name == "prod2") | .state')" down
check_eq "the failed VM holds no RM (fenced)" "$(vm_field web1 rm)" null
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" prod2 >/dev/null
wait_until 15 proc_gone "$qpid" || fail "the returning RM kills the copy it holds no lease for"
check "the fenced QEMU is gone" proc_gone "$qpid"
check_eq "no QEMU runs web1" "$(qemu_count web1)" 0

# ---- the daemons survived all of it
check "the Oracle answers" curl -sf "$url/v1/health" -o /dev/null
check_eq "all RMs are up" "$(vmx rm list --json | jq '[.[] | select(.state == "up")] | length')" 3
finish
