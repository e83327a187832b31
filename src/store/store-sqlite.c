/* The SQLite store's records (store.h): VMs, RMs, operations, events, images and counters, on
 * the handle and helpers of store-db.c. A market machine's row change also writes its span
 * (store-ledger.c) in the same transaction.
 *
 * This file holds every SQL writer of the vms, rms and ops tables, and each feeds the store
 * view (store-view.c) right after its statement succeeded: a writer added anywhere else, or one
 * that forgets the feed, makes the view differ from the tables (VMATRIX_VIEW_CHECK finds it). */
#include "store/store.h"
#include "store/store-internal.h"
#include "store/store-market.h"

#include <pthread.h>
#include <sqlite3.h>
#include <string.h>

#include "base/fault.h"
#include "base/log.h"
#include "base/util.h"

/* ---- VMs ---- */

#define VM_COLUMNS                                                                                                     \
        "name,state,version,rm,image,memory_mib,vcpus,mac,prebooted,address,pid,op_id,nest_version,created_ms,bundle,"  \
        "service,owner,market,offer,offer_next,disk_gib"

void vm_record_clear(vm_record_t *v) {
        json_decref(v->bundle);
        *v = (vm_record_t){ 0 };
}

static void vm_from_row(sqlite3_stmt *st, void *ret) {
        vm_record_t *v = ret;
        *v = (vm_record_t){ 0 };
        store_copy_text(v->name, sizeof v->name, st, 0);
        store_copy_text(v->state, sizeof v->state, st, 1);
        v->version = sqlite3_column_int64(st, 2);
        store_copy_text(v->rm, sizeof v->rm, st, 3);
        store_copy_text(v->image, sizeof v->image, st, 4);
        v->memory_mib = sqlite3_column_int64(st, 5);
        v->vcpus = sqlite3_column_int64(st, 6);
        store_copy_text(v->mac, sizeof v->mac, st, 7);
        v->prebooted = sqlite3_column_int(st, 8) != 0;
        store_copy_text(v->address, sizeof v->address, st, 9);
        v->pid = sqlite3_column_int64(st, 10);
        store_copy_text(v->op_id, sizeof v->op_id, st, 11);
        v->nest_version = sqlite3_column_int64(st, 12);
        v->created_ms = sqlite3_column_int64(st, 13);
        v->bundle = store_column_json(st, 14);
        store_copy_text(v->service, sizeof v->service, st, 15);
        store_copy_text(v->owner, sizeof v->owner, st, 16);
        const unsigned char *market = sqlite3_column_text(st, 17);
        if (market && *market) {
                json_t *j = json_loads((const char *)market, 0, NULL);
                vm_market_from_json(j, &v->market);
                json_decref(j);
        }
        /* the columns are the truth for the offer (capacity sums read them) */
        store_copy_text(v->market.offer, sizeof v->market.offer, st, 18);
        store_copy_text(v->market.offer_next, sizeof v->market.offer_next, st, 19);
        v->market.disk_gib = sqlite3_column_int64(st, 20);
}

static void vm_bind(sqlite3_stmt *st, const vm_record_t *v) {
        sqlite3_bind_text(st, 1, v->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, v->state, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, v->version);
        sqlite3_bind_text(st, 4, v->rm, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 5, v->image, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 6, v->memory_mib);
        sqlite3_bind_int64(st, 7, v->vcpus);
        sqlite3_bind_text(st, 8, v->mac, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int(st, 9, v->prebooted);
        sqlite3_bind_text(st, 10, v->address, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 11, v->pid);
        sqlite3_bind_text(st, 12, v->op_id, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 13, v->nest_version);
        sqlite3_bind_int64(st, 14, v->created_ms);
        store_bind_json(st, 15, v->bundle);
        sqlite3_bind_text(st, 16, v->service, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 17, v->owner, -1, SQLITE_TRANSIENT);
        json_t *market = vm_market_to_json(&v->market);
        /* the offer, the offer moved to and the disk are columns (capacity sums read them): the
         * JSON column does not hold them twice */
        json_object_del(market, "offer");
        json_object_del(market, "offer_next");
        json_object_del(market, "disk_gib");
        if (market)
                store_bind_json(st, 18, market);
        else
                sqlite3_bind_text(st, 18, "", -1, SQLITE_STATIC);
        json_decref(market);
        sqlite3_bind_text(st, 19, v->market.offer, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 20, v->market.offer_next, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 21, v->market.disk_gib);
}

json_t *vm_record_to_json(const vm_record_t *v) {
        return json_pack("{s:s,s:s,s:I,s:s?,s:s,s:I,s:I,s:s,s:b,s:s?,s:o,s:s?,s:I,s:I,s:O?,s:s?,s:s?,s:o?}", "name", v->name,
                         "state", v->state, "version", (json_int_t)v->version, "rm", *v->rm ? v->rm : NULL,
                         "image", v->image, "memory_mib", (json_int_t)v->memory_mib, "vcpus", (json_int_t)v->vcpus,
                         "mac", v->mac, "prebooted", v->prebooted, "address", *v->address ? v->address : NULL,
                         "pid", v->pid ? json_integer(v->pid) : json_null(), "op_id", *v->op_id ? v->op_id : NULL,
                         "nest_version", (json_int_t)v->nest_version, "created_ms", (json_int_t)v->created_ms,
                         "bundle", v->bundle, "service", *v->service ? v->service : NULL, "owner",
                         *v->owner ? v->owner : NULL, "market", vm_market_to_json(&v->market));
}

static void json_str_copy(char *dst, size_t size, const json_t *j, const char *key) {
        const char *s = json_string_value(json_object_get(j, key));
        snprintf(dst, size, "%s", s ? s : "");
}

int vm_record_from_json(const json_t *j, vm_record_t *ret) {
        if (!json_is_object(j) || !json_is_string(json_object_get(j, "name")))
                return -EINVAL;
        vm_record_t v = { 0 };
        json_str_copy(v.name, sizeof v.name, j, "name");
        json_str_copy(v.state, sizeof v.state, j, "state");
        v.version = json_integer_value(json_object_get(j, "version"));
        json_str_copy(v.rm, sizeof v.rm, j, "rm");
        json_str_copy(v.image, sizeof v.image, j, "image");
        v.memory_mib = json_integer_value(json_object_get(j, "memory_mib"));
        v.vcpus = json_integer_value(json_object_get(j, "vcpus"));
        json_str_copy(v.mac, sizeof v.mac, j, "mac");
        v.prebooted = json_is_true(json_object_get(j, "prebooted"));
        json_str_copy(v.address, sizeof v.address, j, "address");
        v.pid = json_integer_value(json_object_get(j, "pid"));
        json_str_copy(v.op_id, sizeof v.op_id, j, "op_id");
        v.nest_version = json_integer_value(json_object_get(j, "nest_version"));
        v.created_ms = json_integer_value(json_object_get(j, "created_ms"));
        json_t *b = json_object_get(j, "bundle");
        v.bundle = json_is_object(b) ? json_deep_copy(b) : json_object();
        json_str_copy(v.service, sizeof v.service, j, "service");
        json_str_copy(v.owner, sizeof v.owner, j, "owner");
        vm_market_from_json(json_object_get(j, "market"), &v.market);
        *ret = v;
        return 0;
}

int store_vm_get(store_t *s, const char *name, vm_record_t *ret) {
        return store_row_get(s, "SELECT " VM_COLUMNS " FROM vms WHERE name=?", name, vm_from_row, ret);
}

/* Ends a write of a VM row that began with store_tx_begin: the span of a market machine that
 * changed is written in the same transaction (store-ledger.c), so the history cannot miss a
 * change. deleted: the row is gone (state_override "deleted"). */
static int vm_write_end(store_t *s, int r, const vm_record_t *v, const char *state_override) {
        if (r >= 0 && v)
                r = store_span_note(s, v, state_override);
        if (r >= 0)
                store_note_change(s);
        if (r >= 0)
                return store_tx_commit(s);
        store_tx_rollback(s);
        return r;
}

int store_vm_insert(store_t *s, const vm_record_t *v) {
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT INTO vms (" VM_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        r = -EIO;
        if (st) {
                vm_bind(st, v);
                r = store_step_done(s, st);
                if (r >= 0)
                        store_view_note_vm(s, v);
        }
        return vm_write_end(s, r, v, NULL);
}

int store_vm_update(store_t *s, const vm_record_t *v, int64_t expected_version) {
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "UPDATE vms SET name=?1,state=?2,version=?3,rm=?4,image=?5,memory_mib=?6,vcpus=?7,mac=?8,"
                           "prebooted=?9,address=?10,pid=?11,op_id=?12,nest_version=?13,created_ms=?14,bundle=?15,"
                           "service=?16,owner=?17,market=?18,offer=?19,offer_next=?20,disk_gib=?21 "
                           "WHERE name=?1 AND version=?22");
        r = -EIO;
        if (st) {
                vm_bind(st, v);
                sqlite3_bind_int64(st, 22, expected_version);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0)
                        r = -ESTALE;
                if (r >= 0)
                        store_view_note_vm(s, v);
        }
        return vm_write_end(s, r, v, NULL);
}

int store_vm_delete(store_t *s, const char *name) {
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        vm_record_t v = { 0 };
        r = store_vm_get(s, name, &v);
        /* remembered, so that a VM created again under this name starts above it (store.h) */
        _cleanup_stmt_ sqlite3_stmt *keep = r < 0 ? NULL : store_prepare(
                s, "INSERT INTO counters (key,value) SELECT 'vm-version:' || name, version FROM vms WHERE name=?1 "
                   "ON CONFLICT(key) DO UPDATE SET value=MAX(value, excluded.value)");
        if (r >= 0 && !keep)
                r = -EIO;
        if (r >= 0) {
                sqlite3_bind_text(keep, 1, name, -1, SQLITE_TRANSIENT);
                r = store_step_done(s, keep);
        }
        if (r >= 0)
                r = store_row_delete(s, "DELETE FROM vms WHERE name=?", name);
        if (r >= 0)
                store_view_note_vm_delete(s, name);
        r = vm_write_end(s, r, r >= 0 ? &v : NULL, "deleted");
        vm_record_clear(&v);
        return r;
}

static void vm_row_clear(void *v) { vm_record_clear(v); }

int store_vm_list(store_t *s, vm_record_t **ret, size_t *ret_n) {
        return store_rows_list(s, "SELECT " VM_COLUMNS " FROM vms ORDER BY name", sizeof **ret, vm_from_row,
                               vm_row_clear, ret, ret_n);
}

/* The rows of sql (parameters: ?1 the name after which, ?2 how many), as store_rows_list. */
static int rows_page(store_t *s, const char *sql, const char *after, size_t limit, size_t size, store_row_fn from_row,
                     store_row_clear_fn clear, void *ret, size_t *ret_n) {
        if (limit == 0 || limit > STORE_PAGE_MAX)
                return -ERANGE;
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, sql);
        if (st) {
                store_bind_text(st, 1, after);
                sqlite3_bind_int64(st, 2, (sqlite3_int64)limit);
        }
        int r = store_rows_collect(st, size, from_row, clear, ret, ret_n);
        store_unlock(s);
        return r;
}

int store_vm_page(store_t *s, const char *after, size_t limit, vm_record_t **ret, size_t *ret_n) {
        return rows_page(s, "SELECT " VM_COLUMNS " FROM vms WHERE name > ?1 ORDER BY name LIMIT ?2", after, limit,
                         sizeof **ret, vm_from_row, vm_row_clear, ret, ret_n);
}

int store_vm_count_on_range(store_t *s, const char *after, const char *last, store_rm_count_t **ret, size_t *ret_n) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "SELECT rm, COUNT(*) FROM vms WHERE rm > ?1 AND rm <= ?2 GROUP BY rm ORDER BY rm");
        store_rm_count_t *list = NULL;
        size_t n = 0;
        int rc = SQLITE_ERROR;
        if (st) {
                store_bind_text(st, 1, after);
                store_bind_text(st, 2, last);
                while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                        store_rm_count_t *c = array_append(&list, &n, sizeof *list);
                        store_copy_text(c->rm, sizeof c->rm, st, 0);
                        c->vms = sqlite3_column_int64(st, 1);
                }
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

void store_vm_list_free(vm_record_t *list, size_t n) {
        for (size_t i = 0; list && i < n; i++)
                vm_record_clear(&list[i]);
        free(list);
}

/* ---- RMs ---- */

static void rm_from_row(sqlite3_stmt *st, void *ret) {
        rm_record_t *r = ret;
        *r = (rm_record_t){ 0 };
        store_copy_text(r->name, sizeof r->name, st, 0);
        store_copy_text(r->role, sizeof r->role, st, 1);
        store_copy_text(r->address, sizeof r->address, st, 2);
        store_copy_text(r->state, sizeof r->state, st, 3);
        r->last_seen_ms = sqlite3_column_int64(st, 4);
        store_copy_text(r->provider, sizeof r->provider, st, 5);
}

#define RM_COLUMNS "name,role,address,state,last_seen_ms,provider"

int store_rm_get(store_t *s, const char *name, rm_record_t *ret) {
        return store_row_get(s, "SELECT " RM_COLUMNS " FROM rms WHERE name=?", name, rm_from_row, ret);
}

int store_rm_upsert(store_t *s, const rm_record_t *rm) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "INSERT INTO rms (name,role,address,state,last_seen_ms) VALUES (?1,?2,?3,?4,?5) ON CONFLICT(name) "
                   "DO UPDATE SET role=?2,address=?3,state=?4,last_seen_ms=?5");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, rm->name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, rm->role, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, rm->address, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 4, rm->state, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 5, rm->last_seen_ms);
                r = store_step_done(s, st);
                if (r >= 0)
                        store_view_note_rm(s, rm);
        }
        store_unlock(s);
        return r;
}

int store_rm_provider_set(store_t *s, const char *rm, const char *provider) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "UPDATE rms SET provider=?2 WHERE name=?1");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, rm, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, provider ? provider : "", -1, SQLITE_TRANSIENT);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0)
                        r = -ENOENT;
                if (r >= 0)
                        store_view_note_rm_provider(s, rm, provider);
        }
        store_unlock(s);
        return r;
}

int store_rm_seen_batch(store_t *s, const rm_record_t *list, size_t n) {
        if (n == 0)
                return 0;
        int r = store_tx_begin(s);
        if (r < 0)
                return r;
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "UPDATE rms SET last_seen_ms=?2 WHERE name=?1 AND last_seen_ms<?2");
        r = st ? 0 : -EIO;
        for (size_t i = 0; i < n && r >= 0; i++) {
                sqlite3_reset(st);
                sqlite3_bind_text(st, 1, list[i].name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 2, list[i].last_seen_ms);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) > 0)
                        store_view_note_rm_seen(s, list[i].name, list[i].last_seen_ms);
        }
        if (r < 0) {
                store_tx_rollback(s);
                return r;
        }
        return store_tx_commit(s);
}

int store_rm_list(store_t *s, rm_record_t **ret, size_t *ret_n) {
        return store_rows_list(s, "SELECT " RM_COLUMNS " FROM rms ORDER BY name", sizeof **ret, rm_from_row, NULL, ret,
                               ret_n);
}

int store_rm_page(store_t *s, const char *after, size_t limit, rm_record_t **ret, size_t *ret_n) {
        return rows_page(s, "SELECT " RM_COLUMNS " FROM rms WHERE name > ?1 ORDER BY name LIMIT ?2", after, limit,
                         sizeof **ret, rm_from_row, NULL, ret, ret_n);
}

/* ---- operations ---- */

#define OP_COLUMNS "id,vm,kind,state,created_ms,updated_ms,args,prev,progress,result,error"

void op_record_clear(op_record_t *o) {
        json_decref(o->args);
        json_decref(o->prev);
        json_decref(o->progress);
        json_decref(o->result);
        *o = (op_record_t){ 0 };
}

static void op_from_row(sqlite3_stmt *st, void *ret) {
        op_record_t *o = ret;
        *o = (op_record_t){ 0 };
        store_copy_text(o->id, sizeof o->id, st, 0);
        store_copy_text(o->vm, sizeof o->vm, st, 1);
        store_copy_text(o->kind, sizeof o->kind, st, 2);
        store_copy_text(o->state, sizeof o->state, st, 3);
        o->created_ms = sqlite3_column_int64(st, 4);
        o->updated_ms = sqlite3_column_int64(st, 5);
        o->args = store_column_json(st, 6);
        o->prev = store_column_json(st, 7);
        o->progress = store_column_json(st, 8);
        o->result = store_column_json(st, 9);
        store_copy_text(o->error, sizeof o->error, st, 10);
}

json_t *op_record_to_json(const op_record_t *o) {
        return json_pack("{s:s,s:s,s:s,s:s,s:I,s:I,s:O?,s:O?,s:O?,s:s?}", "id", o->id, "vm", o->vm, "kind", o->kind,
                         "state", o->state, "created_ms", (json_int_t)o->created_ms, "updated_ms",
                         (json_int_t)o->updated_ms, "args", o->args, "progress", o->progress, "result", o->result,
                         "error", *o->error ? o->error : NULL);
}

int store_op_insert(store_t *s, op_record_t *o) {
        store_lock(s);
        int64_t n = 0;
        int r = store_counter_next(s, "op", &n);
        if (r >= 0) {
                snprintf(o->id, sizeof o->id, "op-%lld", (long long)n);
                _cleanup_stmt_ sqlite3_stmt *st =
                        store_prepare(s, "INSERT INTO ops (" OP_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?,?,?)");
                r = -EIO;
                if (st) {
                        sqlite3_bind_text(st, 1, o->id, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_text(st, 2, o->vm, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_text(st, 3, o->kind, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_text(st, 4, o->state, -1, SQLITE_TRANSIENT);
                        sqlite3_bind_int64(st, 5, o->created_ms);
                        sqlite3_bind_int64(st, 6, o->updated_ms);
                        store_bind_json(st, 7, o->args);
                        store_bind_json(st, 8, o->prev);
                        store_bind_json(st, 9, o->progress);
                        store_bind_json(st, 10, o->result);
                        sqlite3_bind_text(st, 11, o->error, -1, SQLITE_TRANSIENT);
                        r = store_step_done(s, st);
                        if (r >= 0 && streq(o->state, "running"))
                                store_view_note_op(s, o);
                }
        }
        store_unlock(s);
        return r;
}

int store_op_update(store_t *s, const op_record_t *o) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "UPDATE ops SET state=?2,updated_ms=?3,progress=?4,result=?5,error=?6,args=?7 WHERE id=?1");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, o->id, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, o->state, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int64(st, 3, o->updated_ms);
                store_bind_json(st, 4, o->progress);
                store_bind_json(st, 5, o->result);
                sqlite3_bind_text(st, 6, o->error, -1, SQLITE_TRANSIENT);
                store_bind_json(st, 7, o->args);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0)
                        r = -ENOENT;
        }
        /* the row as the table now holds it (vm and kind are not updated, o may differ there) */
        op_record_t row = { 0 };
        if (r >= 0)
                store_view_note_op(s, store_op_get(s, o->id, &row) >= 0 ? &row : o);
        op_record_clear(&row);
        store_unlock(s);
        return r;
}

int store_op_progress(store_t *s, const char *id, const json_t *progress, int64_t updated_ms) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "UPDATE ops SET progress=?2,updated_ms=?3 WHERE id=?1 AND state='running'");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, id, -1, SQLITE_TRANSIENT);
                store_bind_json(st, 2, progress);
                sqlite3_bind_int64(st, 3, updated_ms);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0) {
                        op_record_t op = { 0 };
                        r = store_op_get(s, id, &op) >= 0 ? -ESTALE : -ENOENT;
                        op_record_clear(&op);
                }
        }
        store_unlock(s);
        return r;
}

int store_op_get(store_t *s, const char *id, op_record_t *ret) {
        return store_row_get(s, "SELECT " OP_COLUMNS " FROM ops WHERE id=?", id, op_from_row, ret);
}

static void op_row_clear(void *op) { op_record_clear(op); }

int store_op_select(store_t *s, const char *state, const char *kind, const char *vm, int limit, op_record_t **ret,
                    size_t *ret_n) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "SELECT " OP_COLUMNS " FROM ops WHERE (?1 IS NULL OR state=?1) AND (?2 IS NULL OR kind=?2) AND "
                   "(?3 IS NULL OR vm=?3) ORDER BY seq DESC LIMIT ?4");
        if (st) {
                const char *text[] = { state, kind, vm };
                for (int i = 0; i < 3; i++)
                        if (text[i])
                                store_bind_text(st, i + 1, text[i]);
                sqlite3_bind_int(st, 4, limit);
        }
        int r = store_rows_collect(st, sizeof **ret, op_from_row, op_row_clear, ret, ret_n);
        store_unlock(s);
        return r;
}

int store_op_list_running(store_t *s, op_record_t **ret, size_t *ret_n) {
        return store_rows_list(s, "SELECT " OP_COLUMNS " FROM ops WHERE state='running' ORDER BY seq", sizeof **ret,
                               op_from_row, op_row_clear, ret, ret_n);
}

void store_op_list_free(op_record_t *list, size_t n) {
        for (size_t i = 0; list && i < n; i++)
                op_record_clear(&list[i]);
        free(list);
}

/* ---- events ---- */

int store_event_add(store_t *s, const char *kind, const char *vm, const char *service, const char *rm,
                    const char *reason) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT INTO events (time_ms,kind,vm,service,rm,reason) VALUES (?,?,?,?,?,?)");
        int r = -EIO;
        if (st) {
                sqlite3_bind_int64(st, 1, time_wall_ms());
                sqlite3_bind_text(st, 2, kind, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 3, vm ? vm : "", -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 4, service ? service : "", -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 5, rm ? rm : "", -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 6, reason ? reason : "", -1, SQLITE_TRANSIENT);
                r = store_step_done(s, st);
                if (r >= 0)
                        store_note_change(s);
        }
        store_unlock(s);
        return r;
}

int store_event_last_id(store_t *s, int64_t *ret) {
        return store_int64_get(s, "SELECT COALESCE(MAX(id), 0) FROM events", NULL, ret);
}

static json_t *nullable_text(sqlite3_stmt *st, int col) {
        const unsigned char *t = sqlite3_column_text(st, col);
        return t && *t ? json_string((const char *)t) : json_null();
}

static json_t *event_json(sqlite3_stmt *st) {
        return json_pack("{s:I,s:f,s:s,s:o,s:o,s:o,s:o}", "id", (json_int_t)sqlite3_column_int64(st, 0), "time",
                         (double)sqlite3_column_int64(st, 1) / 1000.0, "kind", (const char *)sqlite3_column_text(st, 2),
                         "vm", nullable_text(st, 3), "service", nullable_text(st, 4), "rm", nullable_text(st, 5),
                         "reason", nullable_text(st, 6));
}

int store_event_select(store_t *s, const store_event_filter_t *f, json_t **ret) {
        store_lock(s);
        /* the newest ones are read backwards and put back in order by the outer query */
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, f->last ? "SELECT * FROM (SELECT id,time_ms,kind,vm,service,rm,reason FROM events WHERE (?3 IS NULL OR "
                             "vm=?3) AND (?4 IS NULL OR service=?4) AND (?5 IS NULL OR kind=?5) ORDER BY id DESC "
                             "LIMIT ?2) ORDER BY id"
                           : "SELECT id,time_ms,kind,vm,service,rm,reason FROM events WHERE id>?1 AND (?3 IS NULL OR "
                             "vm=?3) AND (?4 IS NULL OR service=?4) AND (?5 IS NULL OR kind=?5) ORDER BY id LIMIT ?2");
        if (st) {
                sqlite3_bind_int64(st, 1, f->after_id);
                sqlite3_bind_int(st, 2, f->limit);
                const char *text[] = { f->vm, f->service, f->kind };
                for (int i = 0; i < 3; i++)
                        if (text[i])
                                store_bind_text(st, i + 3, text[i]);
        }
        int r = store_rows_json(st, event_json, ret);
        store_unlock(s);
        return r;
}

int store_event_list(store_t *s, int64_t after_id, int limit, json_t **ret) {
        return store_event_select(s, &(store_event_filter_t){ .after_id = after_id, .limit = limit }, ret);
}

/* ---- images ---- */

void image_record_clear(image_record_t *i) {
        json_decref(i->meta);
        *i = (image_record_t){ 0 };
}

int store_image_get(store_t *s, const char *name, image_record_t *ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "SELECT name,kind,meta,created_ms FROM images WHERE name=?");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW) {
                        image_record_t i = { 0 };
                        store_copy_text(i.name, sizeof i.name, st, 0);
                        store_copy_text(i.kind, sizeof i.kind, st, 1);
                        i.meta = store_column_json(st, 2);
                        i.created_ms = sqlite3_column_int64(st, 3);
                        *ret = i;
                        r = 0;
                } else {
                        r = rc == SQLITE_DONE ? -ENOENT : store_sqlite_errno(rc);
                }
        }
        store_unlock(s);
        return r;
}

int store_image_put(store_t *s, const image_record_t *i) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "INSERT INTO images (name,kind,meta,created_ms) VALUES (?1,?2,?3,?4) "
                   "ON CONFLICT(name) DO UPDATE SET kind=?2,meta=?3,created_ms=?4");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, i->name, -1, SQLITE_TRANSIENT);
                sqlite3_bind_text(st, 2, i->kind, -1, SQLITE_TRANSIENT);
                store_bind_json(st, 3, i->meta);
                sqlite3_bind_int64(st, 4, i->created_ms);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_image_delete(store_t *s, const char *name) {
        return store_row_delete(s, "DELETE FROM images WHERE name=?1", name);
}

int store_image_list(store_t *s, json_t **ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "SELECT name,kind,meta,created_ms FROM images ORDER BY name");
        json_t *arr = json_array();
        int rc = SQLITE_ERROR;
        while (st && (rc = sqlite3_step(st)) == SQLITE_ROW)
                json_array_append_new(arr, json_pack("{s:s,s:s,s:o,s:I}", "name", (const char *)sqlite3_column_text(st, 0),
                                                     "kind", (const char *)sqlite3_column_text(st, 1), "meta",
                                                     store_column_json(st, 2), "created_ms",
                                                     (json_int_t)sqlite3_column_int64(st, 3)));
        store_unlock(s);
        if (rc != SQLITE_DONE) {
                json_decref(arr);
                return -EIO;
        }
        *ret = arr;
        return 0;
}

int store_vm_first_version(store_t *s, const char *name, int64_t *ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "SELECT value FROM counters WHERE key='vm-version:' || ?1");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
                int rc = sqlite3_step(st);
                if (rc == SQLITE_ROW || rc == SQLITE_DONE) {
                        *ret = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) + 1 : 1;
                        r = 0;
                }
        }
        store_unlock(s);
        return r;
}

int store_counter_next(store_t *s, const char *key, int64_t *ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "INSERT INTO counters (key,value) VALUES (?1,1) ON CONFLICT(key) DO UPDATE SET value=value+1 "
                   "RETURNING value");
        int r = -EIO;
        if (st) {
                sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
                if (sqlite3_step(st) == SQLITE_ROW) {
                        *ret = sqlite3_column_int64(st, 0);
                        r = 0;
                }
        }
        store_unlock(s);
        return r;
}
