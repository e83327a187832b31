/* The node's confinement of its QEMU processes (docs/confinement.md). As root, with the QEMU
 * driver, every QEMU the node starts is an "instance" (a VM's name, "slot.ID" for a warm slot,
 * "wb.NAME" for a memory write-back helper) with:
 *   - a uid of its own from guest-uid.h's range, claimed host-wide in GUEST_UID_CLAIM_DIR under
 *     the key DATA/INSTANCE (base/idclaim.h), its gid equal to it;
 *   - a cgroup group NODEKEY/INSTANCE in every hierarchy (base/cgroup.h), NODEKEY being the RM's
 *     name and a hash of DATA, so that the nodes of a local cluster and of two clusters on one
 *     host never share one; with memory.max, cpu.max and pids.max from the VM's config;
 *   - a private mount namespace (vmm/qemu/qemu-confine.c).
 * The uid and the cgroups are released when the instance's QEMU is gone: at once where the node
 * kills it, and by a sweep of the node's claims (node_confine_sweep, from the supervisor) for a
 * QEMU that died on its own or whose node was not running. Without root the node runs QEMU as
 * itself and says so once in its log; the heartbeat tells the Oracle either way.
 *
 * Thread-safe: the claims are locked host-wide, the instances being started are under a mutex. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "base/cgroup.h"
#include "bundle/bundle.h"
#include "vmm/vmm.h"

/* The overhead allowed above guest RAM in memory.max: QEMU itself, its TCG translation cache
 * (which grows with the guest code it translates), device and migration buffers. Measured:
 * a tiny-http guest's QEMU under TCG stays under 100 MiB above its RAM. */
#define NODE_CONFINE_MEMORY_OVERHEAD_MIB 256
/* pids.max: the main loop, RCU and the vCPU threads, up to 64 block I/O workers (QEMU's thread
 * pool maximum), migration, NBD and monitor threads, with room to spare. */
#define NODE_CONFINE_PIDS_BASE 128
#define NODE_CONFINE_JAIL_DIR "/run/vmatrix/jail"

typedef struct node_confine {
        bool on;
        char reason[160];     /* "": confining fully; else why not, or what is missing */
        char *key;            /* NODEKEY, the node's directory in the cgroup trees */
        char *prefix;         /* realpath(DATA) + "/": the node's claims */
        cgroup_layout_t cgroups;
        char **backing_dirs;  /* DATA/images, DATA/bases */
        pthread_mutex_t lock; /* guards busy */
        char **busy;          /* instances being started, never swept */
        size_t n_busy;
        int sweep_tick;
} node_confine_t;

/* What one confined start holds: the vmm_confine_t its vmm_config_t points to. */
typedef struct node_confine_hold {
        vmm_confine_t vc;
        bool active;          /* vc is set: the start is confined */
        char *instance;
        char **cgroups;
} node_confine_hold_t;

struct node;

/* Decides whether the node confines (root, the QEMU driver, wanted) and sets it up: the jail
 * directory, DATA made root's only, the cgroup layout, a first sweep. Logs its decision once.
 * -EACCES when confining rules out the accelerator asked for (KVM without a group for
 * /dev/kvm); with "auto" the node falls back to TCG instead. */
int node_confine_init(struct node *n, bool wanted, const char *accel_want);
void node_confine_free(struct node *n);

/* The limits of a VM of config bc (cpu_limit, or 100% per vCPU), and of one of memory_mib,
 * vcpus and cpu_limit (0: 100% per vCPU). */
cgroup_limits_t node_confine_limits(const bundle_config_t *bc);
cgroup_limits_t node_confine_limits_of(int64_t memory_mib, int64_t vcpus, int64_t cpu_limit);

/* Before a QEMU of instance starts: claims its uid and creates its cgroups with lim; *hold then
 * has the vmm_confine_t for its config (hold->active false when the node does not confine).
 * Call node_confine_end after the start, whatever happened. -errno and *ret_msg. */
int node_confine_begin(struct node *n, const char *instance, const cgroup_limits_t *lim, node_confine_hold_t *hold,
                       char **ret_msg);
/* A warm slot's QEMU (pid) becomes vm's: its claim and cgroups move to vm, with vm's limits. */
int node_confine_take_slot(struct node *n, const char *slot_instance, const char *vm, pid_t pid,
                           const cgroup_limits_t *lim, node_confine_hold_t *hold, char **ret_msg);
/* After the start (ok: its QEMU runs): a failed start releases at once. Frees hold. */
void node_confine_end(struct node *n, node_confine_hold_t *hold, bool ok);
/* Releases instance's uid and cgroups if its QEMU is gone (else the sweep will). */
void node_confine_release(struct node *n, const char *instance);
/* Releases every instance of this node whose QEMU is gone; runs every few calls only. */
void node_confine_sweep(struct node *n);

/* The instance name of a warm slot whose directory is dir, or of a VM's write-back helper
 * (malloc'd). */
char *node_confine_slot_instance(const char *dir);
char *node_confine_helper_instance(const char *vm);
