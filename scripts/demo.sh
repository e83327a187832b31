#!/usr/bin/env bash
# make demo: a local cluster (1 chamber + 3 production RMs) serving a real tiny-http VM that was
# booted in the Loading Chambers, hibernated pre-booted into the Nest and activated on a
# production RM, and a service "web" (a pool of two pre-booted VMs behind HAProxy, scaled by
# its load). Leaves it running until `make demo-down`.
set -euo pipefail
dir=$1
vmx=$2
export VMATRIX_GUEST_DIR="${VMATRIX_GUEST_DIR:-$(dirname "$vmx")/guest/tiny-http}"
export VMATRIX_CLUSTER_DIR="$dir"

if [ -f "$dir/oracle.url" ] && "$vmx" rm list >/dev/null 2>&1; then
        echo "a demo cluster is already up in $dir (make demo-down first)" >&2
        exit 1
fi
"$vmx" cluster down --dir "$dir" >/dev/null 2>&1 || true
rm -rf "$dir"
"$vmx" cluster up --dir "$dir" --production 3 --chambers 1
"$vmx" image build tiny-http
"$vmx" vm create demo --image tiny-http --memory 128
"$vmx" vm boot demo
# pre-boot means booted up to its service: wait for the guest's HTTP before saving it
addr=$("$vmx" vm show demo --json | jq -r .address)
echo "waiting for the guest to boot (under TCG this takes a few seconds) ..."
for _ in $(seq 300); do curl -sf --max-time 2 -o /dev/null "http://$addr/health" && break; sleep 0.2; done
"$vmx" vm hibernate demo
"$vmx" vm activate demo
addr=$("$vmx" vm show demo --json | jq -r .address)
echo
echo "The demo VM answers at http://$addr/id :"
curl -s --max-time 10 --retry 5 --retry-connrefused "http://$addr/id"
echo
echo
echo "A service: two VMs pre-booted into the Nest, one active behind HAProxy, more when it is busy ..."
"$vmx" service create web --image tiny-http --pool 2 --min 1 --max 2 --window 5
endpoint=$("$vmx" service show web --json | jq -r .endpoint)
echo "The service answers at http://$endpoint/id :"
curl -sf --max-time 10 --retry 10 --retry-all-errors "http://$endpoint/id"
echo
echo
echo "Try:  export VMATRIX_CLUSTER_DIR=$dir   # its Oracle, CA and admin token"
echo "      build/vmatrix vm list; build/vmatrix rm list; build/vmatrix events"
echo "      build/vmatrix service top web      # then load it: wrk -c16 -d30s 'http://$endpoint/burn?ms=200'"
echo "Stop: make demo-down"
