#!/bin/sh
# A local Oracle and RMs on the fake VMM driver, with users, offers and configurations, for
# working on the web interface (and its browser tests) without QEMU. Not used by `make`.
#
#   ui/dev/fake-cluster.sh up DIR [VMATRIX_TEST]   # prints the Oracle's URL; tokens in DIR/tokens/
#   ui/dev/fake-cluster.sh down DIR                # stops what `up` started (by the pids it wrote)
#
# VMATRIX_TEST is a vmatrix-test binary (meson -Dtest_drivers=true; `make unit` builds
# build-asan/vmatrix-test); the Oracle serves /ui/ from build/ui (`make ui`). Users (password
# "password1"): operator1 (operator), prov1 and prov2 (providers), buyer1 and buyer2 (buyers, 100
# units each). RMs: prod1, prod2 (production), cham1 (chamber), and pa1, pb1 (chambers of
# prov1 and prov2, with offers). The Oracle runs with --open-signup.
set -eu
cmd=${1:?usage: fake-cluster.sh up|down DIR [VMATRIX_TEST]}
dir=${2:?usage: fake-cluster.sh up|down DIR [VMATRIX_TEST]}
here=$(cd "$(dirname "$0")/../.." && pwd)

if [ "$cmd" = down ]; then
        for f in "$dir"/pids/*.pid; do
                [ -f "$f" ] || continue
                kill "$(cat "$f")" 2>/dev/null || true
                rm -f "$f"
        done
        exit 0
fi
[ "$cmd" = up ] || { echo "usage: fake-cluster.sh up|down DIR [VMATRIX_TEST]" >&2; exit 2; }
exe=${3:-$here/build-asan/vmatrix-test}
[ -x "$exe" ] || { echo "fake-cluster: $exe is not built (make unit)" >&2; exit 1; }
mkdir -p "$dir/guest" "$dir/pids" "$dir/logs" "$dir/tokens"
dir=$(cd "$dir" && pwd)
echo "fake kernel" >"$dir/guest/vmlinuz"
echo "fake initrd" >"$dir/guest/initrd.img"
echo "console=ttyS0" >"$dir/guest/cmdline"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
port=${ORACLE_PORT:-$(free_port)}
nport=$(free_port)
url=http://127.0.0.1:$port
VMATRIX_GUEST_DIR=$dir/guest VMATRIX_GUEST_RECIPE=$dir/no-recipe \
        "$exe" oracle --data "$dir/oracle" --listen 127.0.0.1:"$port" --node-listen 127.0.0.1:"$nport" \
        --password-cost min --open-signup --ui-dir "$here/build/ui" >>"$dir/logs/oracle.log" 2>&1 &
echo $! >"$dir/pids/oracle.pid"
echo "$url" >"$dir/oracle.url"
i=0
until curl -sf "$url/v1/health" >/dev/null; do
        i=$((i + 1)); [ $i -lt 200 ] || { echo "fake-cluster: the Oracle did not start (see $dir/logs/oracle.log)" >&2; exit 1; }
        sleep 0.1
done
until [ -s "$dir/oracle/admin.token" ]; do sleep 0.1; done
admin=$(cat "$dir/oracle/admin.token")
cp "$dir/oracle/admin.token" "$dir/admin.token"
api() { # METHOD PATH [BODY] with the admin token
        curl -sS -X "$1" -H "Authorization: Bearer $admin" -H 'Content-Type: application/json' \
                ${3:+--data "$3"} "$url$2"
}

node() { # NAME ROLE [options]
        name=$1 role=$2; shift 2
        token=$(api POST /v1/rms/join-tokens "{\"role\":\"$role\",\"ttl_s\":600}" | jq -r .token)
        p=$(free_port)
        "$exe" node --oracle "https://127.0.0.1:$nport" --name "$name" --role "$role" --data "$dir/nodes/$name" \
                --listen 127.0.0.1:"$p" --driver fake --join "$token" "$@" >>"$dir/logs/$name.log" 2>&1 &
        echo $! >"$dir/pids/$name.pid"
}
node prod1 production
node prod2 production
node cham1 chamber
node pa1 chamber --capacity-vcpus 2 --capacity-memory 4096 --capacity-disk 50
node pb1 chamber --capacity-vcpus 2 --capacity-memory 2048 --capacity-disk 20
i=0
until [ "$(api GET /v1/rms | jq '[.[] | select(.state == "up" and .capacity != null)] | length')" = 5 ]; do
        i=$((i + 1)); [ $i -lt 300 ] || { echo "fake-cluster: the RMs did not come up (see $dir/logs)" >&2; exit 1; }
        sleep 0.1
done

for u in operator1:operator prov1:provider prov2:provider buyer1:buyer buyer2:buyer; do
        api POST /v1/users "{\"name\":\"${u%%:*}\",\"role\":\"${u#*:}\",\"password\":\"password1\"}" >/dev/null
        curl -sS -X POST "$url/v1/login" --data "{\"user\":\"${u%%:*}\",\"password\":\"password1\"}" |
                jq -r .token >"$dir/tokens/${u%%:*}"
done
cp "$dir/admin.token" "$dir/tokens/admin"
as() { # USER METHOD PATH [BODY]
        t=$(cat "$dir/tokens/$1"); shift
        curl -sS -X "$1" -H "Authorization: Bearer $t" -H 'Content-Type: application/json' ${3:+--data "$3"} "$url$2"
}
api POST /v1/images '{"name":"tiny-http","builtin":"tiny-http"}' >/dev/null
api POST /v1/rms/pa1/assign '{"provider":"prov1"}' >/dev/null
api POST /v1/rms/pb1/assign '{"provider":"prov2"}' >/dev/null
# prov1: 0.01 per vCPU and 0.005 per GiB of RAM per hour, 0.1 per GiB of disk per 30 days; prov2 dearer
as prov1 PUT /v1/offers/pa1 '{"vcpus":2,"vcpu_price":10000,"memory_mib":4096,"memory_price":5000,"running_period_s":3600,"disk_gib":50,"disk_price":100000,"storage_period_s":2592000}' >/dev/null
as prov2 PUT /v1/offers/pb1 '{"vcpus":2,"vcpu_price":30000,"memory_mib":2048,"memory_price":20000,"running_period_s":3600,"disk_gib":20,"disk_price":300000,"storage_period_s":2592000}' >/dev/null
api POST /v1/market/configs '{"name":"small","image":"tiny-http","memory_mib":256,"vcpus":1,"disk_gib":1}' >/dev/null
api POST /v1/market/configs '{"name":"medium","image":"tiny-http","memory_mib":1024,"vcpus":2,"disk_gib":5}' >/dev/null
api POST /v1/accounts/buyer1/deposit '{"amount":100000000}' >/dev/null
api POST /v1/accounts/buyer2/deposit '{"amount":100000000}' >/dev/null
api POST /v1/vms '{"name":"web1","image":"tiny-http","memory_mib":128}' >/dev/null
echo "$url"
