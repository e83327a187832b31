/* The SQLite store's handle, at the bottom of src/store: one file in WAL mode with
 * synchronous=FULL, so a committed transaction survives kill -9 and power loss; its lock and
 * transactions; the statement helpers every other store file uses. The schema version is
 * PRAGMA user_version and migrations[] brings any older file forward, each step in its own
 * transaction. */
#include "store/store.h"
#include "store/store-internal.h"

#include <pthread.h>
#include <sqlite3.h>
#include <string.h>

#include "base/fault.h"
#include "base/log.h"
#include "base/util.h"


/* Schema migrations: migrations[i] moves a database from version i to i+1. Append only. */
static const char *const migrations[] = {
        "CREATE TABLE vms (name TEXT PRIMARY KEY, state TEXT NOT NULL, version INTEGER NOT NULL,"
        " rm TEXT NOT NULL DEFAULT '', image TEXT NOT NULL, memory_mib INTEGER NOT NULL, vcpus INTEGER NOT NULL,"
        " mac TEXT NOT NULL, prebooted INTEGER NOT NULL DEFAULT 0, address TEXT NOT NULL DEFAULT '',"
        " pid INTEGER NOT NULL DEFAULT 0, op_id TEXT NOT NULL DEFAULT '', nest_version INTEGER NOT NULL DEFAULT 0,"
        " created_ms INTEGER NOT NULL, bundle TEXT NOT NULL DEFAULT '{}');"
        "CREATE TABLE rms (name TEXT PRIMARY KEY, role TEXT NOT NULL, address TEXT NOT NULL,"
        " state TEXT NOT NULL, last_seen_ms INTEGER NOT NULL);"
        "CREATE TABLE ops (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, vm TEXT NOT NULL,"
        " kind TEXT NOT NULL, state TEXT NOT NULL, created_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL,"
        " args TEXT NOT NULL, prev TEXT NOT NULL, progress TEXT NOT NULL, result TEXT NOT NULL, error TEXT NOT NULL);"
        "CREATE INDEX ops_state ON ops(state);"
        "CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, time_ms INTEGER NOT NULL, kind TEXT NOT NULL,"
        " vm TEXT NOT NULL, service TEXT NOT NULL, rm TEXT NOT NULL, reason TEXT NOT NULL);"
        "CREATE TABLE images (name TEXT PRIMARY KEY, kind TEXT NOT NULL, meta TEXT NOT NULL, created_ms INTEGER NOT NULL);"
        "CREATE TABLE counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL);",
        /* 2: services (issue 5), the service a VM belongs to, and the load-profile samples:
         * one row per (series, resolution in seconds, bucket start) with sum/count/max, so a
         * sample updates every resolution with one upsert each (store-metrics.c) */
        "CREATE TABLE services (name TEXT PRIMARY KEY, image TEXT NOT NULL, pool INTEGER NOT NULL,"
        " min INTEGER NOT NULL, max INTEGER NOT NULL, window_s REAL NOT NULL, high REAL NOT NULL,"
        " priority INTEGER NOT NULL, memory_mib INTEGER NOT NULL, vcpus INTEGER NOT NULL, port INTEGER NOT NULL,"
        " state TEXT NOT NULL, error TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL);"
        "ALTER TABLE vms ADD COLUMN service TEXT NOT NULL DEFAULT '';"
        "CREATE TABLE samples (series TEXT NOT NULL, res INTEGER NOT NULL, t INTEGER NOT NULL, sum REAL NOT NULL,"
        " n INTEGER NOT NULL, max REAL NOT NULL, PRIMARY KEY (series, res, t)) WITHOUT ROWID;"
        "CREATE INDEX samples_age ON samples(res, t);",
        /* 3: a service's health check, http of a path or tcp (an image without GET /health,
         * a stock nginx, never became ready); services made before keep GET /health */
        "ALTER TABLE services ADD COLUMN health_kind TEXT NOT NULL DEFAULT 'http';"
        "ALTER TABLE services ADD COLUMN health_path TEXT NOT NULL DEFAULT '/health';",
        /* 4: accounts and tokens (issue 11, store-auth.c). A token row holds only the keyed hash
         * of its secret; expires_ms 0 is never; a token cannot outlive its user's row */
        "CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, password_hash TEXT NOT NULL,"
        " created_ms INTEGER NOT NULL);"
        "CREATE TABLE tokens (id TEXT PRIMARY KEY, user TEXT NOT NULL REFERENCES users(name), name TEXT NOT NULL,"
        " hash BLOB NOT NULL, role TEXT, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
        " revoked_ms INTEGER, last_used_ms INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX tokens_user ON tokens(user);",
        /* 5: owners (issue 11): the user a VM belongs to ('' for VMs made before accounts,
         * which only roles that see everything reach) and the provider an RM is assigned to */
        "ALTER TABLE vms ADD COLUMN owner TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE rms ADD COLUMN provider TEXT NOT NULL DEFAULT '';",
        /* 6: join tokens and RM certificates (issue 11, store-join.c): a join token row holds only
         * the keyed hash of its secret and is used once (used_ms); an RM's row names the one
         * certificate of it the node channel accepts (a re-enrolment replaces it) */
        "CREATE TABLE join_tokens (id TEXT PRIMARY KEY, hash BLOB NOT NULL, role TEXT NOT NULL,"
        " provider TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL DEFAULT '', created_ms INTEGER NOT NULL,"
        " expires_ms INTEGER NOT NULL, used_ms INTEGER, used_by TEXT);"
        "CREATE TABLE rm_certs (rm TEXT PRIMARY KEY, role TEXT NOT NULL, provider TEXT NOT NULL DEFAULT '',"
        " serial TEXT NOT NULL, not_after_s INTEGER NOT NULL, issued_ms INTEGER NOT NULL, token TEXT NOT NULL);",
        /* 7: the marketplace (issue 12, store-market.c, store-ledger.c). A market machine is a VM
         * row with a market part (JSON: its ledger id, bid, terms, provider) and the offer it is
         * stored at or moving to (columns, so capacity sums are SQL). spans is its state
         * history, written with every change of its row; charges is the ledger, unique on
         * (machine, kind, period start) so that posting a charge again changes nothing; money
         * is integer micro-units */
        "ALTER TABLE vms ADD COLUMN market TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE vms ADD COLUMN offer TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE vms ADD COLUMN offer_next TEXT NOT NULL DEFAULT '';"
        "ALTER TABLE vms ADD COLUMN disk_gib INTEGER NOT NULL DEFAULT 0;"
        "CREATE INDEX vms_offer ON vms(offer);"
        "CREATE TABLE offers (rm TEXT PRIMARY KEY, provider TEXT NOT NULL, vcpus INTEGER NOT NULL,"
        " vcpu_price INTEGER NOT NULL, memory_mib INTEGER NOT NULL, memory_price INTEGER NOT NULL,"
        " running_period_s INTEGER NOT NULL, disk_gib INTEGER NOT NULL, disk_price INTEGER NOT NULL,"
        " storage_period_s INTEGER NOT NULL, updated_ms INTEGER NOT NULL);"
        "CREATE TABLE market_configs (name TEXT PRIMARY KEY, image TEXT NOT NULL, memory_mib INTEGER NOT NULL,"
        " vcpus INTEGER NOT NULL, disk_gib INTEGER NOT NULL, storage_price_30d INTEGER NOT NULL DEFAULT -1,"
        " running_price_1h INTEGER NOT NULL DEFAULT -1, created_ms INTEGER NOT NULL);"
        "CREATE TABLE market_prices (at_ms INTEGER PRIMARY KEY, prices TEXT NOT NULL);"
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        "CREATE TABLE spans (seq INTEGER PRIMARY KEY AUTOINCREMENT, machine INTEGER NOT NULL, vm TEXT NOT NULL,"
        " buyer TEXT NOT NULL, at_ms INTEGER NOT NULL, state TEXT NOT NULL, offer TEXT NOT NULL,"
        " provider TEXT NOT NULL, storage_price INTEGER NOT NULL, storage_period_s INTEGER NOT NULL,"
        " running_price INTEGER NOT NULL, running_period_s INTEGER NOT NULL);"
        "CREATE INDEX spans_machine ON spans(machine, seq);"
        "CREATE TABLE charges (machine INTEGER NOT NULL, kind TEXT NOT NULL, period_start_ms INTEGER NOT NULL,"
        " period_end_ms INTEGER NOT NULL, amount INTEGER NOT NULL, vm TEXT NOT NULL, buyer TEXT NOT NULL,"
        " provider TEXT NOT NULL, offer TEXT NOT NULL, posted_ms INTEGER NOT NULL,"
        " PRIMARY KEY (machine, kind, period_start_ms)) WITHOUT ROWID;"
        "CREATE INDEX charges_buyer ON charges(buyer, posted_ms);"
        "CREATE INDEX charges_provider ON charges(provider, offer);"
        "CREATE TABLE billing (machine INTEGER PRIMARY KEY, vm TEXT NOT NULL, buyer TEXT NOT NULL,"
        " posted_until_ms INTEGER NOT NULL DEFAULT 0, closed INTEGER NOT NULL DEFAULT 0);"
        "CREATE INDEX billing_open ON billing(closed);"
        "ALTER TABLE users ADD COLUMN balance INTEGER NOT NULL DEFAULT 0;"
        "CREATE TABLE deposits (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL, amount INTEGER NOT NULL,"
        " by TEXT NOT NULL, at_ms INTEGER NOT NULL);"
        "CREATE TABLE unpaid (vm TEXT PRIMARY KEY, buyer TEXT NOT NULL, since_ms INTEGER NOT NULL);",
        /* 8: the Oracle's measured figures (issue 14, store-figures.c): the last samples per kind,
         * image and RM, so a restart keeps the medians the switching policy uses */
        "CREATE TABLE figures (kind TEXT NOT NULL, image TEXT NOT NULL, rm TEXT NOT NULL, samples TEXT NOT NULL,"
        " PRIMARY KEY (kind, image, rm));",
};

int store_sqlite_errno(int rc) {
        switch (rc & 0xff) {
        case SQLITE_OK:
        case SQLITE_DONE:
        case SQLITE_ROW:
                return 0;
        case SQLITE_CONSTRAINT:
                return -EEXIST;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
                return -EBUSY;
        case SQLITE_FULL:
                return -ENOSPC;
        case SQLITE_NOMEM:
                return -ENOMEM;
        case SQLITE_READONLY:
        case SQLITE_PERM:
                return -EACCES;
        default:
                return -EIO;
        }
}

void store_lock(store_t *s) { pthread_mutex_lock(&s->lock); }
void store_unlock(store_t *s) {
        bool announce = s->tx_depth == 0 && s->change_pending;
        if (announce)
                s->change_pending = false;
        pthread_mutex_unlock(&s->lock);
        if (announce) {
                pthread_mutex_lock(&s->change_lock);
                s->changes++;
                pthread_cond_broadcast(&s->change_cond);
                pthread_mutex_unlock(&s->change_lock);
        }
}

uint64_t store_changes(store_t *s) {
        pthread_mutex_lock(&s->change_lock);
        uint64_t n = s->changes;
        pthread_mutex_unlock(&s->change_lock);
        return n;
}

uint64_t store_changes_wait(store_t *s, uint64_t seen, int64_t timeout_ms) {
        struct timespec ts = time_realtime_after_ms(timeout_ms);
        pthread_mutex_lock(&s->change_lock);
        while (s->changes == seen && pthread_cond_timedwait(&s->change_cond, &s->change_lock, &ts) == 0)
                ;
        uint64_t n = s->changes;
        pthread_mutex_unlock(&s->change_lock);
        return n;
}

int store_exec(store_t *s, const char *sql) {
        char *err = NULL;
        int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
        if (rc != SQLITE_OK) {
                log_error("store: %s", err ? err : sqlite3_errstr(rc));
                sqlite3_free(err);
                return store_sqlite_errno(rc);
        }
        return 0;
}

sqlite3_stmt *store_prepare(store_t *s, const char *sql) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK) {
                log_error("store: cannot prepare \"%s\": %s", sql, sqlite3_errmsg(s->db));
                return NULL;
        }
        return st;
}


static int user_version(store_t *s) {
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "PRAGMA user_version");
        if (!st || sqlite3_step(st) != SQLITE_ROW)
                return -EIO;
        return sqlite3_column_int(st, 0);
}

static int migrate(store_t *s) {
        int v = user_version(s);
        if (v < 0)
                return v;
        if ((size_t)v > ELEMENTSOF(migrations)) {
                log_error("store: database schema version %d is newer than this vmatrix (%zu)", v,
                          ELEMENTSOF(migrations));
                return -EPROTO;
        }
        for (size_t i = (size_t)v; i < ELEMENTSOF(migrations); i++) {
                _cleanup_free_ char *sql =
                        xasprintf("BEGIN IMMEDIATE; %s; PRAGMA user_version=%zu; COMMIT;", migrations[i], i + 1);
                int r = store_exec(s, sql);
                if (r < 0) {
                        store_exec(s, "ROLLBACK");
                        return r;
                }
                log_info("store: migrated schema to version %zu", i + 1);
        }
        return 0;
}

int store_db_open(const char *path, store_t **ret) {
        store_t *s = xcalloc(1, sizeof *s);
        pthread_mutexattr_t attr;
        pthread_mutexattr_init(&attr);
        pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
        pthread_mutex_init(&s->lock, &attr);
        pthread_mutex_init(&s->change_lock, NULL);
        pthread_cond_init(&s->change_cond, NULL);
        pthread_mutexattr_destroy(&attr);
        int rc = sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL);
        if (rc != SQLITE_OK) {
                log_error("store: cannot open %s: %s", path, s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
                store_close(s);
                return store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
        }
        sqlite3_busy_timeout(s->db, 5000);
        int r = store_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;");
        if (r >= 0)
                r = migrate(s);
        if (r < 0) {
                store_close(s);
                return r;
        }
        *ret = s;
        return 0;
}

store_t *store_close(store_t *s) {
        if (!s)
                return NULL;
        sqlite3_close_v2(s->db);
        store_view_free(s->view);
        pthread_mutex_destroy(&s->lock);
        pthread_mutex_destroy(&s->change_lock);
        pthread_cond_destroy(&s->change_cond);
        free(s);
        return NULL;
}

int store_schema_version(store_t *s) {
        store_lock(s);
        int v = user_version(s);
        store_unlock(s);
        return v;
}

int store_tx_begin(store_t *s) {
        store_lock(s);
        if (s->tx_depth++ > 0)
                return 0;
        int r = store_exec(s, "BEGIN IMMEDIATE");
        if (r < 0) {
                s->tx_depth--;
                store_unlock(s);
        }
        return r;
}

/* A commit or rollback without its begin (a caller that went on after a failed BEGIN) is
 * refused instead of letting tx_depth drift below zero, after which nothing would commit.
 * The depth is read under the lock, which the recursive mutex lets the owner take again. */
static bool tx_open(store_t *s) {
        store_lock(s);
        bool open = s->tx_depth > 0;
        store_unlock(s);
        if (!open)
                log_error("store: commit or rollback without a transaction (a failed begin was not checked)");
        return open;
}

int store_tx_commit(store_t *s) {
        if (!tx_open(s))
                return -EINVAL;
        int r = 0;
        /* an injected fault fails the COMMIT as a full disk would: the transaction is rolled back */
        bool outer = --s->tx_depth == 0;
        if (outer)
                r = fault_hit("store-write") ? -EIO : store_exec(s, "COMMIT");
        if (r < 0)
                store_exec(s, "ROLLBACK");
        /* the view learns the transaction's changes once they are committed, still under the
         * lock, so that no reader sees a change before the tables hold it */
        if (outer && r >= 0)
                store_view_commit(s);
        else if (outer)
                store_view_abort(s);
        store_unlock(s);
        return r;
}

void store_tx_rollback(store_t *s) {
        if (!tx_open(s))
                return;
        if (--s->tx_depth == 0) {
                store_exec(s, "ROLLBACK");
                store_view_abort(s);
        }
        store_unlock(s);
}

int store_row_delete(store_t *s, const char *sql, const char *key) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, sql);
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0)
                        r = -ENOENT;
        }
        store_unlock(s);
        return r;
}

void store_copy_text(char *dst, size_t size, sqlite3_stmt *st, int col) {
        const unsigned char *t = sqlite3_column_text(st, col);
        snprintf(dst, size, "%s", t ? (const char *)t : "");
}

json_t *store_column_json(sqlite3_stmt *st, int col) {
        const unsigned char *t = sqlite3_column_text(st, col);
        json_t *j = t ? json_loads((const char *)t, 0, NULL) : NULL;
        return j ? j : json_object();
}

int store_bind_json(sqlite3_stmt *st, int idx, const json_t *j) {
        char *s = j ? json_dumps(j, JSON_COMPACT) : xstrdup("{}");
        return sqlite3_bind_text(st, idx, s, -1, free);
}

/* Runs a statement that returns no rows; maps the result to -errno. */
int store_step_done(store_t *s, sqlite3_stmt *st) {
        if (fault_hit("store-write"))
                return -EIO;
        int rc = sqlite3_step(st);
        if (rc != SQLITE_DONE) {
                if ((rc & 0xff) != SQLITE_CONSTRAINT)
                        log_error("store: %s", sqlite3_errmsg(s->db));
                return store_sqlite_errno(rc) ? store_sqlite_errno(rc) : -EIO;
        }
        return 0;
}

int store_row_get(store_t *s, const char *sql, const char *key, store_row_fn from_row, void *ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, sql);
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        from_row(st, ret);
                        r = 0;
                } else {
                        r = rc == SQLITE_DONE ? -ENOENT : store_sqlite_errno(rc);
                }
        }
        store_unlock(s);
        return r;
}

int store_rows_collect(sqlite3_stmt *st, size_t size, store_row_fn from_row, store_row_clear_fn clear, void *ret,
                       size_t *ret_n) {
        char *list = NULL;
        size_t n = 0;
        int rc = SQLITE_ERROR;
        while (st && (rc = sqlite3_step(st)) == SQLITE_ROW)
                from_row(st, array_append(&list, &n, size));
        if (rc != SQLITE_DONE) {
                for (size_t i = 0; clear && i < n; i++)
                        clear(list + i * size);
                free(list);
                return -EIO;
        }
        *(void **)ret = list;
        *ret_n = n;
        return 0;
}

int store_rows_list(store_t *s, const char *sql, size_t size, store_row_fn from_row, store_row_clear_fn clear,
                    void *ret, size_t *ret_n) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, sql);
        int r = store_rows_collect(st, size, from_row, clear, ret, ret_n);
        store_unlock(s);
        return r;
}

int store_rows_json(sqlite3_stmt *st, store_row_json_fn row, json_t **ret) {
        json_t *arr = json_array();
        int rc = SQLITE_ERROR;
        while (st && (rc = sqlite3_step(st)) == SQLITE_ROW)
                json_array_append_new(arr, row(st));
        if (rc != SQLITE_DONE) {
                json_decref(arr);
                return -EIO;
        }
        *ret = arr;
        return 0;
}

int store_int64_get(store_t *s, const char *sql, const char *key, int64_t *ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, sql);
        int r = -EIO;
        if (st) {
                if (key)
                        sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        *ret = sqlite3_column_int64(st, 0);
                        r = 0;
                } else if (rc == SQLITE_DONE) {
                        r = -ENOENT;
                }
        }
        store_unlock(s);
        return r;
}
