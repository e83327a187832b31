#!/usr/bin/env bash
# The marketplace as its users meet it (DESIGN.md §11; the Virtuoso report's §5, every function a
# buyer and a provider use), through the CLI, on real QEMU guests: one local cluster of four
# chamber RMs that takes signups, providers p1 (chamber1, chamber2) and p2 (chamber3, chamber4),
# buyers b1 and b2, each logged in with a login file of their own.
#   - signup, login; the admin assigns RMs, adds a suggested configuration, sets the fee, deposits;
#   - offers set and listed; bad offers refused with one line and nothing changed;
#   - a machine registered with a bid too low (no offer), raised (offers cheapest first), stored;
#     then fixed (no edit), hidden from the other buyer (404), not the provider's to act on;
#   - it boots only at its offer and its guest answers; suspend, resume; migrated suspended to
#     the other provider (chunks) and back (full), the provider following it; stop;
#   - the Oracle killed with SIGKILL while it is stored: every missed storage period charged once;
#   - the ledger against the recorded history (running charged exactly for the running intervals,
#     storage contiguous from the store, each charge's provider the one of its span), the events;
#   - the buyer's and the providers' views of the money; delete ends the charges.
# The daemon-level twin (fake VMM) is tests/unit/test-marketplace.c.
source "$(dirname "$0")/lib.sh"

LOGIN="$TEST_DIR/login"
mkdir -p "$LOGIN"
# the admin's commands find DIR/admin.token: a login file that never exists keeps any login of
# the host's user out of this test
export VMATRIX_LOGIN_FILE="$LOGIN/admin"
unset VMATRIX_TOKEN
printf 'market-pass-1\n' >"$TEST_DIR/pw"

as() { # as USER vmatrix-args...: the CLI with USER's login file
        local u=$1
        shift
        VMATRIX_LOGIN_FILE="$LOGIN/$u" "$VMATRIX" "$@"
}
# refused USER "description" pattern args...: as USER the command exits non-zero with exactly one
# line on stderr, which matches pattern (DESIGN.md §4)
refused() {
        local u=$1 what=$2 pattern=$3 err rc=0
        shift 3
        err=$(VMATRIX_LOGIN_FILE="$LOGIN/$u" "$VMATRIX" "$@" 2>&1 >/dev/null) || rc=$?
        if [ "$rc" != 0 ] && [ "$(wc -l <<<"$err")" = 1 ] && grep -qiE "$pattern" <<<"$err"; then
                pass "$what"
        else
                fail "$what: exit $rc, stderr '$err'"
        fi
}
now_ms() { date +%s%3N; }
# GET an API path as USER, for what the CLI has no command for (a machine's history)
api_as() { # api_as USER PATH
        curl -q -sf --max-time 10 --cacert "$VMATRIX_CLUSTER_DIR/ca.pem" \
                -H "Authorization: Bearer $(jq -r .token "$LOGIN/$1")" "$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")$2"
}
asq() { as "$@" >/dev/null; } # as, quiet on stdout (for check)
m1_field() { as b1 vm show m1 --json | jq -r ".$1"; }
# b1's charges for m1 (storage and running), oldest first. The API lists the last 100 charges
# by default and `account show` has no limit option: the test stays well under that, and says so.
m1_charges() {
        as b1 account show --json | jq -c '[.charges[] | select(.vm == "m1" and .kind != "registration")] | sort_by(.period_start, .kind)'
}

if ! "$VMATRIX" cluster up --dir "$VMATRIX_CLUSTER_DIR" --accel "$VMATRIX_ACCEL" --production 0 --chambers 4 \
        --open-signup >/dev/null; then
        fail "cluster up --open-signup"
        finish
        exit 1
fi
auth_use_token "$VMATRIX_CLUSTER_DIR/admin.token" "$VMATRIX_CLUSTER_DIR/ca.pem"

# ---- 1. signups and logins
for u in p1:provider p2:provider b1:buyer b2:buyer; do
        check "signup ${u%:*} as ${u#*:}" asq nobody signup "${u%:*}" --role "${u#*:}" --password-file "$TEST_DIR/pw"
        check "${u%:*} logs in" asq "${u%:*}" login "${u%:*}" --password-file "$TEST_DIR/pw"
        check_eq "whoami: ${u%:*}" "$(as "${u%:*}" whoami --json | jq -r '.user + " " + .role')" "${u%:*} ${u#*:}"
done
refused nobody "a signup makes no admin" "provider or a buyer" signup mallory --role admin --password-file "$TEST_DIR/pw"
refused nobody "a signup takes no name twice" "exists" signup p1 --role buyer --password-file "$TEST_DIR/pw"

# ---- 2. the admin: RMs to providers, a suggested configuration, the fee, money
vmx rm assign chamber1 --provider p1 >/dev/null && vmx rm assign chamber2 --provider p1 >/dev/null &&
        vmx rm assign chamber3 --provider p2 >/dev/null && vmx rm assign chamber4 --provider p2 >/dev/null
check_eq "four RMs assigned" "$(vmx events --json | jq '[.[] | select(.kind == "rm-assigned")] | length')" 4
refused b1 "a buyer assigns no RM" "may not" rm assign chamber1 --provider p2
refused admin "an RM goes to providers only" "not a provider" rm assign chamber1 --provider b1
vmx image build tiny-http >/dev/null
check "market config add small" vmx market config add small --image tiny-http --memory 128 --vcpus 1 --disk 1
check_eq "buyers see the configuration" "$(as b1 market configs --json | jq -c '[.[] | {name, image, memory_mib, vcpus, disk_gib}]')" \
        '[{"name":"small","image":"tiny-http","memory_mib":128,"vcpus":1,"disk_gib":1}]'
check "market fee 0.05" vmx market fee 0.05
check_eq "the fee" "$(as b1 market fee --json | jq .registration_fee)" 50000
check "deposit 100 for b1" vmx account deposit b1 100
check "deposit 100 for b2" vmx account deposit b2 100
refused b1 "a buyer deposits nothing" "may not" account deposit b1 100

# ---- 3. offers: two per provider, short periods so that charges land during the test
# running price of small (1 vCPU, 128 MiB) = vcpu-price + memory-price / 8, per running period
offer() { # offer USER RM VCPUS VCPU-PRICE MIB MIB-PRICE RUN-PERIOD GIB GIB-PRICE STORE-PERIOD
        as "$1" offer set "$2" --vcpus "$3" --vcpu-price "$4" --memory "$5" --memory-price "$6" --running-period "$7" \
                --disk "$8" --disk-price "$9" --storage-period "${10}"
}
check "p1 offers chamber1" offer p1 chamber1 2 0.001 1024 0.002 1s 10 0.0001 2s  # 0.00125/1s, 0.0001/2s
check "p1 offers chamber2" offer p1 chamber2 2 0.003 1024 0.004 1s 10 0.0003 2s  # 0.0035/1s, 0.0003/2s
check "p2 offers chamber3" offer p2 chamber3 2 0.0005 1024 0.001 1s 10 0.001 2s  # 0.000625/1s, 0.001/2s
check "p2 offers chamber4" offer p2 chamber4 1 3.6 512 3.6 1h 5 0.0002 2s        # 4.05/1h, 0.0002/2s
offers_p1=$(as p1 offer list --json)
check_eq "p1 lists its two offers" "$(jq -r 'map(.rm) | join(",")' <<<"$offers_p1")" chamber1,chamber2
check_eq "offer list --json: the contract's fields" \
        "$(jq -c '.[0] | {rm, memory_mib, vcpus, disk_gib, used, prices, revenue, machines}' <<<"$offers_p1")" \
        '{"rm":"chamber1","memory_mib":1024,"vcpus":2,"disk_gib":10,"used":{"memory_mib":0,"vcpus":0,"disk_gib":0},"prices":{"vcpu_price":1000,"memory_price":2000,"running_period_s":1,"disk_price":100,"storage_period_s":2},"revenue":0,"machines":[]}'
check_eq "an offer per hour is kept per hour" \
        "$(as p2 offer list --json | jq -c '.[] | select(.rm == "chamber4") | .prices')" \
        '{"vcpu_price":3600000,"memory_price":3600000,"running_period_s":3600,"disk_price":200,"storage_period_s":2}'
table=$(as p1 offer list)
check "offer list: a table with the prices per period" grep -qE '^chamber1 +p1 +0/2 +0/1024M +0/10G +0\.001000/1s' <<<"$table"

# bad offers: each refused with one line, nothing changed
snapshot() { vmx offer list --json | jq -c 'map({rm, provider, memory_mib, vcpus, disk_gib, prices})'; }
before=$(snapshot)
refused p1 "a negative price is refused" "vcpu-price -1" offer set chamber1 --vcpus 2 --vcpu-price -1 --memory 1024 \
        --memory-price 0.002 --running-period 1s --disk 10 --disk-price 0.0001 --storage-period 2s
refused p1 "a running period of 0 is refused" "running-period 0" offer set chamber1 --vcpus 2 --vcpu-price 0.001 \
        --memory 1024 --memory-price 0.002 --running-period 0 --disk 10 --disk-price 0.0001 --storage-period 2s
refused p1 "a price that is no number is refused" "not an amount" offer set chamber1 --vcpus 2 --vcpu-price 0.001 \
        --memory 1024 --memory-price cheap --running-period 1s --disk 10 --disk-price 0.0001 --storage-period 2s
refused p1 "a size that is no number is refused" "not a whole number" offer set chamber1 --vcpus two --vcpu-price 0.001 \
        --memory 1024 --memory-price 0.002 --running-period 1s --disk 10 --disk-price 0.0001 --storage-period 2s
refused p1 "an offer larger than the RM is refused" "larger than RM" offer set chamber1 --vcpus 4096 --vcpu-price 0.001 \
        --memory 1024 --memory-price 0.002 --running-period 1s --disk 10 --disk-price 0.0001 --storage-period 2s
refused p1 "an offer on another provider's RM: as if there were none" 'no RM named "chamber3"' offer set chamber3 \
        --vcpus 1 --vcpu-price 0.001 --memory 1024 --memory-price 0.002 --running-period 1s --disk 10 --disk-price 0.0001 \
        --storage-period 2s
refused b1 "a buyer sets no offer" "may not" offer set chamber1 --vcpus 1 --vcpu-price 0.001 --memory 1024 \
        --memory-price 0.002 --running-period 1s --disk 10 --disk-price 0.0001 --storage-period 2s
refused p1 "an offer needs every field" "missing --memory" offer set chamber1 --vcpus 2 --vcpu-price 0.001
refused b1 "a buyer lists no offers" "may not" offer list
check_eq "the bad offers changed nothing" "$(snapshot)" "$before"

# ---- 4. a machine: registered, matched, stored
refused b1 "a bid needs a period" "bid-running" vm register m1 --config small --bid-storage 0.01/2s --bid-running 1
check "b1 registers m1 with a running bid too low" asq b1 vm register m1 --config small --bid-storage 0.01/2s \
        --bid-running 0.0001/1s
check_eq "m1 is registered, nowhere" "$(as b1 vm show m1 --json | jq -c '{state, rm, size: [.memory_mib, .vcpus, .market.disk_gib]}')" \
        '{"state":"registered","rm":null,"size":[128,1,1]}'
check "no offer matches: said so" grep -q "no offer matches vm m1" <<<"$(as b1 vm offers m1)"
check_eq "no offer matches: --json is []" "$(as b1 vm offers m1 --json | jq -c .)" "[]"
refused b1 "a registered machine boots nowhere" "registered: cannot boot" vm boot m1
check "b1 raises the running bid" asq b1 vm edit m1 --bid-running 0.01/1s
check_eq "half a bid keeps the other half" "$(m1_field market.bid | jq -c .)" \
        '{"storage_price":10000,"storage_period_s":2,"running_price":10000,"running_period_s":1}'
offers=$(as b1 vm offers m1 --json)
check_eq "every offer matches now, cheapest first (30 days stored and running)" "$(jq -r 'map(.rm) | join(",")' <<<"$offers")" \
        chamber3,chamber4,chamber1,chamber2
check "the order is by the estimate of 30 days" jq -e \
        '[.[] | .storage_price * 2592000 / .storage_period_s + .running_price * 2592000 / .running_period_s] | . == sort' \
        <<<"$offers" >/dev/null
check_eq "vm offers --json: the contract's fields" "$(jq -c '.[] | select(.rm == "chamber1") | {rm, provider, storage_price, running_price, storage_period_s, running_period_s, free}' <<<"$offers")" \
        '{"rm":"chamber1","provider":"p1","storage_price":100,"running_price":1250,"storage_period_s":2,"running_period_s":1,"free":{"memory_mib":1024,"vcpus":2,"disk_gib":10}}'
check_eq "an hourly offer is priced per hour" "$(jq -c '.[] | select(.rm == "chamber4") | [.running_price, .running_period_s]' <<<"$offers")" \
        "[4050000,3600]"
refused b2 "another buyer's machine: no vm named (edit)" 'no vm named "m1"' vm edit m1 --bid-running 1/1s
refused b2 "another buyer's machine: no vm named (offers)" 'no vm named "m1"' vm offers m1
refused b2 "another buyer's machine: no vm named (store)" 'no vm named "m1"' vm store m1 --at chamber3
check "b1 stores m1 at chamber1" asq b1 vm store m1 --at chamber1
check_eq "stored at chamber1 at its prices" "$(as b1 vm show m1 --json | jq -c '{state, offer: .market.offer, provider: .market.provider, terms: .market.terms}')" \
        '{"state":"stored","offer":"chamber1","provider":"p1","terms":{"storage_price":100,"storage_period_s":2,"running_price":1250,"running_period_s":1}}'
refused b1 "a stored machine's bid is fixed" "fixed once stored" vm edit m1 --bid-running 0.02/1s
refused b1 "a stored machine's size is fixed" "fixed once stored" vm edit m1 --memory 256
refused b1 "a machine is stored once" "cannot store" vm store m1 --at chamber2
refused b2 "another buyer's machine: no vm named (show)" 'no vm named "m1"' vm show m1
refused b2 "another buyer's machine: no vm named (boot)" 'no vm named "m1"' vm boot m1
refused b2 "another buyer's machine: no vm named (delete)" 'no vm named "m1"' vm delete m1
check_eq "another buyer lists nothing" "$(as b2 vm list --json | jq length)" 0
refused p1 "the provider may not boot it" "may not" vm boot m1
refused p1 "the provider may not delete it" "may not" vm delete m1
check_eq "the provider reads it, with no actions" "$(as p1 vm show m1 --json | jq -c '{name, owner, actions}')" \
        '{"name":"m1","owner":"b1","actions":[]}'
refused p2 "the other provider does not see it" 'no vm named "m1"' vm show m1
refused p1 "an offer cannot shrink below what is stored there" "cannot be smaller" offer set chamber1 --vcpus 2 \
        --vcpu-price 0.001 --memory 64 --memory-price 0.002 --running-period 1s --disk 10 --disk-price 0.0001 \
        --storage-period 2s
check_eq "p1's offer holds m1" "$(as p1 offer list --json | jq -c '.[] | select(.rm == "chamber1") | {used, machines: [.machines[] | {name, buyer, state}]}')" \
        '{"used":{"memory_mib":128,"vcpus":1,"disk_gib":1},"machines":[{"name":"m1","buyer":"b1","state":"stored"}]}'

# ---- 5. running: only at its offer; the guest answers; migrations to the other provider and back
refused b1 "it is activated only at its offer's RM, a chamber" 'RM "chamber1" is a chamber RM; m1 needs a production' \
        vm activate m1
refused b1 "it runs only at its offer's RM" 'runs only on RM "chamber1"' vm boot m1 --rm chamber2
check "b1 boots m1" asq b1 vm boot m1
check_eq "loading on chamber1" "$(as b1 vm show m1 --json | jq -r '.state + " " + .rm')" "loading chamber1"
addr=$(m1_field address)
wait_until 90 guest_get "$addr" /health >/dev/null || fail "the guest answers after boot"
id0=$(guest_get "$addr" /id || echo '{}')
boot_id=$(jq -r .boot_id <<<"$id0")
check_eq "the guest is m1" "$(jq -r .vm <<<"$id0")" m1
sleep 2 # a couple of running periods
check "suspend" asq b1 vm suspend m1
check_eq "suspended on chamber1" "$(as b1 vm show m1 --json | jq -r '.state + " " + .rm')" "suspended chamber1"
sleep 1
out=$(as b1 vm migrate m1 --to chamber3 --method chunks --json) || fail "migrate to chamber3 (chunks)"
check_eq "by chunks" "$(jq -r .method <<<"$out")" chunks
check_eq "suspended on chamber3 of p2" "$(as b1 vm show m1 --json | jq -r '[.state, .rm, .market.offer, .market.provider] | join(" ")')" \
        "suspended chamber3 chamber3 p2"
check_eq "at chamber3's prices from now" "$(m1_field market.terms.running_price)" 625
check_eq "p2 sees it now" "$(as p2 offer list --json | jq -c '[.[].machines[] | {name, buyer, state}]')" \
        '[{"name":"m1","buyer":"b1","state":"suspended"}]'
refused p1 "p1 does not any more" 'no vm named "m1"' vm show m1
sleep 1
out=$(as b1 vm migrate m1 --to chamber2 --method full --json) || fail "migrate to chamber2 (full)"
check_eq "by whole files" "$(jq -r '[.method, .bytes_transferred == .bytes_total] | join(" ")' <<<"$out")" "full true"
check_eq "suspended on chamber2 of p1" "$(as b1 vm show m1 --json | jq -r '[.state, .rm, .market.offer, .market.provider] | join(" ")')" \
        "suspended chamber2 chamber2 p1"
check "resume" asq b1 vm resume m1
check_eq "loading on chamber2" "$(as b1 vm show m1 --json | jq -r '.state + " " + .rm')" "loading chamber2"
addr=$(m1_field address)
id1=$(guest_get "$addr" /id || echo '{}')
check_eq "the guest answers there: the same boot" "$(jq -r .boot_id <<<"$id1")" "$boot_id"
check "its RAM came along" test "$(jq '.hits // 0' <<<"$id1")" -gt "$(jq .hits <<<"$id0")"
sleep 2
check "stop" asq b1 vm stop m1
check_eq "stored at chamber2" "$(as b1 vm show m1 --json | jq -r '[.state, .market.offer] | join(" ")')" "stored chamber2"
check "no QEMU left after the stop" wait_until 10 no_qemu_left

# ---- 8. the Oracle killed between two storage period boundaries while m1 is stored
# m1's storage periods at chamber2 run every 2 s from the migration's commit on, through the stop
wait_until 10 bash -c "[ \"\$(VMATRIX_LOGIN_FILE='$LOGIN/b1' '$VMATRIX' account show --json | jq '[.charges[] | select(.kind == \"storage\" and .offer == \"chamber2\")] | length')\" -gt 0 ]" ||
        fail "a storage period at chamber2 was charged"
edge=$(m1_charges | jq '[.[] | select(.kind == "storage" and .offer == "chamber2")] | last | .period_end')
now=$(now_ms)
kill_at=$((edge + ((now - edge) / 2000 + 1) * 2000 + 1000)) # the middle of the next period
sleep "$(awk -v d=$((kill_at - now)) 'BEGIN { printf "%.3f", d / 1000 }')"
before=$(m1_charges)
oracle_pid=$(cat "$VMATRIX_CLUSTER_DIR/pids/oracle.pid")
killed_ms=$(now_ms)
kill -9 "$oracle_pid"
wait_until 10 proc_gone "$oracle_pid" || fail "the Oracle is gone after kill -9"
sleep 6.5 # three period boundaries pass
restart_begin=$(now_ms)
vmx cluster restart --dir "$VMATRIX_CLUSTER_DIR" oracle >/dev/null || fail "the Oracle restarts"
restart_ms=$(now_ms)
missed=$(((restart_ms - edge) / 2000 - (killed_ms - edge) / 2000))
log "Oracle down for $((restart_ms - killed_ms)) ms: $missed storage periods ended meanwhile"
caught_up() { [ "$(m1_charges | jq "[.[] | select(.kind == \"storage\" and .period_end > $killed_ms and .period_end <= $restart_ms)] | length")" -ge "$missed" ]; }
wait_until 10 caught_up || true
after=$(m1_charges)
check "the sessions outlive the Oracle" asq b1 whoami >/dev/null
check_eq "every missed storage period is charged" \
        "$(jq "[.[] | select(.kind == \"storage\" and .period_end > $killed_ms and .period_end <= $restart_ms)] | length" <<<"$after")" "$missed"
check_eq "...after the restart" \
        "$(jq "[.[] | select(.kind == \"storage\" and .period_end > $killed_ms and .posted_ms < $restart_begin)] | length" <<<"$after")" 0
check_eq "no storage period twice" "$(jq '[.[] | select(.kind == "storage") | .period_start] | (length - (unique | length))' <<<"$after")" 0
check_eq "no charge posted before the kill changed or went" "$(jq -n --argjson b "$before" --argjson a "$after" '$b - $a | length')" 0
check_eq "storage stays contiguous over the outage" \
        "$(jq '[.[] | select(.kind == "storage")] | sort_by(.period_start) | [range(1; length) as $i | select(.[$i].period_start != .[$i - 1].period_end)] | length' <<<"$after")" 0

# ---- 6. the ledger against the recorded history (the last state change, the stop, is long past)
history=$(api_as b1 /v1/vms/m1/history) || fail "GET /v1/vms/m1/history"
charges=$(m1_charges)
n_charges=$(as b1 account show --json | jq '.charges | length')
log "b1 has $n_charges charges"
check "b1's charges are all listed (under the API's default of 100)" test "$n_charges" -lt 100
ledger=$(jq -n --argjson h "$history" --argjson c "$charges" '
  def running_due($s; $prev):
    if $s == "loading" or $s == "active" then true
    elif (["suspending", "stopping", "hibernating", "deactivating", "draining", "deleting", "migrating",
           "activating", "storing"] | index($s)) != null then $prev
    else false end;
  def span_at($t): [$h.spans[] | select(.at_ms <= $t)] | last;
  $h.spans as $sp | ($c | map(.period_end) | max) as $last
  | ($c | map(select(.kind == "storage")) | sort_by(.period_start)) as $st
  | {
      run_charged: ($c | map(select(.kind == "running") | .period_end - .period_start) | add // 0),
      run_due: (reduce range(0; ($sp | length) - 1) as $j ({sum: 0, prev: false};
                  running_due($sp[$j].state; .prev) as $d
                  | .sum += (if $d and $sp[$j + 1].at_ms <= $last then $sp[$j + 1].at_ms - $sp[$j].at_ms else 0 end)
                  | .prev = $d) | .sum),
      running_ended_last: ([range(0; ($sp | length) - 1) as $j | select($sp[$j].state == "loading") | $sp[$j + 1].at_ms] | max),
      storage_from: ($st[0].period_start),
      stored_at: ([$sp[] | select(.state == "stored")][0].at_ms),
      storage_gaps: ([range(1; $st | length) as $i | select($st[$i].period_start != $st[$i - 1].period_end)] | length),
      wrong_provider: ([$c[] | . as $x | select(span_at($x.period_start).provider != $x.provider
                          or ([$sp[] | select(.at_ms > $x.period_start and .at_ms < $x.period_end
                                             and .provider != $x.provider)] | length) > 0)] | length),
      wrong_amount: ([$c[] | . as $x | span_at($x.period_start).terms as $t
                      | (if $x.kind == "storage" then [$t.storage_price, $t.storage_period_s]
                         else [$t.running_price, $t.running_period_s] end) as [$p, $per]
                      | select($x.amount != (($p * ($x.period_end - $x.period_start) * 2 + $per * 1000) / ($per * 2000) | floor))]
                     | length),
      providers: ($c | map(.provider) | unique | join(",")),
      states: ($sp | map(.state) | join(" "))
    }')
log "ledger: $(jq -c . <<<"$ledger")"
check_eq "the history: every step recorded" "$(jq -r .states <<<"$ledger")" \
        "registered stored booting loading suspending suspended migrating suspended migrating suspended resuming loading stopping stored"
check "running was charged" test "$(jq .run_charged <<<"$ledger")" -gt 3000
check_eq "running charged = the time in running states (ms)" "$(jq .run_charged <<<"$ledger")" "$(jq .run_due <<<"$ledger")"
check "the last running interval has ended before the last charge" \
        test "$(jq .running_ended_last <<<"$ledger")" -le "$(jq '[.[].period_end] | max' <<<"$charges")"
check_eq "storage charged from the store on" "$(jq .storage_from <<<"$ledger")" "$(jq .stored_at <<<"$ledger")"
check_eq "storage contiguous: no gap, no overlap" "$(jq .storage_gaps <<<"$ledger")" 0
check_eq "each charge names the provider of its span" "$(jq .wrong_provider <<<"$ledger")" 0
check_eq "each charge is its span's price prorated" "$(jq .wrong_amount <<<"$ledger")" 0
check_eq "both providers were paid" "$(jq -r .providers <<<"$ledger")" p1,p2
check_eq "charges at chamber3 went to p2 only" "$(jq -r '[.[] | select(.offer == "chamber3") | .provider] | unique | join(",")' <<<"$charges")" p2

# the events, in one order: offers, registration, store, charges, migrations
ev=$(vmx events --json)
first() { jq "[.[] | select(.kind == \"$1\"$2)][0].id // -1" <<<"$ev"; }
last_offer=$(jq '[.[] | select(.kind == "offer-set")] | last | .id // -1' <<<"$ev")
e_reg=$(first registered ' and .vm == "m1"') e_store=$(first store ' and .vm == "m1"')
e_charge=$(first charge ' and .vm == "m1"') e_migrate=$(first migrate ' and .vm == "m1"')
check "events: offer-set, registered, store, charge, migrate are there" \
        test "$last_offer" -gt 0 -a "$e_reg" -gt 0 -a "$e_store" -gt 0 -a "$e_charge" -gt 0 -a "$e_migrate" -gt 0
check "events: in that order" test "$last_offer" -lt "$e_reg" -a "$e_reg" -lt "$e_store" -a "$e_store" -lt "$e_charge" \
        -a "$e_charge" -lt "$e_migrate"
check_eq "two migrations, to chamber3 then chamber2" \
        "$(jq -r '[.[] | select(.kind == "migrate" and .vm == "m1") | .rm] | join(",")' <<<"$ev")" chamber3,chamber2
check_eq "the store event names the offer" "$(jq -r "[.[] | select(.id == $e_store)][0].rm" <<<"$ev")" chamber1

# ---- 7. both views of the money while m1 is stored
acct=$(as b1 account show --json)
check_eq "account show --json: the contract's fields" "$(jq -c '[has("user", "role", "balance", "charges", "runs_out_s")] | all' <<<"$acct")" true
check_eq "account show b1 is b1's own" "$(as b1 account show b1 --json | jq -r '.user + " " + .role')" "b1 buyer"
check "a stored machine costs: the money runs out some day" jq -e '.runs_out_s > 0' <<<"$acct" >/dev/null
check "the text says in how long (not a date)" grep -qE "runs out in [0-9]+d [0-9]+h$" <<<"$(as b1 account show | head -n1)"
text=$(as b1 account show)
check "the charges' table: storage paid to p1" grep -qE '^m1 +storage +p1 +[0-9T:-]+ +2\.000 +0\.000300$' <<<"$text"
check "the charges' table: a running period paid to p1" grep -qE '^m1 +running +p1 +[0-9T:-]+ +1\.000 +0\.00(1250|3500)$' <<<"$text"
check "the charges' table: storage paid to p2" grep -qE '^m1 +storage +p2 ' <<<"$text"
refused b2 "another buyer's account: 404" 'no user "b1"' account show b1
refused p1 "a provider reads no buyer's account" 'no user "b1"' account show b1
offers_p1=$(as p1 offer list --json)
check_eq "p1's offer list: m1 at chamber2, metadata only" \
        "$(jq -c '[.[] | {rm, machines: [.machines[] | {name, buyer, state, has_actions: has("actions")}]}]' <<<"$offers_p1")" \
        '[{"rm":"chamber1","machines":[]},{"rm":"chamber2","machines":[{"name":"m1","buyer":"b1","state":"stored","has_actions":false}]}]'
check_eq "chamber1's revenue: what m1 paid there" "$(jq '.[] | select(.rm == "chamber1") | .revenue' <<<"$offers_p1")" \
        "$(as b1 account show --json | jq '[.charges[] | select(.offer == "chamber1") | .amount] | add')"
check_eq "chamber3's revenue, for p2" "$(as p2 offer list --json | jq '.[] | select(.rm == "chamber3") | .revenue')" \
        "$(as b1 account show --json | jq '[.charges[] | select(.offer == "chamber3") | .amount] | add')"
check "the table lists the buyer's machine, no action column" \
        grep -qE '^m1 +chamber2 +b1 +stored +1cpu/128M/1G +0\.000300/2s +0\.003500/1s' <<<"$(as p1 offer list)"

# ---- 5 (end). delete: the charges end with it
check "delete" asq b1 vm delete m1
refused b1 "m1 is gone" 'no vm named "m1"' vm show m1
check_eq "chamber2 is free again" "$(as p1 offer list --json | jq -c '.[] | select(.rm == "chamber2") | [.used, .machines]')" \
        '[{"memory_mib":0,"vcpus":0,"disk_gib":0},[]]'
# the billing tick posts the last storage period at chamber2, cut short by the delete
last_cut() { [ "$(m1_charges | jq '[.[] | select(.kind == "storage" and .offer == "chamber2" and .period_end - .period_start < 2000)] | length')" = 1 ]; }
check "the storage period the delete cut is charged" wait_until 10 last_cut
n1=$(as b1 account show --json | jq '.charges | length')
sleep 2.5
acct=$(as b1 account show --json)
check_eq "no charge after the delete" "$(jq '.charges | length' <<<"$acct")" "$n1"
check_eq "nothing accrues any more" "$(jq -c '[.rate_per_hour, .runs_out_s]' <<<"$acct")" "[0,null]"
check_eq "b1: balance = deposits - fee - charges" "$(jq .balance <<<"$acct")" \
        "$(jq '100000000 - 50000 - ([.charges[] | select(.kind != "registration") | .amount] | add)' <<<"$acct")"
check_eq "b1: the fee is one registration charge" \
        "$(jq -c '[.charges[] | select(.kind == "registration") | .amount]' <<<"$acct")" "[50000]"
check_eq "b1: per machine, the same total" "$(jq '.per_vm.m1' <<<"$acct")" "$(jq '[.charges[].amount] | add' <<<"$acct")"
for p in p1 p2; do
        pa=$(as "$p" account show --json)
        check_eq "$p: a provider's account" "$(jq -r .role <<<"$pa")" provider
        check "$p: its charges are all listed" test "$(jq '.charges | length' <<<"$pa")" -lt 100
        check_eq "$p: balance = what b1 paid it" "$(jq .balance <<<"$pa")" \
                "$(jq "[.charges[] | select(.provider == \"$p\") | .amount] | add" <<<"$acct")"
        check_eq "$p: revenue per RM adds up to it" "$(jq '[.revenue[]] | add' <<<"$pa")" "$(jq .balance <<<"$pa")"
done
ev=$(vmx events --json)
check_eq "one charge event per charge" "$(jq '[.[] | select(.kind == "charge" and .vm == "m1")] | length' <<<"$ev")" \
        "$(jq '[.charges[] | select(.kind != "registration")] | length' <<<"$acct")"
check_eq "b2 was charged nothing" "$(as b2 account show --json | jq -c '[.balance, (.charges | length)]')" "[100000000,0]"

vmx cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no QEMU left" no_qemu_left
check "no namespace or bridge left" no_netns_left
finish
