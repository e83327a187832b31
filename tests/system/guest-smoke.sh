#!/bin/bash
# System test of the tiny-http guest image alone, without vmatrix: boots BUILD_GUEST_DIR's
# vmlinuz + initrd.img directly with QEMU (TCG) and checks every endpoint of DESIGN.md §6,
# bad input, concurrent requests and the atomic hit counter, that the disk mark survives a
# power cycle of the same disk while boot_id and hits do not, and that QMP system_powerdown
# stops QEMU within 10 s. Prints the boot-to-first-HTTP-200 time (a number, never a verdict).
#
# Usage: tests/system/guest-smoke.sh BUILD_GUEST_DIR     (e.g. build/guest/tiny-http)
# Needs: qemu-system-x86_64, qemu-img, curl, socat, ss. Exit status 0 only if all checks pass.
# GUEST_SMOKE_KEEP=1 keeps the temporary directory (serial logs, disk) for inspection.
#
# Device set (the same one vmatrix is expected to use): machine q35, 1 vCPU, 128 MiB, no
# default devices; serial console ttyS0 (here a file); virtio-blk-pci data disk (a fresh
# 1 GiB qcow2); virtio-net-pci with MAC 52:54:00:12:34:56 on user-mode networking, guest port
# 80 forwarded from 127.0.0.1:PORT; QMP on a UNIX socket. Kernel command line: the
# recommended one from BUILD_GUEST_DIR/cmdline plus vmx.name=smoke.
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: $0 BUILD_GUEST_DIR" >&2; exit 2; }
GUEST=$(realpath "$1")
for f in vmlinuz initrd.img; do
        [[ -f $GUEST/$f ]] || { echo "guest-smoke: $GUEST/$f missing (run guest/tiny-http/build.sh)" >&2; exit 2; }
done
for tool in qemu-system-x86_64 qemu-img curl socat ss; do
        command -v "$tool" >/dev/null || { echo "guest-smoke: missing $tool" >&2; exit 2; }
done
CMDLINE="console=ttyS0"
[[ -f $GUEST/cmdline ]] && CMDLINE=$(<"$GUEST/cmdline")
CMDLINE="$CMDLINE vmx.name=smoke"

TMP=$(mktemp -d /tmp/guest-smoke.XXXXXX)
QPID=
FAILS=0
BOOT=0

cleanup() {
        local rc=$?
        if [[ -n $QPID ]] && kill -0 "$QPID" 2>/dev/null; then
                kill "$QPID" 2>/dev/null || true
                wait "$QPID" 2>/dev/null || true
        fi
        if [[ $rc -ne 0 ]]; then
                echo "guest-smoke: FAILED; last serial console lines:" >&2
                tail -n 30 "$TMP"/serial-*.log 2>/dev/null >&2 || true
        fi
        if [[ -n ${GUEST_SMOKE_KEEP:-} ]]; then
                echo "guest-smoke: kept $TMP" >&2
        else
                rm -rf "$TMP"
        fi
        exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { echo $(($(date +%s%N) / 1000000)); }
pass() { echo "ok   $*"; }
fail() { echo "FAIL $*" >&2; FAILS=$((FAILS + 1)); }
die() { echo "FAIL $*" >&2; exit 1; }
check() { # check DESCRIPTION COMMAND...: pass/fail on COMMAND's status
        local what=$1; shift
        if "$@"; then pass "$what"; else fail "$what"; fi
}

free_port() {
        local p
        for _ in $(seq 100); do
                p=$((20000 + RANDOM % 40000))
                [[ -z $(ss -Htln "sport = :$p") ]] && { echo "$p"; return 0; }
        done
        die "no free TCP port found"
}

# boot: starts QEMU on $DISK and waits for GET /health; sets QPID, PORT, BASE, BOOT_MS.
boot() {
        BOOT=$((BOOT + 1))
        PORT=$(free_port)
        BASE=http://127.0.0.1:$PORT
        QMP=$TMP/qmp.sock
        SERIAL=$TMP/serial-$BOOT.log
        rm -f "$QMP"
        local start
        start=$(now_ms)
        qemu-system-x86_64 -nodefaults -no-user-config -accel tcg -machine q35 -smp 1 -m 128 \
                -kernel "$GUEST/vmlinuz" -initrd "$GUEST/initrd.img" -append "$CMDLINE" \
                -serial "file:$SERIAL" \
                -drive "file=$DISK,format=qcow2,if=none,id=d0" -device virtio-blk-pci,drive=d0 \
                -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$PORT-:80" \
                -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 \
                -qmp "unix:$QMP,server=on,wait=off" -display none &
        QPID=$!
        local deadline=$((start + 120000))
        until [[ $(curl -s -m 2 "$BASE/health" 2>/dev/null) == ok ]]; do
                kill -0 "$QPID" 2>/dev/null || die "boot $BOOT: QEMU exited"
                [[ $(now_ms) -lt $deadline ]] || die "boot $BOOT: no HTTP answer within 120 s"
                sleep 0.05
        done
        BOOT_MS=$(($(now_ms) - start))
        local ready
        ready=$(sed -n 's/.*vmx-guest: ready (uptime \([0-9.]*\)s).*/\1/p' "$SERIAL" | head -n1)
        echo "boot $BOOT: first HTTP 200 after $BOOT_MS ms from QEMU start" \
                "(guest uptime at its ready line: ${ready:-?} s)"
}

# powerdown: QMP system_powerdown; QEMU must exit within 10 s, after a clean guest power-off.
powerdown() {
        local start reply
        start=$(now_ms)
        reply=$(printf '%s\n' '{"execute":"qmp_capabilities"}' '{"execute":"system_powerdown"}' |
                socat -t 1 - "UNIX-CONNECT:$QMP")
        check "QMP system_powerdown accepted" grep -q '"event": *"POWERDOWN"' <<<"$reply"
        while kill -0 "$QPID" 2>/dev/null && [[ $(($(now_ms) - start)) -lt 10000 ]]; do
                sleep 0.05
        done
        if kill -0 "$QPID" 2>/dev/null; then
                fail "QEMU still running 10 s after system_powerdown"
        else
                pass "QEMU exited $(($(now_ms) - start)) ms after system_powerdown"
        fi
        wait "$QPID" 2>/dev/null || true
        QPID=
        check "guest powered off cleanly (serial: reboot: Power down)" grep -q 'reboot: Power down' "$SERIAL"
}

# req METHOD PATH: one request; sets STATUS, BODY, HEADERS and checks the framing headers.
req() {
        local out=$TMP/body hdr=$TMP/headers
        : >"$out"
        : >"$hdr"
        STATUS=$(curl -s -m 120 -X "$1" -D "$hdr" -o "$out" -w '%{http_code}' "$BASE$2") || STATUS=000
        BODY=$(<"$out")
        HEADERS=$(tr -d '\r' <"$hdr")
        local len
        len=$(sed -n 's/^[Cc]ontent-[Ll]ength: *//p' <<<"$HEADERS")
        [[ $len == "$(stat -c %s "$out")" ]] || fail "$1 $2: Content-Length '$len' != body size $(stat -c %s "$out")"
        grep -qi '^Connection: close$' <<<"$HEADERS" || fail "$1 $2: no Connection: close"
}

# expect METHOD PATH CODE [BODY_REGEX]
expect() {
        req "$1" "$2"
        if [[ $STATUS != "$3" ]]; then
                fail "$1 $2 -> $STATUS (want $3): $BODY"
        elif [[ -n ${4:-} ]] && ! [[ $BODY =~ $4 ]]; then
                fail "$1 $2 -> body '$BODY' !~ /$4/"
        else
                pass "$1 $2 -> $3"
        fi
}

# json KEY: value of KEY in $BODY (string or number).
json() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\)\"\{0,1\}.*/\1/p" <<<"$BODY"; }

# raw REQUEST_BYTES: sends bytes on a plain TCP connection, prints the response status line.
raw() {
        local line
        exec 3<>"/dev/tcp/127.0.0.1/$PORT"
        printf '%b' "$1" >&3
        IFS= read -r -t 30 line <&3 || line=
        exec 3<&- 3>&-
        echo "${line%$'\r'}"
}

# ---------------------------------------------------------------------------------------
DISK=$TMP/disk.qcow2
qemu-img create -q -f qcow2 "$DISK" 1G
MARK=smoke-Mark_1.0

boot
check "serial console shows the ready line" grep -q 'vmx-guest: ready' "$SERIAL"

expect GET /health 200 '^ok$'
grep -qi '^Content-Type: text/plain' <<<"$HEADERS" || fail "/health Content-Type"
expect GET /id 200 '^\{"vm": "smoke", "boot_id": "[0-9a-f-]{36}", "hits": [0-9]+, "disk_mark": "", "seed": "[0-9a-f]{32}", "generation": 0, "hostname": "smoke"\}$'
grep -qi '^Content-Type: application/json' <<<"$HEADERS" || fail "/id Content-Type"
BOOT_ID1=$(json boot_id)
SEED1=$(json seed)
h1=$(json hits)
expect GET /id 200
check "hits +1 per request" test "$(json hits)" -eq $((h1 + 1))

# Wrong paths and methods.
expect GET /nope 404
expect POST /nope 404
expect POST /id 405
grep -qi '^Allow: GET$' <<<"$HEADERS" || fail "405 without Allow: GET"
expect POST /health 405
expect POST /burn?ms=1 405
expect GET "/mark?value=x" 405
expect GET /fill?mb=1 405
expect GET /ram?mb=1 405

# Bad input.
expect POST /mark 400
expect POST "/mark?value=" 400
expect POST "/mark?value=a%20b" 400
expect POST "/mark?value=a/b" 400
expect POST "/mark?value=$(printf 'x%.0s' {1..65})" 400
expect GET /burn 400
expect GET "/burn?ms=abc" 400
expect GET "/burn?ms=-1" 400
expect GET "/burn?ms=60001" 400
expect POST /fill 400
expect POST "/fill?mb=0" 400
expect POST "/fill?mb=1x" 400
expect POST "/fill?mb=1024" 400 # 1 GiB disk, fill starts at 1 MiB
expect POST "/ram?mb=abc" 400
expect POST "/ram?mb=100000" 400
check "garbage request line -> 400" test "$(raw 'garbage\r\n\r\n')" = "HTTP/1.1 400 Bad Request"
check "HTTP/1.0 request -> 200" test "$(raw 'GET /health HTTP/1.0\r\n\r\n')" = "HTTP/1.1 200 OK"
exec 3<>"/dev/tcp/127.0.0.1/$PORT" && exec 3<&- 3>&- # a connection closed without a request
expect GET /health 200

# Endpoints.
expect POST "/mark?value=$MARK" 200 "^\\{\"disk_mark\": \"$MARK\"\\}$"
expect GET /id 200 "\"disk_mark\": \"$MARK\""
expect POST "/mark?other=1&value=$MARK" 200 # other parameters are ignored
t0=$(now_ms)
expect GET "/burn?ms=1500" 200 '^\{"burn_ms": 1500\}$'
check "burn took >= 1500 ms ($(($(now_ms) - t0)) ms)" test $(($(now_ms) - t0)) -ge 1500
expect GET "/burn?ms=0" 200
expect POST "/fill?mb=8" 200 '^\{"fill_mb": 8\}$'
expect POST "/ram?mb=8" 200 '^\{"ram_mb": 8\}$'
expect POST "/ram?mb=16" 200 '^\{"ram_mb": 16\}$'
expect POST "/ram?mb=0" 200 '^\{"ram_mb": 0\}$'
code=$(curl -s -m 30 -o /dev/null -w '%{http_code}' -X POST --data-binary 'ignored body' \
        "$BASE/mark?value=$MARK")
check "POST with a body -> 200" test "$code" = 200

# Concurrency: N requests at once all succeed and the counter counts every one of them.
N=30
expect GET /id 200
h_before=$(json hits)
pids=()
for i in $(seq "$N"); do
        curl -s -m 60 -o "$TMP/par-$i" -w '%{http_code}' "$BASE/id" >"$TMP/par-$i.code" &
        pids+=($!)
done
wait "${pids[@]}" || true
ok=0
inrange=0
for i in $(seq "$N"); do
        [[ $(<"$TMP/par-$i.code") == 200 ]] && ok=$((ok + 1))
        h=$(sed -n 's/.*"hits": \([0-9]*\).*/\1/p' "$TMP/par-$i")
        [[ -n $h ]] && ((h > h_before && h <= h_before + N)) && inrange=$((inrange + 1))
done
check "$N parallel GET /id all answered 200 ($ok)" test "$ok" -eq "$N"
check "$N parallel GET /id saw hits within ($h_before, $((h_before + N))]" test "$inrange" -eq "$N"
expect GET /id 200
check "hits counted all $N parallel requests" test "$(json hits)" -eq $((h_before + N + 1))
# A slow request does not block others.
curl -s -m 60 -o /dev/null "$BASE/burn?ms=4000" &
burn=$!
sleep 0.5
t0=$(now_ms)
expect GET /health 200
check "GET /health answered while /burn runs ($(($(now_ms) - t0)) ms)" kill -0 "$burn"
wait "$burn" || fail "background /burn failed"

expect GET /id 200
HITS_END=$(json hits)
powerdown

# Same disk again: the mark persists; RAM state (hits, seed) and boot_id do not.
boot
expect GET /id 200 "^\\{\"vm\": \"smoke\", .*\"disk_mark\": \"$MARK\", \"seed\": \"[0-9a-f]{32}\", \"generation\": 0, .*\\}$"
check "boot_id changed on a cold boot" test "$(json boot_id)" != "$BOOT_ID1"
check "seed changed on a cold boot" test "$(json seed)" != "$SEED1"
check "hits restarted from 0 ($(json hits) < $HITS_END)" test "$(json hits)" -lt "$HITS_END"
powerdown

# The disk as the host sees it: mark header at offset 0, /fill data from 1 MiB on.
qemu-img convert -f qcow2 -O raw "$DISK" "$TMP/disk.raw"
check "disk header is vmx-mark:$MARK" test "$(head -c 512 "$TMP/disk.raw" | tr -d '\0')" = "vmx-mark:$MARK"
nonzero=$(dd if="$TMP/disk.raw" bs=1M skip=1 count=8 status=none | tr -d '\0' | wc -c)
check "8 MiB of random data at 1 MiB ($nonzero non-zero bytes)" test "$nonzero" -gt $((8 * 1048576 * 99 / 100))

if [[ $FAILS -ne 0 ]]; then
        echo "guest-smoke: $FAILS check(s) failed" >&2
        exit 1
fi
echo "guest-smoke: all checks passed"
