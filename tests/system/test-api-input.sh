#!/usr/bin/env bash
# Hostile and malformed input to both daemons' HTTP APIs (the Oracle's and a node's, called
# directly): bad JSON, wrong types, path traversal in every path parameter, %00 and bytes that
# are not UTF-8, bad versions, bad uploads, bad heartbeats, bad node commands. Every answer must
# be a 4xx with an {"error": {"code", "message"}} body, and afterwards both daemons must still
# run, the store must hold only what the test made legitimately, no file may have appeared
# outside the data directories, the one live VM must be untouched (same QEMU, same version,
# and still driven normally), and the logs must show no sanitizer report.
source "$(dirname "$0")/lib.sh"

cluster_up --production 1 --chambers 1
O=$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")
N=$(node_url_as_oracle chamber1) # the node obeys the Oracle's certificate only
C=$VMATRIX_CLUSTER_DIR
T="pwn$$" # a token in every name that tries to escape, to look for it on disk afterwards

# api_refused "description" STATUS-REGEX METHOD URL [curl args...]: the answer has a status
# matching STATUS-REGEX and an error body {"error": {"code": STRING, "message": STRING}}.
api_refused() {
        local what=$1 want=$2 method=$3 url=$4 out status body
        shift 4
        if ! out=$(curl -s -g --path-as-is --max-time 30 -X "$method" -w '\n%{http_code}' "$url" "$@"); then
                fail "$what: no answer from $url"
                return
        fi
        status=${out##*$'\n'}
        body=${out%$'\n'*}
        if [[ "$status" =~ ^($want)$ ]] &&
                jq -e '(.error.code | type == "string") and (.error.message | type == "string")' <<<"$body" >/dev/null 2>&1; then
                pass "$what ($status $(jq -r .error.code <<<"$body"))"
        else
                fail "$what: HTTP $status, body '${body:0:300}'"
        fi
}
post_json() { # post_json "description" STATUS-REGEX URL BODY
        api_refused "$1" "$2" POST "$3" -H 'Content-Type: application/json' --data-binary "$4"
}

vmx image build tiny-http >/dev/null
vmx vm create good1 --image tiny-http --memory 128 >/dev/null
vmx vm create taken-1 --image tiny-http >/dev/null # a service "taken" would need this name
vmx vm boot good1 >/dev/null
check_eq "the live VM is loading" "$(vm_field good1 state)" loading
pid=$(vm_field good1 pid)
version=$(vm_field good1 version)
node_version=$(curl -s "$N/v1/vms/good1" | jq .version)

# The cluster directory three levels deep (the daemons' data directories, their VM, image and
# Nest directories, logs, pids): nothing in it may appear or go away during the barrage. /tmp is
# shared with other processes, so there we look for what the daemons could have written.
snapshot() { (cd "$C" && find . -maxdepth 3 | sort); }
escaped() {
        find /tmp "$C" -maxdepth 4 \( -name "*$T*" -o -name 'upload.*' -o -name state -o -name disk \
                -o -name vm.json -o -name node-vm.json \) -newer "$TEST_DIR/marker" 2>/dev/null | grep -v "^$C/nodes/chamber1/vms/good1/" || true
}
touch "$TEST_DIR/marker"
before=$(snapshot)

# ---- the Oracle: bodies that are not a JSON object
for body in '{not json' '[1,2]' '"a string"' 'null' '42' '{"name": "x",}' "$(printf '{"name":"\xff\xfe"}')"; do
        post_json "POST /v1/vms with body ${body:0:20}" 400 "$O/v1/vms" "$body"
done
post_json "POST /v1/images with an array" 400 "$O/v1/images" '[{"name":"x"}]'
post_json "a body nested 100000 deep" 400 "$O/v1/vms" "$(printf '%*s' 100000 '' | tr ' ' '[')"
api_refused "POST /v1/vms with no body" 400 POST "$O/v1/vms"
api_refused "POST /v1/images with no body" 400 POST "$O/v1/images"
head -c $((5 * 1024 * 1024)) /dev/zero | tr '\0' ' ' >"$TEST_DIR/big.json"
api_refused "a 5 MiB body to the Oracle" 413 POST "$O/v1/vms" --data-binary "@$TEST_DIR/big.json"

# ---- the Oracle: wrong types and ranges for every field of POST /v1/vms
vm_body() { jq -cn --argjson extra "$1" '{"name": "bad1", "image": "tiny-http"} + $extra'; }
for extra in '{"memory_mib": "128"}' '{"memory_mib": 128.5}' '{"memory_mib": -1}' '{"memory_mib": 15}' \
        '{"memory_mib": 65537}' '{"memory_mib": 9223372036854775807}' '{"memory_mib": -9223372036854775808}' \
        '{"memory_mib": true}' '{"memory_mib": {}}' '{"vcpus": 0}' '{"vcpus": 65}' '{"vcpus": "2"}' \
        '{"vcpus": [1]}' '{"name": "a/b"}' '{"name": ".."}' '{"name": "%2e%2e"}' '{"name": "Upper"}' \
        '{"name": ""}' '{"name": "-lead"}' '{"name": "wéb"}' '{"name": 5}' '{"name": null}' \
        "{\"name\": \"$(printf 'a%.0s' {1..64})\"}" '{"image": 5}' '{"image": "../tiny-http"}' '{"image": null}'; do
        post_json "POST /v1/vms with $extra" 400 "$O/v1/vms" "$(vm_body "$extra")"
done
# ---- the Oracle: POST /v1/services, every field wrong in turn; nothing is created
svc_body() { jq -cn --argjson extra "$1" '{"name": "bads", "image": "tiny-http", "pool": 2, "min": 1, "max": 2} + $extra'; }
for extra in '{"pool": "2"}' '{"pool": 0}' '{"pool": 1001}' '{"pool": null}' '{"min": -1}' '{"min": 1.5}' \
        '{"max": 0}' '{"min": 2, "max": 1}' '{"max": 3}' '{"window_s": -1}' '{"window_s": "5"}' '{"window_s": 1e9}' \
        '{"high": 0}' '{"high": 101}' '{"high": "70"}' '{"priority": -1}' '{"memory_mib": 15}' '{"vcpus": 0}' \
        '{"name": "a/b"}' '{"name": ""}' '{"name": 5}' "{\"name\": \"$(printf 'a%.0s' {1..59})\"}" '{"image": 5}'; do
        post_json "POST /v1/services with $extra" 400 "$O/v1/services" "$(svc_body "$extra")"
done
post_json "a service of an image that does not exist" 404 "$O/v1/services" "$(svc_body '{"image": "nope"}')"
post_json "a service the Nest cannot hold" 507 "$O/v1/services" "$(svc_body '{"pool": 1000, "max": 2, "memory_mib": 65536}')"
post_json "a service whose VM name is taken" 409 "$O/v1/services" "$(svc_body '{"name": "taken"}')"
api_refused "an unknown service" 404 GET "$O/v1/services/nosuch"
api_refused "deleting an unknown service" 404 DELETE "$O/v1/services/nosuch"
api_refused "top of an unknown service" 404 GET "$O/v1/services/nosuch/top"
api_refused "metrics without a series" 400 GET "$O/v1/metrics?res=1"
api_refused "metrics at an unknown resolution" 400 GET "$O/v1/metrics?series=vm:good1:cpu&res=5"
api_refused "metrics with since after until" 400 GET "$O/v1/metrics?series=vm:good1:cpu&res=1&since=200&until=100"
check_eq "no service was created" "$(curl -s "$O/v1/services" | jq length)" 0
post_json "memory_mib 2^63 does not fit" 400 "$O/v1/vms" '{"name":"bad1","image":"tiny-http","memory_mib":9223372036854775808}'
post_json "a NUL inside a name" 400 "$O/v1/vms" '{"name":"bad\u0000x","image":"tiny-http"}'
post_json "an image that does not exist" 404 "$O/v1/vms" '{"name":"bad1","image":"nope"}'
post_json "a built-in image that does not exist" 404 "$O/v1/images" '{"name":"x1","builtin":"nope"}'
post_json "an image name with a slash" 400 "$O/v1/images" "{\"name\":\"../$T\",\"builtin\":\"tiny-http\"}"

# ---- the Oracle: routes, methods, actions, path parameters
api_refused "an unknown route" 404 GET "$O/nope"
api_refused "a route one segment too long" 404 POST "$O/v1/vms/good1/boot/now"
api_refused "an empty path segment" 404 POST "$O/v1/vms//boot"
api_refused "PATCH /v1/vms" 405 PATCH "$O/v1/vms"
api_refused "PUT /v1/vms/good1" 405 PUT "$O/v1/vms/good1"
api_refused "GET on the heartbeat" 405 GET "$O/v1/rms/chamber1/heartbeat"
api_refused "an unknown action" 404 POST "$O/v1/vms/good1/fly"
api_refused "an action on .." 404 POST "$O/v1/vms/../boot"
api_refused "migrate of a loading VM" 409 POST "$O/v1/vms/good1/migrate" -H "Content-Type: application/json" --data-binary "{\"rm\":\"prod1\"}"
post_json "migrate with a bad method" 400 "$O/v1/vms/good1/migrate" "{\"rm\":\"prod1\",\"method\":5}"
post_json "migrate with an unknown method" 400 "$O/v1/vms/good1/migrate" "{\"rm\":\"prod1\",\"method\":\"teleport\"}"
for name in .. %2e%2e "good1%00x" "%ff%fe" "$T%2f..%2f.." "$(printf 'a%.0s' {1..300})"; do
        api_refused "GET /v1/vms/$name" 404 GET "$O/v1/vms/$name"
done
api_refused "DELETE of good1%00x does not delete good1" 404 DELETE "$O/v1/vms/good1%00x"
api_refused "suspend of good1%00x does not suspend good1" 404 POST "$O/v1/vms/good1%00x/suspend"
for rm in 5 '"../x"' '"UP"' '""' '["chamber1"]'; do
        post_json "boot with rm $rm" 400 "$O/v1/vms/good1/boot" "{\"rm\": $rm}"
done
post_json "a second boot" 409 "$O/v1/vms/good1/boot" '{}'
for w in -1 10001 1e3 abc 99999999999999999999 '' '%00'; do
        api_refused "GET /v1/ops/op-1?wait_ms=$w" 400 GET "$O/v1/ops/op-1?wait_ms=$w"
done
api_refused "an op that does not exist" 404 GET "$O/v1/ops/nope"
for q in after=-1 after=x after=1e3 limit=0 limit=10001 limit=-5 after=99999999999999999999; do
        api_refused "GET /v1/events?$q" 400 GET "$O/v1/events?$q"
done

# ---- the Nest: path traversal and bad versions in every path parameter
for vm in .. %2e%2e "$T" UP "good1%00"; do
        api_refused "GET a bundle file of vm $vm" '400|404' GET "$O/v1/nest/vms/$vm/1/state"
done
for v in ../ .. -1 0 99999999999999999999 1e3 +1 01 '%201' 1.0 0x1 '1%00'; do
        api_refused "GET a bundle file at version $v" '400|404' GET "$O/v1/nest/vms/good1/$v/state"
done
for f in ../../state.db ..%2f..%2fstate.db vm.json "disk%00" .. "%2e%2e"; do
        api_refused "GET bundle file $f" '400|404' GET "$O/v1/nest/vms/good1/1/$f"
done
for img in .. %2e%2e "tiny-http%00" UP; do
        api_refused "GET a file of image $img" '400|404' GET "$O/v1/nest/images/$img/vmlinuz"
done
for f in ../../state.db .. "vmlinuz%00" vmlinuz.sha256; do
        api_refused "GET image manifest $f" '400|404' GET "$O/v1/manifests/tiny-http/0/$f"
done

# ---- the Nest: uploads
printf 'payload' >"$TEST_DIR/payload"
sha=$(sha256sum "$TEST_DIR/payload" | cut -d' ' -f1)
put() { api_refused "$1" "$2" PUT "$3" --data-binary "@$TEST_DIR/payload"; }
next=$((version + 1))
# chunk uploads: frames of (32-byte id, 4-byte length, encoded chunk), every chunk verified
api_refused "chunk frames that are truncated" 400 POST "$O/v1/chunks/upload" --data-binary "@$TEST_DIR/payload"
head -c 32 /dev/zero >"$TEST_DIR/frame"
printf '\x00\x00\x00\x07payload' >>"$TEST_DIR/frame"
api_refused "a chunk that does not match its id" 400 POST "$O/v1/chunks/upload" --data-binary "@$TEST_DIR/frame"
head -c 32 /dev/zero >"$TEST_DIR/frame2"
printf '\xff\xff\xff\xf0' >>"$TEST_DIR/frame2"
api_refused "a chunk frame longer than the body" 400 POST "$O/v1/chunks/upload" --data-binary "@$TEST_DIR/frame2"
post_json "missing chunks: not an array" 400 "$O/v1/chunks/missing" '{"chunks":"x"}'
post_json "missing chunks: a bad id" 400 "$O/v1/chunks/missing" '{"chunks":["zz"]}'
post_json "missing chunks: an uppercase id" 400 "$O/v1/chunks/missing" "{\"chunks\":[\"${sha^^}\"]}"
post_json "fetch: too many ids" 400 "$O/v1/chunks/fetch" "$(jq -cn --arg s "$sha" '{chunks: [range(65) | $s]}')"
api_refused "a chunk id that is not hex" 400 GET "$O/v1/chunks/$T"
api_refused "an absent chunk" 404 GET "$O/v1/chunks/$sha"
# manifests: only for the version an operation is saving, and only well-formed
mput() { api_refused "$1" "$2" PUT "$3" -H 'Content-Type: application/json' --data-binary "$4"; }
manifest='{"format":"vmatrix-nest-manifest","version":1,"chunker":"gear-fastcdc-v1/16k/64k/256k","size":7,"chunks":[["'$sha'",7]]}'
mput "a manifest for a version no operation saves" 409 "$O/v1/manifests/good1/$next/state" "$manifest"
mput "a manifest for a far version" 409 "$O/v1/manifests/good1/99999/state" "$manifest"
mput "a manifest for an unknown vm" 404 "$O/v1/manifests/ghost/1/state" "$manifest"
mput "an image's manifest (version 0)" 400 "$O/v1/manifests/tiny-http/0/vmlinuz" "$manifest"
for p in "../$T/1/state" "%2e%2e/1/state" "good1/-1/state" "good1/99999999999999999999/state" \
        "good1/1e3/state" "good1/$next/..%2f..%2f$T" "good1%00/$next/state"; do
        mput "a manifest at $p" '400|404|409' "$O/v1/manifests/$p" "$manifest"
        api_refused "GET manifest $p" '400|404' GET "$O/v1/manifests/$p"
done
for name in .. %2e%2e UP "ab%00c" "$T%2f.."; do
        put "an image import named $name" '400|404' "$O/v1/images/$name?format=raw"
done
put "an image import of format vmdk" 400 "$O/v1/images/imp1?format=vmdk"
put "a qcow2 import that is not qcow2" 400 "$O/v1/images/imp1?format=qcow2"
api_refused "an empty raw image" 400 PUT "$O/v1/images/imp1?format=raw" --data-binary ''
qemu-img create -q -f qcow2 -o "data_file=$TEST_DIR/datafile,data_file_raw=on" "$TEST_DIR/df.qcow2" 1M
api_refused "a qcow2 with an external data file" 400 PUT "$O/v1/images/imp1?format=qcow2" --data-binary "@$TEST_DIR/df.qcow2"

# ---- heartbeats: on the node channel, as chamber1 (its certificate); no token may send one
NC=$(oracle_node_channel)
read -r -a CH1 <<<"$(rm_cert_args chamber1)"
hb() { api_refused "heartbeat: $1" "$2" POST "$NC/v1/rms/$3/heartbeat" "${CH1[@]}" -H 'Content-Type: application/json' \
        --data-binary "$4"; }
api_refused "heartbeat: on the user API, even with the admin token" 403 POST "$O/v1/rms/chamber1/heartbeat" \
        -H 'Content-Type: application/json' --data-binary '{"role":"chamber","address":"10.9.9.9:7070","vms":[]}'
# (the curlrc presents the Oracle's certificate, which is no RM's)
api_refused "heartbeat: with the Oracle's certificate" 403 POST "$NC/v1/rms/chamber1/heartbeat" \
        -H 'Content-Type: application/json' --data-binary '{"role":"chamber","address":"10.9.9.9:7070","vms":[]}'
nc_host=$(jq -r '.oracle.address' "$VMATRIX_CLUSTER_DIR/cluster.json")
nc_port=$(jq -r '.oracle.node_port' "$VMATRIX_CLUSTER_DIR/cluster.json")
check_eq "heartbeat: without a certificate (401)" "$(curl -q -s -o /dev/null -w '%{http_code}' --max-time 10 \
        --cacert "$VMATRIX_CLUSTER_DIR/ca.pem" --connect-to "oracle.vmatrix:$nc_port:$nc_host:$nc_port" \
        -H 'Content-Type: application/json' -d '{"role":"chamber","address":"10.9.9.9:7070","vms":[]}' \
        "$NC/v1/rms/chamber1/heartbeat")" 401
ok_hb='"role":"chamber","address":"10.9.9.9:7070"'
# another RM's name, or no valid name at all: refused, whatever the body
hb "an invalid RM name" '400|403' "EVIL$T" "{$ok_hb}"
hb "an RM name with %00" '400|403' "ev%00il" "{$ok_hb}"
hb "another RM's heartbeat" 403 "prod1" "{\"role\":\"production\",\"address\":\"10.9.9.9:7070\",\"vms\":[]}"
for role in '' '"role":"boss",' '"role":5,' '"role":null,'; do
        hb "role {$role}" 400 "chamber1" "{$role\"address\":\"10.9.9.9:7070\"}"
done
for addr in '' '"address":5,' '"address":"nohost",' '"address":"10.9.9.9:0",' '"address":"10.9.9.9:99999",' \
        '"address":"10.9.9.9:80/x?",' '"address":"evil.example:80",' '"address":"[::1]:80",' \
        "\"address\":\"10.9.9.9:7070$(printf ' %.0s' {1..80})\","; do
        hb "address {$addr}" 400 "chamber1" "{$addr\"role\":\"chamber\"}"
done
for vms in '"no"' '{}' '5' '[1]' '["a"]' '[null]' '[{}]' '[{"name":5,"state":"crashed"}]' \
        "[{\"name\":\"../$T\",\"state\":\"crashed\"}]" '[{"name":"good1"}]' '[{"name":"good1","state":[]}]'; do
        hb "vms $vms" 400 "chamber1" "{$ok_hb,\"vms\":$vms}"
done
jq -cn '{"role":"chamber","address":"10.9.9.9:7070","vms":[range(5000) | {"name":"v\(.)","state":"crashed"}]}' \
        >"$TEST_DIR/hb.json"
api_refused "heartbeat: 5000 VMs" 400 POST "$NC/v1/rms/chamber1/heartbeat" "${CH1[@]}" --data-binary "@$TEST_DIR/hb.json"
hb "a chamber holding a VM cannot turn production" 409 chamber1 \
        "{\"role\":\"production\",\"address\":\"$(vmx rm list --json | jq -r '.[] | select(.name == "chamber1") | .address')\",\"vms\":[]}"

# ---- the node, called directly
api_refused "node: an unknown route" 404 GET "$N/v1/nope"
api_refused "node: DELETE a vm" 405 DELETE "$N/v1/vms/good1"
api_refused "node: PUT run" 405 PUT "$N/v1/vms/good1/run"
for name in .. %2e%2e "%ff" "good1%00x" UP; do
        api_refused "node: GET vm $name" '400|404' GET "$N/v1/vms/$name"
        post_json "node: delete vm $name" '400|404' "$N/v1/vms/$name/delete" '{"version":1}'
done
api_refused "node: a 5 MiB body" 413 POST "$N/v1/vms/good1/run" --data-binary "@$TEST_DIR/big.json"
for body in '{not json' '[1]' '"s"' 'null'; do
        post_json "node: run with body $body" 400 "$N/v1/vms/ghost1/run" "$body"
done
api_refused "node: run with no body" 400 POST "$N/v1/vms/ghost1/run"

cfg=$(jq -cn '{name: "ghost1", memory_mib: 128, vcpus: 1, mac: "52:54:00:aa:bb:cc", image: "tiny-http",
        boot: "kernel", cmdline: "console=ttyS0", disk_size_mib: 64, image_format: ""}')
img=$(curl -s "$O/v1/images" | jq -c '.[] | select(.name == "tiny-http") | {name, files: .meta.files}')
run_body() { # run_body VERSION CONFIG-PATCH [IMAGE-PATCH [EXTRA]]
        jq -cn --argjson v "$1" --argjson c "$cfg" --argjson i "$img" \
                "{version: \$v, mode: \"boot\", config: (\$c | $2), image: (\$i | ${3:-.}), bundle: null} | ${4:-.}"
}
for v in null '"1"' 0 -1 1.5 9223372036854775807 '[1]'; do
        post_json "node: run at version $v" 400 "$N/v1/vms/ghost1/run" "$(run_body "$v" .)"
done
post_json "node: run at version 2^64" 400 "$N/v1/vms/ghost1/run" "$(run_body 1 . . .version=7 | sed 's/"version":7/"version":99999999999999999999/')"
for patch in '.mac = "zz"' '.mac = "52:54:00:AA:BB:CC"' '.mac = "01:00:5e:00:00:01"' '.mac = 5' \
        '.memory_mib = 1048576' '.memory_mib = "128"' '.memory_mib = 8' '.vcpus = 0' '.vcpus = 65' \
        '.cmdline = "console=ttyS0 \"x"' '.cmdline = "a\\\\b"' '.cmdline = "a\nb"' \
        ".image = \"../../../../../../tmp/$T\"" '.image = "a/b"' '.boot = "pxe"' '.disk_size_mib = 0' \
        '.name = "other"' '.name = "../x"' 'del(.mac)' '. = 5'; do
        post_json "node: run with config $patch" 400 "$N/v1/vms/ghost1/run" "$(run_body 1 "$patch")"
done
post_json "node: run with an image that is not the config's" 400 "$N/v1/vms/ghost1/run" "$(run_body 1 . '.name = "other"')"
post_json "node: run with an image name with a slash" 400 "$N/v1/vms/ghost1/run" \
        "$(run_body 1 ".image = \"../$T\"" ".name = \"../$T\"")"
post_json "node: run with image files not an object" 400 "$N/v1/vms/ghost1/run" "$(run_body 1 . '.files = 5')"
post_json "node: run with mode fly" 400 "$N/v1/vms/ghost1/run" "$(run_body 1 . . '.mode = "fly"')"
post_json "node: restore without a bundle" 400 "$N/v1/vms/ghost1/run" "$(run_body 1 . . '.mode = "restore"')"
for b in '"x"' '{"version":0,"files":{}}' '{"version":1,"files":5}' '{"files":{}}'; do
        post_json "node: run with bundle $b" 400 "$N/v1/vms/ghost1/run" "$(run_body 1 . . ".bundle = $b")"
done
check_eq "refused runs left no VM on the node" "$(curl -s "$N/v1/vms" | jq -c '[.[].name]')" '["good1"]'
check "refused runs left no directory on the node" test ! -e "$C/nodes/chamber1/vms/ghost1"

post_json "node: save a VM it does not have" 404 "$N/v1/vms/ghost1/save" '{"version":1}'
post_json "node: resume a VM it does not have" 404 "$N/v1/vms/ghost1/resume" '{"version":1}'
# the live VM: refused commands must change nothing (not its lease version, not its QEMU)
post_json "node: a run with a bad config does not kill the live VM" 400 "$N/v1/vms/good1/run" \
        "$(run_body 1000000 '.name = "good1" | .mac = "zz"')"
post_json "node: resume a running VM at a huge version" 409 "$N/v1/vms/good1/resume" '{"version":1000000}'
for body in '{}' '{"version":"1000000"}' '{"version":-1}' '{"version":0}' '{"version":9223372036854775807}' \
        '{"version":1000000,"new_version":1000000}' '{"version":1000000,"new_version":"x"}'; do
        post_json "node: stop with $body" 400 "$N/v1/vms/good1/stop" "$body"
done
for body in '{}' '{"version":-3}' '{"version":1000000,"upload":"yes","new_version":1000001}' \
        '{"version":1000000,"upload":true}' '{"version":1000000,"upload":true,"new_version":999999}' \
        '{"version":1000000,"upload":true,"new_version":1000001,"nest":"http://127.0.0.1:9"}'; do
        post_json "node: save with $body" 400 "$N/v1/vms/good1/save" "$body"
done
post_json "node: stop that would upload elsewhere" 400 "$N/v1/vms/good1/stop" \
        '{"version":1000000,"new_version":1000001,"nest":"http://127.0.0.1:9"}'
for body in '{}' '{"version":"1"}' '{"version":0}'; do
        post_json "node: delete with $body" 400 "$N/v1/vms/good1/delete" "$body"
done

# ---- after the barrage
for f in "$C"/pids/*.pid; do
        check "$(basename "$f" .pid) still runs" proc_alive "$(cat "$f")"
done
check "vm list works" bash -c "\"$VMATRIX\" vm list >/dev/null"
check "rm list works" bash -c "\"$VMATRIX\" rm list >/dev/null"
check_eq "the store holds only the test's VMs" "$(vmx vm list --json | jq -c '[.[].name]')" '["good1","taken-1"]'
check_eq "the store holds only the real RMs" "$(vmx rm list --json | jq -c '[.[].name]')" '["chamber1","prod1"]'
check_eq "the store holds only the built image" "$(vmx image list --json | jq -c '[.[].name]')" '["tiny-http"]'
check_eq "chamber1 kept its role" "$(vmx rm list --json | jq -r '.[] | select(.name == "chamber1") | .role')" chamber
check_eq "the live VM is still loading" "$(vm_field good1 state)" loading
check_eq "its version did not move" "$(vm_field good1 version)" "$version"
check_eq "the node's lease did not move" "$(curl -s "$N/v1/vms/good1" | jq .version)" "$node_version"
check "its QEMU still runs" proc_alive "$pid"
check_eq "the Nest holds no bundle" "$(find "$C/oracle/nest/vms" -mindepth 1 2>/dev/null | wc -l)" 0
check_eq "no upload was left behind" "$(find "$C/oracle/nest/tmp" "$C"/nodes/*/tmp -type f | wc -l)" 0
check_eq "no file or directory appeared or went in the cluster directory" "$(diff <(echo "$before") <(snapshot) || true)" ""
check_eq "nothing escaped into /tmp or elsewhere" "$(escaped)" ""
check "the live VM still obeys the Oracle: suspend" bash -c "\"$VMATRIX\" vm suspend good1 >/dev/null"
check_eq "it is suspended" "$(vm_field good1 state)" suspended
check "no sanitizer report in the logs" bash -c "! grep -lE 'AddressSanitizer|runtime error|LeakSanitizer' \"$C\"/logs/*.log"
finish
