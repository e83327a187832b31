/* The runners of boot (-> loading on a chamber) and activate (-> active on a production RM):
 * [save on the origin RM into the Nest,] then run on the target RM. A re-driven op skips a
 * save it already made (op args "saved"). */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

static void run_start(oracle_t *o, op_record_t *op, vm_record_t *vm, const char *final_state) {
        const char *target = oracle_op_arg(op, "rm");
        const char *origin = oracle_op_arg(op, "origin");
        _cleanup_free_ char *msg = NULL;
        json_t *res = NULL;
        int r = 0;
        const json_t *saved = json_object_get(op->args, "saved");
        if (origin && target && streq(origin, target)) {
                /* suspended on the production RM it is activated on: it resumes there */
                o->runners[VM_ACTION_RESUME](o, op, vm);
                return;
        }
        if (origin && *origin && !saved) {
                /* the VM runs (or is suspended) elsewhere: it passes through the Nest at version+1 */
                oracle_op_progress(o, op, "saving");
                r = oracle_node_cmd(o, origin, vm->name, "save", oracle_proto_save(vm->version, true), 0, &res, &msg);
                if (r >= 0 && (r = oracle_run_saved_check(o, origin, vm, vm->version + 1, res, true, NULL, &msg)) < 0)
                        json_decref(res);
                if (r < 0) {
                        oracle_vm_restore_prev(op, vm);
                        oracle_op_finish(o, op, vm, false, msg, NULL, false);
                        return;
                }
                /* remember the step before the origin forgets the VM, so a re-driven op skips it */
                json_object_set(op->args, "saved", json_object_get(res, "files"));
                store_op_update(o->store, op);
                saved = json_object_get(op->args, "saved");
                json_decref(res);
                res = NULL;
                oracle_node_forget(o, origin, vm->name, vm->version + 1);
        }
        if (origin && *origin) {
                /* from here the Nest holds the VM: a failure below leaves it stored there */
                oracle_run_set_nest_bundle(o, vm, vm->version + 1, saved, true);
        }
        r = oracle_run_on(o, op, vm, target, &res, &msg);
        if (r < 0) {
                if (origin && *origin) {
                        SET(vm->state, "stored");
                        oracle_run_clear_placement(vm);
                } else {
                        oracle_vm_restore_prev(op, vm);
                }
                int64_t committed = vm->version + 1;
                oracle_op_finish(o, op, vm, false, msg, NULL, false);
                oracle_node_forget(o, target, vm->name, committed);
                return;
        }
        SET(vm->state, final_state);
        SET(vm->rm, target);
        oracle_run_take_address(vm, res);
        oracle_op_finish(o, op, vm, true, NULL, res, false);
}

void oracle_run_boot(oracle_t *o, op_record_t *op, vm_record_t *vm) { run_start(o, op, vm, "loading"); }
void oracle_run_activate(oracle_t *o, op_record_t *op, vm_record_t *vm) { run_start(o, op, vm, "active"); }
