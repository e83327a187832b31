/* The store view: an in-memory mirror of the store's vms (compact), rms and running ops, so
 * that the hot readers (heartbeats, placement, the switching and pool ticks, the reconciler)
 * never scan a table. It lives inside the store and every SQL writer of those tables
 * (store-sqlite.c) feeds it, so it cannot miss a change; a change is applied only after its
 * COMMIT succeeded (inside a transaction it is queued; a rollback or a failed COMMIT drops it),
 * so no reader ever sees uncommitted state and the view equals the committed tables.
 *
 * Two ways to read it:
 *   - the live view (store_view_*_get, _vms_on, _count_on, _ops_touching): one record or one
 *     RM's records, copied out under a read lock; cost O(1) or O(VMs on the RM);
 *   - a snapshot (store_view_snapshot): an immutable, refcounted copy of the whole view at one
 *     generation, shared by every reader of that generation (a tick reads a consistent
 *     cluster while writers go on).
 *
 * Locking: the store lock, then the view lock, never the reverse. View readers take no store
 * lock while they hold the view's. Placement inside a transaction reads the committed view:
 * callers must not rely on their own uncommitted VM writes being visible to it. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* The part of a VM row the hot readers use (about 440 bytes). */
typedef struct store_view_vm {
        char name[64];
        char state[24];
        char rm[64];
        char image[64];         /* the figures (oracle-figures.h) are kept per image */
        char service[64];
        char address[64];
        char op_id[40];
        char mem_digest[72];    /* bundle.files.memory.digest, "" when none */
        bool prebooted;
        bool market;            /* a buyer's machine (market.machine): placed only at its offer */
        int64_t version, vcpus, memory_mib, nest_version;
        uint64_t bundle_bytes;  /* the sum of bundle.files[*].size: what a transfer moves at most */
} store_view_vm_t;

/* A running operation: the VM it drives and the RMs it touches (args.origin, args.rm). */
typedef struct store_view_op {
        char id[40];
        char vm[64];
        char kind[24];
        char origin[64];
        char target[64];
} store_view_op_t;

/* The compact form of v (bundle figures included). */
void store_view_vm_from_record(const vm_record_t *v, store_view_vm_t *ret);

/* ---- the live view ---- */

int store_view_rm_get(store_t *s, const char *rm, rm_record_t *ret);        /* -ENOENT */
int store_view_vm_get(store_t *s, const char *vm, store_view_vm_t *ret);    /* -ENOENT */
/* Copies of the VMs whose rm is rm, ordered by name, in a malloc'd array (NULL when none). */
void store_view_vms_on(store_t *s, const char *rm, store_view_vm_t **ret, size_t *ret_n);
size_t store_view_count_on(store_t *s, const char *rm);
/* Copies of every RM, ordered by name, in a malloc'd array (NULL when none). */
void store_view_rms(store_t *s, rm_record_t **ret, size_t *ret_n);
/* Copies of the running ops whose origin or target is rm (malloc'd, NULL when none). */
void store_view_ops_touching(store_t *s, const char *rm, store_view_op_t **ret, size_t *ret_n);
/* The generation: bumped by every applied change. */
uint64_t store_view_gen(store_t *s);

/* ---- snapshots ---- */

typedef struct store_view_snap store_view_snap_t;

/* The view at its current generation: the one published when nothing changed since, else a
 * new copy (O(rows) memcpy, no sort of the VMs). Release with store_view_release. */
store_view_snap_t *store_view_snapshot(store_t *s);
void store_view_release(store_view_snap_t *snap);
/* A snapshot of rows given by the caller (tests, benches): nv VMs, nr RMs, no ops. */
store_view_snap_t *store_view_snap_build(const store_view_vm_t *vms, size_t nv, const rm_record_t *rms, size_t nr);

uint64_t store_view_snap_gen(const store_view_snap_t *snap);
/* VMs in no particular order: i < store_view_snap_nvms. */
size_t store_view_snap_nvms(const store_view_snap_t *snap);
const store_view_vm_t *store_view_snap_vm_at(const store_view_snap_t *snap, size_t i);
const store_view_vm_t *store_view_snap_vm(const store_view_snap_t *snap, const char *name);
/* RMs ordered by name: i < store_view_snap_nrms. */
size_t store_view_snap_nrms(const store_view_snap_t *snap);
const rm_record_t *store_view_snap_rm_at(const store_view_snap_t *snap, size_t i);
const rm_record_t *store_view_snap_rm(const store_view_snap_t *snap, const char *name);
/* The VMs on rm, in no particular order: first, then next until NULL. */
size_t store_view_snap_count_on(const store_view_snap_t *snap, const char *rm);
const store_view_vm_t *store_view_snap_first_on(const store_view_snap_t *snap, const char *rm);
const store_view_vm_t *store_view_snap_next_on(const store_view_snap_t *snap, const store_view_vm_t *vm);
size_t store_view_snap_nops(const store_view_snap_t *snap);
const store_view_op_t *store_view_snap_op_at(const store_view_snap_t *snap, size_t i);

/* ---- check ---- */

/* Compares the view with the tables (under the store lock): 0 when equal, -EPROTO with the
 * first difference in *ret_msg (malloc'd), -EIO when the tables cannot be read. For tests and
 * the Oracle's check mode (VMATRIX_VIEW_CHECK=1). */
int store_view_check(store_t *s, char **ret_msg);
