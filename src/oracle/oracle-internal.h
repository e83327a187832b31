/* Shared state of the Oracle: one context struct, passed to every handler and thread.
 * The store is the truth; the Oracle keeps no VM state in memory, so a restart loses nothing
 * and re-drives the operations the store shows as running. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>

#include "net/http-server.h"
#include "nest/chunk-store.h"
#include "oracle/oracle-liveness.h"
#include "oracle/oracle-metrics.h"
#include "store/store.h"

typedef struct oracle {
        store_t *store;
        nest_store_t *nest_store; /* DATA/nest/store: the chunks and manifests of the Nest */
        char *data;       /* data directory */
        char *nest;       /* DATA/nest: images/ and vms/ */
        char *guest_dir;  /* where built-in guest images are found */
        char *listen;
        http_server_t *http;
        volatile int stopping;
        pthread_mutex_t ops_lock; /* guards ops_running */
        int ops_running;          /* runner threads alive: a stop with some leaves at once */
        oracle_metrics_t *metrics; /* load profiles (oracle-metrics.c) */
        struct oracle_switch *sw;  /* switching state (oracle-switch.c) */
        pthread_mutex_t strays_lock; /* guards strays and snapshots */
        json_t *strays;           /* RM name -> VMs its last heartbeat reported without a lease */
        json_t *snapshots;        /* RM name -> {memory digest: true} it holds (its last heartbeat) */
        oracle_liveness_t *liveness; /* which RMs are alive (oracle-liveness.h) */
        pthread_mutex_t imports_lock; /* guards imports */
        json_t *imports;          /* image names being imported right now -> true */
} oracle_t;

/* oracle-ops.c: the operation coordinator (intent -> action -> commit/rollback). */
typedef struct op_request {
        const char *action;   /* lifecycle verb */
        const char *rm;       /* requested RM, may be NULL */
        const char *method;   /* migrate: chunks (default) or full */
        bool force;
} op_request_t;
/* oracle-migrate-live.c: the runner of a live migration. */
void oracle_op_migrate_live(oracle_t *o, op_record_t *op, vm_record_t *vm);

/* oracle-clone.c: count clones of a pre-booted VM (rm: all onto that chamber RM, else one per
 * free production RM). *ret is {"clones": [names], "ops": [ops]}. */
int oracle_vm_clone(oracle_t *o, const char *parent, int64_t count, const char *rm, json_t **ret, char **ret_msg);
/* The next MAC address of the Oracle's counter ("52:54:00:xx:xx:xx"). */
int oracle_mac_next(oracle_t *o, char ret[18]);

/* Validates and records the intent, starts the runner, returns the op as JSON (202). */
int oracle_op_start(oracle_t *o, const char *vm, const op_request_t *req, json_t **ret_op, char **ret_msg);
/* Runners shared with oracle-migrate.c (oracle-ops.c). */
int oracle_op_finish(oracle_t *o, op_record_t *op, vm_record_t *vm, bool ok, const char *error, json_t *result,
                     bool delete_vm);
void oracle_vm_restore_prev(const op_record_t *op, vm_record_t *vm);
void oracle_node_forget(oracle_t *o, const char *rm, const char *vm, int64_t version);
void oracle_op_progress(oracle_t *o, op_record_t *op, const char *phase);
json_t *oracle_image_for_node(oracle_t *o, const char *image);
/* oracle-migrate.c: a suspended VM from its RM to another (Virtuoso's protocol). */
void oracle_op_migrate(oracle_t *o, op_record_t *op, vm_record_t *vm);
/* POST /v1/ops/:id/heartbeat from a node transferring for an operation: progress and liveness. */
void oracle_op_heartbeat(const http_request_t *req, http_reply_t *reply);
/* Re-drives every operation left running by a previous Oracle process. */
void oracle_ops_recover(oracle_t *o);

/* oracle-node-client.c: commands to a node. 0 and *ret (the node's answer) or -errno and a
 * message that names the RM. -EHOSTUNREACH when the node could not be reached at all. */
int oracle_node_call(oracle_t *o, const char *rm, const char *method, const char *path, const json_t *body,
                     long timeout_ms, json_t **ret, char **ret_msg);

/* oracle-nest.c: bundle and image storage on the Oracle's host. */
char *oracle_nest_vm_dir(oracle_t *o, const char *vm);
char *oracle_nest_bundle_dir(oracle_t *o, const char *vm, int64_t version);
/* 0 when the Nest holds every file of files {FILE: {"digest"}} as (vm, version, FILE) with that
 * digest and no missing chunk. */
int oracle_nest_check_files(oracle_t *o, const char *vm, int64_t version, const json_t *files, char **ret_msg);
/* Drops the manifests (and vm.json) of every version of vm but keep_version (0: all). */
void oracle_nest_prune(oracle_t *o, const char *vm, int64_t keep_version);
int oracle_nest_write_config(oracle_t *o, const char *vm, int64_t version, const json_t *config);
int oracle_image_register_builtin(oracle_t *o, const char *name, const char *builtin, json_t **ret, char **ret_msg);
extern const http_route_t oracle_nest_routes[];

/* oracle-api.c */
extern const http_route_t oracle_api_routes[];
json_t *oracle_vm_json(const vm_record_t *v);
/* body[key] as an integer in [min,max]; def when absent or null. -EINVAL (not an integer),
 * -ERANGE. */
int oracle_body_int(const json_t *body, const char *key, int64_t def, int64_t min, int64_t max, int64_t *ret);
/* A new stored VM's record (not inserted): its MAC, first version and config from img.
 * service: the pool it belongs to, or NULL. */
int oracle_vm_record_new(oracle_t *o, const char *name, const image_record_t *img, int64_t memory, int64_t vcpus,
                         const char *service, vm_record_t *ret);

/* oracle-rms.c: heartbeats, leases and the health reconciler. */
void oracle_heartbeat(const http_request_t *req, http_reply_t *reply);
/* An address as nodes report it, for their API and for guests: "IPv4:PORT". */
bool oracle_address_is_valid(const char *address);
void *oracle_reconciler_thread(void *arg);
void *oracle_gc_thread(void *arg);
/* An operator's decision during an isolation (or any time): rm is down now and its VMs are
 * failed and fenced. -ENOENT, -EALREADY (down already). */
int oracle_rm_fence(oracle_t *o, const char *name, char **ret_msg);
/* Marks vm failed at version+1 (no operation may run on it; call inside a transaction). fence:
 * also drop its placement, so its RM holds no lease and kills any copy. */
void oracle_vm_mark_failed(oracle_t *o, vm_record_t *vm, const char *rm, bool fence, const char *reason);

/* oracle-services.c: the services API. */
extern const http_route_t oracle_service_routes[];
/* "HOST:PORT" of a service's frontend (malloc'd): the Oracle's listen host (127.0.0.1 for a
 * wildcard) and the service's port. */
char *oracle_service_endpoint(const char *listen, int64_t port);

/* Every service and every VM, as one picture for a tick or an answer (free both lists). */
int oracle_services_read(oracle_t *o, service_record_t **ret_svs, size_t *ret_ns, vm_record_t **ret_vms,
                         size_t *ret_nv);
/* oracle-switch.c: the switching thread (HAProxy, load, the policy, failure recovery) and
 * oracle-pool.c: the pool thread (pre-creating services' VMs, deleting services). */
/* init: the state the HTTP threads reach (before the API listens); start: HAProxy and the two
 * threads (once the Oracle listens, so a second Oracle on the same data stops there). */
void oracle_switch_init(oracle_t *o);
int oracle_switch_start(oracle_t *o);
/* stop: the threads and HAProxy (the state stays for operation threads still running);
 * free: the state, once nothing else can reach it. */
void oracle_switch_stop(oracle_t *o);
void oracle_switch_free(oracle_t *o);
/* Runs both loops at once instead of at their next tick (a VM failed, an op ended...). */
void oracle_switch_wake(oracle_t *o);
/* Waits until HAProxy has taken vm out of service's rotation and its sessions are 0, at most
 * timeout_ms. 0, or -ETIMEDOUT (the caller goes on: a drain must end). */
int oracle_switch_drain_wait(oracle_t *o, const char *service, const char *vm, int64_t timeout_ms);
void *oracle_pool_thread(void *arg);
/* A VM of service failed (oracle_vm_mark_failed): noted at once, and replaced when it was
 * serving (a VM that failed while being pre-booted is only booted again). */
void oracle_switch_failure_note(oracle_t *o, const char *vm, const char *service, bool replace);
/* Has the switching loop taken note of vm's failure (so the pool may stop it)? */
bool oracle_switch_failure_known(oracle_t *o, const char *vm);
/* How many VMs rm's last heartbeat reported that it holds no lease for (fenced copies it is
 * about to kill). A production RM with any is not free yet. */
int oracle_rm_strays(oracle_t *o, const char *rm);
/* Picks an RM for a VM: an idle production RM (one VM each) or the least loaded chamber. */
int oracle_rm_pick(oracle_t *o, const char *role, const char *wanted, const char *vm, char *ret, size_t size,
                   char **ret_msg);
