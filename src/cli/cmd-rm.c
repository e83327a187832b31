/* `vmatrix rm list`: the real machines as the Oracle sees them (GET /v1/rms), and `vmatrix rm
 * fence RM`: an operator's decision that an RM is down (POST /v1/rms/RM/fence). */
#include "base/util.h"
#include "cli/api.h"
#include "cli/commands.h"
#include "cli/output.h"

/* `rm list --json` contract fields (DESIGN.md §4); confined and confine_reason: whether the RM
 * runs its QEMUs confined (docs/confinement.md); capacity: its size, {memory_mib, vcpus,
 * disk_gib} or null, as its heartbeats say it (docs/api.md). */
static const char *const rm_json_fields[] = { "name", "role", "state", "address", "vms", "confined",
                                              "confine_reason", "capacity" };
#define RM_TABLE_FIELDS 5 /* the first ones are columns as they are; CONFINED, CAPACITY: of the rest */

/* "2cpu/23.5G/251G": vCPUs, RAM and disk; or "-" before the RM said its size. */
static char *capacity_cell(const json_t *rm) {
        const json_t *capacity = json_object_get(rm, "capacity");
        const json_t *memory = json_object_get(capacity, "memory_mib"), *vcpus = json_object_get(capacity, "vcpus"),
                     *disk = json_object_get(capacity, "disk_gib");
        if (!json_is_integer(memory) || !json_is_integer(vcpus) || !json_is_integer(disk))
                return xstrdup("-");
        long long mib = json_integer_value(memory);
        char ram[32];
        if (mib < 1024)
                snprintf(ram, sizeof ram, "%lldM", mib);
        else if (mib % 1024 == 0)
                snprintf(ram, sizeof ram, "%lldG", mib / 1024);
        else
                snprintf(ram, sizeof ram, "%.1fG", (double)mib / 1024.0);
        return xasprintf("%lldcpu/%s/%lldG", (long long)json_integer_value(vcpus), ram,
                         (long long)json_integer_value(disk));
}

/* "yes", "no (not root)", "yes (no cgroup controller for pids: ...)", or "-" before the RM said. */
static char *confined_cell(const json_t *rm) {
        const json_t *confined = json_object_get(rm, "confined");
        const char *reason = json_string_value(json_object_get(rm, "confine_reason"));
        if (!json_is_boolean(confined))
                return xstrdup("-");
        const char *word = json_is_true(confined) ? "yes" : "no";
        return reason && *reason ? xasprintf("%s (%s)", word, reason) : xstrdup(word);
}

void rm_table_print(FILE *f, const json_t *rms) {
        /* the contract's fields, then the RM's size, whether it firewalls its guests
         * (docs/guest-isolation.md) and confines its QEMUs (docs/confinement.md) */
        static const char *const headers[] = { "NAME", "ROLE", "STATE", "ADDRESS", "VMS",
                                               "CAPACITY", "GUEST-FW", "CONFINED" };
        _cleanup_(table_freep) table_t *t = table_new(ELEMENTSOF(headers), headers);
        size_t i;
        const json_t *rm;
        json_array_foreach(rms, i, rm) {
                for (unsigned k = 0; k < RM_TABLE_FIELDS; k++)
                        table_add_json(t, rm, rm_json_fields[k]);
                table_add_take(t, capacity_cell(rm));
                table_add_json(t, rm, "guest_firewall");
                table_add_take(t, confined_cell(rm));
        }
        table_flush(t, f);
}

int cmd_rm_list(cli_t *c) {
        _cleanup_(json_decrefp) json_t *rms = NULL;
        int r = api_list_all(c, "/v1/rms", &rms);
        if (r != CLI_OK)
                return r;
        if (!json_is_array(rms))
                return cli_fail(c, "unexpected answer from the Oracle to GET /v1/rms: not an array");
        if (c->json) {
                size_t i;
                json_t *rm;
                json_array_foreach(rms, i, rm)
                        json_ensure_fields(rm, rm_json_fields, ELEMENTSOF(rm_json_fields));
                return output_json(c, rms, false);
        }
        rm_table_print(c->out, rms);
        return CLI_OK;
}

/* The operator's answer to an isolation (the Oracle holds fencing while most RMs are silent):
 * this RM is down, its VMs are failed and fenced, and services replace them. */
int cmd_rm_fence(cli_t *c) {
        return api_name_call(c, "RM", "POST", "/v1/rms/%s/fence", "RM %s is down; its VMs are fenced");
}
