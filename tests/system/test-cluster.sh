#!/usr/bin/env bash
# The local-cluster launcher (src/cluster) with stand-in Oracle, node and QEMU processes:
# `up` starts everything, each RM in its own network namespace on a private bridge (as root),
# the Oracle reaches every node and the RMs reach each other, `restart` keeps addresses and
# namespaces and updates pid files, a second `up` is refused, parallel clusters do not collide,
# `down` leaves no process, namespace, veth or bridge, even after kill -9, a damaged
# cluster.json, a deleted directory, a process ignoring SIGTERM, or a pid file naming an
# unrelated process; failed starts clean up after themselves. Then the same on loopback ports.
#
# usage: test-cluster.sh [CLUSTER_TEST]   (the cluster-test driver; default: next to $VMATRIX,
#        or build/src/cluster/cluster-test). Runs the namespace part only as root.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
T=${1:-${CLUSTER_TEST:-}}
if [ -z "$T" ] && [ -n "${VMATRIX:-}" ] && [ -x "$(dirname "$VMATRIX")/src/cluster/cluster-test" ]; then
        T=$(dirname "$VMATRIX")/src/cluster/cluster-test
fi
T=$(realpath "${T:-$HERE/../../build/src/cluster/cluster-test}")
[ -x "$T" ] || { echo "test-cluster: no cluster-test driver at $T (run ninja -C build)" >&2; exit 1; }

WORK=$(mktemp -d /tmp/vmx-test-cluster-XXXXXX)
PASSED=0
FAILED=0
SLEEPER=
unset VMATRIX_STUB_FAIL_NODE VMATRIX_STUB_HANG_NODE VMATRIX_STUB_IGNORE_TERM VMATRIX_CLUSTER_TIMEOUT
unset VMATRIX_CLUSTER_NETNS

log() { printf '[test-cluster] %s\n' "$*" >&2; }
cleanup() {
        local rc=$?
        for d in "$WORK"/c*; do
                "$T" down --dir "$d" >/dev/null 2>&1 || true
        done
        [ -z "$SLEEPER" ] || kill "$SLEEPER" 2>/dev/null || true
        if [ "$rc" != 0 ] || [ "$FAILED" != 0 ]; then
                log "FAILED (logs kept in $WORK)"
                for f in "$WORK"/c*/logs/*.log; do
                        [ -f "$f" ] || continue
                        echo "---- tail of $f" >&2
                        tail -n 15 "$f" >&2
                done
        else
                rm -rf "$WORK"
        fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
# A driver command that must fail (non-zero) with stderr matching pattern.
check_refused() { # check_refused "description" pattern args...
        local what=$1 pattern=$2 out rc=0
        shift 2
        out=$("$T" "$@" 2>&1 >/dev/null) || rc=$?
        if [ "$rc" != 0 ] && grep -qE "$pattern" <<<"$out"; then
                pass "$what"
        else
                fail "$what: exit $rc, stderr '$out'"
        fi
}

url_of() { cat "$1/oracle.url"; }
pid_of() { cat "$1/pids/$2.pid"; }
# Alive and not a zombie (PID 1 here may reap orphans late).
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" | cut -c1)" != Z ]; }
none_alive() { local p; for p in "$@"; do ! alive "$p" || return 1; done; }
rms_up() { curl -sf --max-time 5 "$(url_of "$1")/v1/rms" | jq '[.[] | select(.state == "up")] | length'; }
rm_field() { curl -sf --max-time 5 "$(url_of "$1")/v1/rms" | jq -r ".[] | select(.name == \"$2\") | .$3"; }
wait_rms_up() { # wait_rms_up dir count: up to 5 s
        local _
        for _ in $(seq 50); do
                [ "$(rms_up "$1")" = "$2" ] && return 0
                sleep 0.1
        done
        return 1
}
json_field() { jq -r "$2" "$1/cluster.json"; }
qemu_pids() { find "$1" -name qemu.pid -exec cat {} + 2>/dev/null | sort -n | tr '\n' ' '; }
procs_in() { pgrep -f -- "$1/" | tr '\n' ' ' || true; }

# Nothing of the cluster in dir survives: no process mentioning dir, none of the given pids,
# no namespace or link with the cluster's prefix.
check_gone() { # check_gone "description" dir prefix-or-empty pids...
        local what=$1 dir=$2 prefix=$3 p left=""
        shift 3
        for p in "$@"; do alive "$p" && left="$left $p"; done
        local procs ns="" links=""
        procs=$(procs_in "$dir")
        if [ -n "$prefix" ]; then
                ns=$(ip netns list | awk '{print $1}' | grep "^$prefix" || true)
                links=$(ip -o link show | awk -F': ' '{print $2}' | grep "^$prefix" || true)
        fi
        if [ -z "$left$procs$ns$links" ] && [ ! -e "$dir/oracle.url" ] && [ -z "$(ls -A "$dir/pids" 2>/dev/null)" ]; then
                pass "$what"
        else
                fail "$what: pids alive '$left', processes '$procs', namespaces '$ns', links '$links'," \
                        "files: $(ls "$dir" "$dir/pids" 2>/dev/null | tr '\n' ' ')"
        fi
}

all_pids() { # pids of the oracle, nodes and fake QEMUs of dir
        local d=$1
        cat "$d"/pids/*.pid 2>/dev/null | tr '\n' ' '
        qemu_pids "$d"
}

netns_part() {
        log "--- network namespaces (root)"
        local c1=$WORK/c1 c2=$WORK/c2
        check "up with 2 production RMs and 1 chamber" "$T" up --dir "$c1" --production 2 --chambers 1 --accel tcg
        local url bridge subnet prefix
        url=$(url_of "$c1")
        bridge=$(json_field "$c1" .bridge)
        subnet=$(json_field "$c1" .subnet)
        prefix="$bridge"
        local base=${subnet%.0/24}
        check "oracle.url is http://10.B.C.1:7000" grep -qE '^http://10\.[0-9]+\.[0-9]+\.1:7000$' "$c1/oracle.url"
        check_eq "the Oracle listens on .1 of the cluster's /24" "$url" "http://$base.1:7000"
        check "the bridge name fits an interface name" test "${#bridge}" -le 15
        check "the subnet is a /24 in 10/8 that is on the bridge" \
                bash -c "ip -4 -o addr show dev '$bridge' | grep -q ' $base.1/24 '"
        check_eq "no other interface or route uses the subnet" \
                "$(ip -4 route show table all | grep -F " $base." | grep -vF "dev $bridge " || true)" ""
        check_eq "nothing arriving on the bridge is forwarded" "$(cat "/proc/sys/net/ipv4/conf/$bridge/forwarding")" 0
        check_eq "every RM is up at the Oracle" "$(rms_up "$c1")" 3
        for n in oracle prod1 prod2 chamber1; do
                check "pid file of $n names a live process" alive "$(pid_of "$c1" "$n")"
        done
        check "no pid file is left half-written" bash -c "! ls '$c1'/pids | grep -v '\\.pid\$'"
        check_eq "the Oracle runs in the root namespace" "$(ip netns identify "$(pid_of "$c1" oracle)")" ""

        local k=2 n ns addr
        for n in prod1 prod2 chamber1; do
                ns=$(json_field "$c1" ".rms[] | select(.name == \"$n\") | .netns")
                addr=$base.$k
                check_eq "$n runs in its own namespace" "$(ip netns identify "$(pid_of "$c1" "$n")")" "$ns"
                check_eq "$n has address $addr in it" "$(ip -n "$ns" -4 -o addr show dev eth0 | awk '{print $4}')" "$addr/24"
                check_eq "$n registered with its address" "$(rm_field "$c1" "$n" address)" "$addr:7070"
                check_eq "$n's role is right" "$(rm_field "$c1" "$n" role)" \
                        "$([ "$n" = chamber1 ] && echo chamber || echo production)"
                check "lo is up in $n's namespace" bash -c "ip -n '$ns' link show lo | grep -q 'UP'"
                check_eq "$n's namespace has no default route" "$(ip -n "$ns" route show default)" ""
                check_eq "the Oracle reaches $n at its address" \
                        "$(curl -sf --max-time 5 "$url/v1/rms/$n/ping" | jq -r '.node.name + " " + (.node.pid|tostring)')" \
                        "$n $(pid_of "$c1" "$n")"
                check_eq "$n sees its own namespace's links in /sys" \
                        "$(ls "/proc/$(pid_of "$c1" "$n")/root/sys/class/net" | tr '\n' ' ')" "eth0 lo "
                k=$((k + 1))
        done
        local ns1
        ns1=$(json_field "$c1" '.rms[0].netns')
        check_eq "prod1 reaches prod2 across the bridge" \
                "$(ip netns exec "$ns1" curl -sf --max-time 5 "http://$base.3:7070/v1/ping" | jq -r .name)" prod2
        check "the fake QEMUs run in their nodes' namespaces" \
                bash -c "for p in $(qemu_pids "$c1"); do ip netns identify \$p | grep -q '^$prefix-' || exit 1; done"
        check_eq "one fake QEMU per node" "$(qemu_pids "$c1" | wc -w)" 3

        check_refused "a second up on a running cluster is refused" "already up" up --dir "$c1"
        check_eq "the refused up changed nothing" "$(rms_up "$c1")" 3
        check_refused "restart of an unknown name is refused" "no node named prod9 in cluster" restart --dir "$c1" prod9

        # ---- restart keeps address, namespace and QEMU; updates the pid file
        local old new qemus
        qemus=$(qemu_pids "$c1")
        old=$(pid_of "$c1" prod1)
        check "restart prod1" "$T" restart --dir "$c1" prod1
        new=$(pid_of "$c1" prod1)
        check "prod1 has a new pid" test "$old" != "$new"
        check "the old prod1 is gone" none_alive "$old"
        check_eq "the new prod1 is in the same namespace" "$(ip netns identify "$new")" "$ns1"
        check_eq "the new prod1 is up with the same address" "$(rm_field "$c1" prod1 state) $(rm_field "$c1" prod1 address)" \
                "up $base.2:7070"
        check_eq "the Oracle reaches the new prod1" "$(curl -sf --max-time 5 "$url/v1/rms/prod1/ping" | jq -r .node.pid)" "$new"
        check_eq "restarting a node leaves its QEMU running" "$(qemu_pids "$c1")" "$qemus"
        old=$(pid_of "$c1" oracle)
        check "restart oracle" "$T" restart --dir "$c1" oracle
        check "the oracle has a new pid" test "$old" != "$(pid_of "$c1" oracle)"
        check_eq "the Oracle URL is unchanged" "$(url_of "$c1")" "$url"
        check "the restarted Oracle answers" curl -sf --max-time 5 "$url/v1/health" -o /dev/null
        check "the nodes register with the restarted Oracle" wait_rms_up "$c1" 3

        # ---- a second cluster in another directory gets other names and another subnet
        check "a second cluster comes up next to the first" "$T" up --dir "$c2" --production 1 --chambers 0
        check "it has another bridge" test "$(json_field "$c2" .bridge)" != "$bridge"
        check "it has another subnet" test "$(json_field "$c2" .subnet)" != "$subnet"
        check_eq "it has one RM up" "$(rms_up "$c2")" 1
        local c2pids c2bridge
        c2pids=$(all_pids "$c2")
        c2bridge=$(json_field "$c2" .bridge)
        check "down of the second cluster" "$T" down --dir "$c2"
        # shellcheck disable=SC2086
        check_gone "the second cluster is gone" "$c2" "$c2bridge" $c2pids
        check_eq "the first cluster is untouched" "$(rms_up "$c1")" 3

        # ---- down never kills an unrelated process a pid file names, yet stops the real one
        sleep 300 &
        SLEEPER=$!
        local pids
        pids=$(all_pids "$c1")
        echo "$SLEEPER" >"$c1/pids/prod2.pid"
        check "down" "$T" down --dir "$c1"
        # shellcheck disable=SC2086
        check_gone "down leaves no process, namespace, veth or bridge" "$c1" "$prefix" $pids
        check "down spared the unrelated process its pid file named" alive "$SLEEPER"
        kill "$SLEEPER"
        SLEEPER=
        check "down again is fine" "$T" down --dir "$c1"
        check "down of a directory that never held a cluster is fine" "$T" down --dir "$WORK/c-none"

        # ---- up after a crash: kill -9 everything but QEMU, then up again
        check "up again" "$T" up --dir "$c1"
        pids=$(all_pids "$c1")
        qemus=$(qemu_pids "$c1")
        # shellcheck disable=SC2046
        kill -9 $(cat "$c1"/pids/*.pid)
        check "up over the remains of a crash" "$T" up --dir "$c1"
        check_eq "all RMs are up after the crash" "$(rms_up "$c1")" 3
        # shellcheck disable=SC2086
        check "the crashed run's QEMUs were stopped" none_alive $qemus

        # ---- down with a damaged cluster.json falls back to derived names
        pids=$(all_pids "$c1")
        head -c 100 "$c1/cluster.json" >"$c1/cluster.json.half" && mv "$c1/cluster.json.half" "$c1/cluster.json"
        check "down with a damaged cluster.json" "$T" down --dir "$c1"
        # shellcheck disable=SC2086
        check_gone "it still removes everything" "$c1" "$prefix" $pids

        # ---- down after the directory itself was deleted
        local c3=$WORK/c3 c3prefix
        check "up in a directory about to be deleted" "$T" up --dir "$c3" --production 1 --chambers 1
        c3prefix=$(json_field "$c3" .bridge)
        pids=$(all_pids "$c3")
        rm -rf "$c3"
        check "down of the deleted directory" "$T" down --dir "$c3"
        # shellcheck disable=SC2086
        check_gone "it stops the processes and removes the network" "$c3" "$c3prefix" $pids

        # ---- a node that ignores SIGTERM is killed after ~10 s
        check "up with a node ignoring SIGTERM" env VMATRIX_STUB_IGNORE_TERM=prod1 "$T" up --dir "$c1"
        pids=$(all_pids "$c1")
        local start=$SECONDS out
        out=$("$T" down --dir "$c1" 2>&1)
        check "down reports the SIGKILL" grep -q "did not stop on SIGTERM" <<<"$out"
        check "down waited for SIGTERM first" test $((SECONDS - start)) -ge 9
        # shellcheck disable=SC2086
        check_gone "the stubborn node is gone" "$c1" "$prefix" $pids

        # ---- failed starts clean up after themselves and name the culprit and its log
        if out=$(VMATRIX_STUB_FAIL_NODE=prod2 "$T" up --dir "$c1" 2>&1); then
                fail "up with a crashing node succeeded"
        else
                pass "up with a crashing node fails"
        fi
        check "the error names prod2 and its log" grep -qE "prod2 exited with status 3.*logs/prod2.log" <<<"$out"
        check_gone "the failed up left nothing" "$c1" "$prefix"
        if out=$(VMATRIX_STUB_HANG_NODE=chamber1 VMATRIX_CLUSTER_TIMEOUT=3 "$T" up --dir "$c1" 2>&1); then
                fail "up with a silent node succeeded"
        else
                pass "up with a silent node times out"
        fi
        check "the error names chamber1 and its log" \
                grep -qE "RM chamber1 .*does not show it up.*logs/chamber1.log.*did not come up within 3 s" <<<"$out"
        check "it names no RM that came up" bash -c "! grep -q 'prod1 (' <<<'$out'"
        check_gone "the timed-out up left nothing" "$c1" "$prefix"
}

loopback_part() {
        log "--- loopback (VMATRIX_CLUSTER_NETNS=0)"
        local c4=$WORK/c4
        export VMATRIX_CLUSTER_NETNS=0
        check "up on loopback" "$T" up --dir "$c4" --production 1 --chambers 2
        check "oracle.url is a loopback URL" grep -qE '^http://127\.0\.0\.1:[0-9]+$' "$c4/oracle.url"
        check_eq "every RM is up" "$(rms_up "$c4")" 3
        check_eq "no namespaces or bridge recorded" "$(json_field "$c4" '.netns, .bridge')" "false
null"
        check_eq "every process has its own port" \
                "$(json_field "$c4" '[.oracle.port, .rms[].port] | unique | length')" 4
        local port old
        port=$(json_field "$c4" '.rms[] | select(.name == "chamber2") | .port')
        check_eq "chamber2 registered with its port" "$(rm_field "$c4" chamber2 address)" "127.0.0.1:$port"
        old=$(pid_of "$c4" chamber2)
        check "restart chamber2" "$T" restart --dir "$c4" chamber2
        check "chamber2 has a new pid" test "$old" != "$(pid_of "$c4" chamber2)"
        check_eq "chamber2 kept its port" "$(rm_field "$c4" chamber2 address)" "127.0.0.1:$port"
        check_refused "a second up is refused" "already up" up --dir "$c4"
        local pids
        pids=$(all_pids "$c4")
        check "down" "$T" down --dir "$c4"
        # shellcheck disable=SC2086
        check_gone "down leaves no process (fake QEMUs found by qemu.pid)" "$c4" "" $pids
        check "down again is fine" "$T" down --dir "$c4"
        unset VMATRIX_CLUSTER_NETNS
}

if [ "$(id -u)" = 0 ]; then
        netns_part
else
        log "not root: skipping the network-namespace part"
fi
loopback_part

echo "test-cluster: $PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
