/* The node's list of VMs (n->vms, guarded by n->lock) and its persistence in
 * DATA/vms/NAME/node-vm.json. */
#pragma once

#include "node/node-internal.h"

node_vm_t *node_registry_find(node_t *n, const char *name);
/* The entry of name, created ("new") when there is none. */
node_vm_t *node_registry_get_or_create(node_t *n, const char *name);
/* The entries, in list order, for a walk without n->lock (free with free()). */
node_vm_t **node_registry_snapshot(node_t *n, size_t *ret_count);
/* Whether any VM of this node has a VMM process. */
bool node_registry_has_vmm(node_t *n);
/* Writes DATA/vms/NAME/node-vm.json (nothing for a deleted VM); logs a failure. vm->lock held. */
int node_registry_persist(node_t *n, node_vm_t *vm);
/* Kills the VM's process and removes its files; the entry stays, "deleted", so that stale
 * commands for it are still refused. vm->lock held. */
void node_registry_forget(node_t *n, node_vm_t *vm);
/* Reads the entries a previous run of the agent persisted (their VMM processes are not
 * attached: see node_supervise_adopt), and kills QEMUs of VMs it never recorded. */
void node_registry_load(node_t *n);
/* Frees every entry (at exit). */
void node_registry_free(node_t *n);
