#!/usr/bin/env bash
# The Oracle's liveness rules (src/oracle/oracle-liveness.h) against a real Oracle and RMs
# that are curl loops posting heartbeats: no QEMU, about 40 s. A stall of the Oracle itself
# (SIGSTOP) fences nobody; most RMs silent at once is an isolation that holds fencing until they
# report again or an operator fences one; a lone silent RM is down after 5 s.
source "$(dirname "$0")/lib.sh"

PORT=$((17000 + RANDOM % 1000))
URL="http://127.0.0.1:$PORT"
export VMATRIX_ORACLE="$URL"
ORACLE_PID=
BEATERS=()
stop_all() {
        for p in "${BEATERS[@]}"; do kill "$p" 2>/dev/null || true; done
        if [ -n "$ORACLE_PID" ]; then
                kill -CONT "$ORACLE_PID" 2>/dev/null || true
                kill "$ORACLE_PID" 2>/dev/null || true
                wait "$ORACLE_PID" 2>/dev/null || true
        fi
}
trap 'stop_all; cleanup' EXIT

"$VMATRIX" oracle --data "$TEST_DIR/oracle" --listen "127.0.0.1:$PORT" >"$TEST_DIR/oracle.log" 2>&1 &
ORACLE_PID=$!
wait_until 20 curl -sf "$URL/v1/health" -o /dev/null || { fail "the Oracle answers"; finish; exit 1; }
auth_use_token "$TEST_DIR/oracle/admin.token"
export VMATRIX_TOKEN=$(head -n1 "$TEST_DIR/oracle/admin.token")

# The node channel (mutual TLS) on the API's port + 1; a fake RM enrols as a node does: a key of
# its own, a join token, a certificate request (openssl), then heartbeats with its certificate.
NC="https://oracle.vmatrix:$((PORT + 1))"
TLS_TO=(--cacert "$TEST_DIR/oracle/ca/ca.pem" --connect-to "oracle.vmatrix:$((PORT + 1)):127.0.0.1:$((PORT + 1))")
enrol() { # enrol NAME
        local token csr
        token=$(curl -sf -d '{"role":"production"}' "$URL/v1/rms/join-tokens" | jq -r .token)
        openssl ecparam -name prime256v1 -genkey -noout -out "$TEST_DIR/$1.key" 2>/dev/null
        csr=$(openssl req -new -key "$TEST_DIR/$1.key" -subj "/CN=$1" 2>/dev/null)
        jq -n --arg t "$token" --arg n "$1" --arg c "$csr" '{token: $t, name: $n, csr: $c}' |
                curl -sf "${TLS_TO[@]}" -d @- "$NC/v1/join" | jq -r .certificate >"$TEST_DIR/$1.pem"
        grep -q 'BEGIN CERTIFICATE' "$TEST_DIR/$1.pem"
}
# beat NAME N: RM NAME heartbeats every second while $TEST_DIR/beat-NAME exists
beat() {
        local name=$1 n=$2
        [ -s "$TEST_DIR/$name.pem" ] || enrol "$name" || fail "$name enrols"
        touch "$TEST_DIR/beat-$name"
        (
                while [ -f "$TEST_DIR/beat-$name" ]; do
                        curl -s -o /dev/null --max-time 3 "${TLS_TO[@]}" --cert "$TEST_DIR/$name.pem" \
                                --key "$TEST_DIR/$name.key" -X POST -H 'Content-Type: application/json' \
                                -d "{\"role\":\"production\",\"address\":\"10.9.9.$n:7100\",\"vms\":[]}" \
                                "$NC/v1/rms/$name/heartbeat" || true
                        sleep 1
                done
        ) &
        BEATERS+=($!)
}
silence() { rm -f "$TEST_DIR/beat-$1"; }
rm_state() { vmx rm list --json | jq -r ".[] | select(.name == \"$1\") | .state"; }
events_of() { vmx events --json | jq "[.[] | select(.kind == \"$1\")] | length"; }
events_are() { [ "$(events_of "$1")" = "$2" ]; }
events_at_least() { [ "$(events_of "$1")" -ge "$2" ]; }
state_is() { [ "$(rm_state "$1")" = "$2" ]; }
all_up() { [ "$(vmx rm list --json | jq '[.[] | select(.state == "up")] | length')" = "$1" ]; }

for i in 1 2 3 4; do beat "rm-$i" "$i"; done
check "four RMs subscribe" wait_until 20 all_up 4

# 1. the Oracle stalls (stopped for 8 s: heartbeats fail meanwhile); nobody is down after
kill -STOP "$ORACLE_PID"
sleep 8
kill -CONT "$ORACLE_PID"
sleep 3
check_eq "a stall of the Oracle declares no RM down" "$(events_of rm-down)" 0
check "the stall is an event" wait_until 5 events_at_least oracle-stall 1
check "the stall is counted in /v1/health" test "$(curl -sf "$URL/v1/health" | jq .stalls)" -ge 1
check "every RM is still up" all_up 4

# 2. three of four fall silent at once: an isolation, nothing is fenced
for i in 1 2 3; do silence "rm-$i"; done
check "an isolation is recorded" wait_until 15 events_are isolation 1
check_eq "/v1/health says isolated" "$(curl -sf "$URL/v1/health" | jq .isolated)" true
sleep 3
check_eq "no RM is down during the isolation" "$(events_of rm-down)" 0
check "the silent RMs show their silence" test "$(vmx rm list --json | jq '.[] | select(.name == "rm-1") | .silent_s | floor')" -ge 5
for i in 1 2 3; do beat "rm-$i" "$i"; done
check "the isolation ends when they report" wait_until 10 events_are isolation-ended 1
check_eq "still no RM down" "$(events_of rm-down)" 0
check "every RM up after the isolation" all_up 4

# 3. an operator fences one during an isolation
for i in 1 2 3; do silence "rm-$i"; done
check "a second isolation" wait_until 15 events_are isolation 2
check "rm fence declares it down" vmx rm fence rm-2 --json >/dev/null
check_eq "rm-2 is down" "$(rm_state rm-2)" down
check_eq "rm-1 is held up" "$(rm_state rm-1)" up
check_refused "fencing it again is refused" "down already" rm fence rm-2
check_refused "fencing an unknown RM is refused" "no RM named" rm fence rm-9
for i in 1 2 3; do beat "rm-$i" "$i"; done
check "rm-2 comes back up when it reports" wait_until 10 state_is rm-2 up

# 4. a lone silent RM is down after 5 s
sleep 2
silence rm-4
check "a lone silent RM is down" wait_until 12 state_is rm-4 down
check_eq "the others stay up" "$(vmx rm list --json | jq '[.[] | select(.state == "up")] | length')" 3

finish
