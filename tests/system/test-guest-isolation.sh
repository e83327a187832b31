#!/usr/bin/env bash
# Guests cannot reach the control plane (issue 11 part 4, docs/guest-isolation.md), with a real
# QEMU guest on a namespaced cluster (two production RMs, one chamber):
# - every RM says it firewalls its guests (rm list --json: guest_firewall), and its namespace
#   holds its table;
# - from inside the guest, through its serial console (busybox wget): the Oracle's API, its own
#   RM's node API, another RM's and the chamber's, a port of the test's own on the Oracle's host
#   (where HAProxy's frontends listen), and 10.0.2.2 (slirp's alias of the RM's loopback, where
#   the test listens too) each fail within seconds, while a "world" host (a network namespace of
#   the test's own behind a veth pair on 198.18.0.0/30, routed from the RM's namespace only)
#   serves. Each control-plane target is first shown to answer root in the RM's namespace, so a
#   failure from the guest is the firewall, not an empty port;
# - from outside, the guest's published port serves, from the host and from another RM;
# - the same checks from a process of the RM's namespace under a guest uid (setpriv), as the
#   rules see a confined QEMU: new connections refused, the world open, UDP to the Oracle's host
#   dropped.
# The rules match the uids of confined QEMUs (vmm/qemu/guest-uid.h). Where the node starts QEMU
# as root (no confinement yet) the firewall cannot apply to the guest: the guest's own checks of
# the control plane are then only logged, the setpriv checks stand in, and
# VMATRIX_TEST_REQUIRE_CONFINED=1 makes that a failure.
# No traffic leaves the machine: the RMs' namespaces have no default route, and the world is a
# namespace of this test. Run it with VMATRIX_GUEST_FIREWALL=off to see it fail.
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        log "needs root (network namespaces, nftables); nothing checked"
        fail "the test runs as root"
        finish
        exit
fi

WORLD_NS="vmxw-$$"
VETH_RM="vxw$$r"
VETH_WORLD="vxw$$w"
WORLD_NET=198.18.0 # RFC 2544's benchmark range: never routed on the Internet
WORLD_PORT=8080
PIDS=()
GUEST_UID_FIRST=1610612736 # vmm/qemu/guest-uid.h
GUEST_UID_LAST=$((GUEST_UID_FIRST + 65535))
SIM_UID=$((GUEST_UID_FIRST + 4242))

world_cleanup() {
        local p
        for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
        for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
        ip netns del "$WORLD_NS" 2>/dev/null || true # takes the veth pair with it
        ip link del "$VETH_RM" 2>/dev/null || true
}
on_exit() {
        local rc=$?
        world_cleanup
        (exit $rc)
        cleanup
}
trap on_exit EXIT

# busybox httpd serving DIR/index.html (the text) on ADDR:PORT, in namespace NS ("" for ours).
serve() { # serve NS ADDR PORT TEXT
        local dir
        dir=$(mktemp -d "$TEST_DIR/www-XXXXXX")
        echo "$4" >"$dir/index.html"
        if [ -n "$1" ]; then
                ip netns exec "$1" busybox httpd -f -p "$2:$3" -h "$dir" &
        else
                busybox httpd -f -p "$2:$3" -h "$dir" &
        fi
        PIDS+=($!)
}
free_port() { # a TCP and UDP port nothing listens on in namespace NS ("" for ours)
        local p in=()
        [ -n "$1" ] && in=(ip netns exec "$1")
        for p in $(shuf -i 20000-29999 -n 20); do
                "${in[@]}" ss -Htuln "sport = :$p" | grep -q . || { echo "$p"; return; }
        done
        echo 29999
}

cluster_up --production 2 --chambers 1
vmx image build tiny-http >/dev/null
cj="$VMATRIX_CLUSTER_DIR/cluster.json"
oracle_ip=$(jq -r .oracle.address "$cj")
oracle_port=$(jq -r .oracle.port "$cj")
rm_field() { jq -r --arg n "$1" ".rms[] | select(.name == \$n) | .$2" "$cj"; }

# ---- every RM firewalls its guests
check_eq "every RM reports guest_firewall" \
        "$(vmx rm list --json | jq -c '[.[] | .guest_firewall] | unique')" '[true]'
for n in prod1 prod2 chamber1; do
        check "$n's namespace holds its guest table" \
                bash -c "ip netns exec '$(rm_field "$n" netns)' nft list tables | grep -q 'inet vmatrix-guests-$n-'"
done
check "the RM's log says what its guests may not reach" \
        grep -q "guest firewall: table inet vmatrix-guests-prod1-" "$VMATRIX_CLUSTER_DIR/logs/prod1.log"

# ---- a guest on prod1
vmx vm create g1 --image tiny-http >/dev/null
vmx vm activate g1 --rm prod1 >/dev/null
addr=$(vm_field g1 address)
check "the guest answers on its published port" wait_until 60 guest_get "$addr" /health >/dev/null
rm_ns=$(rm_field prod1 netns)
rm_ip=$(rm_field prod1 address)
rm_port=$(rm_field prod1 port)
qemu_pid=$(vm_field g1 pid)
qemu_uid=$(awk '/^Uid:/ {print $5}' "/proc/$qemu_pid/status")
if [ "$qemu_uid" -ge "$GUEST_UID_FIRST" ] && [ "$qemu_uid" -le "$GUEST_UID_LAST" ]; then
        confined=1
        log "the guest's QEMU (pid $qemu_pid) runs under guest uid $qemu_uid: the rules apply to it"
else
        confined=0
        log "NOTE: the guest's QEMU (pid $qemu_pid) runs under uid $qemu_uid, not a guest uid (no confinement):" \
                "the firewall cannot apply to this guest; its control-plane checks are only logged," \
                "and a process under guest uid $SIM_UID stands in"
        if [ "${VMATRIX_TEST_REQUIRE_CONFINED:-0}" = 1 ]; then
                fail "the guest's QEMU runs under a guest uid (VMATRIX_TEST_REQUIRE_CONFINED=1)"
        fi
fi

# ---- the world: a namespace of ours, linked to prod1's namespace only
ip netns add "$WORLD_NS"
ip -n "$WORLD_NS" link set lo up
ip link add "$VETH_RM" type veth peer name "$VETH_WORLD"
ip link set "$VETH_RM" netns "$rm_ns"
ip link set "$VETH_WORLD" netns "$WORLD_NS"
ip -n "$rm_ns" addr add "$WORLD_NET.1/30" dev "$VETH_RM"
ip -n "$WORLD_NS" addr add "$WORLD_NET.2/30" dev "$VETH_WORLD"
ip -n "$rm_ns" link set "$VETH_RM" up
ip -n "$WORLD_NS" link set "$VETH_WORLD" up
serve "$WORLD_NS" "$WORLD_NET.2" "$WORLD_PORT" "world-$$"
world_url="http://$WORLD_NET.2:$WORLD_PORT/"

# ---- listeners of ours on the control plane: the RM's loopback, another port of the Oracle's host
lo_port=$(free_port "$rm_ns")
serve "$rm_ns" 127.0.0.1 "$lo_port" "loopback-$$"
lb_port=$(free_port "")
serve "" "$oracle_ip" "$lb_port" "oracle-host-$$"

# name|URL seen from the RM's namespace|URL seen from the guest
targets=(
        "oracle-api|http://$oracle_ip:$oracle_port/v1/health|http://$oracle_ip:$oracle_port/v1/health"
        "oracle-host-port|http://$oracle_ip:$lb_port/|http://$oracle_ip:$lb_port/"
        "own-node-api|http://$rm_ip:$rm_port/v1/health|http://$rm_ip:$rm_port/v1/health"
        "prod2-node-api|http://$(rm_field prod2 address):$(rm_field prod2 port)/v1/health|http://$(rm_field prod2 address):$(rm_field prod2 port)/v1/health"
        "chamber1-node-api|http://$(rm_field chamber1 address):$(rm_field chamber1 port)/v1/health|http://$(rm_field chamber1 address):$(rm_field chamber1 port)/v1/health"
        "rm-loopback|http://127.0.0.1:$lo_port/|http://10.0.2.2:$lo_port/"
)
in_rm() { ip netns exec "$rm_ns" "$@"; }
as_guest_uid() { ip netns exec "$rm_ns" setpriv --reuid="$SIM_UID" --regid="$SIM_UID" --clear-groups "$@"; }
answers() { curl -sf --max-time 5 -o /dev/null "$1"; }

# a TCP connect (the Oracle's API and the nodes speak TLS: reachable is what counts here)
tcp_open() { local hp=${1#*://}; hp=${hp%%/*}; timeout 3 bash -c "exec 3<>/dev/tcp/${hp%:*}/${hp##*:}" 2>/dev/null; }
for t in "${targets[@]}"; do
        IFS='|' read -r name url _ <<<"$t"
        check "$name is open to root in prod1's namespace ($url)" wait_until 10 in_rm bash -c "$(declare -f tcp_open); tcp_open '$url'"
done
check "the world answers root in prod1's namespace" wait_until 10 in_rm curl -sf --max-time 3 -o /dev/null "$world_url"

# ---- as the rules see a confined QEMU: a process under a guest uid in prod1's namespace
for t in "${targets[@]}"; do
        IFS='|' read -r name url _ <<<"$t"
        start=$(date +%s%N)
        rc=0
        as_guest_uid curl -s --max-time 3 -o /dev/null "$url" || rc=$?
        ms=$((($(date +%s%N) - start) / 1000000))
        # 7: refused (the firewall's reset); 28: timed out
        if { [ "$rc" = 7 ] || [ "$rc" = 28 ]; } && [ "$ms" -lt 4000 ]; then
                pass "guest uid: $name refused (curl $rc in $ms ms)"
        else
                fail "guest uid: $name is reachable or slow: curl exit $rc in $ms ms ($url)"
        fi
done
check_eq "guest uid: the world serves" "$(as_guest_uid curl -sf --max-time 5 "$world_url" || echo unreachable)" "world-$$"
# UDP: a datagram of root reaches a listener on the Oracle's host, one of a guest uid does not
udp_port=$(free_port "")
socat -u "UDP-RECV:$udp_port,bind=$oracle_ip" "OPEN:$TEST_DIR/udp.out,creat,append" &
PIDS+=($!)
sleep 0.3
in_rm bash -c "echo root-$$ | socat -u - UDP-SENDTO:$oracle_ip:$udp_port"
as_guest_uid bash -c "echo guest-$$ | socat -u - UDP-SENDTO:$oracle_ip:$udp_port" 2>/dev/null || true
sleep 0.5
check "UDP of root reaches the Oracle's host" grep -q "root-$$" "$TEST_DIR/udp.out"
check "UDP of a guest uid does not reach the Oracle's host" bash -c "! grep -q 'guest-$$' '$TEST_DIR/udp.out'"

# ---- from inside the guest, through its serial console
script="$TEST_DIR/console-in"
{
        # (busybox 1.35's wget -T crashes: timeout bounds it instead)
        # the body, or "refused" when the connection was (a TLS server that answers garbage is not)
        echo 't() { s=$(cut -d" " -f1 /proc/uptime); timeout 3 wget -q -O /tmp/w "$2" >/dev/null 2>/tmp/e; r=$?; e=$(cut -d" " -f1 /proc/uptime); b=$(head -c 40 /tmp/w 2>/dev/null); grep -qi refused /tmp/e && b=refused; echo "R:$1:$r:$s:$e:$b"; rm -f /tmp/w /tmp/e; }'
        for t in "${targets[@]}"; do
                IFS='|' read -r name _ gurl <<<"$t"
                echo "t $name $gurl"
        done
        echo "t world $world_url"
        echo "echo DONE-\$((6*7))-$$"
} >"$script"
out="$TEST_DIR/console-out"
# feed the script, then keep stdin open until the guest has answered all of it (or 60 s)
(
        sleep 1
        cat "$script"
        deadline=$((SECONDS + 60))
        until grep -aq "^DONE-42-$$" <(tr -d '\r' 2>/dev/null <"$out"); do
                [ $SECONDS -lt $deadline ] || break
                sleep 0.3
        done
) | timeout 90 "$VMATRIX" vm console g1 --attach >"$out" 2>&1 || true
check "the guest ran the checks (console)" grep -aq "^DONE-42-$$" <(tr -d '\r' <"$out")
result() { tr -d '\r' <"$out" | grep -a "^R:$1:" | tail -n 1; }
for t in "${targets[@]}"; do
        IFS='|' read -r name _ gurl <<<"$t"
        line=$(result "$name")
        IFS=: read -r _ _ rc s e body <<<"$line"
        secs=$(awk -v s="${s:-0}" -v e="${e:-0}" 'BEGIN { printf "%.2f", e - s }')
        if [ -z "$line" ]; then
                fail "guest: no answer for $name"
        elif [ "$confined" = 0 ]; then
                log "guest (unconfined, not checked): $name $gurl -> wget exit $rc in $secs s ${body:+($body)}"
        elif [ "$rc" != 0 ] && { [ "$body" = refused ] || [ "$rc" = 124 ] || [ "$rc" = 143 ]; } &&
                awk -v t="$secs" 'BEGIN { exit !(t < 4) }'; then
                pass "guest: $name refused ($gurl, wget exit $rc in $secs s)"
        else
                fail "guest: $name is reachable or slow from the guest: $gurl -> wget exit $rc in $secs s ${body:+($body)}"
        fi
done
IFS=: read -r _ _ rc _ _ body <<<"$(result world)"
check_eq "guest: the world host serves ($world_url)" "${rc:-none}:${body:-}" "0:world-$$"

# ---- from outside: the guest's published port
check "the published port serves from the host ($addr)" guest_get "$addr" /health >/dev/null
check "the published port serves a client on another RM" \
        ip netns exec "$(rm_field prod2 netns)" curl -sf --max-time 10 -o /dev/null "http://$addr/id"

# ---- a live migration: the source QEMU itself opens the destination's ports, which the rules
# open to its uid for the migration only
boot_id=$(guest_get "$addr" /id | jq -r .boot_id)
check "g1 migrates live to prod2" bash -c "'$VMATRIX' vm migrate g1 --to prod2 --live >/dev/null"
check_eq "g1 runs on prod2" "$(vm_field g1 rm)/$(vm_field g1 state)" "prod2/active"
addr=$(vm_field g1 address)
check_eq "g1 kept its boot across the migration" "$(guest_get "$addr" /id | jq -r .boot_id)" "$boot_id"
if [ "$confined" = 1 ]; then
        check "prod1 opened the destination's ports to the QEMU's uid" \
                grep -q "ports [0-9]* and [0-9]* open to uid $qemu_uid for a live migration" "$VMATRIX_CLUSTER_DIR/logs/prod1.log"
fi
table1=$(ip netns exec "$rm_ns" nft list tables | awk '/vmatrix-guests-prod1-/ {print $3}')
check_eq "prod1's migration opening is closed again" \
        "$(ip netns exec "$rm_ns" nft -j list set inet "$table1" live | jq '[.nftables[].set.elem // empty] | length')" 0

# ---- a clean exit (SIGTERM) removes the table of an RM without VMs, and keeps that of an RM
# whose VM runs on (it stays firewalled until the node starts again and replaces the table)
has_table() { ip netns exec "$(rm_field "$1" netns)" nft list tables | grep -q "inet vmatrix-guests-$1-"; }
node_pid() { cat "$VMATRIX_CLUSTER_DIR/pids/$1.pid"; }
p_prod2=$(node_pid prod2)
p_chamber1=$(node_pid chamber1)
kill -TERM "$p_prod2" "$p_chamber1"
check "prod2's node stopped" wait_until 15 proc_gone "$p_prod2"
check "chamber1's node stopped" wait_until 15 proc_gone "$p_chamber1"
no_table() { ! has_table "$1"; }
check "chamber1 (no VM) removed its table on a clean exit" no_table chamber1
check "prod2 (its VM runs on) kept its table" has_table prod2
check "prod2 says why it kept it" grep -q "table inet vmatrix-guests-prod2-.* kept: VMs still run here" \
        "$VMATRIX_CLUSTER_DIR/logs/prod2.log"
world_cleanup
PIDS=()
"$VMATRIX" cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no namespace or bridge is left" no_netns_left
check "no QEMU is left" no_qemu_left
finish
