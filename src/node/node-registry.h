/* The node's list of VMs (n->vms, guarded by n->lock) and its persistence in
 * DATA/vms/NAME/node-vm.json.
 *
 * Entries are counted references: find, get_or_create and snapshot hand out references that
 * node_registry_release gives back. An entry whose VM was deleted is freed when its last
 * reference goes, and leaves a tombstone (name -> version, last command and its result), so
 * that stale commands are still refused: looking the name up again revives a "deleted" entry
 * from it. A thread that locks vm->lock holds a reference for as long. */
#pragma once

#include "node/node-internal.h"

/* A reference to the entry of name (revived from its tombstone, "deleted"), NULL if none. */
node_vm_t *node_registry_find(node_t *n, const char *name);
/* A reference to the entry of name, created ("new") when there is none. */
node_vm_t *node_registry_get_or_create(node_t *n, const char *name);
/* Gives a reference back (NULL: nothing); not under vm->lock's guard of the same scope
 * declared after it (cleanups run in reverse, so declare the reference first). */
void node_registry_release(node_vm_t *vm);
static inline void node_registry_releasep(node_vm_t **vmp) { node_registry_release(*vmp); }
/* References to the entries, in list order and NULL-terminated, for a walk without n->lock;
 * node_registry_snapshot_freep gives them back. */
node_vm_t **node_registry_snapshot(node_t *n, size_t *ret_count);
void node_registry_snapshot_freep(node_vm_t ***vmsp);
/* How many entries the list holds (tombstones not counted). */
size_t node_registry_count(node_t *n);
/* Whether any VM of this node has a VMM process. */
bool node_registry_has_vmm(node_t *n);
/* Writes DATA/vms/NAME/node-vm.json (nothing for a deleted VM); logs a failure. vm->lock held. */
int node_registry_persist(node_t *n, node_vm_t *vm);
/* Kills the VM's process and removes its files; the entry is "deleted" and becomes a tombstone
 * once unused. vm->lock held. */
void node_registry_forget(node_t *n, node_vm_t *vm);
/* Reads the entries a previous run of the agent persisted (their VMM processes are not
 * attached: see node_supervise_adopt), and kills QEMUs of VMs it never recorded. */
void node_registry_load(node_t *n);
/* Frees every entry (at exit). */
void node_registry_free(node_t *n);
