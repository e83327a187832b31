/* The runner of each operation kind, indexed by the lifecycle rule's action
 * (src/model/lifecycle.h): the table the engine dispatches through (oracle-engine.c). It sits
 * above the engine and the runners so that neither names the other.
 * Keep in sync with the lifecycle table in src/model/lifecycle.c. */
#include "oracle/oracle-internal.h"

const oracle_runner_fn oracle_runners[_VM_ACTION_MAX] = {
        [VM_ACTION_BOOT] = oracle_run_boot,
        [VM_ACTION_SUSPEND] = oracle_run_suspend,
        [VM_ACTION_RESUME] = oracle_run_resume,
        [VM_ACTION_HIBERNATE] = oracle_run_hibernate,
        [VM_ACTION_ACTIVATE] = oracle_run_activate,
        [VM_ACTION_DEACTIVATE] = oracle_run_deactivate,
        [VM_ACTION_STOP] = oracle_run_stop,
        [VM_ACTION_DELETE] = oracle_run_delete,
        [VM_ACTION_MIGRATE] = oracle_run_migrate,
        [VM_ACTION_MIGRATE_LIVE] = oracle_run_migrate_live,
};
