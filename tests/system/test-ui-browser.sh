#!/usr/bin/env bash
# The web interface in a real browser (issue 13): one local cluster of real QEMU guests (one
# production RM, two chambers, signups open), its users made here, and tests/ui/browser.test.mjs
# driving Debian's headless Chromium through playwright-core (ui/node_modules, `make deps`):
#   - every role logs in (the admin with an API token, the others with a password);
#   - the operator creates web1 and activates it from the pages, the state changing live;
#   - the serial console shows the guest's shell prompt and echoes a command; the graphical
#     console's canvas is not blank;
#   - buyer b1 registers m1 with a bid too low (no provider matches), raises it, stores it at
#     p1's offer on chamber2 (the cheaper of two), starts it, and sees the charges come;
#   - provider p1 sees m1 with no action and no console; buyer b2 reaches neither its page nor
#     its console; used, expired and garbage console tickets are refused;
#   - a session revoked while a page is open goes to the login page and comes back, form intact;
#   - screenshots of every page at desktop and phone widths in tests/ui/artifacts/.
source "$(dirname "$0")/lib.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ART=${UI_ARTIFACTS:-$ROOT/tests/ui/artifacts}
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
UI_DIR=$(dirname "$VMATRIX")/ui
if [ ! -x "$CHROMIUM" ] || [ ! -f "$ROOT/ui/node_modules/playwright-core/package.json" ] || ! command -v node >/dev/null ||
        [ ! -f "$UI_DIR/index.html" ]; then
        fail "the browser test needs chromium, node, playwright-core in ui/node_modules and $UI_DIR (make deps ui)"
        finish
        exit 1
fi

LOGIN="$TEST_DIR/login"
mkdir -p "$LOGIN"
export VMATRIX_LOGIN_FILE="$LOGIN/admin" # the admin's commands use DIR/admin.token
unset VMATRIX_TOKEN
PASSWORD=ui-browser-pass-1
printf '%s\n' "$PASSWORD" >"$TEST_DIR/pw"
as() { # as USER vmatrix-args...
        local u=$1
        shift
        VMATRIX_LOGIN_FILE="$LOGIN/$u" "$VMATRIX" "$@"
}
q() { "$@" >/dev/null; }

if ! "$VMATRIX" cluster up --dir "$VMATRIX_CLUSTER_DIR" --accel "$VMATRIX_ACCEL" --production 1 --chambers 2 \
        --open-signup >/dev/null; then
        fail "cluster up"
        finish
        exit 1
fi
auth_use_token "$VMATRIX_CLUSTER_DIR/admin.token" "$VMATRIX_CLUSTER_DIR/ca.pem"

# the users: an operator made by the admin, providers and buyers signed up
check "image build tiny-http" q vmx image build tiny-http
check "user create op1 (operator)" q vmx user create op1 --role operator --password-file "$TEST_DIR/pw"
for u in p1:provider p2:provider b1:buyer b2:buyer; do
        check "signup ${u%:*} (${u#*:})" q as nobody signup "${u%:*}" --role "${u#*:}" --password-file "$TEST_DIR/pw"
done
check "login p1" q as p1 login p1 --password-file "$TEST_DIR/pw"
check "login p2" q as p2 login p2 --password-file "$TEST_DIR/pw"
check "rm assign chamber2 to p1" q vmx rm assign chamber2 --provider p1
check "rm assign chamber1 to p2" q vmx rm assign chamber1 --provider p2
# p1: running per second, storage per 2 s, so that charges come within the test; p2 dearer
check "p1 offers chamber2" q as p1 offer set chamber2 --vcpus 2 --vcpu-price 0.001 --memory 1024 --memory-price 0.002 \
        --running-period 1s --disk 10 --disk-price 0.0001 --storage-period 2s
check "p2 offers chamber1" q as p2 offer set chamber1 --vcpus 2 --vcpu-price 0.002 --memory 1024 --memory-price 0.004 \
        --running-period 1s --disk 10 --disk-price 0.0002 --storage-period 2s
check "market config add small" q vmx market config add small --image tiny-http --memory 128 --vcpus 1 --disk 1
check "deposit 100 for b1" q vmx account deposit b1 100
check "deposit 100 for b2" q vmx account deposit b2 100

mkdir -p "$ART"
rm -f "$ART"/*.png
jq -n --arg url "$(cat "$VMATRIX_CLUSTER_DIR/oracle.url")" --arg admin "$(head -n1 "$VMATRIX_CLUSTER_DIR/admin.token")" \
        --arg pw "$PASSWORD" --arg art "$ART" \
        '{url: $url, admin_token: $admin, password: $pw, operator: "op1", provider: "p1", provider2: "p2",
          buyer: "b1", buyer2: "b2", offer_rm: "chamber2", dearer_rm: "chamber1", artifacts: $art}' >"$TEST_DIR/ui.json"
start=$SECONDS
# Node trusts the cluster's CA for its own API calls; the browser's pages ignore certificate
# errors (the CA is the cluster's own: see tests/ui/lib.mjs)
rc=0
NODE_EXTRA_CA_CERTS="$VMATRIX_CLUSTER_DIR/ca.pem" timeout 300 node "$ROOT/tests/ui/browser.test.mjs" "$TEST_DIR/ui.json" \
        >"$TEST_DIR/browser.out" 2>"$TEST_DIR/browser.log" || rc=$?
cat "$TEST_DIR/browser.log" >&2
while IFS= read -r line; do
        case "$line" in
        "ok "*) pass "browser: ${line#ok }" ;;
        "FAIL "*) fail "browser: ${line#FAIL }" ;;
        esac
done <"$TEST_DIR/browser.out"
check_eq "the browser script ran to its end" "$rc" 0
check "the browser script made its checks" test "$(grep -c '^ok \|^FAIL ' "$TEST_DIR/browser.out")" -ge 30
log "browser part: $((SECONDS - start)) s; screenshots in $ART"

vmx cluster down --dir "$VMATRIX_CLUSTER_DIR" >/dev/null
check "no QEMU left" no_qemu_left
check "no namespace or bridge left" no_netns_left
finish
