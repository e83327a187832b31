/* Services in the SQLite store: a named pool of interchangeable VMs behind one frontend, with
 * the bounds and thresholds the switching policy applies to it. */
#include <string.h>

#include "base/util.h"
#include "store/store-internal.h"

#define SERVICE_COLUMNS                                                                                  \
        "name,image,pool,min,max,window_s,high,priority,memory_mib,vcpus,port,state,error,created_ms,health_kind," \
        "health_path"

json_t *service_record_to_json(const service_record_t *sv) {
        json_t *health = json_pack("{s:s}", "kind", sv->health_kind);
        if (*sv->health_path)
                json_object_set_new(health, "path", json_string(sv->health_path));
        return json_pack("{s:s,s:s,s:I,s:I,s:I,s:f,s:f,s:I,s:I,s:I,s:I,s:s,s:s?,s:I,s:o}", "name", sv->name, "image",
                         sv->image, "pool", (json_int_t)sv->pool, "min", (json_int_t)sv->min, "max",
                         (json_int_t)sv->max, "window_s", sv->window_s, "high", sv->high, "priority",
                         (json_int_t)sv->priority, "memory_mib", (json_int_t)sv->memory_mib, "vcpus",
                         (json_int_t)sv->vcpus, "port", (json_int_t)sv->port, "state", sv->state, "error",
                         *sv->error ? sv->error : NULL, "created_ms", (json_int_t)sv->created_ms, "health", health);
}

static void service_from_row(sqlite3_stmt *st, void *ret) {
        service_record_t *sv = ret;
        *sv = (service_record_t){ 0 };
        store_copy_text(sv->name, sizeof sv->name, st, 0);
        store_copy_text(sv->image, sizeof sv->image, st, 1);
        sv->pool = sqlite3_column_int64(st, 2);
        sv->min = sqlite3_column_int64(st, 3);
        sv->max = sqlite3_column_int64(st, 4);
        sv->window_s = sqlite3_column_double(st, 5);
        sv->high = sqlite3_column_double(st, 6);
        sv->priority = sqlite3_column_int64(st, 7);
        sv->memory_mib = sqlite3_column_int64(st, 8);
        sv->vcpus = sqlite3_column_int64(st, 9);
        sv->port = sqlite3_column_int64(st, 10);
        store_copy_text(sv->state, sizeof sv->state, st, 11);
        store_copy_text(sv->error, sizeof sv->error, st, 12);
        sv->created_ms = sqlite3_column_int64(st, 13);
        store_copy_text(sv->health_kind, sizeof sv->health_kind, st, 14);
        store_copy_text(sv->health_path, sizeof sv->health_path, st, 15);
}

static void service_bind(sqlite3_stmt *st, const service_record_t *sv) {
        sqlite3_bind_text(st, 1, sv->name, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 2, sv->image, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 3, sv->pool);
        sqlite3_bind_int64(st, 4, sv->min);
        sqlite3_bind_int64(st, 5, sv->max);
        sqlite3_bind_double(st, 6, sv->window_s);
        sqlite3_bind_double(st, 7, sv->high);
        sqlite3_bind_int64(st, 8, sv->priority);
        sqlite3_bind_int64(st, 9, sv->memory_mib);
        sqlite3_bind_int64(st, 10, sv->vcpus);
        sqlite3_bind_int64(st, 11, sv->port);
        sqlite3_bind_text(st, 12, sv->state, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 13, sv->error, -1, SQLITE_TRANSIENT);
        sqlite3_bind_int64(st, 14, sv->created_ms);
        sqlite3_bind_text(st, 15, sv->health_kind, -1, SQLITE_TRANSIENT);
        sqlite3_bind_text(st, 16, sv->health_path, -1, SQLITE_TRANSIENT);
}

int store_service_get(store_t *s, const char *name, service_record_t *ret) {
        return store_row_get(s, "SELECT " SERVICE_COLUMNS " FROM services WHERE name=?", name, service_from_row, ret);
}

int store_service_insert(store_t *s, const service_record_t *sv) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT INTO services (" SERVICE_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
        int r = -EIO;
        if (st) {
                service_bind(st, sv);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_service_update(store_t *s, const service_record_t *sv) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "UPDATE services SET name=?1,image=?2,pool=?3,min=?4,max=?5,window_s=?6,high=?7,priority=?8,"
                   "memory_mib=?9,vcpus=?10,port=?11,state=?12,error=?13,created_ms=?14,health_kind=?15,health_path=?16 "
                   "WHERE name=?1");
        int r = -EIO;
        if (st) {
                service_bind(st, sv);
                r = store_step_done(s, st);
                if (r >= 0 && sqlite3_changes(s->db) == 0)
                        r = -ENOENT;
        }
        store_unlock(s);
        return r;
}

int store_service_delete(store_t *s, const char *name) {
        return store_row_delete(s, "DELETE FROM services WHERE name=?", name);
}

int store_service_list(store_t *s, service_record_t **ret, size_t *ret_n) {
        return store_rows_list(s, "SELECT " SERVICE_COLUMNS " FROM services ORDER BY name", sizeof **ret,
                               service_from_row, NULL, ret, ret_n);
}
