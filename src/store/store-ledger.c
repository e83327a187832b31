/* The history and the money of market machines in the SQLite store (store-market.h): spans
 * (written with every change of a machine's row, store_span_note), the ledger of charges,
 * balances and deposits, billing's bookkeeping and the machines suspended for want of money. */
#include <string.h>

#include "base/util.h"
#include "store/store-internal.h"
#include "store/store-market.h"

/* ---- spans ---- */

#define SPAN_COLUMNS "at_ms,state,offer,provider,storage_price,storage_period_s,running_price,running_period_s"

static void span_from_row(sqlite3_stmt *st, billing_span_t *sp) {
        *sp = (billing_span_t){ 0 };
        sp->at_ms = sqlite3_column_int64(st, 0);
        store_copy_text(sp->state, sizeof sp->state, st, 1);
        store_copy_text(sp->offer, sizeof sp->offer, st, 2);
        store_copy_text(sp->provider, sizeof sp->provider, st, 3);
        sp->terms.storage_price = sqlite3_column_int64(st, 4);
        sp->terms.storage_period_s = sqlite3_column_int64(st, 5);
        sp->terms.running_price = sqlite3_column_int64(st, 6);
        sp->terms.running_period_s = sqlite3_column_int64(st, 7);
}

static bool span_same(const billing_span_t *a, const billing_span_t *b) {
        return streq(a->state, b->state) && streq(a->offer, b->offer) && streq(a->provider, b->provider) &&
               !memcmp(&a->terms, &b->terms, sizeof a->terms);
}

int store_span_note(store_t *s, const vm_record_t *v, const char *state_override) {
        const vm_market_t *m = &v->market;
        if (!m->machine)
                return 0;
        billing_span_t now = { .terms = m->terms };
        snprintf(now.state, sizeof now.state, "%s", state_override ? state_override : v->state);
        snprintf(now.offer, sizeof now.offer, "%s", m->offer);
        snprintf(now.provider, sizeof now.provider, "%s", m->provider);
        store_lock(s);
        int r = -EIO;
        _cleanup_stmt_ sqlite3_stmt *last =
                store_prepare(s, "SELECT " SPAN_COLUMNS " FROM spans WHERE machine=? ORDER BY seq DESC LIMIT 1");
        _cleanup_stmt_ sqlite3_stmt *add = store_prepare(
                s, "INSERT INTO spans (machine,vm,buyer," SPAN_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?,?,?)");
        _cleanup_stmt_ sqlite3_stmt *book = store_prepare(
                s, "INSERT OR IGNORE INTO billing (machine, vm, buyer) VALUES (?,?,?)");
        if (!last || !add || !book)
                goto out;
        sqlite3_bind_int64(last, 1, m->machine);
        int rc = sqlite3_step(last);
        if (rc == SQLITE_ROW) {
                billing_span_t prev;
                span_from_row(last, &prev);
                if (span_same(&prev, &now)) {
                        r = 0;
                        goto out;
                }
                now.at_ms = MAX(time_wall_ms(), prev.at_ms); /* never out of order, whatever the clock does */
        } else if (rc == SQLITE_DONE) {
                now.at_ms = time_wall_ms();
        } else {
                goto out;
        }
        sqlite3_bind_int64(add, 1, m->machine);
        store_bind_text(add, 2, v->name);
        store_bind_text(add, 3, v->owner);
        sqlite3_bind_int64(add, 4, now.at_ms);
        store_bind_text(add, 5, now.state);
        store_bind_text(add, 6, now.offer);
        store_bind_text(add, 7, now.provider);
        sqlite3_bind_int64(add, 8, now.terms.storage_price);
        sqlite3_bind_int64(add, 9, now.terms.storage_period_s);
        sqlite3_bind_int64(add, 10, now.terms.running_price);
        sqlite3_bind_int64(add, 11, now.terms.running_period_s);
        r = store_step_done(s, add);
        if (r >= 0) {
                sqlite3_bind_int64(book, 1, m->machine);
                store_bind_text(book, 2, v->name);
                store_bind_text(book, 3, v->owner);
                r = store_step_done(s, book);
        }
out:
        store_unlock(s);
        return r;
}

static void span_row(sqlite3_stmt *st, void *ret) { span_from_row(st, ret); }

int store_spans_get(store_t *s, int64_t machine, billing_span_t **ret, size_t *ret_n) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "SELECT " SPAN_COLUMNS " FROM spans WHERE machine=? ORDER BY seq");
        if (st)
                sqlite3_bind_int64(st, 1, machine);
        int r = store_rows_collect(st, sizeof **ret, span_row, NULL, ret, ret_n);
        store_unlock(s);
        return r;
}

int store_span_backdate(store_t *s, int64_t machine, int64_t at_ms) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "UPDATE spans SET at_ms = MAX(?2,"
                   " COALESCE((SELECT at_ms FROM spans p WHERE p.machine=?1 AND p.seq < spans.seq ORDER BY p.seq DESC"
                   " LIMIT 1), 0),"
                   " COALESCE((SELECT posted_until_ms FROM billing b WHERE b.machine=?1), 0))"
                   " WHERE seq = (SELECT MAX(seq) FROM spans WHERE machine=?1) AND at_ms > ?2");
        int r = -EIO;
        if (st) {
                sqlite3_bind_int64(st, 1, machine);
                sqlite3_bind_int64(st, 2, at_ms);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_spans_last_seq(store_t *s, int64_t *ret) {
        return store_int64_get(s, "SELECT COALESCE(MAX(seq),0) FROM spans", NULL, ret);
}

static json_t *machine_json(sqlite3_stmt *st) { return json_integer(sqlite3_column_int64(st, 0)); }

int store_spans_changed(store_t *s, int64_t after_seq, json_t **ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "SELECT DISTINCT machine FROM spans WHERE seq > ?");
        if (st)
                sqlite3_bind_int64(st, 1, after_seq);
        int r = store_rows_json(st, machine_json, ret);
        store_unlock(s);
        return r;
}

/* ---- the ledger ---- */

static int balance_add(store_t *s, const char *user, int64_t delta) {
        if (!user || !*user || !delta)
                return 0;
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "UPDATE users SET balance = balance + ?2 WHERE name=?1");
        if (!st)
                return -EIO;
        store_bind_text(st, 1, user);
        sqlite3_bind_int64(st, 2, delta);
        return store_step_done(s, st);
}

int store_charge_post(store_t *s, const charge_record_t *c) {
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "INSERT OR IGNORE INTO charges (machine,kind,period_start_ms,period_end_ms,amount,vm,buyer,provider,"
                   "offer,posted_ms) VALUES (?,?,?,?,?,?,?,?,?,?)");
        r = -EIO;
        bool posted = false;
        if (st) {
                sqlite3_bind_int64(st, 1, c->machine);
                store_bind_text(st, 2, c->kind);
                sqlite3_bind_int64(st, 3, c->start_ms);
                sqlite3_bind_int64(st, 4, c->end_ms);
                sqlite3_bind_int64(st, 5, c->amount);
                store_bind_text(st, 6, c->vm);
                store_bind_text(st, 7, c->buyer);
                store_bind_text(st, 8, c->provider);
                store_bind_text(st, 9, c->offer);
                sqlite3_bind_int64(st, 10, c->posted_ms);
                r = store_step_done(s, st);
                posted = r >= 0 && sqlite3_changes(s->db) == 1;
        }
        if (r >= 0 && posted)
                r = balance_add(s, c->buyer, -c->amount);
        if (r >= 0 && posted)
                r = balance_add(s, c->provider, c->amount);
        if (r < 0) {
                store_tx_rollback(s);
                return r;
        }
        r = store_tx_commit(s);
        return r < 0 ? r : posted ? 1 : 0;
}

static json_t *charge_json(sqlite3_stmt *st) {
        return json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:I,s:I,s:I,s:I}", "machine", (json_int_t)sqlite3_column_int64(st, 0),
                         "vm", (const char *)sqlite3_column_text(st, 1), "buyer", (const char *)sqlite3_column_text(st, 2),
                         "provider", (const char *)sqlite3_column_text(st, 3), "offer",
                         (const char *)sqlite3_column_text(st, 4), "kind", (const char *)sqlite3_column_text(st, 5),
                         "period_start", (json_int_t)sqlite3_column_int64(st, 6), "period_end",
                         (json_int_t)sqlite3_column_int64(st, 7), "amount", (json_int_t)sqlite3_column_int64(st, 8),
                         "posted_ms", (json_int_t)sqlite3_column_int64(st, 9));
}

/* Binds the optional text filters p[0..n) as parameters 1..n (NULL: unbound, so ?N IS NULL). */
static void bind_filters(sqlite3_stmt *st, const char *const *p, int n) {
        for (int i = 0; st && i < n; i++)
                if (p[i])
                        store_bind_text(st, i + 1, p[i]);
}

int store_charges_list(store_t *s, const char *buyer, const char *provider, const char *vm, int limit, json_t **ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "SELECT machine,vm,buyer,provider,offer,kind,period_start_ms,period_end_ms,amount,posted_ms FROM "
                   "charges WHERE (?1 IS NULL OR buyer=?1) AND (?2 IS NULL OR provider=?2) AND (?3 IS NULL OR vm=?3) "
                   "ORDER BY posted_ms DESC, period_start_ms DESC LIMIT ?4");
        bind_filters(st, (const char *const[]){ buyer, provider, vm }, 3);
        if (st)
                sqlite3_bind_int(st, 4, limit);
        int r = store_rows_json(st, charge_json, ret);
        store_unlock(s);
        return r;
}

/* {KEY: SUM(amount)} of a grouped query with up to two optional text parameters. */
static int sums_by(store_t *s, const char *sql, const char *p1, const char *p2, json_t **ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, sql);
        bind_filters(st, (const char *const[]){ p1, p2 }, 2);
        int r = -EIO;
        json_t *obj = json_object();
        int rc = SQLITE_ERROR;
        while (st && (rc = sqlite3_step(st)) == SQLITE_ROW)
                json_object_set_new(obj, (const char *)sqlite3_column_text(st, 0), json_integer(sqlite3_column_int64(st, 1)));
        if (rc == SQLITE_DONE) {
                *ret = obj;
                r = 0;
        } else {
                json_decref(obj);
        }
        store_unlock(s);
        return r;
}

int store_charges_revenue(store_t *s, const char *provider, json_t **ret) {
        return sums_by(s,
                       "SELECT offer, SUM(amount) FROM charges WHERE provider != '' AND (?1 IS NULL OR provider=?1) "
                       "GROUP BY offer",
                       provider, NULL, ret);
}

int store_charges_by_vm(store_t *s, const char *buyer, const char *provider, json_t **ret) {
        return sums_by(s,
                       "SELECT vm, SUM(amount) FROM charges WHERE (?1 IS NULL OR buyer=?1) AND (?2 IS NULL OR "
                       "provider=?2) GROUP BY vm",
                       buyer, provider, ret);
}

int store_balance_get(store_t *s, const char *user, int64_t *ret) {
        return store_int64_get(s, "SELECT balance FROM users WHERE name=?", user, ret);
}

int store_deposit(store_t *s, const char *user, int64_t amount, const char *by, int64_t *ret_balance) {
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        int64_t balance = 0;
        r = store_balance_get(s, user, &balance);
        _cleanup_stmt_ sqlite3_stmt *st =
                r < 0 ? NULL : store_prepare(s, "INSERT INTO deposits (user, amount, by, at_ms) VALUES (?,?,?,?)");
        if (r >= 0 && !st)
                r = -EIO;
        if (r >= 0) {
                store_bind_text(st, 1, user);
                sqlite3_bind_int64(st, 2, amount);
                store_bind_text(st, 3, by);
                sqlite3_bind_int64(st, 4, time_wall_ms());
                r = store_step_done(s, st);
        }
        if (r >= 0)
                r = balance_add(s, user, amount);
        if (r < 0) {
                store_tx_rollback(s);
                return r;
        }
        r = store_tx_commit(s);
        if (r >= 0)
                *ret_balance = balance + amount;
        return r;
}

/* ---- billing's bookkeeping ---- */

static void billing_from_row(sqlite3_stmt *st, billing_record_t *b) {
        *b = (billing_record_t){ 0 };
        b->machine = sqlite3_column_int64(st, 0);
        store_copy_text(b->vm, sizeof b->vm, st, 1);
        store_copy_text(b->buyer, sizeof b->buyer, st, 2);
        b->posted_until_ms = sqlite3_column_int64(st, 3);
        b->closed = sqlite3_column_int(st, 4) != 0;
}

static void billing_row(sqlite3_stmt *st, void *ret) { billing_from_row(st, ret); }

int store_billing_open_list(store_t *s, const char *buyer, billing_record_t **ret, size_t *ret_n) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "SELECT machine, vm, buyer, posted_until_ms, closed FROM billing WHERE closed=0 AND (?1 IS NULL OR "
                   "buyer=?1) ORDER BY machine");
        bind_filters(st, (const char *const[]){ buyer }, 1);
        int r = store_rows_collect(st, sizeof **ret, billing_row, NULL, ret, ret_n);
        store_unlock(s);
        return r;
}

int store_billing_progress(store_t *s, int64_t machine, int64_t posted_until_ms, bool closed) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "UPDATE billing SET posted_until_ms=MAX(posted_until_ms, ?2), closed=?3 WHERE machine=?1");
        int r = -EIO;
        if (st) {
                sqlite3_bind_int64(st, 1, machine);
                sqlite3_bind_int64(st, 2, posted_until_ms);
                sqlite3_bind_int(st, 3, closed);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

/* ---- unpaid suspensions ---- */

int store_unpaid_add(store_t *s, const char *vm, const char *buyer, int64_t at_ms) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT OR IGNORE INTO unpaid (vm, buyer, since_ms) VALUES (?,?,?)");
        int r = -EIO;
        if (st) {
                store_bind_text(st, 1, vm);
                store_bind_text(st, 2, buyer);
                sqlite3_bind_int64(st, 3, at_ms);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_unpaid_remove(store_t *s, const char *vm) { return store_row_delete(s, "DELETE FROM unpaid WHERE vm=?", vm); }

static json_t *unpaid_json(sqlite3_stmt *st) {
        return json_pack("{s:s,s:s,s:I}", "vm", (const char *)sqlite3_column_text(st, 0), "buyer",
                         (const char *)sqlite3_column_text(st, 1), "since_ms", (json_int_t)sqlite3_column_int64(st, 2));
}

int store_unpaid_list(store_t *s, const char *buyer, json_t **ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "SELECT vm, buyer, since_ms FROM unpaid WHERE (?1 IS NULL OR buyer=?1) ORDER BY vm");
        bind_filters(st, (const char *const[]){ buyer }, 1);
        int r = store_rows_json(st, unpaid_json, ret);
        store_unlock(s);
        return r;
}
