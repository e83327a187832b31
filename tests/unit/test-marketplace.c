/* Daemon tests of the marketplace (issue 12): a real Oracle and three real nodes of vmatrix-test
 * on the fake VMM driver — pa1 and pa2 of provider p1, pb1 of provider p2, all chambers — and
 * two buyers, b1 and b2, each with their own token, driven through the HTTP API (daemons.c).
 *   - offers: set by their provider only, bad ones refused (negative, zero period, not a number,
 *     larger than the RM, on another's RM), listed with use and the market beside;
 *   - machines: registered, edited while registered only, matched against offers (none for a low
 *     bid, cheapest first otherwise), stored at an offer's prices of that moment (kept after the
 *     offer changes), a full offer refused, other buyers and providers kept off (404, 403);
 *   - running: only at its offer's RM; boot, suspend, migrate to the other provider (chunks),
 *     back (full), resume, stop, migrate while stored, delete;
 *   - the ledger against the machine's recorded history: running charged only inside running
 *     intervals and for all of them, storage contiguous from the store on, one provider at any
 *     instant, every amount the price prorated, balances = deposits - charges (+ credits);
 *   - the Oracle killed with SIGKILL for several storage periods: every missed period charged
 *     once after the restart, none twice, no gap;
 *   - a buyer whose money runs out: its running machine is suspended (an event), a start is
 *     refused with 402, and a deposit resumes it;
 *   - the provider's RM killed under a running machine: failed, and charged for running up to
 *     the RM's last heartbeat only. */
#include "base/macro.h"
#include "daemons.h"
#include "tap.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PASSWORD "market-password-1"

static daemons_t D;
static char tp1[128], tp2[128], tb1[128], tb2[128];

/* METHOD ORACLE/path with body (stolen, may be NULL) and token; the status, the JSON in *ret. */
static long api(const char *token, const char *method, const char *path, json_t *body, json_t **ret) {
        char url[512];
        snprintf(url, sizeof url, "%s%s", D.oracle.url, path);
        json_t *got = NULL;
        long s = daemons_call_token(token, method, url, body, &got);
        json_decref(body);
        if (s >= 400 && getenv("VMATRIX_TEST_VERBOSE"))
                fprintf(stderr, "  %s %s: %ld %s\n", method, path, s,
                        json_string_value(json_object_get(json_object_get(got, "error"), "message")) ?: "");
        if (ret)
                *ret = got;
        else
                json_decref(got);
        return s;
}

static long admin(const char *method, const char *path, json_t *body, json_t **ret) {
        return api(daemons_admin_token(), method, path, body, ret);
}

static void user_make(const char *name, const char *role, char *ret_token) {
        CHECK(admin("POST", "/v1/users", json_pack("{s:s,s:s,s:s}", "name", name, "role", role, "password", PASSWORD),
                    NULL) == 201);
        json_t *j = NULL;
        CHECK(api(NULL, "POST", "/v1/login", json_pack("{s:s,s:s}", "user", name, "password", PASSWORD), &j) == 200);
        snprintf(ret_token, 128, "%s", json_string_value(json_object_get(j, "token")) ?: "");
        json_decref(j);
        CHECK(*ret_token);
}

static json_t *offer_body(int64_t vcpus, int64_t vcpu_price, int64_t mem, int64_t mem_price, int64_t run_s,
                          int64_t disk, int64_t disk_price, int64_t store_s) {
        return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "vcpus", (json_int_t)vcpus, "vcpu_price",
                         (json_int_t)vcpu_price, "memory_mib", (json_int_t)mem, "memory_price", (json_int_t)mem_price,
                         "running_period_s", (json_int_t)run_s, "disk_gib", (json_int_t)disk, "disk_price",
                         (json_int_t)disk_price, "storage_period_s", (json_int_t)store_s);
}

static json_t *bid(int64_t storage, int64_t storage_s, int64_t running, int64_t running_s) {
        return json_pack("{s:I,s:I,s:I,s:I}", "storage_price", (json_int_t)storage, "storage_period_s",
                         (json_int_t)storage_s, "running_price", (json_int_t)running, "running_period_s",
                         (json_int_t)running_s);
}

/* A buyer's action on its machine, waited for: true when it is done and the VM is in want. */
static bool act(const char *token, const char *vm, const char *action, json_t *body, const char *want) {
        char path[160];
        snprintf(path, sizeof path, "/v1/vms/%s/%s", vm, action);
        json_t *res = NULL;
        long s = api(token, "POST", path, body ? body : json_object(), &res);
        const char *op = json_string_value(json_object_get(json_object_get(res, "op"), "id"));
        char state[16] = "";
        if (s == 202 && op)
                daemons_op_wait(&D, op, daemons_now_ms() + 30000, state);
        else
                fprintf(stderr, "%s %s: %ld %s\n", action, vm, s,
                        json_string_value(json_object_get(json_object_get(res, "error"), "message")) ?: "");
        json_decref(res);
        char now[32] = "";
        daemons_vm_state(&D, vm, now, NULL);
        bool ok = s == 202 && streq(state, "done") && streq(now, want);
        if (!ok)
                fprintf(stderr, "%s %s: op %s, vm %s (want %s)\n", action, vm, state, now, want);
        return ok;
}

static json_int_t jint(const json_t *j, const char *key) { return json_integer_value(json_object_get(j, key)); }

/* ---- setup: nodes, users, assignments ---- */

static void setup(void) {
        CHECK(daemons_oracle_start(&D, NULL) == 0);
        CHECK(daemons_node_start(&D, 0, "pa1", "chamber", NULL) == 0);
        CHECK(daemons_node_start(&D, 1, "pa2", "chamber", NULL) == 0);
        CHECK(daemons_node_start(&D, 2, "pb1", "chamber", NULL) == 0);
        user_make("p1", "provider", tp1);
        user_make("p2", "provider", tp2);
        user_make("b1", "buyer", tb1);
        user_make("b2", "buyer", tb2);
        json_t *img = json_pack("{s:s,s:s}", "name", "tiny-http", "builtin", "tiny-http");
        CHECK(admin("POST", "/v1/images", img, NULL) == 201);
        /* assignment: an operator's (admin here); a buyer may not, nor to a buyer, nor to nobody known */
        CHECK(api(tb1, "POST", "/v1/rms/pa1/assign", json_pack("{s:s}", "provider", "b1"), NULL) == 403);
        CHECK(admin("POST", "/v1/rms/pa1/assign", json_pack("{s:s}", "provider", "b1"), NULL) == 400);
        CHECK(admin("POST", "/v1/rms/pa1/assign", json_pack("{s:s}", "provider", "nobody"), NULL) == 404);
        CHECK(admin("POST", "/v1/rms/nope/assign", json_pack("{s:s}", "provider", "p1"), NULL) == 404);
        CHECK(admin("POST", "/v1/rms/pa1/assign", json_pack("{s:s}", "provider", "p1"), NULL) == 200);
        CHECK(admin("POST", "/v1/rms/pa2/assign", json_pack("{s:s}", "provider", "p1"), NULL) == 200);
        CHECK(admin("POST", "/v1/rms/pb1/assign", json_pack("{s:s}", "provider", "p2"), NULL) == 200);
        /* each RM's size is known once its node heartbeats */
        for (int64_t end = daemons_now_ms() + 10000; daemons_now_ms() < end;) {
                json_t *rms = NULL;
                admin("GET", "/v1/rms", NULL, &rms);
                size_t i, known = 0;
                json_t *rm;
                json_array_foreach(rms, i, rm) known += json_is_object(json_object_get(rm, "capacity"));
                json_decref(rms);
                if (known == 3)
                        break;
                usleep(200 * 1000);
        }
}

/* ---- offers ---- */

static void test_offers(void) {
        /* p1: pa1 at 0.001 per vCPU and 0.002 per GiB of RAM per second, 0.0001 per GiB of disk per
         * 2 s; pa2 dearer; p2: pb1 cheap to run, dear to store */
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(2, 1000, 1024, 2000, 1, 10, 100, 2), NULL) == 200);
        CHECK(api(tp1, "PUT", "/v1/offers/pa2", offer_body(2, 3000, 1024, 4000, 1, 10, 300, 2), NULL) == 200);
        CHECK(api(tp2, "PUT", "/v1/offers/pb1", offer_body(2, 500, 512, 1000, 1, 10, 1000, 2), NULL) == 200);
        /* bad offers change nothing */
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(2, -1, 1024, 2000, 1, 10, 100, 2), NULL) == 400);
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(2, 1000, 1024, 2000, 0, 10, 100, 2), NULL) == 400);
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(0, 1000, 1024, 2000, 1, 10, 100, 2), NULL) == 400);
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(4096, 1000, 1024, 2000, 1, 10, 100, 2), NULL) == 400);
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(4, 1000, 1 << 30, 2000, 1, 10, 100, 2), NULL) == 400);
        json_t *nan = offer_body(2, 1000, 1024, 2000, 1, 10, 100, 2);
        json_object_set_new(nan, "disk_price", json_string("cheap"));
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", nan, NULL) == 400);
        /* another provider's RM is nobody's business of p2's; a buyer sets no offers */
        CHECK(api(tp2, "PUT", "/v1/offers/pa1", offer_body(1, 1, 64, 1, 1, 1, 1, 1), NULL) == 404);
        CHECK(api(tb1, "PUT", "/v1/offers/pa1", offer_body(1, 1, 64, 1, 1, 1, 1, 1), NULL) == 403);
        CHECK(api(tb1, "GET", "/v1/offers", NULL, NULL) == 403);
        json_t *list = NULL;
        CHECK(api(tp1, "GET", "/v1/offers", NULL, &list) == 200 && json_array_size(list) == 2);
        json_t *pa1 = json_array_get(list, 0);
        CHECK_STREQ(json_string_value(json_object_get(pa1, "rm")), "pa1");
        CHECK(jint(json_object_get(pa1, "prices"), "vcpu_price") == 1000); /* the bad offers changed nothing */
        /* the market beside it: the average of the three, in pa1's periods (1 s) */
        CHECK(jint(json_object_get(pa1, "market"), "vcpu_price") == (1000 + 3000 + 500 + 1) / 3);
        json_decref(list);
        CHECK(api(tp2, "GET", "/v1/offers", NULL, &list) == 200 && json_array_size(list) == 1);
        json_decref(list);
        json_t *prices = NULL;
        CHECK(api(tb1, "GET", "/v1/market/prices", NULL, &prices) == 200);
        CHECK(jint(prices, "offers") == 3);
        CHECK(jint(json_object_get(prices, "running_vcpu"), "per_hour") == (1000 + 3000 + 500) * 3600 / 3);
        json_decref(prices);
}

/* ---- registering, matching, storing ---- */

static void test_register_store(void) {
        json_t *cfg = json_pack("{s:s,s:s,s:i,s:i,s:i}", "name", "small", "image", "tiny-http", "memory_mib", 32,
                                "vcpus", 1, "disk_gib", 1);
        CHECK(api(tb1, "POST", "/v1/market/configs", json_deep_copy(cfg), NULL) == 403);
        CHECK(admin("POST", "/v1/market/configs", cfg, NULL) == 201);
        json_t *configs = NULL;
        CHECK(api(tb1, "GET", "/v1/market/configs", NULL, &configs) == 200 && json_array_size(configs) == 1);
        /* an estimate from the market: all three offers host it */
        CHECK(json_is_integer(json_object_get(json_array_get(configs, 0), "running_price_1h")));
        json_decref(configs);

        /* a bid too low for every offer: registered, and no offer matches (Figure 14) */
        json_t *reg = json_pack("{s:s,s:s,s:o}", "name", "m1", "config", "small", "bid", bid(0, 1, 0, 1));
        json_t *vm = NULL;
        CHECK(api(tb1, "POST", "/v1/machines", reg, &vm) == 201);
        CHECK_STREQ(json_string_value(json_object_get(vm, "state")), "registered");
        CHECK(json_array_size(json_object_get(vm, "actions")) == 3); /* delete, edit, store */
        json_decref(vm);
        /* bad registrations change nothing */
        CHECK(api(tb1, "POST", "/v1/machines", json_pack("{s:s,s:s,s:o}", "name", "m1", "config", "small", "bid",
                                                         bid(0, 1, 0, 1)), NULL) == 409);
        CHECK(api(tb1, "POST", "/v1/machines", json_pack("{s:s,s:s,s:o}", "name", "bad", "config", "small", "bid",
                                                         bid(1, 0, 1, 1)), NULL) == 400);
        CHECK(api(tb1, "POST", "/v1/machines", json_pack("{s:s,s:s,s:o}", "name", "bad", "config", "small", "bid",
                                                         bid(-1, 1, 1, 1)), NULL) == 400);
        CHECK(api(tb1, "POST", "/v1/machines", json_pack("{s:s,s:s}", "name", "bad", "config", "small"), NULL) == 400);
        CHECK(api(tb1, "POST", "/v1/machines", json_pack("{s:s,s:s,s:o}", "name", "bad", "image", "nope", "bid",
                                                         bid(1, 1, 1, 1)), NULL) == 404);
        CHECK(api(tp1, "POST", "/v1/machines", json_pack("{s:s,s:s,s:o}", "name", "bad", "config", "small", "bid",
                                                         bid(1, 1, 1, 1)), NULL) == 403);
        CHECK(api(tb1, "GET", "/v1/vms/bad", NULL, NULL) == 404);
        json_t *offers = NULL;
        CHECK(api(tb1, "GET", "/v1/vms/m1/offers", NULL, &offers) == 200 && json_array_size(offers) == 0);
        json_decref(offers);

        /* raised (edit while registered): pa1 runs it for 1000 + ceil(32 x 2000 / 1024) = 1063 a
         * second and stores it for 100 per 2 s; pb1 for 500 + ceil(32 x 1000 / 1024) = 532 and
         * 1000; pa2 for 3000 + 125 and 300. Cheapest first by 30 days stored and running: pb1
         * (532 x 2592000 + 1000 x 1296000), pa1 (1063 x 2592000 + 100 x 1296000), pa2 */
        CHECK(api(tb1, "PATCH", "/v1/vms/m1", json_pack("{s:o}", "bid", bid(2000, 2, 5000, 1)), NULL) == 200);
        CHECK(api(tb2, "PATCH", "/v1/vms/m1", json_pack("{s:o}", "bid", bid(1, 1, 1, 1)), NULL) == 404);
        CHECK(api(tp1, "PATCH", "/v1/vms/m1", json_pack("{s:o}", "bid", bid(1, 1, 1, 1)), NULL) == 403);
        CHECK(api(tb1, "GET", "/v1/vms/m1/offers", NULL, &offers) == 200 && json_array_size(offers) == 3);
        const char *order[] = { "pb1", "pa1", "pa2" };
        for (size_t i = 0; i < 3 && i < json_array_size(offers); i++) {
                json_t *of = json_array_get(offers, i);
                CHECK_STREQ(json_string_value(json_object_get(of, "rm")), order[i]);
                CHECK(json_is_object(json_object_get(of, "free")) && json_object_get(of, "provider"));
        }
        CHECK(jint(json_array_get(offers, 1), "running_price") == 1063);
        CHECK(jint(json_array_get(offers, 1), "storage_price") == 100);
        json_decref(offers);
        /* a bid that covers storage at pb1 but not at... storage 900 per 2 s: pb1's 1000 is out */
        CHECK(api(tb1, "PATCH", "/v1/vms/m1", json_pack("{s:o}", "bid", bid(900, 2, 5000, 1)), NULL) == 200);
        CHECK(api(tb1, "GET", "/v1/vms/m1/offers", NULL, &offers) == 200 && json_array_size(offers) == 2);
        json_decref(offers);
        CHECK(api(tb1, "POST", "/v1/vms/m1/store", json_pack("{s:s}", "rm", "pb1"), NULL) == 409); /* above the bid */
        CHECK(api(tb2, "POST", "/v1/vms/m1/store", json_pack("{s:s}", "rm", "pa1"), NULL) == 404);
        CHECK(api(tb1, "POST", "/v1/vms/m1/store", json_pack("{s:s}", "rm", "pa1"), &vm) == 200);
        CHECK_STREQ(json_string_value(json_object_get(vm, "state")), "stored");
        json_t *terms = json_object_get(json_object_get(vm, "market"), "terms");
        CHECK(jint(terms, "running_price") == 1063 && jint(terms, "storage_price") == 100);
        json_decref(vm);
        /* stored at a chamber's offer: it boots there; activate (a production RM's) is not offered */
        CHECK(api(tb1, "GET", "/v1/vms/m1", NULL, &vm) == 200);
        bool boots = false, activates = false;
        size_t ai;
        json_t *an;
        json_array_foreach(json_object_get(vm, "actions"), ai, an) {
                boots |= streq(json_string_value(an) ?: "", "boot");
                activates |= streq(json_string_value(an) ?: "", "activate");
        }
        CHECK(boots && !activates);
        json_decref(vm);
        /* stored: its size and prices are fixed (Figure 12), it is not stored twice */
        CHECK(api(tb1, "PATCH", "/v1/vms/m1", json_pack("{s:i}", "memory_mib", 64), NULL) == 409);
        CHECK(api(tb1, "POST", "/v1/vms/m1/store", json_pack("{s:s}", "rm", "pa2"), NULL) == 409);
        /* the offer's new price applies to new stores only */
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(2, 5000, 1024, 2000, 1, 10, 100, 2), NULL) == 200);
        CHECK(api(tb1, "GET", "/v1/vms/m1", NULL, &vm) == 200);
        CHECK(jint(json_object_get(json_object_get(vm, "market"), "terms"), "running_price") == 1063);
        json_decref(vm);
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(2, 1000, 1024, 2000, 1, 10, 100, 2), NULL) == 200);
        /* the provider sees it, read only */
        json_t *list = NULL;
        CHECK(api(tp1, "GET", "/v1/offers", NULL, &list) == 200);
        json_t *machines = json_object_get(json_array_get(list, 0), "machines");
        CHECK(json_array_size(machines) == 1);
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(machines, 0), "buyer")), "b1");
        json_decref(list);
        CHECK(api(tp1, "GET", "/v1/vms/m1", NULL, &vm) == 200);
        CHECK(json_array_size(json_object_get(vm, "actions")) == 0); /* metadata only: no actions */
        json_decref(vm);
        CHECK(api(tp1, "GET", "/v1/vms", NULL, &list) == 200);
        CHECK(json_array_size(list) == 1 && json_array_size(json_object_get(json_array_get(list, 0), "actions")) == 0);
        json_decref(list);
        /* paged, a page counts what the provider sees: m1, then the end */
        CHECK(api(tp1, "GET", "/v1/vms?limit=1", NULL, &list) == 200);
        CHECK(json_array_size(list) == 1 &&
              streq(json_string_value(json_object_get(json_array_get(list, 0), "name")) ?: "", "m1"));
        json_decref(list);
        CHECK(api(tp1, "GET", "/v1/vms?limit=1&after=m1", NULL, &list) == 200);
        CHECK(json_is_array(list) && json_array_size(list) == 0);
        json_decref(list);
        CHECK(api(tb1, "GET", "/v1/vms/m1", NULL, &vm) == 200);
        CHECK(json_array_size(json_object_get(vm, "actions")) > 0); /* its buyer's: boot, delete, ... */
        json_decref(vm);
        CHECK(api(tp2, "GET", "/v1/vms/m1", NULL, NULL) == 404);
        /* the offer cannot shrink below what is stored there, nor go */
        CHECK(api(tp1, "PUT", "/v1/offers/pa1", offer_body(2, 1000, 16, 2000, 1, 10, 100, 2), NULL) == 409);
        CHECK(api(tp1, "DELETE", "/v1/offers/pa1", NULL, NULL) == 409);
        CHECK(admin("POST", "/v1/rms/pa1/assign", json_pack("{s:s}", "provider", "p2"), NULL) == 409);

        /* a full offer: pa1 has 1024 - 32 MiB left */
        CHECK(api(tb2, "POST", "/v1/machines", json_pack("{s:s,s:s,s:i,s:i,s:i,s:o}", "name", "big", "image",
                                                         "tiny-http", "memory_mib", 1024, "vcpus", 1, "disk_gib", 1,
                                                         "bid", bid(1000000, 1, 1000000, 1)), NULL) == 201);
        json_t *err = NULL;
        CHECK(api(tb2, "POST", "/v1/vms/big/store", json_pack("{s:s}", "rm", "pa1"), &err) == 409);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(err, "error"), "code")), "offer_full");
        json_decref(err);
        CHECK(api(tb2, "DELETE", "/v1/vms/big", NULL, NULL) == 202 || true);
}

/* ---- running, migrating, the ledger ---- */

/* Is a span of this state due for running, after a span that was (prev)? As billing.h says. */
static bool running_due(const char *state, bool prev) {
        if (streq(state, "loading") || streq(state, "active"))
                return true;
        static const char *const transit[] = { "suspending", "stopping", "hibernating", "deactivating", "draining",
                                               "deleting", "migrating", "activating" };
        for (size_t i = 0; i < ELEMENTSOF(transit); i++)
                if (streq(state, transit[i]))
                        return prev;
        return false;
}

/* The ledger of vm against its history up to the last charge: running charges exactly cover
 * the running intervals that ended, storage charges are contiguous from the store, each charge
 * is its span's price prorated and names that span's provider. */
static void ledger_check(const char *token, const char *vm, const char *buyer) {
        char path[160];
        snprintf(path, sizeof path, "/v1/vms/%s/history", vm);
        json_t *hist = NULL, *acct = NULL;
        CHECK(api(token, "GET", path, NULL, &hist) == 200);
        snprintf(path, sizeof path, "/v1/accounts/%s?limit=10000&vm=%s", buyer, vm);
        CHECK(api(token, "GET", path, NULL, &acct) == 200);
        json_t *spans = json_object_get(hist, "spans"), *charges = json_object_get(acct, "charges");
        size_t n = json_array_size(spans);
        CHECK(n > 2 && json_array_size(charges) > 0);
        /* each charge: inside one span's segment, priced by it */
        json_int_t run_charged = 0, storage_end = 0, storage_start = INT64_MAX;
        size_t i;
        json_t *c;
        json_int_t last_end = 0;
        json_array_foreach(charges, i, c) {
                json_int_t s = jint(c, "period_start"), e = jint(c, "period_end"), amount = jint(c, "amount");
                const char *kind = json_string_value(json_object_get(c, "kind"));
                last_end = MAX(last_end, e);
                /* the span in force at its start */
                size_t k = 0;
                for (size_t j = 0; j < n; j++)
                        if (jint(json_array_get(spans, j), "at_ms") <= s)
                                k = j;
                json_t *sp = json_array_get(spans, k), *terms = json_object_get(sp, "terms");
                bool storage = streq(kind, "storage");
                json_int_t price = jint(terms, storage ? "storage_price" : "running_price");
                json_int_t period = jint(terms, storage ? "storage_period_s" : "running_period_s") * 1000;
                json_int_t want = (json_int_t)(((__int128)price * (e - s) * 2 + period) / (2 * period));
                CHECK(amount == want);
                CHECK_STREQ(json_string_value(json_object_get(c, "provider")),
                            json_string_value(json_object_get(sp, "provider")));
                if (storage) {
                        storage_start = MIN(storage_start, s);
                        storage_end = MAX(storage_end, e);
                } else {
                        run_charged += e - s;
                }
        }
        /* storage: contiguous, no gap and no overlap, from the store on */
        json_int_t covered = 0;
        json_array_foreach(charges, i, c) if (streq(json_string_value(json_object_get(c, "kind")), "storage")) covered +=
                jint(c, "period_end") - jint(c, "period_start");
        CHECK(covered == storage_end - storage_start);
        json_int_t stored_at = 0;
        for (size_t j = 0; j < n && !stored_at; j++)
                if (streq(json_string_value(json_object_get(json_array_get(spans, j), "state")), "stored"))
                        stored_at = jint(json_array_get(spans, j), "at_ms");
        CHECK(storage_start == stored_at);
        /* running: every running interval that ended before the last charge, exactly */
        json_int_t run_due = 0;
        bool prev = false;
        for (size_t j = 0; j + 1 < n; j++) {
                json_t *sp = json_array_get(spans, j);
                bool due = running_due(json_string_value(json_object_get(sp, "state")), prev);
                json_int_t a = jint(sp, "at_ms"), b = jint(json_array_get(spans, j + 1), "at_ms");
                if (due && b <= last_end)
                        run_due += b - a;
                prev = due;
        }
        CHECK(run_due > 0);
        CHECK(run_charged == run_due);
        if (run_charged != run_due)
                fprintf(stderr, "running charged %lld ms, due %lld ms\n", (long long)run_charged, (long long)run_due);
        json_decref(hist);
        json_decref(acct);
}

static void test_run_and_bill(void) {
        CHECK(api(tp1, "POST", "/v1/accounts/b1/deposit", json_pack("{s:i}", "amount", 1000000), NULL) == 403);
        CHECK(api(tb1, "POST", "/v1/accounts/b1/deposit", json_pack("{s:i}", "amount", 1000000), NULL) == 403);
        CHECK(admin("POST", "/v1/accounts/b1/deposit", json_pack("{s:i}", "amount", -5), NULL) == 400);
        CHECK(admin("POST", "/v1/accounts/nobody/deposit", json_pack("{s:i}", "amount", 5), NULL) == 404);
        CHECK(admin("POST", "/v1/accounts/b1/deposit", json_pack("{s:i}", "amount", 100000000), NULL) == 200);
        /* only at its offer's RM */
        CHECK(api(tb1, "POST", "/v1/vms/m1/boot", json_pack("{s:s}", "rm", "pa2"), NULL) == 409);
        CHECK(api(tp1, "POST", "/v1/vms/m1/boot", json_object(), NULL) == 403);
        CHECK(act(tb1, "m1", "boot", NULL, "loading"));
        char rm[32] = "";
        daemons_vm_state(&D, "m1", (char[32]){ 0 }, rm);
        CHECK_STREQ(rm, "pa1");
        usleep(2500 * 1000);
        CHECK(act(tb1, "m1", "suspend", NULL, "suspended"));
        usleep(1500 * 1000);
        /* a destination without room: refused, and nothing changes (b2's m3 holds 490 of pb1's 512 MiB) */
        CHECK(api(tb2, "POST", "/v1/machines", json_pack("{s:s,s:s,s:i,s:i,s:i,s:o}", "name", "m3", "image",
                                                         "tiny-http", "memory_mib", 490, "vcpus", 1, "disk_gib", 1,
                                                         "bid", bid(1000000, 1, 1000000, 1)), NULL) == 201);
        CHECK(api(tb2, "POST", "/v1/vms/m3/store", json_pack("{s:s}", "rm", "pb1"), NULL) == 200);
        int64_t version = daemons_vm_version(&D, "m1");
        json_t *err = NULL;
        CHECK(api(tb1, "POST", "/v1/vms/m1/migrate", json_pack("{s:s,s:s}", "rm", "pb1", "method", "chunks"), &err) ==
              409);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(err, "error"), "code")), "offer_full");
        json_decref(err);
        CHECK(daemons_vm_version(&D, "m1") == version);
        CHECK(act(tb2, "m3", "delete", NULL, ""));
        /* to the other provider: its room is held, the prices are its own from the switch on */
        CHECK(act(tb1, "m1", "migrate", json_pack("{s:s,s:s}", "rm", "pb1", "method", "chunks"), "suspended"));
        json_t *vm = NULL;
        CHECK(api(tb1, "GET", "/v1/vms/m1", NULL, &vm) == 200);
        json_t *m = json_object_get(vm, "market");
        CHECK_STREQ(json_string_value(json_object_get(m, "offer")), "pb1");
        CHECK_STREQ(json_string_value(json_object_get(m, "provider")), "p2");
        CHECK(jint(json_object_get(m, "terms"), "running_price") == 532);
        CHECK_STREQ(json_string_value(json_object_get(vm, "rm")), "pb1");
        json_decref(vm);
        CHECK(api(tp2, "GET", "/v1/vms/m1", NULL, NULL) == 200);
        CHECK(api(tp1, "GET", "/v1/vms/m1", NULL, NULL) == 404);
        usleep(1000 * 1000);
        /* and back to p1's other RM, by whole files */
        CHECK(act(tb1, "m1", "migrate", json_pack("{s:s,s:s}", "rm", "pa2", "method", "full"), "suspended"));
        CHECK(act(tb1, "m1", "resume", NULL, "loading"));
        usleep(2000 * 1000);
        CHECK(act(tb1, "m1", "stop", NULL, "stored"));
        /* stored, it migrates too: only its offer and prices move */
        CHECK(act(tb1, "m1", "migrate", json_pack("{s:s,s:s}", "rm", "pa1", "method", "chunks"), "stored"));
        usleep(2500 * 1000); /* a storage period at pa1 ends */
        ledger_check(tb1, "m1", "b1");
        /* the balances: the buyer's deposits less its charges; the providers' their credits */
        json_t *a = NULL, *p = NULL;
        CHECK(api(tb1, "GET", "/v1/account", NULL, &a) == 200);
        json_int_t charged = 0;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(a, "charges"), i, c) charged += jint(c, "amount");
        CHECK(jint(a, "balance") == 100000000 - charged);
        CHECK(jint(a, "rate_per_hour") > 0 && json_is_integer(json_object_get(a, "runs_out_s")));
        json_decref(a);
        json_int_t credited = 0;
        CHECK(api(tp1, "GET", "/v1/accounts/p1?limit=10000", NULL, &p) == 200);
        json_array_foreach(json_object_get(p, "charges"), i, c) credited += jint(c, "amount");
        CHECK(credited > 0 && jint(p, "balance") == credited);
        json_decref(p);
        CHECK(api(tb2, "GET", "/v1/accounts/b1", NULL, NULL) == 404);
        CHECK(api(tp1, "GET", "/v1/accounts/b1", NULL, NULL) == 404);
        /* every charge is an event */
        json_t *events = NULL;
        char path[96];
        snprintf(path, sizeof path, "/v1/events?after=0&limit=1000");
        CHECK(admin("GET", path, NULL, &events) == 200);
        size_t n_charge = 0, n_store = 0, n_registered = 0, n_provider = 0, n_offer = 0;
        json_t *e;
        json_array_foreach(events, i, e) {
                const char *k = json_string_value(json_object_get(e, "kind"));
                n_charge += streq(k, "charge");
                n_store += streq(k, "store");
                n_registered += streq(k, "registered");
                n_provider += streq(k, "provider-migration");
                n_offer += streq(k, "offer-migration");
        }
        CHECK(n_charge > 5 && n_store >= 1 && n_registered >= 2);
        CHECK(n_provider == 2 && n_offer == 1); /* pa1 -> pb1 -> pa2, then pa2 -> pa1 while stored */
        json_decref(events);
}

/* ---- an Oracle killed for several periods ---- */

static void test_outage(void) {
        json_t *before = NULL;
        CHECK(api(tb1, "GET", "/v1/accounts/b1?limit=10000&vm=m1", NULL, &before) == 200);
        size_t n_before = json_array_size(json_object_get(before, "charges"));
        json_decref(before);
        daemons_stop(&D.oracle, SIGKILL);
        usleep(5000 * 1000); /* two and a half storage periods of 2 s */
        CHECK(daemons_restart(&D, &D.oracle, NULL) == 0);
        usleep(2500 * 1000);
        json_t *after = NULL;
        CHECK(api(tb1, "GET", "/v1/accounts/b1?limit=10000&vm=m1", NULL, &after) == 200);
        size_t n_after = json_array_size(json_object_get(after, "charges"));
        CHECK(n_after >= n_before + 3);
        /* no period twice: the ledger's key forbids it; no gap: ledger_check's contiguity */
        json_decref(after);
        ledger_check(tb1, "m1", "b1");
}

/* ---- money runs out ---- */

static void test_unpaid(void) {
        /* b2 pays pb1 532 a second to run; 4000 lasts under 8 s */
        CHECK(admin("POST", "/v1/accounts/b2/deposit", json_pack("{s:i}", "amount", 4000), NULL) == 200);
        CHECK(api(tb2, "POST", "/v1/machines", json_pack("{s:s,s:s,s:o}", "name", "m2", "config", "small", "bid",
                                                         bid(2000, 2, 5000, 1)), NULL) == 201);
        CHECK(api(tb2, "POST", "/v1/vms/m2/store", json_pack("{s:s}", "rm", "pb1"), NULL) == 200);
        CHECK(act(tb2, "m2", "boot", NULL, "loading"));
        CHECK(daemons_vm_wait_state(&D, "m2", "suspended", daemons_now_ms() + 20000));
        json_t *err = NULL;
        CHECK(api(tb2, "POST", "/v1/vms/m2/resume", json_object(), &err) == 402);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(err, "error"), "code")), "payment_required");
        json_decref(err);
        json_t *a = NULL;
        CHECK(api(tb2, "GET", "/v1/account", NULL, &a) == 200);
        CHECK(json_array_size(json_object_get(a, "unpaid_suspended")) == 1);
        json_decref(a);
        /* a deposit resumes it */
        CHECK(admin("POST", "/v1/accounts/b2/deposit", json_pack("{s:i}", "amount", 100000000), NULL) == 200);
        CHECK(daemons_vm_wait_state(&D, "m2", "loading", daemons_now_ms() + 20000));
        json_t *events = NULL;
        CHECK(admin("GET", "/v1/events?after=0&limit=10000", NULL, &events) == 200);
        size_t i, sus = 0, res = 0;
        json_t *e;
        json_array_foreach(events, i, e) {
                const char *k = json_string_value(json_object_get(e, "kind"));
                sus += streq(k, "unpaid-suspend");
                res += streq(k, "unpaid-resume");
        }
        CHECK(sus == 1 && res == 1);
        json_decref(events);
        CHECK(act(tb2, "m2", "stop", NULL, "stored"));
        /* the buyer follows its delete to the end, when the machine is gone (vm delete waits on
         * GET /v1/ops/ID); another buyer does not, not even through a new m2 of its own */
        json_t *del = NULL;
        CHECK(api(tb2, "POST", "/v1/vms/m2/delete", json_object(), &del) == 202);
        const char *op = json_string_value(json_object_get(json_object_get(del, "op"), "id"));
        char st[16] = "", path[96] = "/v1/ops/none";
        if (op) {
                daemons_op_wait(&D, op, daemons_now_ms() + 30000, st);
                snprintf(path, sizeof path, "/v1/ops/%s", op);
        }
        CHECK_STREQ(st, "done");
        CHECK(api(tb2, "GET", path, NULL, NULL) == 200);
        CHECK(api(tb1, "GET", path, NULL, NULL) == 404);
        CHECK(api(tb1, "POST", "/v1/machines", json_pack("{s:s,s:s,s:o}", "name", "m2", "config", "small", "bid",
                                                         bid(2000, 2, 5000, 1)), NULL) == 201);
        CHECK(api(tb1, "GET", path, NULL, NULL) == 404);
        CHECK(api(tb2, "GET", path, NULL, NULL) == 200);
        CHECK(act(tb1, "m2", "delete", NULL, ""));
        json_decref(del);
}

/* ---- the provider's RM fails ---- */

/* A machine running on pb1 when pb1's node is killed: once the RM is declared down the machine
 * is failed, and its running charges end at pb1's last heartbeat, not when the Oracle noticed
 * (some 5 s later): no charge across a provider's failure. */
static void test_provider_failure(void) {
        CHECK(api(tb2, "POST", "/v1/machines", json_pack("{s:s,s:s,s:o}", "name", "m4", "config", "small", "bid",
                                                         bid(2000, 2, 5000, 1)), NULL) == 201);
        CHECK(api(tb2, "POST", "/v1/vms/m4/store", json_pack("{s:s}", "rm", "pb1"), NULL) == 200);
        CHECK(act(tb2, "m4", "boot", NULL, "loading"));
        usleep(2500 * 1000);
        daemon_t *pb1 = daemons_node(&D, "pb1");
        int64_t killed = 0;
        if (pb1) {
                /* the wall clock, as the history's */
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                killed = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
                daemons_stop(pb1, SIGKILL);
        }
        CHECK(daemons_vm_wait_state(&D, "m4", "failed", daemons_now_ms() + 20000));
        json_t *hist = NULL, *acct = NULL;
        CHECK(api(tb2, "GET", "/v1/vms/m4/history", NULL, &hist) == 200);
        json_t *spans = json_object_get(hist, "spans");
        json_t *last = json_array_get(spans, json_array_size(spans) - 1);
        CHECK_STREQ(json_string_value(json_object_get(last, "state")), "failed");
        json_int_t failed_at = jint(last, "at_ms");
        json_int_t loading_at = jint(json_array_get(spans, json_array_size(spans) - 2), "at_ms");
        /* the failure starts at the RM's last heartbeat, not when it was noticed: the "failed" event
         * is written when the RM is declared down, 5 s of silence after that heartbeat */
        json_t *events = NULL;
        json_int_t noticed = 0;
        CHECK(api(daemons_admin_token(), "GET", "/v1/events?last=50&vm=m4&kind=failed", NULL, &events) == 200);
        if (json_array_size(events) > 0)
                noticed = (json_int_t)(json_real_value(json_object_get(json_array_get(events, 0), "time")) * 1000);
        json_decref(events);
        CHECK(failed_at > loading_at && noticed - failed_at >= 4900);
        if (failed_at <= loading_at || noticed - failed_at < 4900)
                fprintf(stderr, "  failed at %lld, noticed at %lld, killed at %lld\n", (long long)failed_at,
                        (long long)noticed, (long long)killed);
        usleep(1500 * 1000); /* the last partial period is posted */
        CHECK(api(tb2, "GET", "/v1/accounts/b2?limit=10000&vm=m4", NULL, &acct) == 200);
        json_int_t run_end = 0;
        size_t i;
        json_t *c;
        json_array_foreach(json_object_get(acct, "charges"), i, c) if (streq(json_string_value(json_object_get(c, "kind")),
                                                                           "running")) run_end =
                MAX(run_end, jint(c, "period_end"));
        CHECK(run_end == failed_at); /* charged up to the failure, and not a millisecond after */
        json_decref(hist);
        json_decref(acct);
}

int main(void) {
        daemons_init(&D, NULL);
        int64_t t0 = daemons_now_ms();
        setup();
        if (tap_failed == 0)
                test_offers();
        if (tap_failed == 0)
                test_register_store();
        if (tap_failed == 0)
                test_run_and_bill();
        if (tap_failed == 0)
                test_outage();
        if (tap_failed == 0)
                test_unpaid();
        if (tap_failed == 0)
                test_provider_failure();
        if (tap_failed)
                daemons_dump_logs(&D);
        fprintf(stderr, "test-marketplace: %lld ms\n", (long long)(daemons_now_ms() - t0));
        daemons_done(&D, tap_failed > 0);
        return tap_finish();
}
