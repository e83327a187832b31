/* Harness: the body of a heartbeat, as the Oracle reads it. The input is the body of
 * POST /v1/rms/NAME/heartbeat (an RM's role, address, VMs and snapshots), loaded as the HTTP
 * server loads it; it is parsed (oracle_proto_heartbeat_parse) and, once accepted, taken
 * through the parts of the handler that need no store: each VM's stats into the load profiles
 * (oracle_metrics_vm_report, one metrics object per input, the i-th VM reported i seconds in,
 * so that a VM listed twice gives rates) and the snapshot digests as placement keeps them.
 * The same body also goes to the parser of an operation's progress heartbeat
 * (POST /v1/ops/ID/heartbeat). Checked: what is accepted holds what the parser promises (a
 * role, an IPv4:PORT address, at most 4096 VMs each with a name and a state, a guest firewall
 * flag that is said or not, a capacity said with figures in range or not said and zero), a
 * refusal comes
 * with a message and no result, and every figure the metrics then hold is finite and >= 0. */
#include <math.h>
#include <stdbool.h>

#include "base/util.h"
#include "bundle/bundle.h"
#include "fuzz.h"
#include "oracle/oracle-metrics.h"
#include "oracle/oracle-proto.h"

static void check_metrics(oracle_metrics_t *m, const char *name) {
        vm_metrics_t vm;
        if (oracle_metrics_vm_get(m, name, &vm) < 0)
                return;
        const double rates[] = { vm.cpu, vm.disk_read_bps, vm.disk_write_bps, vm.net_rx_bps, vm.net_tx_bps };
        for (size_t i = 0; i < ELEMENTSOF(rates); i++)
                FUZZ_CHECK(isfinite(rates[i]) && rates[i] >= 0);
}

static void check_heartbeat(const json_t *body) {
        oracle_heartbeat_t hb;
        memset(&hb, 0xa5, sizeof hb);
        oracle_heartbeat_t untouched = hb;
        char *msg = NULL;
        int r = oracle_proto_heartbeat_parse(body, &hb, &msg);
        if (r < 0) {
                FUZZ_CHECK(r == -EINVAL || r == -ERANGE);
                FUZZ_CHECK(msg && *msg);
                FUZZ_CHECK(memcmp(&hb, &untouched, sizeof hb) == 0);
                free(msg);
                return;
        }
        FUZZ_CHECK(r == 0 && !msg);
        FUZZ_CHECK(streq(hb.role, "production") || streq(hb.role, "chamber"));
        FUZZ_CHECK(oracle_address_is_valid(hb.address));
        FUZZ_CHECK(!hb.vms || (json_is_array(hb.vms) && json_array_size(hb.vms) <= 4096));
        FUZZ_CHECK(!hb.snapshots || (json_is_array(hb.snapshots) && json_array_size(hb.snapshots) <= 4096));
        FUZZ_CHECK(hb.guest_firewall == -1 || hb.guest_firewall == 0 || hb.guest_firewall == 1);
        if (hb.has_capacity)
                FUZZ_CHECK(hb.capacity.memory_mib >= 1 && hb.capacity.memory_mib <= ORACLE_CAPACITY_MAX &&
                           hb.capacity.vcpus >= 1 && hb.capacity.vcpus <= ORACLE_CAPACITY_MAX &&
                           hb.capacity.disk_gib >= 0 && hb.capacity.disk_gib <= ORACLE_CAPACITY_MAX);
        else
                FUZZ_CHECK(hb.capacity.memory_mib == 0 && hb.capacity.vcpus == 0 && hb.capacity.disk_gib == 0);
        oracle_metrics_t *m = oracle_metrics_new(NULL);
        size_t i;
        const json_t *v;
        json_array_foreach(hb.vms, i, v) {
                const char *name = json_string_value(json_object_get(v, "name"));
                FUZZ_CHECK(name_is_valid(name) && json_is_string(json_object_get(v, "state")));
                /* vCPUs as the Oracle knows them, from 0 (none known) up */
                oracle_metrics_vm_report(m, name, NULL, (int64_t)(i % 5), json_object_get(v, "stats"),
                                         (int64_t)i * 1000);
                check_metrics(m, name);
        }
        oracle_metrics_free(m);
        const json_t *d;
        json_array_foreach(hb.snapshots, i, d)(void) bundle_sha256_is_valid(json_string_value(d));
}

static void check_op_progress(const json_t *body) {
        int64_t done = -7, total = -7;
        if (oracle_proto_op_progress_parse(body, &done, &total) == 0)
                FUZZ_CHECK(done >= 0 && total >= 0);
        else
                FUZZ_CHECK(done == -7 && total == -7);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        json_t *body = fuzz_json_body(data, size);
        if (!body)
                return 0;
        check_heartbeat(body);
        check_op_progress(body);
        json_decref(body);
        return 0;
}
