/* The runners of suspend (saved, kept on its RM), hibernate and deactivate (saved into the
 * Nest; a service's VM is first drained through the drain hook: out of rotation, sessions to
 * zero, as the paper's graceful deactivation). */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

/* How long a deactivation waits for a service VM's sessions to end before it saves anyway. */
#define DRAIN_TIMEOUT_MS 30000

static void run_save(oracle_t *o, op_record_t *op, vm_record_t *vm, bool upload) {
        _cleanup_free_ char *msg = NULL;
        _cleanup_free_ char *rm = xstrdup(vm->rm);
        json_t *res = NULL;
        if (streq(op->kind, "deactivate") && *vm->service) {
                /* the paper's graceful deactivation: out of rotation, sessions to zero, then save */
                oracle_op_progress(o, op, "draining");
                if (oracle_engine_drain_wait(o, vm->service, vm->name, DRAIN_TIMEOUT_MS) == -ETIMEDOUT)
                        log_warn("op %s: vm %s still had sessions after %d s of draining; saving it anyway", op->id,
                                 vm->name, DRAIN_TIMEOUT_MS / 1000);
        }
        oracle_op_progress(o, op, upload ? "saving into the Nest" : "saving");
        int r = oracle_node_cmd(o, rm, vm->name, "save", oracle_proto_save(vm->version, upload), 0, &res, &msg);
        crash_point("oracle-after-save");
        const json_t *files = NULL;
        if (r >= 0 && upload && (r = oracle_run_saved_check(o, rm, vm, vm->version + 1, res, true, &files, &msg)) < 0)
                json_decref(res);
        if (r < 0) {
                oracle_vm_restore_prev(op, vm);
                oracle_op_finish(o, op, vm, false, msg, NULL, false);
                return;
        }
        if (upload) {
                SET(vm->state, "stored");
                oracle_run_set_nest_bundle(o, vm, vm->version + 1, files, true);
                oracle_run_clear_placement(vm);
        } else {
                SET(vm->state, "suspended");
                SET(vm->address, "");
                vm->pid = 0;
        }
        int64_t committed = vm->version + 1, bundle = vm->nest_version;
        if (oracle_op_finish(o, op, vm, true, NULL, res, false) >= 0 && upload) {
                oracle_node_forget(o, rm, vm->name, committed);
                oracle_run_prune(o, op, vm, bundle);
        }
}

void oracle_run_suspend(oracle_t *o, op_record_t *op, vm_record_t *vm) { run_save(o, op, vm, false); }
void oracle_run_hibernate(oracle_t *o, op_record_t *op, vm_record_t *vm) { run_save(o, op, vm, true); }
void oracle_run_deactivate(oracle_t *o, op_record_t *op, vm_record_t *vm) { run_save(o, op, vm, true); }
