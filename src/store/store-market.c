/* Offers, suggested configurations, the market's price history and settings in the SQLite
 * store (store-market.h), and a VM's market part as JSON. */
#include "store/store-market.h"

#include <string.h>

#include "base/util.h"
#include "store/store-internal.h"

json_t *market_terms_to_json(const market_terms_t *t) {
        return json_pack("{s:I,s:I,s:I,s:I}", "storage_price", (json_int_t)t->storage_price, "storage_period_s",
                         (json_int_t)t->storage_period_s, "running_price", (json_int_t)t->running_price,
                         "running_period_s", (json_int_t)t->running_period_s);
}

void market_terms_from_json(const json_t *j, market_terms_t *t) {
        t->storage_price = json_integer_value(json_object_get(j, "storage_price"));
        t->storage_period_s = json_integer_value(json_object_get(j, "storage_period_s"));
        t->running_price = json_integer_value(json_object_get(j, "running_price"));
        t->running_period_s = json_integer_value(json_object_get(j, "running_period_s"));
}

json_t *vm_market_to_json(const vm_market_t *m) {
        if (!m->machine)
                return NULL;
        return json_pack("{s:I,s:I,s:I,s:o,s:s?,s:s?,s:s?,s:o}", "machine", (json_int_t)m->machine, "disk_gib",
                         (json_int_t)m->disk_gib, "registered_ms", (json_int_t)m->registered_ms, "bid",
                         market_terms_to_json(&m->bid), "offer", *m->offer ? m->offer : NULL, "offer_next",
                         *m->offer_next ? m->offer_next : NULL, "provider", *m->provider ? m->provider : NULL,
                         "terms", market_terms_to_json(&m->terms));
}

static void str_copy(char *dst, size_t size, const json_t *j, const char *key) {
        const char *s = json_string_value(json_object_get(j, key));
        snprintf(dst, size, "%s", s ? s : "");
}

void vm_market_from_json(const json_t *j, vm_market_t *ret) {
        *ret = (vm_market_t){ 0 };
        if (!json_is_object(j))
                return;
        ret->machine = json_integer_value(json_object_get(j, "machine"));
        ret->disk_gib = json_integer_value(json_object_get(j, "disk_gib"));
        ret->registered_ms = json_integer_value(json_object_get(j, "registered_ms"));
        market_terms_from_json(json_object_get(j, "bid"), &ret->bid);
        str_copy(ret->offer, sizeof ret->offer, j, "offer");
        str_copy(ret->offer_next, sizeof ret->offer_next, j, "offer_next");
        str_copy(ret->provider, sizeof ret->provider, j, "provider");
        market_terms_from_json(json_object_get(j, "terms"), &ret->terms);
}

/* ---- offers ---- */

#define OFFER_COLUMNS                                                                                                  \
        "rm,provider,vcpus,vcpu_price,memory_mib,memory_price,running_period_s,disk_gib,disk_price,storage_period_s," \
        "updated_ms"

static void offer_from_row(sqlite3_stmt *st, void *ret) {
        offer_record_t *o = ret;
        *o = (offer_record_t){ 0 };
        store_copy_text(o->rm, sizeof o->rm, st, 0);
        store_copy_text(o->provider, sizeof o->provider, st, 1);
        o->offer.vcpus = sqlite3_column_int64(st, 2);
        o->offer.vcpu_price = sqlite3_column_int64(st, 3);
        o->offer.memory_mib = sqlite3_column_int64(st, 4);
        o->offer.memory_price = sqlite3_column_int64(st, 5);
        o->offer.running_period_s = sqlite3_column_int64(st, 6);
        o->offer.disk_gib = sqlite3_column_int64(st, 7);
        o->offer.disk_price = sqlite3_column_int64(st, 8);
        o->offer.storage_period_s = sqlite3_column_int64(st, 9);
        o->updated_ms = sqlite3_column_int64(st, 10);
}

int store_offer_get(store_t *s, const char *rm, offer_record_t *ret) {
        return store_row_get(s, "SELECT " OFFER_COLUMNS " FROM offers WHERE rm=?", rm, offer_from_row, ret);
}

int store_offer_put(store_t *s, const offer_record_t *o) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "INSERT OR REPLACE INTO offers (" OFFER_COLUMNS ") VALUES (?,?,?,?,?,?,?,?,?,?,?)");
        int r = -EIO;
        if (st) {
                store_bind_text(st, 1, o->rm);
                store_bind_text(st, 2, o->provider);
                const int64_t v[] = { o->offer.vcpus,      o->offer.vcpu_price,       o->offer.memory_mib,
                                      o->offer.memory_price, o->offer.running_period_s, o->offer.disk_gib,
                                      o->offer.disk_price,  o->offer.storage_period_s, o->updated_ms };
                for (size_t i = 0; i < ELEMENTSOF(v); i++)
                        sqlite3_bind_int64(st, (int)i + 3, v[i]);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_offer_delete(store_t *s, const char *rm) { return store_row_delete(s, "DELETE FROM offers WHERE rm=?", rm); }

int store_offer_list(store_t *s, offer_record_t **ret, size_t *ret_n) {
        return store_rows_list(s, "SELECT " OFFER_COLUMNS " FROM offers ORDER BY rm", sizeof **ret, offer_from_row,
                               NULL, ret, ret_n);
}

int store_offer_used(store_t *s, const char *rm, market_config_t *ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "SELECT COALESCE(SUM(memory_mib),0), COALESCE(SUM(vcpus),0), COALESCE(SUM(disk_gib),0) FROM vms "
                   "WHERE offer=?1 OR offer_next=?1");
        int r = -EIO;
        if (st) {
                store_bind_text(st, 1, rm);
                if (sqlite3_step(st) == SQLITE_ROW) {
                        *ret = (market_config_t){ .memory_mib = sqlite3_column_int64(st, 0),
                                                  .vcpus = sqlite3_column_int64(st, 1),
                                                  .disk_gib = sqlite3_column_int64(st, 2) };
                        r = 0;
                }
        }
        store_unlock(s);
        return r;
}

/* ---- suggested configurations ---- */

#define CONFIG_COLUMNS "name,image,memory_mib,vcpus,disk_gib,storage_price_30d,running_price_1h,created_ms"

static void config_from_row(sqlite3_stmt *st, void *ret) {
        market_config_record_t *c = ret;
        *c = (market_config_record_t){ 0 };
        store_copy_text(c->name, sizeof c->name, st, 0);
        store_copy_text(c->image, sizeof c->image, st, 1);
        c->config.memory_mib = sqlite3_column_int64(st, 2);
        c->config.vcpus = sqlite3_column_int64(st, 3);
        c->config.disk_gib = sqlite3_column_int64(st, 4);
        c->storage_price_30d = sqlite3_column_int64(st, 5);
        c->running_price_1h = sqlite3_column_int64(st, 6);
        c->created_ms = sqlite3_column_int64(st, 7);
}

int store_market_config_put(store_t *s, const market_config_record_t *c) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT INTO market_configs (" CONFIG_COLUMNS ") VALUES (?,?,?,?,?,?,?,?)");
        int r = -EIO;
        if (st) {
                store_bind_text(st, 1, c->name);
                store_bind_text(st, 2, c->image);
                sqlite3_bind_int64(st, 3, c->config.memory_mib);
                sqlite3_bind_int64(st, 4, c->config.vcpus);
                sqlite3_bind_int64(st, 5, c->config.disk_gib);
                sqlite3_bind_int64(st, 6, c->storage_price_30d);
                sqlite3_bind_int64(st, 7, c->running_price_1h);
                sqlite3_bind_int64(st, 8, c->created_ms);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

int store_market_config_get(store_t *s, const char *name, market_config_record_t *ret) {
        return store_row_get(s, "SELECT " CONFIG_COLUMNS " FROM market_configs WHERE name=?", name, config_from_row,
                             ret);
}

int store_market_config_delete(store_t *s, const char *name) {
        return store_row_delete(s, "DELETE FROM market_configs WHERE name=?", name);
}

int store_market_config_list(store_t *s, market_config_record_t **ret, size_t *ret_n) {
        return store_rows_list(s, "SELECT " CONFIG_COLUMNS " FROM market_configs ORDER BY name", sizeof **ret,
                               config_from_row, NULL, ret, ret_n);
}

int store_market_config_estimate(store_t *s, const char *name, int64_t storage_price_30d, int64_t running_price_1h) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "UPDATE market_configs SET storage_price_30d=?2, running_price_1h=?3 WHERE name=?1");
        int r = -EIO;
        if (st) {
                store_bind_text(st, 1, name);
                sqlite3_bind_int64(st, 2, storage_price_30d);
                sqlite3_bind_int64(st, 3, running_price_1h);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

/* ---- price history ---- */

int store_market_prices_add(store_t *s, int64_t at_ms, const json_t *prices) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st =
                store_prepare(s, "INSERT OR REPLACE INTO market_prices (at_ms, prices) VALUES (?,?)");
        int r = -EIO;
        if (st) {
                sqlite3_bind_int64(st, 1, at_ms);
                store_bind_json(st, 2, prices);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}

static json_t *prices_json(sqlite3_stmt *st) {
        json_t *p = store_column_json(st, 1);
        json_object_set_new(p, "at_ms", json_integer(sqlite3_column_int64(st, 0)));
        return p;
}

int store_market_prices_list(store_t *s, int limit, json_t **ret) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(
                s, "SELECT at_ms, prices FROM (SELECT at_ms, prices FROM market_prices ORDER BY at_ms DESC LIMIT ?) "
                   "ORDER BY at_ms");
        if (st)
                sqlite3_bind_int(st, 1, limit);
        int r = store_rows_json(st, prices_json, ret);
        store_unlock(s);
        return r;
}

/* ---- settings ---- */

int store_setting_get(store_t *s, const char *key, int64_t def, int64_t *ret) {
        int r = store_int64_get(s, "SELECT value FROM settings WHERE key=?", key, ret);
        if (r == -ENOENT) {
                *ret = def;
                r = 0;
        }
        return r;
}

int store_setting_set(store_t *s, const char *key, int64_t value) {
        store_lock(s);
        _cleanup_stmt_ sqlite3_stmt *st = store_prepare(s, "INSERT OR REPLACE INTO settings (key, value) VALUES (?,?)");
        int r = -EIO;
        if (st) {
                store_bind_text(st, 1, key);
                sqlite3_bind_int64(st, 2, value);
                r = store_step_done(s, st);
        }
        store_unlock(s);
        return r;
}
