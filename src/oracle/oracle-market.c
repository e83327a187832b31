/* The marketplace's provider and market routes (issue 12, DESIGN.md §11): an operator hands an
 * RM to a provider, a provider sets and withdraws the offer of each of its RMs and lists them
 * with their use, the buyers' machines held there and revenue; the admin keeps the suggested
 * configurations and the registration fee; everyone reads the market's prices. Money in the
 * API is integer micro-units; periods are seconds. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"
#include "store/store-auth.h"
#include "store/store-market.h"

#define HOUR_S INT64_C(3600)
#define MONTH_S (INT64_C(30) * 86400)

/* body[key], required, an integer: 0, or a 400 in reply naming it. */
static int body_required_int(const json_t *body, const char *key, int64_t *ret, http_reply_t *reply) {
        const json_t *v = json_object_get(body, key);
        if (!json_is_integer(v)) {
                http_reply_error(reply, 400, "invalid", "%s is required, an integer", key);
                return -EINVAL;
        }
        *ret = json_integer_value(v);
        return 0;
}

static json_t *config_json(const market_config_t *c) {
        return json_pack("{s:I,s:I,s:I}", "memory_mib", (json_int_t)c->memory_mib, "vcpus", (json_int_t)c->vcpus,
                         "disk_gib", (json_int_t)c->disk_gib);
}

json_t *oracle_offer_prices_json(const market_offer_t *f) {
        return json_pack("{s:I,s:I,s:I,s:I,s:I}", "vcpu_price", (json_int_t)f->vcpu_price, "memory_price",
                         (json_int_t)f->memory_price, "running_period_s", (json_int_t)f->running_period_s,
                         "disk_price", (json_int_t)f->disk_price, "storage_period_s", (json_int_t)f->storage_period_s);
}

/* An offer as GET /v1/offers and PUT answer it (without machines and revenue). */
static json_t *offer_json(const offer_record_t *of, const market_config_t *used) {
        const market_offer_t *f = &of->offer;
        market_config_t free_ = { f->memory_mib - used->memory_mib, f->vcpus - used->vcpus,
                                  f->disk_gib - used->disk_gib };
        return json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o,s:o,s:I}", "rm", of->rm, "provider", of->provider, "memory_mib",
                         (json_int_t)f->memory_mib, "vcpus", (json_int_t)f->vcpus, "disk_gib", (json_int_t)f->disk_gib,
                         "used", config_json(used), "free", config_json(&free_), "prices", oracle_offer_prices_json(f),
                         "updated_ms", (json_int_t)of->updated_ms);
}

/* ---- RMs handed to providers ---- */

/* POST /v1/rms/:name/assign {provider}: an operator gives an RM to a provider (null: to nobody). */
static void h_rm_assign(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = req->params[0];
        const json_t *pj = json_object_get(req->body, "provider");
        if (!json_is_null(pj) && (!json_is_string(pj) || !name_is_valid(json_string_value(pj)))) {
                http_reply_error(reply, 400, "invalid", "provider must be a user name, or null for nobody");
                return;
        }
        const char *provider = json_string_value(pj);
        if (provider) {
                user_record_t u = { 0 };
                if (store_user_get(o->store, provider, &u) < 0) {
                        http_reply_error(reply, 404, "not_found", "no user \"%s\"", provider);
                        return;
                }
                if (!streq(u.role, "provider")) {
                        http_reply_error(reply, 400, "invalid", "user \"%s\" is a %s, not a provider", provider, u.role);
                        return;
                }
        }
        if (store_tx_begin(o->store) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        rm_record_t rm = { 0 };
        market_config_t used = { 0 };
        int r = store_rm_get(o->store, name, &rm);
        if (r < 0) {
                store_tx_rollback(o->store);
                http_reply_error(reply, 404, "not_found", "no RM named \"%s\"", name);
                return;
        }
        bool same = streq(rm.provider, provider ? provider : "");
        r = store_offer_used(o->store, name, &used);
        if (r >= 0 && !same && (used.memory_mib || used.vcpus || used.disk_gib)) {
                store_tx_rollback(o->store);
                http_reply_error(reply, 409, "busy", "buyers' machines are stored at the offer of RM \"%s\" (of %s): "
                                 "they must move or go before it changes hands", name, rm.provider);
                return;
        }
        if (r >= 0 && !same) {
                int k = store_offer_delete(o->store, name); /* the old provider's prices go with it */
                r = k == -ENOENT ? 0 : k;
        }
        if (r >= 0)
                r = store_rm_provider_set(o->store, name, provider);
        if (r >= 0) {
                _cleanup_free_ char *why = xasprintf("to %s by %s", provider ? provider : "nobody",
                                                     oracle_principal_name(req));
                r = store_event_add(o->store, "rm-assigned", NULL, NULL, name, why);
        }
        if (r >= 0)
                r = store_tx_commit(o->store);
        else
                store_tx_rollback(o->store);
        if (r < 0) {
                http_reply_errno(reply, r, "cannot assign RM \"%s\"", name);
                return;
        }
        if (!same)
                oracle_market_prices_update(o);
        http_reply_json(reply, 200, json_pack("{s:s,s:s?}", "name", name, "provider", provider));
}

/* ---- offers ---- */

/* PUT /v1/offers/:name: the provider of RM name sells this there (prices for new stores). */
static void h_offer_set(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = req->params[0];
        offer_record_t of = { 0 };
        market_offer_t *f = &of.offer;
        struct {
                const char *key;
                int64_t *v;
        } fields[] = {
                { "vcpus", &f->vcpus },         { "vcpu_price", &f->vcpu_price },
                { "memory_mib", &f->memory_mib }, { "memory_price", &f->memory_price },
                { "running_period_s", &f->running_period_s }, { "disk_gib", &f->disk_gib },
                { "disk_price", &f->disk_price }, { "storage_period_s", &f->storage_period_s },
        };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++)
                if (body_required_int(req->body, fields[i].key, fields[i].v, reply) < 0)
                        return;
        const char *bad = NULL;
        int r = market_offer_check(f, &bad);
        if (r < 0) {
                http_reply_error(reply, 400, r == -ERANGE ? "out_of_range" : "invalid",
                                 "%s is out of range (capacities are positive, prices from 0 to 1000000000 "
                                 "units in micro-units, periods from 1 s to 3650 days)", bad ? bad : "a field");
                return;
        }
        int64_t mem = 0, cpus = 0, disk = 0;
        if (oracle_rm_capacity(o, name, &mem, &cpus, &disk) < 0) {
                http_reply_error(reply, 409, "unknown_size", "RM \"%s\" has not reported its size yet; try again once "
                                 "its node heartbeats", name);
                return;
        }
        if (f->memory_mib > mem || f->vcpus > cpus || f->disk_gib > disk) {
                http_reply_error(reply, 400, "out_of_range", "the offer is larger than RM \"%s\": it has %lld MiB of RAM, "
                                 "%lld vCPUs and %lld GiB of disk", name, (long long)mem, (long long)cpus,
                                 (long long)disk);
                return;
        }
        if (store_tx_begin(o->store) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        rm_record_t rm = { 0 };
        market_config_t used = { 0 };
        r = store_rm_get(o->store, name, &rm);
        if (r >= 0 && !*rm.provider) {
                store_tx_rollback(o->store);
                http_reply_error(reply, 409, "unassigned", "RM \"%s\" belongs to no provider (vmatrix rm assign %s "
                                 "--provider USER)", name, name);
                return;
        }
        if (r >= 0)
                r = store_offer_used(o->store, name, &used);
        if (r >= 0 && (used.memory_mib > f->memory_mib || used.vcpus > f->vcpus || used.disk_gib > f->disk_gib)) {
                store_tx_rollback(o->store);
                http_reply_error(reply, 409, "busy", "machines stored at RM \"%s\" hold %lld MiB, %lld vCPUs and %lld "
                                 "GiB: the offer cannot be smaller", name, (long long)used.memory_mib,
                                 (long long)used.vcpus, (long long)used.disk_gib);
                return;
        }
        SET(of.rm, name);
        SET(of.provider, rm.provider);
        of.updated_ms = time_wall_ms();
        if (r >= 0)
                r = store_offer_put(o->store, &of);
        if (r >= 0) {
                char vp[MONEY_TEXT_MAX], mp[MONEY_TEXT_MAX], dp[MONEY_TEXT_MAX], rp[DURATION_TEXT_MAX],
                        sp[DURATION_TEXT_MAX];
                money_format(f->vcpu_price, vp);
                money_format(f->memory_price, mp);
                money_format(f->disk_price, dp);
                duration_format(f->running_period_s, rp);
                duration_format(f->storage_period_s, sp);
                _cleanup_free_ char *why = xasprintf(
                        "%s sells %lld vCPUs at %s and %lld MiB at %s per GiB per %s, %lld GiB of disk at %s per %s",
                        of.provider, (long long)f->vcpus, vp, (long long)f->memory_mib, mp, rp,
                        (long long)f->disk_gib, dp, sp);
                r = store_event_add(o->store, "offer-set", NULL, NULL, name, why);
        }
        if (r >= 0)
                r = store_tx_commit(o->store);
        else
                store_tx_rollback(o->store);
        if (r < 0) {
                http_reply_errno(reply, r, "cannot record the offer at RM \"%s\"", name);
                return;
        }
        oracle_market_prices_update(o);
        http_reply_json(reply, 200, offer_json(&of, &used));
}

/* DELETE /v1/offers/:name: withdrawn, when no machine is stored there. */
static void h_offer_delete(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = req->params[0];
        if (store_tx_begin(o->store) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        market_config_t used = { 0 };
        int r = store_offer_used(o->store, name, &used);
        if (r >= 0 && (used.memory_mib || used.vcpus || used.disk_gib)) {
                store_tx_rollback(o->store);
                http_reply_error(reply, 409, "busy", "machines are stored at RM \"%s\": the offer stays until they go",
                                 name);
                return;
        }
        if (r >= 0)
                r = store_offer_delete(o->store, name);
        if (r >= 0)
                r = store_event_add(o->store, "offer-withdrawn", NULL, NULL, name,
                                    oracle_principal_name(req));
        if (r >= 0)
                r = store_tx_commit(o->store);
        else
                store_tx_rollback(o->store);
        if (r < 0) {
                http_reply_errno(reply, r, r == -ENOENT ? "RM \"%s\" has no offer" : "cannot withdraw the offer at "
                                 "RM \"%s\"", name);
                return;
        }
        oracle_market_prices_update(o);
        http_reply_json(reply, 200, json_pack("{s:s}", "rm", name));
}

/* The market's average unit prices expressed in offer f's own periods, for "price beside the
 * average" (null when no offer is on the market). */
static json_t *market_beside(const json_t *prices, const market_offer_t *f) {
        const json_t *v = json_object_get(json_object_get(prices, "running_vcpu"), "per_30d");
        const json_t *g = json_object_get(json_object_get(prices, "running_gib"), "per_30d");
        const json_t *d = json_object_get(json_object_get(prices, "storage_gib"), "per_30d");
        if (!v || !g || !d)
                return json_null();
        return json_pack("{s:I,s:I,s:I}", "vcpu_price",
                         (json_int_t)market_price_per(json_integer_value(v), MONTH_S, f->running_period_s),
                         "memory_price",
                         (json_int_t)market_price_per(json_integer_value(g), MONTH_S, f->running_period_s),
                         "disk_price", (json_int_t)market_price_per(json_integer_value(d), MONTH_S, f->storage_period_s));
}

/* GET /v1/offers: a provider's own offers (everyone's for admin and operator), each with its
 * use, the buyers' machines held there (metadata only), revenue and the market beside it. */
static void h_offers(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const auth_principal_t *p = oracle_principal(req);
        const char *only = p && !role_sees_all(p->role) ? p->user : NULL;
        offer_record_t *offers = NULL;
        vm_record_t *vms = NULL;
        size_t n = 0, nv = 0;
        json_t *revenue = NULL, *by_vm = NULL, *prices = NULL;
        if (store_offer_list(o->store, &offers, &n) < 0 || store_vm_list(o->store, &vms, &nv) < 0 ||
            store_charges_revenue(o->store, only, &revenue) < 0 || store_charges_by_vm(o->store, NULL, only, &by_vm) < 0 ||
            oracle_market_prices(o, false, &prices) < 0) {
                free(offers);
                store_vm_list_free(vms, nv);
                json_decref(revenue);
                json_decref(by_vm);
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
                if (only && !streq(offers[i].provider, only))
                        continue;
                market_config_t used = { 0 };
                store_offer_used(o->store, offers[i].rm, &used);
                json_t *j = offer_json(&offers[i], &used);
                json_t *machines = json_array();
                for (size_t k = 0; k < nv; k++) {
                        const vm_market_t *m = &vms[k].market;
                        if (!m->machine || (!streq(m->offer, offers[i].rm) && !streq(m->offer_next, offers[i].rm)))
                                continue;
                        const json_t *charged = json_object_get(by_vm, vms[k].name);
                        json_array_append_new(
                                machines,
                                json_pack("{s:s,s:s,s:s,s:I,s:I,s:I,s:o,s:I,s:b}", "name", vms[k].name, "buyer",
                                          vms[k].owner, "state", vms[k].state, "memory_mib", (json_int_t)vms[k].memory_mib,
                                          "vcpus", (json_int_t)vms[k].vcpus, "disk_gib", (json_int_t)m->disk_gib,
                                          "terms", market_terms_to_json(&m->terms), "charges",
                                          (json_int_t)json_integer_value(charged), "arriving",
                                          !streq(m->offer, offers[i].rm)));
                }
                json_object_set_new(j, "machines", machines);
                json_object_set_new(j, "revenue", json_integer(json_integer_value(json_object_get(revenue, offers[i].rm))));
                json_object_set_new(j, "market", market_beside(prices, &offers[i].offer));
                json_array_append_new(arr, j);
        }
        free(offers);
        store_vm_list_free(vms, nv);
        json_decref(revenue);
        json_decref(by_vm);
        json_decref(prices);
        http_reply_json(reply, 200, arr);
}

/* GET /v1/market/offers: every provider's offers as the market shows them (the report's
 * Figure 33) — capacity, free room, prices and the RM's state; no buyers, no revenue. */
static void h_market_offers(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        offer_record_t *offers = NULL;
        size_t n = 0;
        if (store_offer_list(o->store, &offers, &n) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
                market_config_t used = { 0 };
                rm_record_t rm = { 0 };
                store_offer_used(o->store, offers[i].rm, &used);
                store_rm_get(o->store, offers[i].rm, &rm);
                json_t *j = offer_json(&offers[i], &used);
                json_object_del(j, "used");
                json_object_set_new(j, "rm_state", json_string(*rm.state ? rm.state : "unknown"));
                json_array_append_new(arr, j);
        }
        free(offers);
        http_reply_json(reply, 200, arr);
}

/* ---- the market: suggested configurations, prices, settings ---- */

static json_t *market_config_json(const market_config_record_t *c) {
        return json_pack("{s:s,s:s,s:I,s:I,s:I,s:o,s:o}", "name", c->name, "image", c->image, "memory_mib",
                         (json_int_t)c->config.memory_mib, "vcpus", (json_int_t)c->config.vcpus, "disk_gib",
                         (json_int_t)c->config.disk_gib, "storage_price_30d",
                         c->storage_price_30d >= 0 ? json_integer(c->storage_price_30d) : json_null(),
                         "running_price_1h", c->running_price_1h >= 0 ? json_integer(c->running_price_1h) : json_null());
}

static void h_configs(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        market_config_record_t *list = NULL;
        size_t n = 0;
        if (store_market_config_list(o->store, &list, &n) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, market_config_json(&list[i]));
        free(list);
        http_reply_json(reply, 200, arr);
}

int oracle_market_size_from_body(const json_t *body, market_config_t *c, http_reply_t *reply) {
        if (oracle_body_int(body, "memory_mib", c->memory_mib, BUNDLE_MEMORY_MIB_MIN, BUNDLE_MEMORY_MIB_MAX,
                            &c->memory_mib) < 0) {
                http_reply_error(reply, 400, "out_of_range", "memory_mib must be an integer from %d to %d",
                                 BUNDLE_MEMORY_MIB_MIN, BUNDLE_MEMORY_MIB_MAX);
                return -ERANGE;
        }
        if (oracle_body_int(body, "vcpus", c->vcpus, 1, BUNDLE_VCPUS_MAX, &c->vcpus) < 0) {
                http_reply_error(reply, 400, "out_of_range", "vcpus must be an integer from 1 to %d", BUNDLE_VCPUS_MAX);
                return -ERANGE;
        }
        if (oracle_body_int(body, "disk_gib", c->disk_gib, 1, MARKET_DISK_GIB_MAX, &c->disk_gib) < 0) {
                http_reply_error(reply, 400, "out_of_range", "disk_gib must be an integer from 1 to %lld",
                                 (long long)MARKET_DISK_GIB_MAX);
                return -ERANGE;
        }
        return 0;
}

static void h_config_add(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        market_config_record_t c = { .config = { 128, 1, 1 }, .storage_price_30d = -1, .running_price_1h = -1,
                                     .created_ms = time_wall_ms() };
        const char *name = json_string_value(json_object_get(req->body, "name"));
        const char *image = json_string_value(json_object_get(req->body, "image"));
        if (!name || !name_is_valid(name) || !image || !name_is_valid(image)) {
                http_reply_error(reply, 400, "invalid", "a configuration needs a valid name and an image");
                return;
        }
        if (oracle_market_size_from_body(req->body, &c.config, reply) < 0)
                return;
        image_record_t img = { 0 };
        if (store_image_get(o->store, image, &img) < 0) {
                http_reply_error(reply, 404, "not_found", "no image named \"%s\"", image);
                return;
        }
        image_record_clear(&img);
        SET(c.name, name);
        SET(c.image, image);
        int r = store_market_config_put(o->store, &c);
        if (r < 0) {
                http_reply_errno(reply, r, r == -EEXIST ? "configuration \"%s\" exists already" : "cannot add \"%s\"",
                                 name);
                return;
        }
        store_event_add(o->store, "market-config", NULL, NULL, NULL, name);
        oracle_market_prices_update(o);
        store_market_config_get(o->store, name, &c);
        http_reply_json(reply, 201, market_config_json(&c));
}

static void h_config_delete(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        int r = store_market_config_delete(o->store, req->params[0]);
        if (r < 0) {
                http_reply_errno(reply, r, "no configuration \"%s\"", req->params[0]);
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:s}", "name", req->params[0]));
}

/* GET /v1/market/prices[?history=N]: the averages now, and the last N changes. */
static void h_prices(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *h = http_request_query(req, "history");
        long history = 0;
        if (h) {
                char *end = NULL;
                history = strtol(h, &end, 10);
                if (!*h || *end || history < 0 || history > 10000) {
                        http_reply_error(reply, 400, "invalid", "history is a count from 0 to 10000");
                        return;
                }
        }
        json_t *prices = NULL, *hist = NULL;
        if (oracle_market_prices(o, false, &prices) < 0 ||
            (history && store_market_prices_list(o->store, (int)history, &hist) < 0)) {
                json_decref(prices);
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        if (hist)
                json_object_set_new(prices, "history", hist);
        http_reply_json(reply, 200, prices);
}

#define SETTING_FEE "registration-fee"

int oracle_market_fee(oracle_t *o, int64_t *ret) { return store_setting_get(o->store, SETTING_FEE, 0, ret); }

static void h_settings(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        int64_t fee = 0;
        if (oracle_market_fee(o, &fee) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:I}", "registration_fee", (json_int_t)fee));
}

static void h_settings_set(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const json_t *v = json_object_get(req->body, "registration_fee");
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > MONEY_INPUT_MAX) {
                http_reply_error(reply, 400, "invalid", "registration_fee is an amount in micro-units, from 0 to %lld",
                                 (long long)MONEY_INPUT_MAX);
                return;
        }
        if (store_setting_set(o->store, SETTING_FEE, json_integer_value(v)) < 0) {
                http_reply_errno(reply, -EIO, "cannot record the fee");
                return;
        }
        char text[MONEY_TEXT_MAX];
        money_format(json_integer_value(v), text);
        store_event_add(o->store, "market-fee", NULL, NULL, NULL, text);
        h_settings(req, reply);
}

/* Before oracle_api_routes: POST /v1/rms/:name/assign would not match there, but keep the
 * market's routes in one table. */
const http_route_t oracle_market_routes[] = {
        { "POST", "/v1/rms/:name/assign", h_rm_assign, PERM_RM_ASSIGN, OWNER_NONE },
        { "GET", "/v1/offers", h_offers, PERM_OFFER_READ, OWNER_NONE },
        { "PUT", "/v1/offers/:name", h_offer_set, PERM_OFFER_ACT, OWNER_RM },
        { "DELETE", "/v1/offers/:name", h_offer_delete, PERM_OFFER_ACT, OWNER_RM },
        { "GET", "/v1/market/offers", h_market_offers, PERM_MARKET_READ, OWNER_NONE },
        { "GET", "/v1/market/configs", h_configs, PERM_MARKET_READ, OWNER_NONE },
        { "POST", "/v1/market/configs", h_config_add, PERM_MARKET_ACT, OWNER_NONE },
        { "DELETE", "/v1/market/configs/:name", h_config_delete, PERM_MARKET_ACT, OWNER_NONE },
        { "GET", "/v1/market/prices", h_prices, PERM_MARKET_READ, OWNER_NONE },
        { "GET", "/v1/market/settings", h_settings, PERM_MARKET_READ, OWNER_NONE },
        { "PUT", "/v1/market/settings", h_settings_set, PERM_MARKET_ACT, OWNER_NONE },
        { NULL },
};
