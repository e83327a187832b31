#!/usr/bin/env bash
# The CLI contract (DESIGN.md §4) against a real local cluster: exit status 0/1/2, exactly one
# line on stderr on error, nothing on stderr on success in a pipe (no progress), and the JSON
# fields scripts rely on. Uses an imported blank raw disk, so no guest image is needed.
source "$(dirname "$0")/lib.sh"

# Runs vmatrix; sets RC, OUT and ERR (stderr is a file: not a terminal).
run() {
        RC=0
        OUT=$("$VMATRIX" "$@" 2>"$TEST_DIR/stderr") || RC=$?
        ERR=$(cat "$TEST_DIR/stderr")
}
# expect_error "description" STATUS PATTERN args...: exit STATUS, one stderr line matching PATTERN
expect_error() {
        local what=$1 status=$2 pattern=$3
        shift 3
        run "$@"
        if [ "$RC" = "$status" ] && [ "$(printf '%s\n' "$ERR" | wc -l)" = 1 ] && grep -qE "$pattern" <<<"$ERR"; then
                pass "$what"
        else
                fail "$what: exit $RC, stderr '$ERR'"
        fi
}
# expect_ok "description" args...: exit 0 and a silent stderr
expect_ok() {
        local what=$1
        shift
        run "$@"
        if [ "$RC" = 0 ] && [ -z "$ERR" ]; then pass "$what"; else fail "$what: exit $RC, stderr '$ERR'"; fi
}

# ---- usage errors: exit 2, before any Oracle is needed
expect_error "unknown command" 2 '^vmatrix: unknown command "vm fly"; see vmatrix --help$' vm fly
expect_error "unknown option" 2 'unknown option --bogus' rm list --bogus
expect_error "missing argument" 2 'missing NAME' vm show
expect_error "missing option value" 2 'option --image needs a value' vm create x --image
expect_error "memory out of range" 2 'memory must be a number in 16..65536' vm create x --image y --memory 1
VMATRIX_ORACLE='' VMATRIX_CLUSTER_DIR='' \
        expect_error "no Oracle" 2 '^vmatrix: no Oracle: pass --oracle URL or set VMATRIX_ORACLE$' rm list
expect_ok "help" vm create --help
check "help is generated from the table" grep -q '^usage: vmatrix vm create NAME --image IMAGE' <<<"$OUT"

# ---- transport errors: exit 1
expect_error "unreachable Oracle" 1 '^vmatrix: cannot reach the Oracle at http://127.0.0.1:1: connection refused$' \
        --oracle http://127.0.0.1:1 vm list

cluster_up --production 1 --chambers 1
expect_ok "rm list" rm list --json
check_eq "rm list has the contract's fields" \
        "$(jq -c '[.[] | has("name", "role", "state", "address", "vms")] | all' <<<"$OUT")" true

# ---- API errors: exit 1 with the Oracle's message
expect_error "unknown VM" 1 'no vm named "ghost"' vm show ghost
truncate -s 4M "$TEST_DIR/Blank Disk.raw"
expect_ok "image import" image import "$TEST_DIR/Blank Disk.raw" --json
check_eq "image name derived from the file name" "$(jq -r .name <<<"$OUT")" blank-disk
expect_error "image exists" 1 'exists' image import "$TEST_DIR/Blank Disk.raw"

expect_ok "vm create" vm create d1 --image blank-disk --memory 64 --json
check_eq "vm create --json has the contract's fields" \
        "$(jq -c '[has("name", "state", "version", "rm", "address", "prebooted", "memory_mib", "image", "pid")] | all' <<<"$OUT")" \
        true
check_eq "a new VM is stored" "$(jq -r .state <<<"$OUT")" stored
expect_error "illegal transition" 1 'd1' vm suspend d1

# ---- an operation waited for in a pipe: no progress on stderr
expect_ok "vm boot waits quietly" vm boot d1 --json
check_eq "booted VM is loading" "$(jq -r .state <<<"$OUT")" loading
expect_ok "vm stop --no-wait" vm stop d1 --no-wait
check "--no-wait prints an operation id" grep -qE '^op-[0-9]+$' <<<"$OUT"
d1_stored() { [ "$(vm_field d1 state)" = stored ]; }
wait_until 60 d1_stored
check_eq "stopped VM is stored" "$(vm_field d1 state)" stored
expect_ok "vm delete" vm delete d1
expect_error "deleted VM is gone" 1 'no vm named "d1"' vm show d1

expect_ok "events" events --json
check_eq "events have the contract's fields" \
        "$(jq -c '[.[] | has("time", "kind", "vm", "service", "rm", "reason")] | all' <<<"$OUT")" true
expect_ok "nest stats" nest stats --json
check_eq "nest stats has the contract's fields" \
        "$(jq -c '[has("logical_bytes", "stored_bytes", "chunks")] | all' <<<"$OUT")" true

finish
