/* The command protocol of the node's VM commands (see node-command.h): versions, leases and
 * the recorded result of the last completed command. */
#include <string.h>

#include "base/util.h"
#include "node/node-command.h"
#include "node/node-registry.h"
#include "node/node-vm.h"

/* The record on disk is what survives a restart of the node: a command is done only once it is
 * written, otherwise a restarted node would not know the VM it started or the lease it took. */
static int record_write(node_t *n, node_vm_t *vm, char **ret_msg) {
        int r = node_registry_persist(n, vm);
        vm->unrecorded = r < 0;
        if (r < 0)
                *ret_msg = xasprintf("vm \"%s\": %s done but not recorded on this RM's disk (%s); repeat the command",
                                     vm->name, vm->last_kind, strerror(-r));
        return r < 0 ? -EIO : 0;
}

int node_command_record(node_t *n, node_vm_t *vm, const node_cmd_t *cmd, json_t *result, char **ret_msg) {
        snprintf(vm->last_kind, sizeof vm->last_kind, "%s", node_proto_kind_name(cmd->kind));
        vm->last_version = cmd->version;
        json_decref(vm->last_result);
        vm->last_result = json_incref(result);
        int r = record_write(n, vm, ret_msg);
        if (r < 0)
                json_decref(result);
        return r;
}

/* 1 when the command repeats the last completed command (its result in *ret), 0 to go on, -ESTALE.
 * Changes nothing: a command takes the lease with node_command_lease() once it is sure to act. */
static int command_check(node_vm_t *vm, const char *kind, int64_t version, json_t **ret, char **ret_msg) {
        if (version < vm->version) {
                *ret_msg = xasprintf("vm \"%s\": command %s for version %lld is stale (lease is at %lld)", vm->name,
                                     kind, (long long)version, (long long)vm->version);
                return -ESTALE;
        }
        if (version == vm->last_version && streq(kind, vm->last_kind) && vm->last_result) {
                *ret = json_incref(vm->last_result);
                return 1;
        }
        return 0;
}

int node_command_lock(node_t *n, const char *name, const node_cmd_t *cmd, unsigned flags, node_vm_t **ret_vm,
                      json_t **ret, char **ret_msg) {
        node_vm_t *vm = flags & NODE_COMMAND_CREATE ? node_registry_get_or_create(n, name) : node_registry_find(n, name);
        if (!vm) {
                *ret_msg = xasprintf("vm \"%s\" is not on this RM", name);
                return -ENOENT;
        }
        _cleanup_(node_command_unlockp) node_vm_t *locked = node_vm_lock(vm);
        int r = command_check(vm, node_proto_kind_name(cmd->kind), cmd->version, ret, ret_msg);
        if (r > 0 && vm->unrecorded && record_write(n, vm, ret_msg) < 0) {
                json_decref(*ret);
                *ret = NULL;
                return -EIO;
        }
        if (r != 0)
                return r < 0 ? r : 0;
        *ret_vm = TAKE_PTR(locked);
        return 1;
}

void node_command_unlockp(node_vm_t **vmp) {
        node_vm_t *vm = *vmp;
        node_vm_unlockp(vmp);
        node_registry_release(vm);
}

/* The command at version acts on vm from here: older commands are stale from now on, and the
 * heartbeat does not fence vm on an answer sent before now (see apply_leases). vm->lock held. */
void node_command_lease(node_vm_t *vm, int64_t version) {
        vm->version = version;
        vm->cmd_time_ms = time_now_ms();
}
