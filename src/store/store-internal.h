/* What the SQLite store's files share (store-sqlite.c, store-services.c, store-metrics.c): the
 * handle and the statement helpers. Not for use outside src/store/. */
#pragma once

#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>

#include "base/macro.h"
#include "store/store.h"

struct store {
        sqlite3 *db;
        pthread_mutex_t lock; /* recursive: a transaction holds it across calls */
        int tx_depth;
};

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

static inline void store_finalizep(sqlite3_stmt **st) { sqlite3_finalize(*st); }
#define _cleanup_stmt_ _cleanup_(store_finalizep)
