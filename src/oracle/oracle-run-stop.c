/* The runner of stop: the VM is powered off and its disk goes into the Nest (not pre-booted).
 * A failed VM whose RM has nothing goes back to its last Nest bundle, cold. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

void oracle_run_stop(oracle_t *o, op_record_t *op, vm_record_t *vm) {
        _cleanup_free_ char *msg = NULL;
        _cleanup_free_ char *rm = xstrdup(vm->rm);
        json_t *res = NULL;
        oracle_op_progress(o, op, "stopping");
        int r = -ENOENT;
        if (*rm)
                r = oracle_node_cmd(o, rm, vm->name, "stop", oracle_proto_stop(vm->version), 0, &res, &msg);
        const json_t *files = NULL;
        if (r >= 0 && json_object_size(json_object_get(res, "files")) > 0 &&
            (r = oracle_run_saved_check(o, rm, vm, vm->version + 1, res, false, &files, &msg)) < 0) {
                json_decref(res);
                res = NULL;
        }
        bool was_failed = streq(json_string_value(json_object_get(op->prev, "state")) ?: "", "failed");
        /* nothing of the VM is left to save: its RM is gone or holds nothing */
        bool rm_has_nothing = r == -ENOENT || r == -EHOSTUNREACH;
        if (r < 0 && !was_failed && r == -EHOSTUNREACH) {
                /* the node was never reached: the VM runs on as it was */
                oracle_vm_restore_prev(op, vm);
                oracle_op_finish(o, op, vm, false, msg, NULL, false);
                return;
        }
        if (r < 0 && !(was_failed && rm_has_nothing)) {
                /* the node took the command and may have powered the VM off before its disk
                 * reached the Nest: it is not running any more, whatever it was. It stays on its
                 * RM with its disk (the lease is kept), failed, and a new stop retries the save. */
                bool was_serving = streq(json_string_value(json_object_get(op->prev, "state")) ?: "", "active");
                _cleanup_free_ char *why = xasprintf("%s; vm \"%s\" is powered off on RM \"%s\" with its disk: "
                                                     "`vm stop %s` again retries saving it",
                                                     msg ? msg : "stop failed", vm->name, rm, vm->name);
                SET(vm->state, "failed");
                SET(vm->address, "");
                vm->pid = 0;
                if (oracle_op_finish(o, op, vm, false, why, NULL, false) >= 0 && *vm->service)
                        oracle_engine_failure_note(o, vm->name, vm->service, was_serving);
                return;
        }
        if (r >= 0 && files && json_object_get(files, BUNDLE_FILE_DISK)) {
                oracle_run_set_nest_bundle(o, vm, vm->version + 1, files, false);
        } else {
                /* a failed VM whose RM has nothing: it goes back to its last Nest bundle, cold */
                json_object_del(json_object_get(vm->bundle, "files"), BUNDLE_FILE_STATE);
                json_object_del(json_object_get(vm->bundle, "files"), BUNDLE_FILE_MEMORY);
                vm->prebooted = false;
                if (r < 0)
                        log_warn("vm %s: disk on RM %s unavailable (%s); using Nest version %lld", vm->name, rm,
                                 msg ? msg : "no RM", (long long)vm->nest_version);
        }
        SET(vm->state, "stored");
        oracle_run_clear_placement(vm);
        int64_t committed = vm->version + 1, bundle = vm->nest_version;
        if (oracle_op_finish(o, op, vm, true, NULL, res, false) >= 0) {
                oracle_node_forget(o, rm, vm->name, committed);
                oracle_run_prune(o, op, vm, bundle);
        }
}
