#!/usr/bin/env bash
# Confined QEMU (docs/confinement.md), with real QEMU VMs under TCG on a local cluster (as root):
# - every QEMU (booted in a chamber; a clone started in a warm slot of a production RM) runs under
#   a uid of its own from the guest range, with no capabilities, seccomp and no_new_privs;
# - its cgroups hold the memory, CPU and pids limits of its config (--cpu-limit, defaults);
# - from its mount namespace the node's data directory, another VM's files, the Oracle's data and
#   the cluster directory's files (admin.token) cannot be reached, its own run directory can;
# - a guest busy on every vCPU stays under its cpu.max;
# - rm list shows the RMs confine; a bad --cpu-limit is refused by the CLI and by the API;
# - a restarted node re-attaches to its confined QEMUs and still releases their uids;
# - a deleted VM's uid and cgroups go at once, and `cluster down` leaves none behind.
source "$(dirname "$0")/lib.sh"

if [ "$(id -u)" != 0 ]; then
        log "skipped: confinement needs root"
        finish
        exit 0
fi
CLAIMS=/run/vmatrix/guest-uids
UID_FIRST=1610612736
UID_LAST=$((UID_FIRST + 65535))

cluster_up --production 1 --chambers 1
O=$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")
NODES="$VMATRIX_CLUSTER_DIR/nodes"
# a secret of the cluster directory's own, beside admin.token (which the Oracle may write)
echo "canary-$$" >"$VMATRIX_CLUSTER_DIR/secret.canary"

check_eq "rm list says every RM confines" "$(vmx rm list --json | jq -c '[.[] | .confined] | unique')" '[true]'
check "the CONFINED column says yes" bash -c "\"$VMATRIX\" rm list | grep -E '^chamber1 .* yes' >/dev/null"

# ---- bad --cpu-limit: refused, nothing created
check_refused "--cpu-limit 0" "cpu-limit must be a percentage" vm create bad --image tiny-http --cpu-limit 0
check_refused "--cpu-limit above 100 per vCPU" "from 1 to 200" vm create bad --image tiny-http --vcpus 2 --cpu-limit 201
check_refused "--cpu-limit not a number" "cpu-limit" vm create bad --image tiny-http --cpu-limit half
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{"name":"bad","image":"tiny-http","vcpus":1,"cpu_limit":101}' "$O/v1/vms")
check_eq "the API refuses cpu_limit 101 for 1 vCPU" "$code" 400
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
        -d '{"name":"bad","image":"tiny-http","cpu_limit":"50"}' "$O/v1/vms")
check_eq "the API refuses a string cpu_limit" "$code" 400
check_eq "no VM was created" "$(vmx vm list --json | jq length)" 0

vmx image build tiny-http >/dev/null
vmx vm create c1 --image tiny-http --vcpus 2 --cpu-limit 50 >/dev/null
vmx vm create c2 --image tiny-http >/dev/null
check_eq "vm show has the CPU limit" "$(vm_field c1 cpu_limit)" 50
vmx vm create c3 --image tiny-http >/dev/null
vmx vm boot c1 --rm chamber1 >/dev/null
vmx vm boot c2 --rm chamber1 >/dev/null
vmx vm boot c3 --rm chamber1 >/dev/null
# c2 into the Nest and out again onto prod1, which learns its shape and keeps a warm slot once
# it is idle; a clone of c2 then starts in that slot
wait_until 90 guest_get "$(vm_field c2 address)" /health >/dev/null || fail "c2 answers after boot"
vmx vm hibernate c2 >/dev/null
vmx vm activate c2 --rm prod1 >/dev/null
vmx vm deactivate c2 >/dev/null
wait_until 30 bash -c "ls $NODES/prod1/slots | grep -q ." || fail "prod1 keeps a warm slot"
sleep 1 # the slot's QEMU reaches --preconfig
clone=$(vmx vm clone c2 --count 1 --json | jq -r '.clones[0].name')
check_eq "the clone is active on prod1" "$(vm_field "$clone" rm)" prod1
check "the clone took the warm slot" grep -q "slot" <<<"$(readlink "$NODES/prod1/vms/$clone/run")"
wait_until 90 guest_get "$(vm_field c1 address)" /health >/dev/null || fail "c1 answers after boot"
check "the clone answers" guest_get "$(vm_field "$clone" address)" /health

# cg_dir PID CONTROLLER: the directory of the QEMU's group that holds CONTROLLER ("" for its v2
# group), from /proc/PID/cgroup and the mounts: v2 where v2 has the controller, else its v1
# hierarchy (hybrid hosts, like this project's test machines).
V2=$(findmnt -n -t cgroup2 -o TARGET | head -n 1)
cg_dir() {
        local pid=$1 ctl=$2 v1
        if [ -z "$ctl" ] || { [ -n "$V2" ] && grep -qw "$ctl" "$V2/cgroup.controllers"; }; then
                echo "$V2$(awk -F: '$1 == "0" {print $3}' "/proc/$pid/cgroup")"
                return
        fi
        v1=$(findmnt -n -t cgroup -o TARGET,OPTIONS | awk -v c="$ctl" '{n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) {print $1; exit}}')
        echo "$v1$(awk -F: -v c="$ctl" '{n = split($2, o, ","); for (i = 1; i <= n; i++) if (o[i] == c) print $3}' "/proc/$pid/cgroup")"
}
cg_limit() { # cg_limit PID memory|cpu|pids: the limit, as cgroup v2 writes it ("max" aside)
        local d
        d=$(cg_dir "$1" "$2")
        if [ -n "$V2" ] && [[ "$d" == "$V2"/* ]]; then
                case $2 in
                memory) cat "$d/memory.max" ;;
                cpu) cat "$d/cpu.max" ;;
                pids) cat "$d/pids.max" ;;
                esac
        else
                case $2 in
                memory) cat "$d/memory.limit_in_bytes" ;;
                cpu) echo "$(cat "$d/cpu.cfs_quota_us") $(cat "$d/cpu.cfs_period_us")" ;;
                pids) cat "$d/pids.max" ;;
                esac
        fi
}

# ---- every QEMU: its identity, its limits, its view of the files
uids=""
for vm in c1 c3 "$clone"; do
        pid=$(vm_field "$vm" pid)
        rm=$(vm_field "$vm" rm)
        st="/proc/$pid/status"
        u=$(awk '/^Uid:/{print $2}' "$st")
        check "$vm: QEMU runs under a uid of the guest range ($u)" test "$u" -ge $UID_FIRST -a "$u" -le $UID_LAST
        check_eq "$vm: real, effective, saved uid alike" "$(awk '/^Uid:/{print ($2==$3 && $3==$4 && $4==$5)}' "$st")" 1
        check_eq "$vm: gid is its uid" "$(awk '/^Gid:/{print $2}' "$st")" "$u"
        check_eq "$vm: no supplementary groups" "$(awk '/^Groups:/{print NF}' "$st")" 1
        check_eq "$vm: CapEff" "$(awk '/^CapEff:/{print $2}' "$st")" 0000000000000000
        check_eq "$vm: CapPrm" "$(awk '/^CapPrm:/{print $2}' "$st")" 0000000000000000
        check_eq "$vm: CapBnd" "$(awk '/^CapBnd:/{print $2}' "$st")" 0000000000000000
        check_eq "$vm: Seccomp (filter mode)" "$(awk '/^Seccomp:/{print $2}' "$st")" 2
        check_eq "$vm: NoNewPrivs" "$(awk '/^NoNewPrivs:/{print $2}' "$st")" 1
        check "$vm: its claim names its data directory and name" grep -qx "key $NODES/$rm/$vm" "$CLAIMS/$u"
        uids="$uids $u"

        data="$NODES/$rm"
        in_ns() { nsenter -t "$pid" -m -- "$@"; }
        # (a VM that took a warm slot keeps the slot's run directory, DIR/run links to it)
        check "$vm: its own run directory is there" in_ns test -S "$(readlink -f "$data/vms/$vm/run")/qmp.sock"
        check "$vm: its disk is there" in_ns test -f "$data/vms/$vm/disk.qcow2"
        check "$vm: the node's record of it is not" bash -c "! nsenter -t $pid -m -- test -e $data/vms/$vm/node-vm.json"
        check "$vm: the node's chunk cache is not" bash -c "! nsenter -t $pid -m -- test -e $data/cache"
        check "$vm: the node's accel cache is not" bash -c "! nsenter -t $pid -m -- test -e $data/accel.json"
        check "$vm: the node's TLS key is not" bash -c "! nsenter -t $pid -m -- test -e $data/tls"
        check "$vm: the Oracle's data is not" bash -c "! nsenter -t $pid -m -- test -e $VMATRIX_CLUSTER_DIR/oracle"
        check "$vm: the cluster's secrets are not" \
                bash -c "! nsenter -t $pid -m -- test -e $VMATRIX_CLUSTER_DIR/secret.canary && ! nsenter -t $pid -m -- test -e $VMATRIX_CLUSTER_DIR/admin.token"
        check "$vm: the cluster's logs are not" bash -c "! nsenter -t $pid -m -- test -e $VMATRIX_CLUSTER_DIR/logs"
        check "$vm: /root is not" bash -c "! nsenter -t $pid -m -- ls /root >/dev/null 2>&1"
        check_eq "$vm: /tmp holds only the way to its files" "$(in_ns ls /tmp)" "$(basename "$TEST_DIR")"
done
check "the QEMUs run under different uids" test "$(tr ' ' '\n' <<<"$uids" | grep . | sort -u | wc -l)" = 3
pid1=$(vm_field c1 pid)
check "c3's files are on chamber1" test -f "$NODES/chamber1/vms/c3/disk.qcow2"
check "c1 cannot reach c3's files on the same RM" bash -c "! nsenter -t $pid1 -m -- test -e $NODES/chamber1/vms/c3"
u1=$(awk '/^Uid:/{print $2}' "/proc/$pid1/status")
check "c1's uid sees its own QEMU in its /proc" nsenter -t "$pid1" -m -S "$u1" -G "$u1" -- test -e "/proc/$pid1/status"
check "c1's uid does not see c3's QEMU in its /proc" \
        bash -c "! nsenter -t $pid1 -m -S $u1 -G $u1 -- test -e /proc/$(vm_field c3 pid)/status"
check "c1 cannot reach the other node's data" bash -c "! nsenter -t $pid1 -m -- test -e $NODES/prod1"

# ---- limits: c1 has 2 vCPUs and --cpu-limit 50, the clone has c2's defaults (1 vCPU)
check_eq "c1: memory limit is its RAM + 256 MiB" "$(cg_limit "$pid1" memory)" $(((128 + 256) * 1048576))
check_eq "c1: cpu limit is half a CPU" "$(cg_limit "$pid1" cpu)" "50000 100000"
check_eq "c1: pids limit" "$(cg_limit "$pid1" pids)" 130
pidc=$(vm_field "$clone" pid)
check_eq "clone: cpu limit is 100% per vCPU" "$(cg_limit "$pidc" cpu)" "100000 100000"
check_eq "clone: pids limit" "$(cg_limit "$pidc" pids)" 129
check "clone: its group is named after it" grep -q "/$clone\$" <<<"$(cg_dir "$pidc" cpu)"

# ---- a guest busy on both vCPUs stays under its half CPU
out=$( (sleep 0.5; echo 'for i in 1 2; do (while :; do :; done) & done; echo burn=started'; sleep 1) |
        timeout 20 "$VMATRIX" vm console c1 --attach || true)
check "the guest started burning" grep -q 'burn=started' <<<"$out"
sleep 1
v2=$(cg_dir "$pid1" "")
usage() { awk '/^usage_usec/{print $2}' "$v2/cpu.stat"; }
u0=$(usage)
t0=$(date +%s%N)
sleep 4
u1=$(usage)
t1=$(date +%s%N)
share=$(( (u1 - u0) * 1000 / ((t1 - t0) / 1000) )) # thousandths of one CPU
log "c1 used $share/1000 of a CPU over $(( (t1 - t0) / 1000000 )) ms (cpu.max 50000 100000)"
check "c1 stays under its cpu.max (at most 0.75 CPU with the margin; measured $share/1000)" test "$share" -le 750
check "c1 did burn (at least 0.2 CPU; measured $share/1000)" test "$share" -ge 200
throttled=$(awk '/^nr_throttled/{print $2}' "$(cg_dir "$pid1" cpu)/cpu.stat")
check "the kernel throttled c1 ($throttled periods)" test "${throttled:-0}" -gt 0

# the nodes' directories in the cgroup trees, for the checks after cluster down
nodedirs=""
for p in "$pidc" "$pid1"; do
        for ctl in "" memory cpu pids; do
                nodedirs="$nodedirs $(dirname "$(cg_dir "$p" "$ctl")")"
        done
done

# ---- a restarted node finds its confined QEMUs again, and still releases them
pid3=$(vm_field c3 pid)
u3=$(awk '/^Uid:/{print $2}' "/proc/$pid3/status")
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" chamber1 >/dev/null
wait_until 20 bash -c "grep -q 're-attached to pid $pid3' $VMATRIX_CLUSTER_DIR/logs/chamber1.log" ||
        fail "chamber1 re-attaches to c3's QEMU"
check_eq "c3 runs on in the same QEMU" "$(vm_field c3 pid)" "$pid3"
check "c3 answers after the node's restart" guest_get "$(vm_field c3 address)" /health
check "c3's uid claim survived the restart" grep -qx "key $NODES/chamber1/c3" "$CLAIMS/$u3"
vmx vm delete c3 --force >/dev/null
wait_until 10 bash -c "! grep -qsx 'key $NODES/chamber1/c3' $CLAIMS/$u3" || true
check "the restarted node released c3's uid claim" bash -c "! grep -qsx 'key $NODES/chamber1/c3' $CLAIMS/$u3"

# ---- released: a deleted VM's uid and cgroups go with its QEMU
u1c=$(awk '/^Uid:/{print $2}' "/proc/$pid1/status")
d1=$(cg_dir "$pid1" cpu)
vmx vm delete c1 --force >/dev/null
wait_until 10 bash -c "! test -e $CLAIMS/$u1c && ! test -e $d1" || true
check "c1's uid claim is released" bash -c "! grep -qs 'key $NODES/chamber1/c1\$' $CLAIMS/*"
check "c1's cgroup is removed" test ! -e "$d1"

# ---- cluster down leaves no claim, no cgroup, no QEMU
"$VMATRIX" cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no uid claim of the cluster is left" bash -c "! grep -qs 'key $VMATRIX_CLUSTER_DIR/' $CLAIMS/*"
for d in $(tr ' ' '\n' <<<"$nodedirs" | sort -u); do
        check "no cgroup directory of a node is left ($d)" test ! -e "$d"
done
check "no QEMU is left" no_qemu_left
finish
