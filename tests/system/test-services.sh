#!/usr/bin/env bash
# Services, with real QEMU VMs behind a real HAProxy on a namespaced cluster of four production
# RMs and one Loading Chamber:
# - two services are created: each pool is booted in the chamber and hibernated into the Nest,
#   then min VMs are activated behind the service's endpoint;
# - a CPU overload (wrk on GET /burn) activates more VMs of that service, and the RM it still
#   lacks is recorded as a server loss; when the load ends they are drained back one by one, with a probe load running across the scale-down and not one
#   failed request;
# - kill -9 of an active VM's QEMU: a pre-booted VM of its service replaces it, and the event
#   says how long that took; a hung guest (QEMU stopped) is fenced when its health probe has
#   failed for 10 s, and replaced;
# - kill -9 of HAProxy: the Oracle starts it again with every frontend and server;
# - a restarted Oracle serves the same services;
# - load profiles: /metrics (Prometheus), the time series API, `service top`;
# - bad input (min above max, a pool the Nest cannot hold, an unknown image, an image that does
#   not boot, a bad health check) is refused or fails cleanly, leaving nothing half-made; a
#   service is deleted with its VMs;
# - a service's own health check: tcp, or http of another path than /health.
source "$(dirname "$0")/lib.sh"

# a pool VM that does not answer within this long after booting fails its service's creation
export VMATRIX_SERVICE_BOOT_TIMEOUT_S=${VMATRIX_SERVICE_BOOT_TIMEOUT_S:-60}
cluster_up --production 4 --chambers 1
vmx image build tiny-http >/dev/null
O=$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")

svc_field() { vmx service show "$1" --json | jq -r ".$2"; }
svc_active() { svc_field "$1" active; }
svc_state_is() { [ "$(svc_field "$1" state)" == "$2" ]; }
active_is() { [ "$(svc_active "$1")" == "$2" ]; }
active_at_least() { [ "$(svc_active "$1")" -ge "$2" ]; }
endpoint_serves() { curl -sf --max-time 5 "http://$1/id" >/dev/null; }
events_of() { vmx events --json | jq -c --arg k "$1" '[.[] | select(.kind == $k)]'; }
event_count() { events_of "$1" | jq length; }
has_event() { # has_event KIND SERVICE REASON-REGEX
        vmx events --json | jq -e --arg k "$1" --arg s "$2" --arg re "$3" \
                '[.[] | select(.kind == $k and .service == $s and (.reason | test($re)))] | length > 0' >/dev/null
}
no_match() { ! grep -qE "$1" "$2"; }
# (read whole first: grep -q leaving early would fail the pipe under pipefail)
metrics_have() { local m; m=$(curl -sf "$O/metrics") && grep -qE "$1" <<<"$m"; }
http_code() { curl -s -o /dev/null -w '%{http_code}' "$1"; }
vm_state_prebooted() { [ "$(vmx vm show "$1" --json | jq -r '.state + "/" + (.prebooted|tostring)')" == "$2" ]; }
vms_named() { vmx vm list --json | jq --arg p "$1" '[.[] | select(.name | startswith($p))] | length'; }
events_at_least() { [ "$(event_count "$1")" -ge "$2" ]; }
no_vms_named() { [ "$(vms_named "$1")" == 0 ]; }
no_haproxy_left() { ! pgrep -f "[h]aproxy .*$VMATRIX_CLUSTER_DIR" >/dev/null; }
endpoint_closed() { ! curl -s --max-time 2 "http://$1/id" >/dev/null; }

# ---- bad input: refused, nothing made
check_refused "min above max" "min .* above max|--min" service create bad --image tiny-http --pool 2 --min 3 --max 2
check_refused "max above the pool" "above .*pool" service create bad --image tiny-http --pool 2 --min 1 --max 3
check_refused "a pool the Nest cannot hold" "Nest|no_space|free" service create bad --image tiny-http --pool 1000 \
        --min 1 --max 1 --memory 65536
check_refused "an unknown image" "no image" service create bad --image nosuch --pool 1 --min 0 --max 1
check_refused "a bad --high" "high" service create bad --image tiny-http --pool 1 --min 0 --max 1 --high 0
check_refused "a tcp health check with a path" "health-path|no path" service create bad --image tiny-http --pool 1 \
        --min 0 --max 1 --health tcp --health-path /id
check_refused "a health path with a space (it would reach HAProxy's configuration)" "health.path" \
        service create bad --image tiny-http --pool 1 --min 0 --max 1 --health-path "/id x"
check_refused "a health path without its slash" "health.path" service create bad --image tiny-http --pool 1 \
        --min 0 --max 1 --health-path id
check_eq "refused services made nothing" "$(vmx service list --json | jq length)/$(vmx vm list --json | jq length)" "0/0"

# ---- two services; their pools are pre-booted in the chamber, then min VMs are activated
vmx service create web --image tiny-http --pool 4 --min 1 --max 4 --window 3 --high 60 --no-wait >/dev/null
vmx service create api --image tiny-http --pool 2 --min 1 --max 2 --window 3 --high 60 --no-wait >/dev/null
check "web is ready (pool pre-booted)" wait_until 240 svc_state_is web ready
check "api is ready (pool pre-booted)" wait_until 240 svc_state_is api ready
check_eq "web's pool VMs are pre-booted" "$(vmx service show web --json | jq '[.vms[] | select(.prebooted or .state == "active")] | length')" 4
check "web has its min of 1 active VM" wait_until 60 active_is web 1
check "api has its min of 1 active VM" wait_until 60 active_is api 1
web=$(svc_field web endpoint)
api=$(svc_field api endpoint)
check "web's endpoint serves through HAProxy" wait_until 30 endpoint_serves "$web"
check "api's endpoint serves through HAProxy" wait_until 30 endpoint_serves "$api"
check_eq "service show --json has the contract fields" \
        "$(vmx service show web --json | jq -c '[has("name"), has("endpoint"), has("active"), has("pool"), (.vms[0] | has("name") and has("state") and has("rm"))]')" \
        '[true,true,true,true,true]'
check_eq "service list shows both" "$(vmx service list --json | jq -r '[.[].name] | join(",")')" "api,web"

# ---- a CPU overload of web activates more VMs
log "overload: wrk on web's GET /burn"
wrk -t2 -c16 -d40s --timeout 20s "http://$web/burn?ms=300" >"$TEST_DIR/wrk-burn.txt" 2>&1 &
wrk_pid=$!
check "the overload activated more VMs of web" wait_until 40 active_at_least web 2
check "a scale-up event names its reason" has_event scale-up web "active"
# web may grow to 4 but api holds one of the four production RMs at equal priority
check "the RM web lacked is recorded as a server loss" wait_until 30 has_event server-loss web "no free RM"
wait "$wrk_pid" || true
log "$(grep -E 'Requests/sec|requests in' "$TEST_DIR/wrk-burn.txt" | tr -s ' ' | paste -sd' ')"
peak=$(svc_active web)
log "web peaked at $peak active VMs"

# ---- the load ends: web drains back to min, with not one failed request meanwhile
log "probe load across the scale-down"
wrk -t1 -c2 -d60s --timeout 20s "http://$web/id" >"$TEST_DIR/wrk-probe.txt" 2>&1 &
probe_pid=$!
check "web drained back to its min" wait_until 90 active_is web 1
wait "$probe_pid" || true
probe_requests=$(grep -oE '[0-9]+ requests in' "$TEST_DIR/wrk-probe.txt" | awk '{print $1}')
log "probe: ${probe_requests:-?} requests; $(grep -E 'Socket errors|Non-2xx' "$TEST_DIR/wrk-probe.txt" | paste -sd' ')"
check "the probe ran" test "${probe_requests:-0}" -gt 50
check "no probe request failed across the scale-down (no socket errors)" no_match 'Socket errors' "$TEST_DIR/wrk-probe.txt"
check "no probe request failed across the scale-down (no non-2xx)" no_match 'Non-2xx' "$TEST_DIR/wrk-probe.txt"
check "scale-down events name their reason" has_event scale-down web "draining"

# ---- load profiles
check "the Prometheus endpoint has the services' figures" metrics_have '^vmatrix_service_active_vms\{service="web"\} 1'
check "the Prometheus endpoint has VM CPU figures" metrics_have '^vmatrix_vm_cpu_ratio\{'
check "the time series API has web's request rate" bash -c \
        "curl -sf '$O/v1/metrics?series=service:web:request_rate&res=1' | jq -e '.points | length > 0' >/dev/null"
check_eq "the time series API refuses a bad resolution" "$(http_code "$O/v1/metrics?series=service:web:load&res=7")" 400
check "service top --once --json lists web's VMs with their CPU" bash -c \
        "'$VMATRIX' service top web --once --json | jq -e '[.. | objects | select(has(\"cpu\"))] | length > 0' >/dev/null"

# ---- kill -9 of an active VM's QEMU: replaced by a pre-booted VM of its service
victim=$(vmx service show api --json | jq -r '[.vms[] | select(.state == "active")][0].name')
victim_pid=$(vm_field "$victim" pid)
recovered_before=$(event_count recovered)
log "kill -9 of $victim's QEMU (pid $victim_pid)"
kill -9 "$victim_pid"
replaced() {
        [ "$(event_count recovered)" -gt "$recovered_before" ] && active_is api 1 &&
                [ "$(vmx service show api --json | jq -r '[.vms[] | select(.state == "active")][0].name')" != "$victim" ]
}
check "the killed VM was replaced by another VM of api" wait_until 60 replaced
check "api's endpoint serves again" wait_until 30 endpoint_serves "$api"
log "$(events_of recovered | jq -r '.[-1].reason')"
check "the recovery event records the time to recovery" has_event recovered api "in [0-9]+ ms"
check "the failed VM returns to the pool, pre-booted again" wait_until 120 vm_state_prebooted "$victim" stored/true

# ---- a hung guest (its QEMU stopped): fenced once its health probe has failed, and replaced
hung=$(vmx service show web --json | jq -r '[.vms[] | select(.state == "active")][0].name')
hung_pid=$(vm_field "$hung" pid)
log "SIGSTOP of $hung's QEMU (pid $hung_pid)"
kill -STOP "$hung_pid"
replaced_hung() {
        active_is web 1 && [ "$(vmx service show web --json | jq -r '[.vms[] | select(.state == "active")][0].name')" != "$hung" ]
}
check "the hung VM was fenced for its failed health probe" wait_until 60 has_event failed web "health probe"
check "and replaced by another VM of web" wait_until 60 replaced_hung
check "its stopped QEMU was killed by its node (fenced)" wait_until 30 proc_gone "$hung_pid"
check "web's endpoint serves" wait_until 30 endpoint_serves "$web"
log "$(events_of recovered | jq -r '.[-1].reason')"

# ---- kill -9 of HAProxy: restarted with its state
hap_pid=$(pgrep -f "haproxy .*$VMATRIX_CLUSTER_DIR" | head -n 1 || true)
check "HAProxy runs under the Oracle" test -n "$hap_pid"
if [ -n "$hap_pid" ]; then
        kill -9 "$hap_pid"
        check "a new HAProxy serves web again" wait_until 30 endpoint_serves "$web"
        check "and api" wait_until 30 endpoint_serves "$api"
        check "the restart is an event" wait_until 10 events_at_least lb-restarted 1
fi

# ---- a restarted Oracle carries on with the same services
vmx cluster restart oracle >/dev/null
check "after an Oracle restart web's endpoint serves" wait_until 30 endpoint_serves "$web"
check_eq "after an Oracle restart web still has 1 active VM" "$(svc_active web)" 1

# ---- an image that does not boot: the creation fails and leaves nothing
truncate -s 64M "$TEST_DIR/blank.raw"
vmx image import "$TEST_DIR/blank.raw" --name blank --format raw >/dev/null
out=$(vmx service create dud --image blank --pool 1 --min 0 --max 1 2>&1 >/dev/null) && rc=0 || rc=$?
check_eq "a service whose image does not boot fails (exit status)" "$rc" 1
check "and says why" grep -q 'did not answer GET /health' <<<"$out"
log "$out"
check "the failed service's VMs are deleted" wait_until 60 no_vms_named dud-

# ---- delete a service: its VMs go, its frontend closes
vmx service delete api >/dev/null
check_eq "api's VMs are deleted" "$(vms_named api-)" 0
check "api's endpoint is closed" wait_until 10 endpoint_closed "$api"
check "web still serves" endpoint_serves "$web"

# ---- a service's own health check, for an image without GET /health: a TCP connect, or GET of
# another path (the guest serves /id; a stock web server would use --health-path /)
svc_create() { vmx service create "$@" >/dev/null; }
check "a service checked by TCP connect is created and serves its min" \
        svc_create bytcp --image tiny-http --pool 1 --min 1 --max 1 --health tcp
check_eq "it shows its check" "$(vmx service show bytcp --json | jq -c .health)" '{"kind":"tcp"}'
check "its endpoint serves" wait_until 30 endpoint_serves "$(svc_field bytcp endpoint)"
check "a service checked by GET /id is created and serves its min" \
        svc_create byid --image tiny-http --pool 1 --min 1 --max 1 --health-path /id
check_eq "it shows its check" "$(vmx service show byid --json | jq -c .health)" '{"kind":"http","path":"/id"}'
check "its endpoint serves" wait_until 30 endpoint_serves "$(svc_field byid endpoint)"
listed() { local l; l=$(vmx service list) && grep -qE "$1" <<<"$l"; }
check "service list shows the checks" listed '^bytcp .* tcp$'
check "service list shows the path of an http check" listed '^byid .* http /id$' 
check "HAProxy checks byid with GET /id" grep -qx '    option httpchk GET /id' "$VMATRIX_CLUSTER_DIR"/oracle/lb/haproxy.cfg

vmx cluster down >/dev/null
check "no QEMU left" no_qemu_left
check "no HAProxy left" no_haproxy_left
finish
