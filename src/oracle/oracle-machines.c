/* A buyer's machines in the marketplace (issue 12, Virtuoso report §5.1): register a
 * configuration with a bid (a placeholder in the store, on no RM), edit it while registered,
 * list the offers that fit it (or, once stored, where it could migrate), and store it at one.
 * Storing is one transaction: the offer's room is checked and the machine takes the offer's
 * prices of that moment, which it keeps until it migrates (Figure 12). From "stored" on, the
 * lifecycle's operations apply, through the engine. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"
#include "store/store-market.h"

#define MONTH_S (INT64_C(30) * 86400)
#define METHODS_TIMEOUT_MS 3000

/* A bid {storage_price, storage_period_s, running_price, running_period_s} into *ret: 0, or a
 * 400 in reply. */
static int bid_from_json(const json_t *j, market_terms_t *ret, http_reply_t *reply) {
        struct {
                const char *key;
                int64_t *v, min, max;
        } f[] = {
                { "storage_price", &ret->storage_price, 0, MONEY_INPUT_MAX },
                { "storage_period_s", &ret->storage_period_s, PERIOD_MIN_S, PERIOD_MAX_S },
                { "running_price", &ret->running_price, 0, MONEY_INPUT_MAX },
                { "running_period_s", &ret->running_period_s, PERIOD_MIN_S, PERIOD_MAX_S },
        };
        if (!json_is_object(j)) {
                http_reply_error(reply, 400, "invalid", "a machine needs a bid {storage_price, storage_period_s, "
                                 "running_price, running_period_s}");
                return -EINVAL;
        }
        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                const json_t *v = json_object_get(j, f[i].key);
                if (!json_is_integer(v) || json_integer_value(v) < f[i].min || json_integer_value(v) > f[i].max) {
                        http_reply_error(reply, 400, "invalid", "bid.%s must be an integer from %lld to %lld%s", f[i].key,
                                         (long long)f[i].min, (long long)f[i].max,
                                         f[i].min ? " (seconds)" : " (micro-units)");
                        return -EINVAL;
                }
                *f[i].v = json_integer_value(v);
        }
        return 0;
}

/* Puts the machine's size and image into its bundle's config; a kernel image's blank disk gets
 * the machine's size, a disk image must fit in it. 0, or a 400 in reply. */
static int config_apply(vm_record_t *vm, const image_record_t *img, http_reply_t *reply) {
        const char *boot = json_string_value(json_object_get(img->meta, "boot")) ?: "kernel";
        int64_t disk_mib = vm->market.disk_gib * 1024;
        if (!streq(boot, "kernel")) {
                int64_t bytes = json_integer_value(json_object_get(img->meta, "virtual_size"));
                if (bytes > vm->market.disk_gib * (INT64_C(1) << 30)) {
                        http_reply_error(reply, 400, "out_of_range", "image \"%s\" needs %lld GiB of disk; the machine "
                                         "has %lld", img->name, (long long)((bytes + (INT64_C(1) << 30) - 1) >> 30),
                                         (long long)vm->market.disk_gib);
                        return -ERANGE;
                }
                disk_mib = json_integer_value(json_object_get(img->meta, "disk_size_mib"));
        }
        json_t *c = json_object_get(vm->bundle, "config");
        json_object_set_new(c, "memory_mib", json_integer(vm->memory_mib));
        json_object_set_new(c, "vcpus", json_integer(vm->vcpus));
        json_object_set_new(c, "image", json_string(img->name));
        json_object_set_new(c, "boot", json_string(boot));
        json_object_set_new(c, "cmdline", json_string(json_string_value(json_object_get(img->meta, "cmdline")) ?: ""));
        json_object_set_new(c, "disk_size_mib", json_integer(disk_mib));
        json_object_set_new(c, "image_format",
                            json_string(json_string_value(json_object_get(img->meta, "format")) ?: ""));
        SET(vm->image, img->name);
        return 0;
}

/* The size and image of a register or edit body onto vm: a suggested configuration ("config")
 * first, then the fields given. *ret_img is the image (clear it). 0, or an answer in reply. */
static int size_from_body(oracle_t *o, const json_t *body, vm_record_t *vm, image_record_t *ret_img,
                          http_reply_t *reply) {
        market_config_t c = { vm->memory_mib, vm->vcpus, vm->market.disk_gib };
        char image[64];
        SET(image, vm->image);
        const char *config = json_string_value(json_object_get(body, "config"));
        if (config) {
                market_config_record_t rec = { 0 };
                if (!name_is_valid(config) || store_market_config_get(o->store, config, &rec) < 0) {
                        http_reply_error(reply, 404, "not_found", "no suggested configuration \"%s\" (market configs)",
                                         config);
                        return -ENOENT;
                }
                c = rec.config;
                SET(image, rec.image);
        }
        if (oracle_market_size_from_body(body, &c, reply) < 0)
                return -ERANGE;
        const json_t *ij = json_object_get(body, "image");
        if (ij && (!json_is_string(ij) || !name_is_valid(json_string_value(ij)))) {
                http_reply_error(reply, 400, "invalid", "image must be the name of an image");
                return -EINVAL;
        }
        if (ij)
                SET(image, json_string_value(ij));
        if (!*image) {
                http_reply_error(reply, 400, "invalid", "a machine needs an image (or a suggested configuration)");
                return -EINVAL;
        }
        if (store_image_get(o->store, image, ret_img) < 0) {
                http_reply_error(reply, 404, "not_found", "no image named \"%s\"", image);
                return -ENOENT;
        }
        vm->memory_mib = c.memory_mib;
        vm->vcpus = c.vcpus;
        vm->market.disk_gib = c.disk_gib;
        int r = config_apply(vm, ret_img, reply);
        if (r < 0)
                image_record_clear(ret_img);
        return r;
}

/* POST /v1/machines {name, image|config, memory_mib, vcpus, disk_gib, bid}: registered. */
static void h_register(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = json_string_value(json_object_get(req->body, "name"));
        const auth_principal_t *p = oracle_principal(req);
        if (!name || !name_is_valid(name)) {
                http_reply_error(reply, 400, "invalid", "a machine needs a valid name: 1-63 of a-z, 0-9 and -");
                return;
        }
        market_terms_t bid = { 0 };
        if (bid_from_json(json_object_get(req->body, "bid"), &bid, reply) < 0)
                return;
        vm_record_t v = { 0 };
        image_record_t img = { 0 };
        image_record_t any = { .name = "" };
        /* the record first (MAC, version), then the size onto it */
        int r = oracle_vm_record_new(o, name, &any, 128, 1, NULL, &v);
        if (r < 0) {
                http_reply_errno(reply, r, "cannot allocate a MAC address and version for vm \"%s\"", name);
                return;
        }
        v.market.disk_gib = 1;
        if (size_from_body(o, req->body, &v, &img, reply) < 0) {
                vm_record_clear(&v);
                return;
        }
        image_record_clear(&img);
        SET(v.state, "registered");
        SET(v.owner, p ? p->user : "");
        v.market.bid = bid;
        v.market.registered_ms = time_wall_ms();
        int64_t fee = 0;
        if (store_tx_begin(o->store) < 0) {
                vm_record_clear(&v);
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        r = store_counter_next(o->store, "machine", &v.market.machine);
        if (r >= 0)
                r = oracle_market_fee(o, &fee);
        int64_t balance = 0;
        if (r >= 0 && fee > 0 && *v.owner && store_balance_get(o->store, v.owner, &balance) >= 0 && balance < fee) {
                store_tx_rollback(o->store);
                char f[MONEY_TEXT_MAX], b[MONEY_TEXT_MAX];
                money_format(fee, f);
                money_format(balance, b);
                http_reply_error(reply, 402, "payment_required", "registering a machine costs %s; the account of %s "
                                 "holds %s", f, v.owner, b);
                vm_record_clear(&v);
                return;
        }
        if (r >= 0)
                r = store_vm_insert(o->store, &v);
        if (r >= 0 && fee > 0) {
                charge_record_t c = { .machine = v.market.machine, .start_ms = v.market.registered_ms,
                                      .end_ms = v.market.registered_ms, .amount = fee, .posted_ms = time_wall_ms() };
                SET(c.vm, name);
                SET(c.buyer, v.owner);
                SET(c.kind, "registration");
                r = store_charge_post(o->store, &c);
        }
        if (r >= 0) {
                _cleanup_free_ char *why = xasprintf("by %s: %lld MiB, %lld vCPUs, %lld GiB of %s", v.owner,
                                                     (long long)v.memory_mib, (long long)v.vcpus,
                                                     (long long)v.market.disk_gib, v.image);
                r = store_event_add(o->store, "registered", name, NULL, NULL, why);
        }
        if (r >= 0)
                r = store_tx_commit(o->store);
        else
                store_tx_rollback(o->store);
        if (r < 0) {
                http_reply_errno(reply, r, r == -EEXIST ? "vm \"%s\" exists already" : "cannot register vm \"%s\"", name);
                vm_record_clear(&v);
                return;
        }
        http_reply_json(reply, 201, oracle_vm_json(&v));
        vm_record_clear(&v);
}

/* The machine named, in a transaction begun here, for an action legal on it now: 0, or the
 * answer in reply (and no transaction). */
static int machine_begin(oracle_t *o, const char *name, vm_action_t action, vm_record_t *vm, http_reply_t *reply) {
        if (store_tx_begin(o->store) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return -EIO;
        }
        int r = store_vm_get(o->store, name, vm);
        if (r < 0) {
                store_tx_rollback(o->store);
                http_reply_error(reply, 404, "not_found", "no vm named \"%s\"", name);
                return r;
        }
        if (!vm->market.machine) {
                store_tx_rollback(o->store);
                http_reply_error(reply, 409, "illegal_transition", "vm \"%s\" is not a buyer's machine (vm register "
                                 "makes one)", name);
                return -EPERM;
        }
        r = lifecycle_check(action, vm->state, oracle_vm_flags(vm));
        if (r < 0) {
                store_tx_rollback(o->store);
                if (action == VM_ACTION_EDIT && r == -EPERM)
                        http_reply_error(reply, 409, "illegal_transition", "vm \"%s\" is %s: its size and prices are "
                                         "fixed once stored; migrate it to another offer to change its price", name,
                                         vm->state);
                else
                        http_reply_error(reply, 409, r == -EBUSY ? "busy" : "illegal_transition",
                                         "vm \"%s\" is %s: cannot %s it", name, vm->state,
                                         lifecycle_rule(action)->name);
                return r;
        }
        return 0;
}

/* Ends machine_begin's transaction with vm written at version+1 and an event. */
static void machine_commit(oracle_t *o, vm_record_t *vm, const char *event, const char *rm, const char *why,
                           http_reply_t *reply) {
        int64_t expected = vm->version++;
        int r = store_vm_update(o->store, vm, expected);
        if (r >= 0)
                r = store_event_add(o->store, event, vm->name, NULL, rm, why);
        if (r >= 0)
                r = store_tx_commit(o->store);
        else
                store_tx_rollback(o->store);
        if (r < 0) {
                http_reply_errno(reply, r, "cannot record vm \"%s\"", vm->name);
                return;
        }
        http_reply_json(reply, 200, oracle_vm_json(vm));
}

/* PATCH /v1/vms/:name {image|config, memory_mib, vcpus, disk_gib, bid}: only while registered. */
static void h_edit(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        vm_record_t vm = { 0 };
        if (machine_begin(o, req->params[0], VM_ACTION_EDIT, &vm, reply) < 0) {
                vm_record_clear(&vm);
                return;
        }
        image_record_t img = { 0 };
        const json_t *bid = json_object_get(req->body, "bid");
        if ((bid && bid_from_json(bid, &vm.market.bid, reply) < 0) || size_from_body(o, req->body, &vm, &img, reply) < 0) {
                store_tx_rollback(o->store);
                vm_record_clear(&vm);
                return;
        }
        image_record_clear(&img);
        _cleanup_free_ char *why = xasprintf("%lld MiB, %lld vCPUs, %lld GiB of %s", (long long)vm.memory_mib,
                                             (long long)vm.vcpus, (long long)vm.market.disk_gib, vm.image);
        machine_commit(o, &vm, "edited", NULL, why, reply);
        vm_record_clear(&vm);
}

/* POST /v1/vms/:name/store {rm}: registered -> stored at the offer of rm, at its prices now. */
static void h_store(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *rm = json_string_value(json_object_get(req->body, "rm"));
        if (!rm || !name_is_valid(rm)) {
                http_reply_error(reply, 400, "invalid", "storing needs the RM of an offer (--at RM)");
                return;
        }
        vm_record_t vm = { 0 };
        if (machine_begin(o, req->params[0], VM_ACTION_STORE, &vm, reply) < 0) {
                vm_record_clear(&vm);
                return;
        }
        offer_record_t offer = { 0 };
        market_terms_t terms = { 0 };
        _cleanup_free_ char *msg = NULL;
        int r = oracle_market_quote(o, rm, &vm, &offer, &terms, &msg);
        if (r >= 0 && !market_bid_covers(&vm.market.bid, &terms)) {
                r = -EPERM;
                msg = xasprintf("the offer at RM \"%s\" asks more than the bid of vm \"%s\" (vm offers lists those "
                                "that fit)", rm, vm.name);
        }
        if (r < 0) {
                store_tx_rollback(o->store);
                http_reply_errno(reply, r == -EPERM ? -EPERM : r, "%s", msg);
                vm_record_clear(&vm);
                return;
        }
        SET(vm.state, "stored");
        SET(vm.market.offer, rm);
        SET(vm.market.provider, offer.provider);
        vm.market.terms = terms;
        char s[MONEY_TEXT_MAX], run[MONEY_TEXT_MAX], sp[DURATION_TEXT_MAX], rp[DURATION_TEXT_MAX];
        money_format(terms.storage_price, s);
        money_format(terms.running_price, run);
        duration_format(terms.storage_period_s, sp);
        duration_format(terms.running_period_s, rp);
        _cleanup_free_ char *why = xasprintf("at %s of %s: storage %s per %s, running %s per %s", rm, offer.provider, s,
                                             sp, run, rp);
        machine_commit(o, &vm, "store", rm, why, reply);
        vm_record_clear(&vm);
}

/* The methods RM rm receives a migration with, as its node says (NULL when it does not answer). */
static json_t *methods_of(oracle_t *o, const char *rm) {
        json_t *answer = NULL;
        _cleanup_free_ char *msg = NULL;
        if (oracle_node_call(o, rm, "GET", "/v1/migrate/methods", NULL, METHODS_TIMEOUT_MS, &answer, &msg) < 0)
                return NULL;
        json_t *m = json_incref(json_object_get(answer, "methods"));
        json_decref(answer);
        return json_is_array(m) ? m : (json_decref(m), NULL);
}

static int offer_cmp(const void *a, const void *b) {
        const json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
        json_int_t tx = json_integer_value(json_object_get(x, "total_30d"));
        json_int_t ty = json_integer_value(json_object_get(y, "total_30d"));
        return tx < ty ? -1 : tx > ty;
}

/* GET /v1/vms/:name/offers: for a registered machine, the offers with room for it whose price
 * its bid covers; for a stored one, where it could migrate (with the methods each destination
 * speaks and whether the bid covers it). Cheapest first by the estimate of 30 days stored and
 * running; an empty list when none fits (the report's Figure 14). */
static void h_offers_for(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        vm_record_t vm = { 0 };
        int r = store_vm_get(o->store, req->params[0], &vm);
        if (r < 0 || !vm.market.machine) {
                http_reply_error(reply, r < 0 ? 404 : 409, r < 0 ? "not_found" : "illegal_transition",
                                 r < 0 ? "no vm named \"%s\"" : "vm \"%s\" is not a buyer's machine", req->params[0]);
                vm_record_clear(&vm);
                return;
        }
        bool registered = streq(vm.state, "registered");
        offer_record_t *offers = NULL;
        size_t n = 0;
        if (store_offer_list(o->store, &offers, &n) < 0) {
                vm_record_clear(&vm);
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        json_t **rows = xcalloc(n ? n : 1, sizeof *rows);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (streq(offers[i].rm, vm.market.offer))
                        continue;
                market_terms_t t = { 0 };
                _cleanup_free_ char *msg = NULL;
                if (oracle_market_quote(o, offers[i].rm, &vm, NULL, &t, &msg) < 0)
                        continue;
                bool covered = market_bid_covers(&vm.market.bid, &t);
                if (registered && !covered)
                        continue;
                market_config_t used = { 0 };
                store_offer_used(o->store, offers[i].rm, &used);
                const market_offer_t *f = &offers[i].offer;
                int64_t s30 = market_price_per(t.storage_price, t.storage_period_s, MONTH_S);
                int64_t r30 = market_price_per(t.running_price, t.running_period_s, MONTH_S);
                json_t *row = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I},s:{s:I,s:I},s:I,s:b}", "rm",
                                        offers[i].rm, "provider", offers[i].provider, "storage_price",
                                        (json_int_t)t.storage_price, "running_price", (json_int_t)t.running_price,
                                        "storage_period_s", (json_int_t)t.storage_period_s, "running_period_s",
                                        (json_int_t)t.running_period_s, "free", "memory_mib",
                                        (json_int_t)(f->memory_mib - used.memory_mib), "vcpus",
                                        (json_int_t)(f->vcpus - used.vcpus), "disk_gib",
                                        (json_int_t)(f->disk_gib - used.disk_gib), "estimate_30d", "storage",
                                        (json_int_t)s30, "running", (json_int_t)r30, "total_30d",
                                        (json_int_t)(s30 + r30), "within_bid", covered);
                if (!registered) {
                        json_t *m = methods_of(o, offers[i].rm);
                        json_object_set_new(row, "methods", m ? m : json_array());
                }
                rows[k++] = row;
        }
        qsort(rows, k, sizeof *rows, offer_cmp);
        json_t *arr = json_array();
        for (size_t i = 0; i < k; i++)
                json_array_append_new(arr, rows[i]);
        free(rows);
        free(offers);
        vm_record_clear(&vm);
        http_reply_json(reply, 200, arr);
}

/* GET /v1/vms/:name/history: the machine's recorded state intervals, which its charges are
 * computed from: [{at_ms, state, offer, provider, terms}], oldest first. */
static void h_history(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        vm_record_t vm = { 0 };
        int r = store_vm_get(o->store, req->params[0], &vm);
        int64_t machine = vm.market.machine;
        vm_record_clear(&vm);
        if (r < 0 || !machine) {
                http_reply_error(reply, r < 0 ? 404 : 409, r < 0 ? "not_found" : "illegal_transition",
                                 r < 0 ? "no vm named \"%s\"" : "vm \"%s\" is not a buyer's machine", req->params[0]);
                return;
        }
        billing_span_t *spans = NULL;
        size_t n = 0;
        if (store_spans_get(o->store, machine, &spans, &n) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, json_pack("{s:I,s:s,s:s?,s:s?,s:o}", "at_ms", (json_int_t)spans[i].at_ms,
                                                     "state", spans[i].state, "offer",
                                                     *spans[i].offer ? spans[i].offer : NULL, "provider",
                                                     *spans[i].provider ? spans[i].provider : NULL, "terms",
                                                     market_terms_to_json(&spans[i].terms)));
        free(spans);
        http_reply_json(reply, 200, json_pack("{s:I,s:o}", "machine", (json_int_t)machine, "spans", arr));
}

/* Before oracle_api_routes, whose POST /v1/vms/:name/:action would take /store. */
const http_route_t oracle_machine_routes[] = {
        { "POST", "/v1/machines", h_register, PERM_VM_ACT, OWNER_NONE },
        { "PATCH", "/v1/vms/:name", h_edit, PERM_VM_ACT, OWNER_VM },
        { "POST", "/v1/vms/:name/store", h_store, PERM_VM_ACT, OWNER_VM },
        { "GET", "/v1/vms/:name/offers", h_offers_for, PERM_VM_ACT, OWNER_VM },
        { "GET", "/v1/vms/:name/history", h_history, PERM_VM_READ, OWNER_VM },
        { NULL },
};
