/* Shared state of the node agent. One node_t per process (the explicit context struct passed
 * down; no other globals). Each VM the node holds has a node_vm_t whose lock serialises the
 * commands on that VM; the node's lock protects only the list. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "bundle/bundle.h"
#include "nest/transfer.h"
#include "net/http-server.h"
#include "node/node-capacity.h"
#include "node/node-confine.h"
#include "node/node-console.h"
#include "node/node-guestfw.h"
#include "node/node-proto.h"
#include "node/node-tls.h"
#include "vmm/vmm.h"

typedef struct node_vm {
        char name[64];
        int64_t version;        /* the lease version: commands older than this are refused */
        char state[16];         /* running | paused | suspended | stopped | crashed */
        json_t *config;         /* vm.json */
        vmm_vm_t *vmm;          /* NULL unless a VMM process is attached */
        int64_t pid;
        char address[64];
        int fwd_port;
        char last_kind[16];     /* last completed command, for idempotent repeats */
        bool unrecorded;        /* its record is not on disk yet: a repeat writes it first */
        int64_t last_version;
        json_t *last_result;
        json_t *staged;         /* the local files as staged in the cache at staged_version (with
                                   their sha256), while they are unchanged; NULL otherwise */
        int64_t staged_version;
        char *disk_base;        /* a clone's disk is an overlay over this read-only base, until
                                   its first save; NULL otherwise */
        char *memory_base;      /* the snapshot memory file its QEMU maps copy-on-write (activated
                                   or cloned), NULL when its RAM is its own DIR/memory */
        int64_t cmd_time_ms;    /* monotonic time of the last command (lease race guard) */
        int64_t cpu_sample_ns, cpu_sample_ms, idle_since_ms; /* node-balloon.c */
        int64_t balloon_target_mib; /* 0: never set (full) */
        bool balloon_manual;    /* set through the API: no automatic reclaim */
        vmm_stats_t stats;      /* the last stats its VMM gave (stats_valid), for a heartbeat */
        bool stats_valid;       /* that has no time to ask again (node-heartbeat.c) */
        pthread_mutex_t lock;
        struct node *node;      /* the node whose list holds it */
        unsigned refs;          /* users (node-registry.c), under the node's lock */
        struct node_vm *next;
} node_vm_t;

/* What a warm slot fits (node-slots.c): VMs with this RAM size, vCPUs and image kernel. */
typedef struct node_slot_shape {
        int64_t memory_mib, vcpus;
        char *kernel, *initrd, *cmdline; /* NULL for disk-booted images */
} node_slot_shape_t;

typedef struct node_slot {
        struct node *node;   /* whose slot it is (its uid and cgroups are released there) */
        vmm_vm_t *vmm;
        char *dir;           /* DATA/slots/ID; its QEMU's run directory is DIR/run */
        int fwd_port;        /* the guest port 80 forward the slot was started with */
        node_slot_shape_t shape;
        struct node_slot *next;
} node_slot_t;

typedef struct node {
        char *name;
        char *role;
        char *oracle;           /* base URL of the Oracle */
        char *data;             /* data directory */
        char *listen;           /* ADDR:PORT of the node API */
        char *host;             /* ADDR part: guests' port 80 is forwarded here */
        const char *accel;      /* resolved: kvm | tcg */
        const vmm_driver_t *driver;
        pthread_mutex_t lock;   /* protects vms list */
        pthread_mutex_t cache_lock; /* serialises image downloads */
        pthread_mutex_t memory_lock; /* serialises building snapshot memory files */
        node_vm_t *vms;
        json_t *tombstones;     /* deleted VMs' version floors (node-registry.c), under lock */
        unsigned heartbeat_turn; /* which VM a heartbeat asks first (node-heartbeat.c) */
        http_server_t *http;
        nest_store_t *cache;    /* DATA/cache: chunks of images and bundles */
        volatile int stopping;
        pthread_mutex_t wake_lock;
        pthread_cond_t wake;    /* signalled to send a heartbeat at once */
        bool wake_pending;
        int slots_wanted;           /* warm slots to keep (--warm-slots) */
        int64_t reclaim_idle_ms;    /* balloon idle VMs after this long (--reclaim-idle), 0: never */
        uint64_t cache_max;         /* bytes the caches may use (--cache-max, node-prune.h), 0: no cap */
        atomic_int launching;       /* run commands under way: the RM is busy, no slot refills */
        pthread_mutex_t slots_lock; /* guards the fields below */
        node_slot_t *slots;
        int n_slots;
        node_slot_shape_t slot_shape; /* of the last restore: the shape of new slots */
        pthread_t slots_thread;
        bool slots_thread_started;
        node_guestfw_t guestfw;     /* node-guestfw.h: --guest-firewall, --control-net, the table */
        node_tls_t tls;             /* its certificate and client identity (node-tls.h) */
        node_confine_t confine;     /* node-confine.c: its QEMUs' uids, namespaces and cgroups */
        node_consoles_t consoles;   /* node-console.c: its attachments to the VMs' serial ports */
        node_capacity_t capacity_declared; /* --capacity-*: 0 where not declared */
        node_capacity_t capacity;   /* what heartbeats report (node-capacity.h): measured at start,
                                       the declared figures in place of the machine's; disk_gib is
                                       measured again now and then by the heartbeat thread, the
                                       only one that touches it after the start */
        int64_t capacity_disk_ms;   /* when disk_gib was measured (monotonic), heartbeat thread */
} node_t;

/* The VM commands and the registry have headers of their own: node-vm.h (one entry),
 * node-registry.h (the list), node-command.h (versions and leases), node-launch.h (run, resume),
 * node-save.h (save, stop), node-delete.h, node-migrate.h, node-supervise.h. */

/* node-balloon.c: automatic reclaim from idle VMs (node_balloon_thread) and the balloon
 * command {target_mib?} -> {memory_mib, target_mib, actual_mib, reclaimable}. */
int node_balloon_command(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);

/* node-live.c: live migration (see oracle-migrate-live.c). */
int node_live_receive(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
int node_live_send(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
int node_live_finish(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);
int node_live_abort(node_t *n, const char *name, const node_cmd_t *cmd, json_t **ret, char **ret_msg);

/* node-clone.c: flash clones. node_clone_disk makes disk a qcow2 overlay over the base file of
 * source's disk at version (rebuilt once, read-only; image_disk non-NULL for disk-booted
 * images: the base's backing file); *ret_base is the base's path. node_clone_detach_disk makes
 * the overlay standalone (its QEMU saved or gone). node_clone_identity gives the running
 * guest its own name and random seed through the guest agent. */
int node_clone_disk(node_t *n, const char *source, int64_t version, const json_t *disk_info, const char *disk,
                    const char *image_disk, const char *image_format, nest_transfer_stats_t *acc, char **ret_base,
                    char **ret_msg);
int node_clone_detach_disk(const char *disk, const char *image_disk, const char *image_format, char **ret_msg);
int node_clone_identity(node_vm_t *vm, char **ret_msg);

/* node-qemu-img.c: qemu-img with argv, killed after timeout_ms; its output becomes the message
 * of a failure. A hung qemu-img (a stuck disk, a bad image) must not hold a VM's command for
 * ever. QUICK: create, rebase -u (metadata only, well under a second). COPY: a safe rebase,
 * which copies the backing data into the overlay, so its time grows with the disk; 30 minutes
 * covers tens of GiB on a slow disk. */
#define NODE_QEMU_IMG_QUICK_MS (30 * 1000)
#define NODE_QEMU_IMG_COPY_MS (30 * 60 * 1000)
int node_qemu_img(char *const argv[], int timeout_ms, char **ret_msg);

/* node-slots.c: warm slots. node_slots_start cleans up slots of a previous run and starts the
 * refill thread; node_slots_stop kills the slots. node_slot_take removes and returns a live
 * slot of that shape (NULL if none) and remembers the shape for refills; node_slot_release
 * frees a taken slot: used (its process now belongs to a VM) or not (killed). */
int node_slots_start(node_t *n);
void node_slots_stop(node_t *n);
node_slot_t *node_slot_take(node_t *n, const node_slot_shape_t *shape);
void node_slot_release(node_slot_t *s, bool used);

/* node-port.c: a free TCP port on host (an IPv4 address), or -errno. */
int node_port_pick(const char *host);

/* node-cache.c: image files, rebuilt from the chunk cache into DATA/images/NAME/FILE. */
int node_cache_image(node_t *n, const json_t *image, char **ret_msg);
char *node_cache_image_path(node_t *n, const char *image, const char *file);

/* Same-RM disk reuse (node-disk-mark.c). _mark: after a save into the Nest, marks DIR/disk.qcow2
 * as the disk of the bundle whose disk file info ({digest}) is given. _take: whether
 * DIR/disk.qcow2 is still exactly the disk of the bundle whose disk manifest has digest, as the
 * last save here left it; removes the mark either way (the caller is about to write or replace
 * the disk). _drop: removes it. */
void node_disk_mark(node_t *n, const char *name, const json_t *info);
bool node_disk_mark_take(node_t *n, const char *name, const char *digest);
void node_disk_mark_drop(node_t *n, const char *name);
/* When the node lets a VM go (node_registry_forget) right after a save here, its disk is still
 * that bundle's: kept as DATA/staged/DIGEST.qcow2 (node_disk_staged_path) for the next
 * activation of the bundle on this RM. DATA/staged is emptied at node start and pruned as a
 * cache. */
void node_disk_keep(node_t *n, const char *name);
char *node_disk_staged_path(node_t *n, const char *digest);

/* node-nest.c: the local chunk cache and transfers with the Nest or another node (base URL).
 * Files are named by {"digest", "size"} (the manifest's digest); acc adds up what moved. */
int node_nest_open(node_t *n);
int node_nest_pull_to_path(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                           const json_t *info, const char *dest, nest_transfer_stats_t *acc, nest_progress_fn progress,
                           void *userdata, char **ret_msg);
/* As node_nest_pull_to_path and node_nest_memory_file, fetching at most max_bps bytes per second
 * (0: unbounded): pre-staging (node-prestage.c). */
int node_nest_pull_to_path_paced(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                                 const json_t *info, const char *dest, uint64_t max_bps, nest_transfer_stats_t *acc,
                                 nest_progress_fn progress, void *userdata, char **ret_msg);
/* The chunks of (vm, version, file) into the cache (and its manifest), no file: what a restore
 * streams later comes from here. */
int node_nest_pull_chunks(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                          const json_t *info, uint64_t max_bps, nest_transfer_stats_t *acc, char **ret_msg);
int node_nest_memory_file_paced(node_t *n, const char *base, const char *vm, int64_t version, const json_t *info,
                                uint64_t max_bps, nest_transfer_stats_t *acc, nest_progress_fn progress, void *userdata,
                                char **ret_path, char **ret_msg);
/* The memory file of (vm, version) as a plain file for QEMU to map copy-on-write, shared by
 * every VM that maps it: DATA/memory/DIGEST, read-only, rebuilt once from the chunk cache
 * (zero chunks as holes) and not synced: DATA/memory is emptied when the node starts.
 * *ret_path is malloc'd. */
int node_nest_memory_file(node_t *n, const char *base, const char *vm, int64_t version, const json_t *info,
                          nest_transfer_stats_t *acc, nest_progress_fn progress, void *userdata, char **ret_path,
                          char **ret_msg);
char *node_nest_memory_dir(node_t *n);
int node_nest_pull_to_fd(node_t *n, const char *base, const char *vm, int64_t version, const char *file,
                         const json_t *info, int fd, nest_transfer_stats_t *acc, nest_progress_fn progress,
                         void *userdata, char **ret_msg);
/* Chunks the files at paths into the cache as (vm, version, files[i]); *ret_files describes them. */
int node_nest_stage(node_t *n, const char *vm, int64_t version, const char *const *files, const char *const *paths,
                    size_t count, json_t **ret_files, char **ret_msg);
/* Records the manifests of (vm, from) under (vm, to) when they still match files: a suspended
 * VM whose files did not change since it was staged or received is not chunked again. */
int node_nest_restage(node_t *n, const char *vm, int64_t from, int64_t to, const json_t *files, char **ret_msg);
/* Sends the staged files (as named in files) to base: only the chunks it lacks, then manifests. */
int node_nest_push(node_t *n, const char *base, const char *vm, int64_t version, const json_t *files,
                   nest_transfer_stats_t *ret_stats, char **ret_msg);

/* node-api.c */
extern const http_route_t node_api_routes[];

/* node-balloon.c: reclaims idle VMs' memory once a second. A thread of its own: a QEMU that does
 * not answer its monitor must not hold up the heartbeat (the Oracle would declare the RM down). */
void *node_balloon_thread(void *arg);

