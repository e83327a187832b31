/* Shared by the files that implement the node's VM commands (node-vm.c, node-live.c): the
 * command protocol (versions, leases, recorded results) and the launch of a VMM. Not used
 * elsewhere. Every function that takes a node_vm_t expects vm->lock held. */
#pragma once

#include "node/node-internal.h"

/* Everything a VMM launch needs, with the strings the vmm_config_t points to. */
typedef struct launch {
        bundle_config_t bc;
        vmm_config_t vc;
        char *run_dir, *kernel, *initrd, *disk, *cmdline, *image_disk, *memory;
} launch_t;

/* The Oracle's heartbeat URL for an operation, for transfer progress. */
typedef struct receive_progress {
        node_t *n;
        char *url; /* the Oracle's heartbeat URL for the operation */
        int64_t last_ms;
        uint64_t base; /* bytes of files already done */
} receive_progress_t;

/* The command protocol: cmd_version reads a version field; check_version returns 1 for a
 * repeat of the last command (its result in *ret), -ESTALE for an old version, 0 otherwise;
 * command_lock finds and locks the VM and checks the version (1: go on, 0: answered, <0:
 * error); lease_take makes version the VM's lease; record_result keeps a command's answer. */
int cmd_version(const json_t *cmd, const char *key, const char *kind, int64_t *ret, char **ret_msg);
int check_version(node_vm_t *vm, const char *kind, int64_t version, json_t **ret, char **ret_msg);
int command_lock(node_t *n, const char *name, const char *kind, int64_t version, node_vm_t **ret_vm, json_t **ret,
                 char **ret_msg);
void lease_take(node_vm_t *vm, int64_t version);
void record_result(node_t *n, node_vm_t *vm, const char *kind, int64_t version, json_t *result);
void set_state(node_vm_t *vm, const char *state);

/* The VM's VMM config from its vm.json (launch_clear frees it). */
int launch_prepare(node_t *n, node_vm_t *vm, launch_t *l, char **ret_msg);
void launch_clear(launch_t *l);
/* Puts the VM's disk in place: the bundle's disk from the Nest (a clone's: an overlay), or a
 * fresh one when bundle is NULL. */
int disk_prepare(node_t *n, node_vm_t *vm, launch_t *l, const json_t *bundle, nest_transfer_stats_t *acc,
                 receive_progress_t *prog, char **ret_msg);
/* Drops the VM's VMM handle, killing the process if kill_it. */
void vmm_release(node_vm_t *vm, bool kill_it);
/* {pid, address} of a VM that runs now; sets its state to running. */
json_t *started_result(node_t *n, node_vm_t *vm);
const char *vmm_failure(int r);
void run_dir_reset(node_t *n, node_vm_t *vm);
/* Kills a QEMU still running in the VM's run directory without a handle (an interrupted
 * command's): the command about to start holds the lease. */
void stale_vmm_kill(node_t *n, const char *name);
void memory_base_set(node_vm_t *vm, const char *path);
void disk_base_set(node_vm_t *vm, const char *path);
