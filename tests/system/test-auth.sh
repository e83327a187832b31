#!/usr/bin/env bash
# Accounts and tokens as a user meets them (DESIGN.md §10), against a real Oracle with no RMs:
# no QEMU, a few seconds. The first start's admin token; login, whoami, logout and the login
# file; users and their roles; tokens made, listed, narrowed, expired and revoked; the failed-
# login limit; bad input of every kind refused with a clear answer and nothing changed. The
# route-by-route matrix is tests/unit/test-authz.c; this is the same gate seen from outside.
source "$(dirname "$0")/lib.sh"

PORT=$((18000 + RANDOM % 1000))
URL="http://127.0.0.1:$PORT"
export VMATRIX_ORACLE="$URL"
export VMATRIX_LOGIN_FILE="$TEST_DIR/login/token"
unset VMATRIX_TOKEN
export VMATRIX_CLUSTER_DIR="$TEST_DIR/no-cluster" # none: the token comes from elsewhere
ORACLE_PID=
stop_oracle() {
        if [ -n "$ORACLE_PID" ]; then
                kill "$ORACLE_PID" 2>/dev/null || true
                wait "$ORACLE_PID" 2>/dev/null || true
                ORACLE_PID=
        fi
}
trap 'stop_oracle; cleanup' EXIT
start_oracle() {
        "$VMATRIX" oracle --data "$TEST_DIR/oracle" --listen "127.0.0.1:$PORT" "$@" >>"$TEST_DIR/oracle.log" 2>&1 &
        ORACLE_PID=$!
        wait_until 20 curl -q -sf "$URL/v1/health" -o /dev/null
}
start_oracle || { fail "the Oracle answers"; finish; exit 1; }

# status METHOD PATH [TOKEN] [BODY]: the HTTP status of one request (-q: no curlrc)
status() {
        local args=(-q -s -o /dev/null -w '%{http_code}' --max-time 10 -X "$1")
        [ -n "${3:-}" ] && args+=(-H "Authorization: Bearer $3")
        [ -n "${4:-}" ] && args+=(-H 'Content-Type: application/json' -d "$4")
        curl "${args[@]}" "$URL$2"
}
events_of() { VMATRIX_TOKEN=$ADMIN vmx events --json | jq "[.[] | select(.kind == \"$1\")] | length"; }

# --- the first start ---
check "the first start wrote admin.token" test -s "$TEST_DIR/oracle/admin.token"
check_eq "admin.token is 0600" "$(stat -c %a "$TEST_DIR/oracle/admin.token")" 600
check_eq "auth.key is 0600" "$(stat -c %a "$TEST_DIR/oracle/auth.key")" 600
ADMIN=$(head -n1 "$TEST_DIR/oracle/admin.token")
check_eq "GET /v1/health is public" "$(status GET /v1/health)" 200
check_eq "no token: 401" "$(status GET /v1/vms)" 401
check_eq "a malformed token: 401" "$(status GET /v1/vms 'vmx_x')" 401
check_eq "another scheme: 401" "$(curl -q -s -o /dev/null -w '%{http_code}' -H "Authorization: Basic $ADMIN" "$URL/v1/vms")" 401
check_eq "an oversized header: 401" "$(status GET /v1/vms "$(head -c 5000 /dev/zero | tr '\0' a)")" 401
check_eq "the admin token works" "$(status GET /v1/vms "$ADMIN")" 200
check_refused "the CLI without a token says what to do" "authentication required.*vmatrix login" vm list
check_eq "--token works" "$(vmx --token "$ADMIN" whoami --json | jq -r .user)" admin
check_eq "VMATRIX_TOKEN works" "$(VMATRIX_TOKEN=$ADMIN vmx whoami --json | jq -r .role)" admin
# a restart keeps the admin and does not write a second token
stop_oracle
start_oracle || fail "the Oracle restarts"
check_eq "the admin token survives a restart" "$(status GET /v1/vms "$ADMIN")" 200
check_eq "admin.token is unchanged" "$(head -n1 "$TEST_DIR/oracle/admin.token")" "$ADMIN"

# --- users ---
printf 'correct-horse\n' >"$TEST_DIR/pw"
printf 'short\n' >"$TEST_DIR/pw-short"
export VMATRIX_TOKEN=$ADMIN
check "admin creates a buyer" vmx user create alice --role buyer --password-file "$TEST_DIR/pw"
check "admin creates a provider" vmx user create pat --role provider --password-file "$TEST_DIR/pw"
check "admin creates an operator" vmx user create olga --role operator --password-file "$TEST_DIR/pw"
check "admin creates a second admin" vmx user create root2 --role admin --password-file "$TEST_DIR/pw"
check_refused "a duplicate user is refused" "exists" user create alice --role buyer --password-file "$TEST_DIR/pw"
check_refused "an unknown role is refused" "unknown role" user create eve --role god --password-file "$TEST_DIR/pw"
check_refused "a short password is refused" "password" user create eve --role buyer --password-file "$TEST_DIR/pw-short"
check_refused "a bad name is refused" "user" user create 'Eve!' --role buyer --password-file "$TEST_DIR/pw"
check_eq "refused creations made nobody" "$(vmx user list --json | jq -r '[.[].name] | sort | join(",")')" \
        "admin,alice,olga,pat,root2"
check "the password comes from stdin too" sh -c "printf 'correct-horse\n' | '$VMATRIX' user create bob --role buyer"
unset VMATRIX_TOKEN

# --- login, whoami, logout ---
check "alice logs in" vmx login alice --password-file "$TEST_DIR/pw"
check_eq "the login file is 0600" "$(stat -c %a "$VMATRIX_LOGIN_FILE")" 600
check_eq "whoami: alice, buyer" "$(vmx whoami --json | jq -r '.user + " " + .role')" "alice buyer"
check_eq "a session lasts 12 h" \
        "$(vmx whoami --json | jq '(.token.expires_ms / 1000 - now) / 3600 | round')" 12
check_refused "a buyer may not list RMs" "may not" rm list
check_refused "a buyer may not list users" "may not" user list
check_eq "a buyer's VM list is empty" "$(vmx vm list --json | jq length)" 0
SESSION=$(jq -r .token "$VMATRIX_LOGIN_FILE")
check "logout" vmx logout
check "the login file is gone" test ! -e "$VMATRIX_LOGIN_FILE"
check_eq "the session is refused at once" "$(status GET /v1/whoami "$SESSION")" 401
check_refused "logging out twice says so" "not logged in" logout
check_refused "a wrong password is refused" "wrong user name or password" login alice --password-file "$TEST_DIR/pw-short"
printf 'whatever-pw\n' >"$TEST_DIR/pw-other"
check_refused "an unknown user reads the same" "wrong user name or password" login nobody --password-file "$TEST_DIR/pw-other"
check "no login file after failures" test ! -e "$VMATRIX_LOGIN_FILE"

# --- the failed-login limit: 5 failures in a minute lock the user out, even for the right password
for _ in 1 2 3 4 5; do vmx login bob --password-file "$TEST_DIR/pw-other" >/dev/null 2>&1 || true; done
check_refused "the 6th attempt is locked out" "too many failed logins" login bob --password-file "$TEST_DIR/pw"
check_eq "the lock answers 429" \
        "$(status POST /v1/login '' '{"user":"bob","password":"correct-horse"}')" 429
check "failed logins are events" test "$(events_of auth-failed)" -ge 5

# --- tokens ---
check "pat logs in" vmx login pat --password-file "$TEST_DIR/pw"
TOK=$(vmx token create --name ci --expires 1h 2>/dev/null)
check "token create prints the secret" grep -qE '^vmx_[0-9a-f]{16}_[A-Za-z0-9_-]{43}$' <<<"$TOK"
TOK_ID=$(cut -c5-20 <<<"$TOK")
check_eq "the new token speaks for pat" "$(vmx --token "$TOK" whoami --json | jq -r .user)" pat
check_eq "token list shows it, no secret" "$(vmx token list --json | jq -r "[.[] | select(.id == \"$TOK_ID\")][0] | (.name + (.token // \"\"))")" ci
check_refused "a wider role than one's own is refused" "wider" token create --role admin
NARROW=$(vmx token create --name ro --role buyer 2>/dev/null)
check_eq "a narrowed token has the narrower role" "$(vmx --token "$NARROW" whoami --json | jq -r .role)" buyer
check_refused "a narrowed token may not reach the provider's routes" "may not" --token "$NARROW" rm list
check_refused "a bad expiry is refused" "expires" token create --expires 3weeks
check_refused "a token id must be hex" "token id" token revoke 'zz'
check "pat revokes the token" vmx token revoke "$TOK_ID"
check_eq "the revoked token is refused at once" "$(status GET /v1/whoami "$TOK")" 401
vmx logout >/dev/null
ALICE=$(curl -q -s -H 'Content-Type: application/json' -d '{"user":"alice","password":"correct-horse"}' "$URL/v1/login" | jq -r .token)
PAT_TOKENS=$(VMATRIX_TOKEN=$ADMIN vmx token list --all --json | jq -r '[.[] | select(.user == "pat")][0].id')
check_eq "another user's token answers 404" "$(status DELETE "/v1/tokens/$PAT_TOKENS" "$ALICE")" 404
check_eq "a token with an expiry in the past cannot be made" \
        "$(status POST /v1/tokens "$ALICE" '{"expires_s":-5}')" 400
check_eq "an oversized token name is refused" \
        "$(status POST /v1/tokens "$ALICE" "{\"name\":\"$(head -c 300 /dev/zero | tr '\0' n)\"}")" 400

# --- an owner's resources ---
check "the image exists" env VMATRIX_TOKEN=$ADMIN "$VMATRIX" image build tiny-http
check_eq "alice creates a VM" "$(status POST /v1/vms "$ALICE" '{"name":"alice-vm","image":"tiny-http"}')" 201
check_eq "it is alice's" "$(VMATRIX_TOKEN=$ADMIN vmx vm show alice-vm --json | jq -r .owner)" alice
OLGA=$(curl -q -s -H 'Content-Type: application/json' -d '{"user":"olga","password":"correct-horse"}' "$URL/v1/login" | jq -r .token)
check_eq "an operator sees it" "$(status GET /v1/vms/alice-vm "$OLGA")" 200
ROOT2=$(curl -q -s -H 'Content-Type: application/json' -d '{"user":"root2","password":"correct-horse"}' "$URL/v1/login" | jq -r .token)
check "root2 makes a buyer carol" env VMATRIX_TOKEN=$ROOT2 sh -c "printf 'correct-horse\n' | '$VMATRIX' user create carol --role buyer"
CAROL=$(curl -q -s -H 'Content-Type: application/json' -d '{"user":"carol","password":"correct-horse"}' "$URL/v1/login" | jq -r .token)
check_eq "another buyer's VM answers 404" "$(status GET /v1/vms/alice-vm "$CAROL")" 404
check_eq "...as one that does not exist" "$(curl -q -s -H "Authorization: Bearer $CAROL" "$URL/v1/vms/alice-vm" | jq -r .error.message)" \
        "$(curl -q -s -H "Authorization: Bearer $CAROL" "$URL/v1/vms/alice-vmx" | jq -r .error.message | sed 's/alice-vmx/alice-vm/')"
check_eq "carol cannot delete it" "$(status DELETE /v1/vms/alice-vm "$CAROL")" 404
check_eq "carol's list does not show it" "$(curl -q -s -H "Authorization: Bearer $CAROL" "$URL/v1/vms" | jq length)" 0
check_eq "alice's VM is still there" "$(VMATRIX_TOKEN=$ADMIN vmx vm show alice-vm --json | jq -r .state)" stored

# --- users: the last admin, deleting a user takes their tokens ---
export VMATRIX_TOKEN=$ADMIN
check "root2 is deleted" vmx user delete root2
check_eq "root2's session went with it" "$(status GET /v1/whoami "$ROOT2")" 401
check_refused "the last admin cannot be deleted" "last admin" user delete admin
check_eq "the admin is still there" "$(vmx whoami --json | jq -r .user)" admin
check_refused "deleting nobody is refused" "no user" user delete ghost
check "a user changes their own password" env VMATRIX_TOKEN=$CAROL sh -c \
        "printf 'battery-staple\n' | '$VMATRIX' user passwd carol"
check_eq "carol may not change alice's password (404)" \
        "$(status POST /v1/users/alice/password "$CAROL" '{"password":"12345678x"}')" 404
check_eq "the new password logs in" \
        "$(status POST /v1/login '' '{"user":"carol","password":"battery-staple"}')" 200

# --- signup: closed unless the Oracle runs with --open-signup ---
check_eq "signup is closed by default" \
        "$(status POST /v1/signup '' '{"name":"dave","role":"buyer","password":"correct-horse"}')" 403
stop_oracle
start_oracle --open-signup || fail "the Oracle restarts with --open-signup"
check "a signup makes a buyer" sh -c "printf 'correct-horse\n' | '$VMATRIX' signup dave --role buyer"
check_eq "a signup cannot make an admin" \
        "$(status POST /v1/signup '' '{"name":"mallory","role":"admin","password":"correct-horse"}')" 403
check_eq "bad JSON is refused" "$(status POST /v1/login '' '{"user":')" 400
check_eq "a huge password is refused before any work" \
        "$(status POST /v1/login '' "{\"user\":\"dave\",\"password\":\"$(head -c 2000 /dev/zero | tr '\0' p)\"}")" 400
check "auth failures of tokens are events" test "$(events_of auth-failed)" -ge 10
check "the Oracle is still up" curl -q -sf "$URL/v1/health" -o /dev/null

finish
