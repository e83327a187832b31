/* The delete command: the VM's local copy is killed and removed, and the entry refuses stale
 * commands from then on. */
#include "base/util.h"
#include "node/node-command.h"
#include "node/node-delete.h"
#include "node/node-registry.h"
#include "node/node-vm.h"

int node_delete_vm(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg) {
        _cleanup_(node_command_unlockp) node_vm_t *vm = NULL;
        int r = node_command_lock(n, name, cmd, 0, &vm, ret, ret_msg);
        if (r == -ENOENT) {
                /* not on this RM: nothing to delete */
                free(*ret_msg);
                *ret_msg = NULL;
                *ret = json_object();
                return 0;
        }
        if (r <= 0)
                return r;
        node_command_lease(vm, cmd->version);
        node_registry_forget(n, vm);
        json_t *result = json_object();
        if ((r = node_command_record(n, vm, cmd, result, ret_msg)) < 0)
                return r;
        *ret = result;
        return 0;
}
