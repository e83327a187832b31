/* Flash clones (POST /v1/vms/:name/clone): N new VMs started from one pre-booted VM's snapshot
 * in the Nest. Each clone is an ordinary VM record with its own name, MAC and (on its RM) its
 * own forwarded address, whose bundle points at the parent's snapshot ("source": the parent,
 * at the parent's Nest version) until its first save gives it a bundle of its own. On the RM
 * the clones map the parent's memory file copy-on-write and run on qcow2 overlays of the
 * parent's disk, and the guest agent renews each one's identity (name, hostname, random
 * seed) before it serves (see node-clone.c and docs/memory.md).
 *
 * All records are created in one transaction after every check passed, so a refused clone
 * leaves nothing behind; each clone then starts with an ordinary activate (production RMs,
 * one clone per free RM) or boot (all onto one chamber RM given as rm) operation. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

#define CLONE_COUNT_MAX 64

/* Free production RMs (up, running no VM), or -errno. */
static int free_production_rms(oracle_t *o) {
        rm_record_t *rms = NULL;
        vm_record_t *vms = NULL;
        size_t nr = 0, nv = 0;
        if (store_rm_list(o->store, &rms, &nr) < 0)
                return -EIO;
        if (store_vm_list(o->store, &vms, &nv) < 0) {
                free(rms);
                return -EIO;
        }
        int n = 0;
        for (size_t i = 0; i < nr; i++) {
                if (!streq(rms[i].role, "production") || !streq(rms[i].state, "up"))
                        continue;
                bool busy = false;
                for (size_t j = 0; j < nv && !busy; j++)
                        busy = streq(vms[j].rm, rms[i].name);
                n += !busy;
        }
        free(rms);
        store_vm_list_free(vms, nv);
        return n;
}

/* The clone's record: the parent's with a new name, MAC and creation time, its config renamed,
 * and its bundle naming the parent's snapshot as its source. */
static int clone_record(oracle_t *o, const vm_record_t *parent, const char *name, vm_record_t *ret) {
        vm_record_t v = { .version = 1, .memory_mib = parent->memory_mib, .vcpus = parent->vcpus,
                          .created_ms = time_wall_ms(), .prebooted = true, .nest_version = parent->nest_version };
        snprintf(v.name, sizeof v.name, "%s", name);
        snprintf(v.state, sizeof v.state, "stored");
        snprintf(v.image, sizeof v.image, "%s", parent->image);
        /* a clone holds its parent's data: it belongs to the parent's owner, whoever asked */
        snprintf(v.owner, sizeof v.owner, "%s", parent->owner);
        int r = oracle_mac_next(o, v.mac);
        if (r >= 0)
                r = store_vm_first_version(o->store, name, &v.version);
        if (r < 0)
                return r;
        json_t *config = json_deep_copy(json_object_get(parent->bundle, "config"));
        json_object_set_new(config, "name", json_string(name));
        json_object_set_new(config, "mac", json_string(v.mac));
        const char *source = json_string_value(json_object_get(parent->bundle, "source"));
        v.bundle = json_pack("{s:o,s:O,s:s}", "config", config, "files", json_object_get(parent->bundle, "files"),
                             "source", source ? source : parent->name);
        *ret = v;
        return 0;
}

/* "PARENT-cK" with the smallest K not taken. */
static void clone_name(oracle_t *o, const char *parent, int *next, char *ret, size_t size) {
        for (;; (*next)++) {
                snprintf(ret, size, "%.50s-c%d", parent, *next);
                vm_record_t v = { 0 };
                if (store_vm_get(o->store, ret, &v) < 0)
                        break;
                vm_record_clear(&v);
        }
        (*next)++;
}

int oracle_vm_clone(oracle_t *o, const char *parent_name, int64_t count, const char *rm, json_t **ret,
                    char **ret_msg) {
        if (count < 1 || count > CLONE_COUNT_MAX) {
                *ret_msg = xasprintf("count must be from 1 to %d", CLONE_COUNT_MAX);
                return -ERANGE;
        }
        vm_record_t parent = { 0 };
        if (store_vm_get(o->store, parent_name, &parent) < 0) {
                *ret_msg = xasprintf("no vm named \"%s\"", parent_name);
                return -ENOENT;
        }
        const json_t *files = json_object_get(parent.bundle, "files");
        int r = 0;
        if (parent.market.machine) {
                *ret_msg = xasprintf("vm \"%s\" is a buyer's machine: it is not cloned (its offer's capacity holds one)",
                                     parent_name);
                vm_record_clear(&parent);
                return -EPERM;
        }
        if (!parent.prebooted || parent.nest_version <= 0 || !json_object_get(files, BUNDLE_FILE_STATE) ||
            !json_object_get(files, BUNDLE_FILE_MEMORY)) {
                *ret_msg = xasprintf("vm \"%s\" has no pre-booted snapshot in the Nest to clone: boot it and "
                                     "hibernate it first",
                                     parent_name);
                r = -EPERM;
        } else if (!rm) {
                int free_rms = free_production_rms(o);
                if (free_rms < 0) {
                        *ret_msg = xstrdup("the store is unavailable");
                        r = free_rms;
                } else if (free_rms < count) {
                        *ret_msg = xasprintf("%lld clones need %lld free production RMs (one VM each); %d are free",
                                             (long long)count, (long long)count, free_rms);
                        r = -EAGAIN;
                }
        } else {
                char picked[64];
                r = oracle_rm_pick(o, "chamber", rm, parent_name, picked, sizeof picked, ret_msg);
                if (r < 0 && !*ret_msg)
                        *ret_msg = xasprintf("clones placed with rm need a chamber RM that is up");
        }
        if (r < 0) {
                vm_record_clear(&parent);
                return r;
        }

        /* all records in one transaction: a failure leaves none */
        vm_record_t *clones = xcalloc((size_t)count, sizeof *clones);
        r = store_tx_begin(o->store);
        int next = 1;
        for (int64_t i = 0; r >= 0 && i < count; i++) {
                char name[64];
                clone_name(o, parent_name, &next, name, sizeof name);
                r = clone_record(o, &parent, name, &clones[i]);
                if (r >= 0)
                        r = store_vm_insert(o->store, &clones[i]);
                if (r >= 0)
                        r = store_event_add(o->store, "created", name, NULL, NULL, parent_name);
        }
        if (r >= 0)
                r = store_tx_commit(o->store);
        else
                store_tx_rollback(o->store);
        if (r < 0) {
                *ret_msg = xasprintf("cannot create the clones of \"%s\": %s", parent_name, strerror(-r));
                for (int64_t i = 0; i < count; i++)
                        vm_record_clear(&clones[i]);
                free(clones);
                vm_record_clear(&parent);
                return r;
        }

        json_t *names = json_array(), *ops = json_array();
        op_request_t req = { .action = rm ? "boot" : "activate", .rm = rm };
        for (int64_t i = 0; i < count; i++) {
                json_array_append_new(names, json_string(clones[i].name));
                json_t *op = NULL;
                _cleanup_free_ char *msg = NULL;
                int k = oracle_op_start(o, clones[i].name, &req, &op, &msg);
                if (k < 0) {
                        /* an RM taken meanwhile: this clone stays stored, as any VM would */
                        log_warn("clone %s of %s: cannot start it: %s", clones[i].name, parent_name, msg);
                        op = json_pack("{s:s,s:s}", "vm", clones[i].name, "error", msg ? msg : strerror(-k));
                }
                json_array_append_new(ops, op);
                vm_record_clear(&clones[i]);
        }
        free(clones);
        log_info("vm %s: %lld clones from its snapshot at version %lld", parent_name, (long long)count,
                 (long long)parent.nest_version);
        vm_record_clear(&parent);
        *ret = json_pack("{s:o,s:o}", "clones", names, "ops", ops);
        return 0;
}
