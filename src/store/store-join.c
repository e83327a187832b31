/* Join tokens and RM certificates in the SQLite store (store-join.h). */
#include "store/store-join.h"

#include <string.h>

#include "base/util.h"
#include "store/store-internal.h"

#define JOIN_COLUMNS "id,hash,role,provider,created_by,created_ms,expires_ms,used_ms,used_by"
#define CERT_COLUMNS "rm,role,provider,serial,not_after_s,issued_ms,token"

static void join_from_row(sqlite3_stmt *st, void *ret) {
        join_token_record_t *t = ret;
        *t = (join_token_record_t){ 0 };
        store_copy_text(t->id, sizeof t->id, st, 0);
        if (sqlite3_column_bytes(st, 1) == (int)sizeof t->hash)
                memcpy(t->hash, sqlite3_column_blob(st, 1), sizeof t->hash);
        store_copy_text(t->role, sizeof t->role, st, 2);
        store_copy_text(t->provider, sizeof t->provider, st, 3);
        store_copy_text(t->created_by, sizeof t->created_by, st, 4);
        t->created_ms = sqlite3_column_int64(st, 5);
        t->expires_ms = sqlite3_column_int64(st, 6);
        t->used_ms = sqlite3_column_int64(st, 7);
        store_copy_text(t->used_by, sizeof t->used_by, st, 8);
}

int store_join_token_insert(store_t *s, const join_token_record_t *t) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT INTO join_tokens (" JOIN_COLUMNS ") VALUES (?,?,?,?,?,?,?,NULL,NULL)");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, t->id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_blob(st, 2, t->hash, sizeof t->hash, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, t->role, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 4, t->provider, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 5, t->created_by, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 6, t->created_ms);
                sqlite3_bind_int64(st, 7, t->expires_ms);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_join_token_get(store_t *s, const char *id, join_token_record_t *ret) {
        return store_row_get(s, "SELECT " JOIN_COLUMNS " FROM join_tokens WHERE id=?", id, join_from_row, ret);
}

int store_join_token_use(store_t *s, const char *id, const char *rm, int64_t now_ms) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "UPDATE join_tokens SET used_ms=?2, used_by=?3 WHERE id=?1 AND used_ms IS NULL");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 2, now_ms);
                sqlite3_bind_text(st, 3, rm, -1, SQLITE_TRANSIENT);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0) {
                        join_token_record_t t;
                        r = store_join_token_get(s, id, &t) == 0 ? -EALREADY : -ENOENT;
                }
        }
        store_unlock(s);
        return r;
}

int store_join_token_prune(store_t *s, int64_t now_ms) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "DELETE FROM join_tokens WHERE expires_ms < ?");
        int r = -EIO;
        if (st) {
                sqlite3_bind_int64(st, 1, now_ms);
                r = store_step_done(s, st);
                if (r >= 0)
                        r = sqlite3_changes(s->db);
        }
        store_unlock(s);
        return r;
}

static void cert_from_row(sqlite3_stmt *st, void *ret) {
        rm_cert_record_t *c = ret;
        *c = (rm_cert_record_t){ 0 };
        store_copy_text(c->rm, sizeof c->rm, st, 0);
        store_copy_text(c->role, sizeof c->role, st, 1);
        store_copy_text(c->provider, sizeof c->provider, st, 2);
        store_copy_text(c->serial, sizeof c->serial, st, 3);
        c->not_after_s = sqlite3_column_int64(st, 4);
        c->issued_ms = sqlite3_column_int64(st, 5);
        store_copy_text(c->token, sizeof c->token, st, 6);
}

int store_rm_cert_get(store_t *s, const char *rm, rm_cert_record_t *ret) {
        return store_row_get(s, "SELECT " CERT_COLUMNS " FROM rm_certs WHERE rm=?", rm, cert_from_row, ret);
}

int store_rm_cert_put(store_t *s, const rm_cert_record_t *c) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT OR REPLACE INTO rm_certs (" CERT_COLUMNS ") VALUES (?,?,?,?,?,?,?)");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, c->rm, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, c->role, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, c->provider, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 4, c->serial, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 5, c->not_after_s);
                sqlite3_bind_int64(st, 6, c->issued_ms);
                sqlite3_bind_text(st, 7, c->token, -1, SQLITE_TRANSIENT);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_rm_cert_list(store_t *s, rm_cert_record_t **ret, size_t *ret_n) {
        return store_rows_list(s, "SELECT " CERT_COLUMNS " FROM rm_certs ORDER BY rm", sizeof **ret, cert_from_row, NULL,
                               ret, ret_n);
}
