/* The runner of resume: a suspended VM runs again on its RM (active on production, loading
 * on a chamber). */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

void oracle_run_resume(oracle_t *o, op_record_t *op, vm_record_t *vm) {
        _cleanup_free_ char *msg = NULL;
        json_t *res = NULL;
        rm_record_t rm = { 0 };
        store_rm_get(o->store, vm->rm, &rm);
        oracle_op_progress(o, op, "resuming");
        int r = oracle_node_cmd(o, vm->rm, vm->name, "resume", oracle_proto_version(vm->version), 0, &res, &msg);
        if (r < 0) {
                oracle_vm_restore_prev(op, vm);
                oracle_op_finish(o, op, vm, false, msg, NULL, false);
                return;
        }
        SET(vm->state, streq(rm.role, "production") ? "active" : "loading");
        oracle_run_take_address(vm, res);
        oracle_op_finish(o, op, vm, true, NULL, res, false);
}
