/* The runner of delete: the VM leaves its RM, its record goes, and its bundles go from the
 * Nest (their chunks with the next garbage collection). */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"

void oracle_run_delete(oracle_t *o, op_record_t *op, vm_record_t *vm) {
        if (*vm->rm) {
                _cleanup_free_ char *msg = NULL;
                json_t *res = NULL;
                int r = oracle_node_cmd(o, vm->rm, vm->name, "delete", oracle_proto_version(vm->version), 0, &res,
                                        &msg);
                json_decref(res);
                if (r < 0 && r != -EHOSTUNREACH) {
                        oracle_vm_restore_prev(op, vm);
                        oracle_op_finish(o, op, vm, false, msg, NULL, false);
                        return;
                }
        }
        _cleanup_free_ char *dir = oracle_nest_vm_dir(o, vm->name);
        if (oracle_op_finish(o, op, vm, true, NULL, NULL, true) >= 0) {
                /* its chunks go with the next garbage collection; an unsaved clone's parent
                 * snapshot is released with it */
                json_object_del(vm->bundle, "source");
                oracle_run_prune(o, op, vm, 0);
                rm_rf(dir);
        }
}
