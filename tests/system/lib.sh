# Shared helpers for system tests: a fresh local cluster per test, cleaned up on any exit.
# Source this file; it expects VMATRIX (the binary) and GUEST_DIR (the built guest) set.
set -euo pipefail

: "${VMATRIX:?set VMATRIX to the vmatrix binary}"
: "${GUEST_DIR:?set GUEST_DIR to the built tiny-http guest}"
export VMATRIX_GUEST_DIR="$GUEST_DIR"
export VMATRIX_ACCEL="${VMATRIX_ACCEL:-tcg}"

TEST_NAME=$(basename "$0" .sh)
TEST_DIR=$(mktemp -d "/tmp/vmx-$TEST_NAME-XXXXXX")
export VMATRIX_CLUSTER_DIR="$TEST_DIR/cluster"
PASSED=0
FAILED=0

log() { printf '[%s] %s\n' "$TEST_NAME" "$*" >&2; }

cleanup() {
        local rc=$?
        if [ -d "$VMATRIX_CLUSTER_DIR" ]; then
                "$VMATRIX" cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null 2>&1 || true
        fi
        if [ "$rc" != 0 ] || [ "$FAILED" != 0 ]; then
                log "FAILED (logs kept in $TEST_DIR)"
                for f in "$VMATRIX_CLUSTER_DIR"/logs/*.log; do
                        [ -f "$f" ] || continue
                        echo "---- tail of $f" >&2
                        tail -n 25 "$f" >&2
                done
        else
                rm -rf "$TEST_DIR"
        fi
}
trap cleanup EXIT
trap "exit 143" INT TERM # so a killed test still runs cleanup

pass() { PASSED=$((PASSED + 1)); log "ok: $*"; }
fail() { FAILED=$((FAILED + 1)); log "FAIL: $*"; }
check() { # check "description" command...
        local what=$1
        shift
        if "$@"; then pass "$what"; else fail "$what"; fi
}
check_eq() { # check_eq "description" actual expected
        if [ "$2" == "$3" ]; then pass "$1"; else fail "$1: got '$2', expected '$3'"; fi
}
# Runs a vmatrix command that must fail with exit 1 and a one-line message matching a pattern.
check_refused() { # check_refused "description" pattern args...
        local what=$1 pattern=$2
        shift 2
        local out rc=0
        out=$("$VMATRIX" "$@" 2>&1 >/dev/null) || rc=$?
        if [ "$rc" != 0 ] && grep -qiE "$pattern" <<<"$out"; then
                pass "$what"
        else
                fail "$what: exit $rc, stderr '$out'"
        fi
}

vmx() { "$VMATRIX" "$@"; }
vm_field() { "$VMATRIX" vm show "$1" --json | jq -r ".$2"; }

# Authentication is on in every test (DESIGN.md §10): the CLI finds the cluster's admin token in
# $VMATRIX_CLUSTER_DIR/admin.token by itself; curl gets it from a curlrc of the test's own
# (CURL_HOME), so every request of a test carries it. `curl -q ...` sends none.
auth_use_token() { # auth_use_token TOKEN_FILE [CA_FILE]
        printf 'header = "Authorization: Bearer %s"\n' "$(head -n1 "$1")" >"$TEST_DIR/.curlrc"
        # the Oracle's API is HTTPS with a certificate of its own CA (cluster up: DIR/ca.pem)
        [ -n "${2:-}" ] && [ -f "$2" ] && printf 'cacert = "%s"\n' "$2" >>"$TEST_DIR/.curlrc"
        export CURL_HOME="$TEST_DIR"
}

# The URL of RM's node API as the Oracle calls it: mutual TLS, curl presenting the Oracle's own
# certificate (from the curlrc) and checking that the node's names RM. Prints the URL.
node_url_as_oracle() { # node_url_as_oracle RM
        local addr host port
        addr=$("$VMATRIX" rm list --json | jq -r ".[] | select(.name == \"$1\") | .address")
        host=${addr%:*} port=${addr##*:}
        {
                printf 'cert = "%s"\nkey = "%s"\n' "$VMATRIX_CLUSTER_DIR/oracle/ca/oracle.pem" \
                        "$VMATRIX_CLUSTER_DIR/oracle/ca/oracle.key"
                printf 'connect-to = "%s.rm.vmatrix:%s:%s:%s"\n' "$1" "$port" "$host" "$port"
        } >>"$TEST_DIR/.curlrc"
        echo "https://$1.rm.vmatrix:$port"
}

# The URL of the Oracle's node channel (mutual TLS, DESIGN.md §10), curl reaching it under the
# name its certificate has. Prints the URL; pass it $(rm_cert_args RM) to speak as that RM.
oracle_node_channel() {
        local host port
        host=$(jq -r '.oracle.address' "$VMATRIX_CLUSTER_DIR/cluster.json")
        port=$(jq -r '.oracle.node_port' "$VMATRIX_CLUSTER_DIR/cluster.json")
        printf 'connect-to = "oracle.vmatrix:%s:%s:%s"\n' "$port" "$host" "$port" >>"$TEST_DIR/.curlrc"
        echo "https://oracle.vmatrix:$port"
}
rm_cert_args() { # rm_cert_args RM: curl arguments presenting RM's certificate
        echo "--cert $VMATRIX_CLUSTER_DIR/nodes/$1/tls/cert.pem --key $VMATRIX_CLUSTER_DIR/nodes/$1/tls/key.pem"
}

cluster_up() { # cluster_up [--production N] [--chambers M]
        "$VMATRIX" cluster up --dir "$VMATRIX_CLUSTER_DIR" --accel "$VMATRIX_ACCEL" "$@" >/dev/null || return
        auth_use_token "$VMATRIX_CLUSTER_DIR/admin.token" "$VMATRIX_CLUSTER_DIR/ca.pem"
}

# GET http://ADDR/PATH with a short timeout; prints the body.
guest_get() { curl -sf --max-time 10 "http://$1$2"; }
guest_post() { curl -sf --max-time 30 -X POST "http://$1$2"; }

wait_until() { # wait_until SECONDS command...
        local deadline=$((SECONDS + $1))
        shift
        until "$@"; do
                [ $SECONDS -lt $deadline ] || return 1
                sleep 0.2
        done
}

finish() {
        echo "$TEST_NAME: $PASSED passed, $FAILED failed"
        [ "$FAILED" = 0 ]
}

# A process counts as alive unless it is gone or a zombie (orphans may be reaped late here).
proc_alive() {
        local st
        st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
        [ -n "$st" ] && [ "$st" != Z ]
}
proc_gone() { ! proc_alive "$1"; }
# No QEMU process whose command line mentions this test's directory.
no_qemu_left() {
        local p
        for p in $(pgrep -f "qemu-system" || true); do
                if tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "$TEST_DIR" && proc_alive "$p"; then
                        return 1
                fi
        done
        return 0
}
# No network namespace named after this cluster (names come from cluster.json's tag).
no_netns_left() {
        local bridge
        bridge=$(jq -r '.bridge // empty' "$VMATRIX_CLUSTER_DIR/cluster.json" 2>/dev/null || true)
        [ -z "$bridge" ] && return 0
        ! ip netns list 2>/dev/null | grep -q "^$bridge-" && ! ip link show "$bridge" >/dev/null 2>&1
}
