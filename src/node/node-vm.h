/* One VM entry of the node (node_vm_t, see node-internal.h) and the small changes every
 * command makes to it. Below the registry and the commands; knows nothing of either.
 * Every function that takes a node_vm_t expects vm->lock held. */
#pragma once

#include "node/node-internal.h"

/* The one guard of vm->lock: the lock is held until the end of the scope of the variable,
 *         _cleanup_(node_vm_unlockp) node_vm_t *locked = node_vm_lock(vm);
 * node_vm_trylock and node_vm_timedlock return NULL when they did not take the lock (there is
 * then nothing to unlock). TAKE_PTR(locked) hands the held lock on to the caller. */
node_vm_t *node_vm_lock(node_vm_t *vm);
node_vm_t *node_vm_trylock(node_vm_t *vm);
node_vm_t *node_vm_timedlock(node_vm_t *vm, int64_t timeout_ms);
void node_vm_unlockp(node_vm_t **vmp);

/* DATA/vms/NAME and DATA/vms/NAME/FILE, malloc'd. */
char *node_vm_dir(node_t *n, const char *name);
char *node_vm_file(node_t *n, const char *name, const char *file);
/* Sets the state; anything but staying suspended forgets the staged files. */
void node_vm_state_set(node_vm_t *vm, const char *state);
/* Records that the VM's local files are the manifests files at version (NULL: they may have
 * changed). */
void node_vm_staged_set(node_vm_t *vm, const json_t *files, int64_t version);
/* A new vm.json (copied): the VM gets a new port forward and its own RAM at its next launch. */
void node_vm_config_set(node_vm_t *vm, const json_t *config);
void node_vm_memory_base_set(node_vm_t *vm, const char *path);
void node_vm_disk_base_set(node_vm_t *vm, const char *path);
/* A VM that took a warm slot has DIR/run linked to the slot's directory; once that QEMU is
 * gone, the next launch gets a plain directory again. */
void node_vm_run_dir_reset(node_t *n, node_vm_t *vm);
/* Drops the VM's VMM handle, killing the process if kill_it. */
void node_vm_vmm_release(node_vm_t *vm, bool kill_it);
/* {pid, address} of a VM that runs now; sets its state to running. */
json_t *node_vm_started(node_t *n, node_vm_t *vm);
/* A VMM error for a message ("timed out" rather than ETIMEDOUT's text). */
const char *node_vm_strerror(int r);
/* Kills a QEMU still running in the VM's run directory without a handle (an interrupted
 * command's): the command about to start holds the lease. No lock needed. */
void node_vm_stale_kill(node_t *n, const char *name);
