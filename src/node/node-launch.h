/* Starting a VM's VMM: run (boot, or restore from the Nest, with a warm slot when one fits)
 * and resume (from its local saved state). */
#pragma once

#include "node/node-internal.h"
#include "node/node-progress.h"
#include "node/node-proto.h"

/* Everything a VMM launch needs, with the strings the vmm_config_t points to. */
typedef struct node_launch {
        bundle_config_t bc;
        vmm_config_t vc;
        char *run_dir, *kernel, *initrd, *disk, *cmdline, *image_disk, *memory;
        node_confine_hold_t confine; /* vc.confine points into it while a start is confined */
} node_launch_t;

/* The VM's VMM config from its vm.json (node_launch_clear frees it). vm->lock held. */
int node_launch_prepare(node_t *n, node_vm_t *vm, node_launch_t *l, char **ret_msg);
/* Before the VM's VMM starts (after node_launch_prepare): its uid and cgroups, for instance (the
 * VM's name, or a helper's: node-confine.h), with the VM's limits; l->vc.confine is set when the
 * node confines. node_launch_confine_end after the start: ok is whether it runs. */
int node_launch_confine(node_t *n, node_launch_t *l, const char *instance, char **ret_msg);
void node_launch_confine_end(node_t *n, node_launch_t *l, bool ok);
void node_launch_clear(node_launch_t *l);
/* Puts the VM's disk in place: the disk of run's bundle from the Nest (a clone's: an overlay),
 * or a fresh one when run is NULL or has no bundle. vm->lock held. */
int node_launch_disk(node_t *n, node_vm_t *vm, node_launch_t *l, const node_cmd_run_t *run, nest_transfer_stats_t *acc,
                     node_progress_t *prog, char **ret_msg);

/* The commands. Each returns 0 and a result object, or -errno and a message. */
int node_launch_run(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
int node_launch_resume(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
