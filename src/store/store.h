/* The Oracle's state store: RMs, VMs, operations, events and images. The embedded default is
 * SQLite (one file, WAL, schema version and migrations); the interface is written so that a
 * PostgreSQL backend can implement it later.
 *
 * Concurrency: a store is shared by the Oracle's threads. Every call is atomic on its own;
 * store_tx_begin()/store_tx_commit() group several calls into one transaction and hold the
 * store's (recursive) lock meanwhile, so a read-check-write sequence cannot interleave. */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "market/market.h"

typedef struct store store_t;

/* The marketplace's part of a VM (issue 12): set on a buyer's machine, made by vm register.
 * A VM with machine 0 is not a market machine and none of the rest applies. */
typedef struct vm_market {
        int64_t machine;        /* its id in the ledger, unique for ever (names are reused) */
        int64_t disk_gib;
        int64_t registered_ms;
        market_terms_t bid;     /* what the buyer is willing to pay (vm register/edit) */
        char offer[64];         /* the RM of the offer it is stored at, "" while registered */
        char offer_next[64];    /* while it migrates: the offer it is moving to (its capacity is held) */
        char provider[64];      /* the offer's provider when it was stored there */
        market_terms_t terms;   /* the prices it was stored at; kept until it migrates */
} vm_market_t;

typedef struct vm_record {
        char name[64];
        char state[24];
        int64_t version;
        char rm[64];            /* RM it is on, "" when in the Nest */
        char image[64];
        int64_t memory_mib;
        int64_t vcpus;
        char mac[18];
        bool prebooted;
        char address[64];       /* host:port where guest port 80 answers, "" when not running */
        int64_t pid;            /* QEMU pid while it runs, 0 otherwise */
        char op_id[40];         /* the running operation, "" when none */
        int64_t nest_version;   /* the version whose bundle is in the Nest, 0 when none */
        int64_t created_ms;
        json_t *bundle;         /* owned: files of the Nest bundle {"files":{NAME:{"sha256","size"}}} */
        char service[64];       /* the service whose pool it belongs to, "" when none */
        char owner[64];         /* the user it belongs to, "" when none (made before accounts) */
        vm_market_t market;
} vm_record_t;

typedef struct rm_record {
        char name[64];
        char role[16];          /* production | chamber */
        char address[64];       /* host:port of its node API */
        char state[8];          /* up | down */
        int64_t last_seen_ms;
        char provider[64];      /* the provider it is assigned to, "" when none (upserts keep it) */
} rm_record_t;

typedef struct op_record {
        char id[40];
        char vm[64];
        char kind[24];
        char state[16];         /* running | done | failed */
        int64_t created_ms, updated_ms;
        json_t *args;           /* owned: what the operation was asked (target rm, ...) */
        json_t *prev;           /* owned: the VM row before the operation (for rollback) */
        json_t *progress;       /* owned: {"phase","done","total"} */
        json_t *result;         /* owned */
        char error[512];
} op_record_t;

typedef struct image_record {
        char name[64];
        char kind[16];          /* kernel (tiny-http style) | disk (BIOS boot) */
        json_t *meta;           /* owned: files, cmdline, disk size... */
        int64_t created_ms;
} image_record_t;

int store_open(const char *path, store_t **ret);
store_t *store_close(store_t *s);
int store_schema_version(store_t *s);

/* A count of the writes of VMs and events, bumped as each is committed: a reader that saw n
 * waits in store_changes_wait for the count to move (or timeout_ms), and gets the new count. */
uint64_t store_changes(store_t *s);
uint64_t store_changes_wait(store_t *s, uint64_t seen, int64_t timeout_ms);

int store_tx_begin(store_t *s);
int store_tx_commit(store_t *s);
void store_tx_rollback(store_t *s);

void vm_record_clear(vm_record_t *v);
json_t *vm_record_to_json(const vm_record_t *v);
int vm_record_from_json(const json_t *j, vm_record_t *ret);
int store_vm_get(store_t *s, const char *name, vm_record_t *ret);        /* -ENOENT */
int store_vm_insert(store_t *s, const vm_record_t *v);                   /* -EEXIST */
/* Writes v when the stored version is still expected_version; -ESTALE otherwise. */
int store_vm_update(store_t *s, const vm_record_t *v, int64_t expected_version);
int store_vm_delete(store_t *s, const char *name);
/* The version a new VM called name starts at: 1, or above the last version of a deleted VM of
 * that name, since RMs refuse commands below a version they have seen for the name. */
int store_vm_first_version(store_t *s, const char *name, int64_t *ret);
/* All VMs ordered by name; *ret is an array of n records (free with store_vm_list_free). */
int store_vm_list(store_t *s, vm_record_t **ret, size_t *ret_n);
void store_vm_list_free(vm_record_t *list, size_t n);
/* A page of store_vm_list: the VMs whose names sort after `after` (NULL or "": from the
 * first), by name, at most limit (1..STORE_PAGE_MAX; -ERANGE otherwise). Keyset paging on the
 * primary key, which never changes: a walk that passes each page's last name as the next
 * `after` sees every VM that exists throughout it exactly once, in increasing order, whatever
 * is created or deleted meanwhile (those at most once). Free with store_vm_list_free. */
#define STORE_PAGE_MAX 10000
int store_vm_page(store_t *s, const char *after, size_t limit, vm_record_t **ret, size_t *ret_n);
/* How many VMs are placed on each RM whose name is in (after, last], by RM name; RMs without
 * VMs are left out. One pass over the VMs (no index on their RM). */
typedef struct store_rm_count {
        char rm[64];
        int64_t vms;
} store_rm_count_t;
int store_vm_count_on_range(store_t *s, const char *after, const char *last, store_rm_count_t **ret, size_t *ret_n);

int store_rm_get(store_t *s, const char *name, rm_record_t *ret);
int store_rm_upsert(store_t *s, const rm_record_t *r);
/* Assigns rm to provider ("" or NULL: to nobody). -ENOENT when there is no such RM. */
int store_rm_provider_set(store_t *s, const char *rm, const char *provider);
int store_rm_list(store_t *s, rm_record_t **ret, size_t *ret_n);
/* A page of store_rm_list, as store_vm_page (free with free). */
int store_rm_page(store_t *s, const char *after, size_t limit, rm_record_t **ret, size_t *ret_n);
/* Moves the last_seen_ms of each RM of list (name and last_seen_ms read) forward to its value,
 * in one transaction (an RM that is gone, or already seen later, is left alone): the Oracle's
 * periodic checkpoint of what its heartbeats no longer write one by one. */
int store_rm_seen_batch(store_t *s, const rm_record_t *list, size_t n);

void op_record_clear(op_record_t *o);
json_t *op_record_to_json(const op_record_t *o);
int store_op_insert(store_t *s, op_record_t *o); /* assigns o->id */
int store_op_update(store_t *s, const op_record_t *o);
/* Sets only the progress and updated_ms of op id, and only while it is running: -ESTALE when
 * it has ended (a late report must not turn a finished op back), -ENOENT when there is none. */
int store_op_progress(store_t *s, const char *id, const json_t *progress, int64_t updated_ms);
int store_op_get(store_t *s, const char *id, op_record_t *ret);
/* Operations still in state "running" (to finish or undo after a restart). */
int store_op_list_running(store_t *s, op_record_t **ret, size_t *ret_n);
void store_op_list_free(op_record_t *list, size_t n);

int store_event_add(store_t *s, const char *kind, const char *vm, const char *service, const char *rm,
                    const char *reason);
/* A selection of events: after an id (forward, oldest first), or the last ones (the newest
 * limit, still oldest first); NULL filters match any. */
typedef struct store_event_filter {
        int64_t after_id;
        int limit;
        bool last;           /* the newest limit events instead of those after after_id */
        const char *vm, *service, *kind;
} store_event_filter_t;
int store_event_select(store_t *s, const store_event_filter_t *f, json_t **ret);
/* A selection of operations, newest first: NULL filters match any; at most limit. */
int store_op_select(store_t *s, const char *state, const char *kind, const char *vm, int limit, op_record_t **ret,
                    size_t *ret_n);
/* The id of the newest event (0 when none). */
int store_event_last_id(store_t *s, int64_t *ret);
/* Events with id > after_id, oldest first, at most limit; array of objects. */
int store_event_list(store_t *s, int64_t after_id, int limit, json_t **ret);

void image_record_clear(image_record_t *i);
/* ---- services (store-services.c) ---- */

typedef struct service_record {
        char name[64];
        char image[64];
        int64_t pool;           /* VMs made for it */
        int64_t min, max;       /* active VMs */
        double window_s;        /* how long a bottleneck or low load lasts before the policy acts */
        double high;            /* percent of one VM's capacity */
        int64_t priority;       /* higher wins an RM when there are too few */
        int64_t memory_mib, vcpus;
        int64_t port;           /* its frontend's port on the Oracle's host */
        char state[16];         /* creating | ready | failed | deleting */
        char error[256];        /* why creating failed */
        int64_t created_ms;
        char health_kind[8];    /* "http" | "tcp": how its VMs are checked (lb_health_kind_t) */
        char health_path[260];  /* http: the path GET checks (at most LB_HEALTH_PATH_MAX); tcp: "" */
} service_record_t;

json_t *service_record_to_json(const service_record_t *sv);
int store_service_get(store_t *s, const char *name, service_record_t *ret);    /* -ENOENT */
int store_service_insert(store_t *s, const service_record_t *sv);             /* -EEXIST */
int store_service_update(store_t *s, const service_record_t *sv);             /* -ENOENT */
int store_service_delete(store_t *s, const char *name);
/* All services ordered by name (free the array). */
int store_service_list(store_t *s, service_record_t **ret, size_t *ret_n);

int store_image_get(store_t *s, const char *name, image_record_t *ret);
int store_image_put(store_t *s, const image_record_t *i);
int store_image_list(store_t *s, json_t **ret);
int store_image_delete(store_t *s, const char *name); /* -ENOENT */

/* Reads and writes of a small key/value table (counters such as the next MAC). */
int store_counter_next(store_t *s, const char *key, int64_t *ret);
