/* What the SQLite store's files share (store-sqlite.c, store-services.c, store-metrics.c,
 * store-auth.c): the handle and the statement helpers. Not for use outside src/store/. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sqlite3.h>

#include "base/macro.h"
#include "store/store.h"

struct store {
        sqlite3 *db;
        pthread_mutex_t lock; /* recursive: a transaction holds it across calls */
        int tx_depth;
        bool change_pending;  /* a VM or an event was written, not announced yet (under lock) */
        pthread_mutex_t change_lock; /* guards changes; with change_cond */
        pthread_cond_t change_cond;
        uint64_t changes;     /* bumped once a write of a VM or event is outside any transaction */
        struct store_view *view; /* the mirror of vms, rms and running ops (store-view.c) */
};

/* ---- the view's feed (store-view.c) ----
 * Every SQL write of a row of vms, rms or ops calls one of these right after its statement
 * succeeded, with the store lock held (keep in sync: a new writer of those tables must feed the
 * view, or the check mode finds the difference). Outside a transaction the change applies at
 * once; inside, it waits for store_view_commit (after a successful COMMIT) or is dropped by
 * store_view_abort (a rollback, a failed COMMIT). */
typedef struct store_view store_view_t;
store_view_t *store_view_free(store_view_t *v);
/* A new view of these rows as s's (store-view-sync.c reads them at store_open). */
void store_view_load_rows(store_t *s, const vm_record_t *vms, size_t nv, const rm_record_t *rms, size_t nr,
                         const op_record_t *ops, size_t no);
/* The first difference between the view and these rows (malloc'd), NULL when none. */
char *store_view_diff_rows(store_t *s, const vm_record_t *vms, size_t nv, const rm_record_t *rms, size_t nr,
                           const op_record_t *ops, size_t no);
/* store-db.c: the database opened and migrated, without its view (store_open adds it). */
int store_db_open(const char *path, store_t **ret);
void store_view_note_vm(store_t *s, const vm_record_t *v);
void store_view_note_vm_delete(store_t *s, const char *name);
void store_view_note_rm(store_t *s, const rm_record_t *rm);
void store_view_note_rm_provider(store_t *s, const char *rm, const char *provider);
void store_view_note_rm_seen(store_t *s, const char *rm, int64_t last_seen_ms);
void store_view_note_op(store_t *s, const op_record_t *o);
void store_view_commit(store_t *s);
void store_view_abort(store_t *s);

/* A VM or an event was written (call with the lock held): store_changes_wait() wakes once no
 * transaction is open any more, so a waiter reads what is committed. */
static inline void store_note_change(store_t *s) { s->change_pending = true; }

void store_lock(store_t *s);
void store_unlock(store_t *s);
int store_sqlite_errno(int rc);
/* Runs sql (no rows); logs and maps an error to -errno. */
int store_exec(store_t *s, const char *sql);
/* A prepared statement, or NULL (logged). */
sqlite3_stmt *store_prepare(store_t *s, const char *sql);
/* Steps a statement that returns no rows; -EEXIST on a constraint, -errno otherwise. */
int store_step_done(store_t *s, sqlite3_stmt *st);
void store_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col);
json_t *store_column_json(sqlite3_stmt *st, int col);
int store_bind_json(sqlite3_stmt *st, int idx, const json_t *j);

/* Runs sql (a DELETE with one text parameter, key): 0, -ENOENT when it removed nothing. */
int store_row_delete(store_t *s, const char *sql, const char *key);

typedef void (*store_row_fn)(sqlite3_stmt *st, void *ret);
typedef void (*store_row_clear_fn)(void *row);
/* The one row sql (with one text parameter, key) selects, read into *ret by from_row: 0,
 * -ENOENT when there is none, -errno. */
int store_row_get(store_t *s, const char *sql, const char *key, store_row_fn from_row, void *ret);
/* Every row sql (no parameters) selects, as a malloc'd array of size-byte records in
 * *(T **)ret and its length in *ret_n. On failure the rows read so far are cleared (clear may
 * be NULL) and -EIO returned. */
int store_rows_list(store_t *s, const char *sql, size_t size, store_row_fn from_row, store_row_clear_fn clear,
                    void *ret, size_t *ret_n);

/* store-ledger.c: appends a span to market machine v's history when its state (or
 * state_override), offer or terms differ from its last span; nothing for other VMs. Called
 * inside the transaction that writes v's row. */
int store_span_note(store_t *s, const vm_record_t *v, const char *state_override);
/* Binds a text parameter (a copy). */
static inline int store_bind_text(sqlite3_stmt *st, int idx, const char *text) {
        return sqlite3_bind_text(st, idx, text ? text : "", -1, SQLITE_TRANSIENT);
}

/* The one integer sql (with an optional text parameter, key) selects: 0, -ENOENT when it selects
 * no row, -EIO. */
int store_int64_get(store_t *s, const char *sql, const char *key, int64_t *ret);
/* The rows of the prepared (and bound) statement st, as store_rows_list reads them; st may be
 * NULL (a failed prepare: -EIO). Call with the store locked. */
int store_rows_collect(sqlite3_stmt *st, size_t size, store_row_fn from_row, store_row_clear_fn clear, void *ret,
                       size_t *ret_n);
/* The rows of st, each made into JSON by row, as a new array in *ret: 0 or -EIO. Locked. */
typedef json_t *(*store_row_json_fn)(sqlite3_stmt *st);
int store_rows_json(sqlite3_stmt *st, store_row_json_fn row, json_t **ret);

static inline void store_finalizep(sqlite3_stmt **st) { sqlite3_finalize(*st); }
#define _cleanup_stmt_ _cleanup_(store_finalizep)
