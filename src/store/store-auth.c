/* Users and tokens in the SQLite store (store-auth.h). */
#include "store/store-auth.h"

#include <string.h>

#include "base/util.h"
#include "store/store-internal.h"

#define USER_COLUMNS "name,role,password_hash,created_ms"
#define TOKEN_COLUMNS "id,user,name,hash,role,created_ms,expires_ms,revoked_ms,last_used_ms"

static void user_from_row(sqlite3_stmt *st, void *ret) {
        user_record_t *u = ret;
        *u = (user_record_t){ 0 };
        store_copy_text(u->name, sizeof u->name, st, 0);
        store_copy_text(u->role, sizeof u->role, st, 1);
        store_copy_text(u->password_hash, sizeof u->password_hash, st, 2);
        u->created_ms = sqlite3_column_int64(st, 3);
}

int store_user_insert(store_t *s, const user_record_t *u) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "INSERT INTO users (" USER_COLUMNS ") VALUES (?,?,?,?)");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, u->name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, u->role, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, u->password_hash, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 4, u->created_ms);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_user_get(store_t *s, const char *name, user_record_t *ret) {
        return store_row_get(s, "SELECT " USER_COLUMNS " FROM users WHERE name=?", name, user_from_row, ret);
}

int store_user_list(store_t *s, user_record_t **ret, size_t *ret_n) {
        return store_rows_list(s, "SELECT " USER_COLUMNS " FROM users ORDER BY name", sizeof **ret, user_from_row,
                               NULL, ret, ret_n);
}

/* One integer that sql (with up to one text parameter, arg) selects. */
static int select_int(store_t *s, const char *sql, const char *arg, int64_t *ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, sql);
        int r = -EIO;
        if (st) {
                if (arg)
                        sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(st) == SQLITE_ROW) {
                        *ret = sqlite3_column_int64(st, 0);
                        r = 0;
                }
        }
        store_unlock(s);
        return r;
}

int store_user_count(store_t *s, size_t *ret) {
        int64_t n = 0;
        int r = select_int(s, "SELECT count(*) FROM users", NULL, &n);
        if (r >= 0)
                *ret = (size_t)n;
        return r;
}

int store_user_set_password(store_t *s, const char *name, const char *password_hash) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "UPDATE users SET password_hash=?2 WHERE name=?1");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, password_hash, -1, SQLITE_TRANSIENT);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0)
                        r = -ENOENT;
        }
        store_unlock(s);
        return r;
}

/* The admin count and the deletes are one transaction, so two admins deleting each other at
 * once cannot both succeed and leave none. */
int store_user_delete(store_t *s, const char *name) {
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        user_record_t u;
        r = store_user_get(s, name, &u);
        int64_t admins = 0;
        if (r >= 0 && streq(u.role, "admin")) {
                r = select_int(s, "SELECT count(*) FROM users WHERE role='admin'", NULL, &admins);
                if (r >= 0 && admins <= 1)
                        r = -EBUSY;
        }
        if (r >= 0)
                r = store_row_delete(s, "DELETE FROM tokens WHERE user=?", name);
        if (r == -ENOENT) /* a user without tokens */
                r = 0;
        if (r >= 0)
                r = store_row_delete(s, "DELETE FROM users WHERE name=?", name);
        if (r < 0) {
                store_tx_rollback(s);
                return r;
        }
        return store_tx_commit(s);
}

static void token_from_row(sqlite3_stmt *st, void *ret) {
        token_record_t *t = ret;
        *t = (token_record_t){ 0 };
        store_copy_text(t->id, sizeof t->id, st, 0);
        store_copy_text(t->user, sizeof t->user, st, 1);
        store_copy_text(t->name, sizeof t->name, st, 2);
        /* a hash of another size (a damaged row) stays all zero, which no keyed hash matches
         * in practice; auth refuses it explicitly */
        if (sqlite3_column_bytes(st, 3) == (int)sizeof t->hash)
                memcpy(t->hash, sqlite3_column_blob(st, 3), sizeof t->hash);
        store_copy_text(t->role, sizeof t->role, st, 4);
        t->created_ms = sqlite3_column_int64(st, 5);
        t->expires_ms = sqlite3_column_int64(st, 6);
        t->revoked_ms = sqlite3_column_int64(st, 7);
        t->last_used_ms = sqlite3_column_int64(st, 8);
}

int store_token_insert(store_t *s, const token_record_t *t) {
        store_lock(s);
        user_record_t u;
        int r = store_user_get(s, t->user, &u);
        _cleanup_stmt_ sqlite3_stmt *st =
                r < 0 ? NULL : store_prepare(s, "INSERT INTO tokens (" TOKEN_COLUMNS ") VALUES (?,?,?,?,?,?,?,NULL,0)");
        if (r >= 0 && !st)
                r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, t->id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, t->user, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, t->name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_blob(st, 4, t->hash, sizeof t->hash, SQLITE_TRANSIENT);
                if (*t->role)
                        sqlite3_bind_text(st, 5, t->role, -1, SQLITE_TRANSIENT);
                else
                        sqlite3_bind_null(st, 5);
                sqlite3_bind_int64(st, 6, t->created_ms);
                sqlite3_bind_int64(st, 7, t->expires_ms);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_token_get(store_t *s, const char *id, token_record_t *ret) {
        return store_row_get(s, "SELECT " TOKEN_COLUMNS " FROM tokens WHERE id=?", id, token_from_row, ret);
}

int store_token_list(store_t *s, const char *user, token_record_t **ret, size_t *ret_n) {
        if (!user)
                return store_rows_list(s, "SELECT " TOKEN_COLUMNS " FROM tokens ORDER BY created_ms,id", sizeof **ret,
                                       token_from_row, NULL, ret, ret_n);
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "SELECT " TOKEN_COLUMNS " FROM tokens WHERE user=? ORDER BY created_ms,id");
        token_record_t *list = NULL;
        size_t n = 0;
        int rc = SQLITE_ERROR;
        if (st) {
                sqlite3_bind_text(st, 1, user, -1, SQLITE_TRANSIENT);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                        token_from_row(st, array_append(&list, &n, sizeof *list));
        }
        store_unlock(s);
        if (rc != SQLITE_DONE) {
                free(list);
                return -EIO;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

/* An UPDATE of token id with one integer (?2) that must change a row: 0 or -ENOENT. */
static int token_update(store_t *s, const char *sql, const char *id, int64_t v) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, sql);
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 2, v);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0)
                        r = -ENOENT;
        }
        store_unlock(s);
        return r;
}

int store_token_revoke(store_t *s, const char *id, int64_t now_ms) {
        return token_update(s, "UPDATE tokens SET revoked_ms=coalesce(revoked_ms,?2) WHERE id=?1", id, now_ms);
}

int store_token_touch(store_t *s, const char *id, int64_t now_ms) {
        return token_update(s, "UPDATE tokens SET last_used_ms=?2 WHERE id=?1", id, now_ms);
}

int store_token_prune(store_t *s, int64_t now_ms) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "DELETE FROM tokens WHERE expires_ms>0 AND expires_ms<?1");
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
