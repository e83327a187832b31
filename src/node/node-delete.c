/* The delete command: the VM's local copy is killed and removed, and the entry refuses stale
 * commands from then on. */
#include "base/util.h"
#include "node/node-command.h"
#include "node/node-delete.h"
#include "node/node-registry.h"

int node_delete_vm(node_t *n, const char *name, const json_t *cmd, json_t **ret, char **ret_msg) {
        int64_t version = 0;
        int r = node_command_version(cmd, "version", "delete", &version, ret_msg);
        if (r < 0)
                return r;
        node_vm_t *vm = node_registry_find(n, name);
        if (!vm) {
                *ret = json_object();
                return 0;
        }
        pthread_mutex_lock(&vm->lock);
        r = node_command_check(vm, "delete", version, ret, ret_msg);
        if (r != 0) {
                pthread_mutex_unlock(&vm->lock);
                return r < 0 ? r : 0;
        }
        node_command_lease(vm, version);
        node_registry_forget(n, vm);
        json_t *result = json_object();
        node_command_record(n, vm, "delete", version, result);
        pthread_mutex_unlock(&vm->lock);
        *ret = result;
        return 0;
}
