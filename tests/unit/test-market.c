/* Unit tests of the marketplace's arithmetic (market.h) and billing (billing.h). Every expected
 * figure is computed by hand in the comment beside it, never by the code under test. Times in
 * billing histories are offsets in ms from T0, a realistic wall clock. */
#include "market/billing.h"
#include "market/market.h"
#include "base/util.h"
#include "tap.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define T0 INT64_C(1700000000000)

/* ---- money, durations, rates ---- */

static int64_t money(const char *s) {
        int64_t v = -42;
        int r = money_parse(s, &v);
        return r < 0 ? r : v;
}

static void test_money(void) {
        CHECK(money("12") == 12000000);
        CHECK(money("0") == 0);
        CHECK(money("5") == 5000000);
        CHECK(money("0.5") == 500000);
        CHECK(money("1.000001") == 1000001);
        CHECK(money("0.000001") == 1);
        CHECK(money("3.14") == 3140000);
        CHECK(money("007.25") == 7250000);                       /* leading zeros are digits */
        CHECK(money("000000000000000000000000000001") == 1000000); /* and do not overflow */
        CHECK(money("1000000000") == MONEY_INPUT_MAX);           /* 10^9 units */
        CHECK(money("1000000000.000000") == MONEY_INPUT_MAX);
        CHECK(money("1000000000.000001") == -ERANGE);
        CHECK(money("1000000001") == -ERANGE);
        CHECK(money("99999999999999999999999999999999") == -ERANGE);
        CHECK(money("99999999999999999999.5") == -ERANGE);
        /* malformed, whatever its size */
        const char *bad[] = { "",      ".5",    "5.",      "-1",    "+1",     "1e3",  " 1",
                              "1 ",    "1,5",   "1.2.3",   ".",     "abc",    "0x10", "1.-5",
                              "1.0000001", "0.0000000", "99999999999999999999x", "1.5e", "٣" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(money(bad[i]) == -EINVAL);
        int64_t v = 7;
        CHECK(money_parse(NULL, &v) == -EINVAL && v == 7);
        CHECK(money_parse("x", &v) == -EINVAL && v == 7); /* *ret untouched on failure */

        char buf[MONEY_TEXT_MAX];
        money_format(0, buf);
        CHECK_STREQ(buf, "0.000000");
        money_format(1500000, buf);
        CHECK_STREQ(buf, "1.500000");
        money_format(-1500000, buf);
        CHECK_STREQ(buf, "-1.500000");
        money_format(1, buf);
        CHECK_STREQ(buf, "0.000001");
        money_format(-1, buf);
        CHECK_STREQ(buf, "-0.000001");
        money_format(MONEY_INPUT_MAX, buf);
        CHECK_STREQ(buf, "1000000000.000000");
        money_format(INT64_MAX, buf); /* 9223372036854775807 micro */
        CHECK_STREQ(buf, "9223372036854.775807");
        money_format(INT64_MIN, buf);
        CHECK_STREQ(buf, "-9223372036854.775808");
        /* what is printed parses back to the same figure */
        const int64_t round[] = { 0, 1, 999999, 1000000, 123456789, MONEY_INPUT_MAX };
        for (size_t i = 0; i < ELEMENTSOF(round); i++) {
                money_format(round[i], buf);
                CHECK(money(buf) == round[i]);
        }
}

static int64_t duration(const char *s) {
        int64_t v = -42;
        int r = duration_parse(s, &v);
        return r < 0 ? r : v;
}

static void test_duration(void) {
        CHECK(duration("30d") == 2592000); /* 30 x 86400 */
        CHECK(duration("12h") == 43200);   /* 12 x 3600 */
        CHECK(duration("5m") == 300);
        CHECK(duration("3600s") == 3600);
        CHECK(duration("90") == 90);
        CHECK(duration("1") == PERIOD_MIN_S);
        CHECK(duration("1s") == 1);
        CHECK(duration("00001h") == 3600);
        CHECK(duration("3650d") == PERIOD_MAX_S);     /* 315360000 */
        CHECK(duration("87600h") == PERIOD_MAX_S);    /* 3650 x 24 */
        CHECK(duration("5256000m") == PERIOD_MAX_S);  /* 3650 x 1440 */
        CHECK(duration("315360000") == PERIOD_MAX_S);
        CHECK(duration("315360001") == -ERANGE);
        CHECK(duration("3651d") == -ERANGE);
        CHECK(duration("87601h") == -ERANGE);
        CHECK(duration("0") == -ERANGE);
        CHECK(duration("0d") == -ERANGE);
        CHECK(duration("000s") == -ERANGE);
        CHECK(duration("99999999999999999999999d") == -ERANGE);
        CHECK(duration("99999999999999999999999") == -ERANGE);
        const char *bad[] = { "", "d", "s", "1h30m", "5 d", " 5d", "5d ", "5D", "5w", "5ms",
                              "-1", "+1", "1.5h", "1e3", "h5", "5dd", "0x10", "1_000" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                CHECK(duration(bad[i]) == -EINVAL);
        CHECK(duration_parse(NULL, &(int64_t){ 0 }) == -EINVAL);

        char buf[DURATION_TEXT_MAX];
        const struct {
                int64_t s;
                const char *text;
        } fmt[] = {
                { 2592000, "30d" }, { 86400, "1d" }, { 3600, "1h" }, { 90, "90s" }, { 300, "5m" },
                { 90000, "25h" },   /* 90000 / 86400 is not whole, 90000 / 3600 = 25 */
                { 86460, "1441m" }, /* 86400 + 60: 1441 minutes */
                { 61, "61s" },      { 0, "0s" }, { -3600, "-1h" }, { PERIOD_MAX_S, "3650d" },
        };
        for (size_t i = 0; i < ELEMENTSOF(fmt); i++) {
                duration_format(fmt[i].s, buf);
                CHECK_STREQ(buf, fmt[i].text);
                if (fmt[i].s >= PERIOD_MIN_S)
                        CHECK(duration(buf) == fmt[i].s);
        }
}

static void test_rate(void) {
        int64_t price = -1, period = -1;
        CHECK(rate_parse("3/30d", &price, &period) == 0);
        CHECK(price == 3000000 && period == 2592000);
        CHECK(rate_parse("0.5/1h", &price, &period) == 0);
        CHECK(price == 500000 && period == 3600);
        CHECK(rate_parse("0/1", &price, &period) == 0);
        CHECK(price == 0 && period == 1);
        /* a price longer than MONEY_TEXT_MAX is still read whole */
        CHECK(rate_parse("0000000000000000000000000000000000000001.5/90", &price, &period) == 0);
        CHECK(price == 1500000 && period == 90);

        const struct {
                const char *s;
                int r;
        } bad[] = {
                { "", -EINVAL },          { "3", -EINVAL },          { "/30d", -EINVAL },
                { "3/", -EINVAL },        { "3/30d/1", -EINVAL },    { "3//30d", -EINVAL },
                { "-3/30d", -EINVAL },    { "3 /30d", -EINVAL },     { "3/ 30d", -EINVAL },
                { ".5/1h", -EINVAL },     { "3/30x", -EINVAL },      { "3/0", -ERANGE },
                { "3/3651d", -ERANGE },   { "1000000001/1d", -ERANGE },
                { "1000000001/x", -EINVAL }, /* malformed beats out of range */
                { "x/0", -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                price = period = 7;
                CHECK(rate_parse(bad[i].s, &price, &period) == bad[i].r);
                CHECK(price == 7 && period == 7);
        }
        CHECK(rate_parse(NULL, &price, &period) == -EINVAL);
}

/* ---- offers, prices, bids ---- */

static market_offer_t good_offer(void) {
        return (market_offer_t){ .vcpus = 4, .vcpu_price = 10000, .memory_mib = 8192, .memory_price = 2000,
                                 .running_period_s = 3600, .disk_gib = 100, .disk_price = 50000,
                                 .storage_period_s = 86400 };
}

static void test_offer_check(void) {
        market_offer_t o = good_offer();
        const char *field = "untouched";
        CHECK(market_offer_check(&o, &field) == 0);
        CHECK_STREQ(field, "untouched");
        CHECK(market_offer_check(&o, NULL) == 0);

        /* each field at its bounds, then just past them */
        const struct {
                const char *name;
                size_t offset;
                int64_t lo, hi;
        } f[] = {
                { "vcpus", offsetof(market_offer_t, vcpus), 1, 4096 },
                { "vcpu_price", offsetof(market_offer_t, vcpu_price), 0, MONEY_INPUT_MAX },
                { "memory_mib", offsetof(market_offer_t, memory_mib), 1, INT64_C(67108864) }, /* 64 x 1024 x 1024 */
                { "memory_price", offsetof(market_offer_t, memory_price), 0, MONEY_INPUT_MAX },
                { "running_period_s", offsetof(market_offer_t, running_period_s), 1, 315360000 },
                { "disk_gib", offsetof(market_offer_t, disk_gib), 1, INT64_C(1048576) }, /* 1024 x 1024 */
                { "disk_price", offsetof(market_offer_t, disk_price), 0, MONEY_INPUT_MAX },
                { "storage_period_s", offsetof(market_offer_t, storage_period_s), 1, 315360000 },
        };
        for (size_t i = 0; i < ELEMENTSOF(f); i++) {
                const int64_t vals[] = { f[i].lo, f[i].hi, f[i].lo - 1, f[i].hi + 1, -1, INT64_MIN, INT64_MAX };
                /* -1 below 0 is "not a number" (-EINVAL); anything else outside is -ERANGE */
                const int want[] = { 0, 0, f[i].lo - 1 < 0 ? -EINVAL : -ERANGE, -ERANGE, -EINVAL, -EINVAL, -ERANGE };
                for (size_t j = 0; j < ELEMENTSOF(vals); j++) {
                        o = good_offer();
                        *(int64_t *)((char *)&o + f[i].offset) = vals[j];
                        field = NULL;
                        int r = market_offer_check(&o, &field);
                        CHECK(r == want[j]);
                        if (want[j] < 0)
                                CHECK_STREQ(field, f[i].name);
                        else
                                CHECK(field == NULL);
                }
        }
        /* the first bad field is named */
        o = good_offer();
        o.disk_gib = 0;
        o.vcpu_price = -5;
        CHECK(market_offer_check(&o, &field) == -EINVAL);
        CHECK_STREQ(field, "vcpu_price");
        CHECK(market_offer_check(NULL, &field) == -EINVAL);
        CHECK_STREQ(field, "offer");
}

static void test_price(void) {
        market_offer_t o = good_offer();
        market_terms_t t;
        /* 2 vCPUs, 1.5 GiB, 10 GiB of disk; memory at 3 micro per GiB:
         * running = 2 x 10000 + 1536 x 3 / 1024 = 20000 + 4.5 -> 20005 (up);
         * storage = 10 x 50000 = 500000 */
        o.memory_price = 3;
        market_price(&o, &(market_config_t){ .memory_mib = 1536, .vcpus = 2, .disk_gib = 10 }, &t);
        CHECK(t.running_price == 20005 && t.running_period_s == 3600);
        CHECK(t.storage_price == 500000 && t.storage_period_s == 86400);

        /* the offer's own figures: 4 x 10000 + 8192 x 2000 / 1024 = 40000 + 16000 = 56000;
         * 100 x 50000 = 5000000 */
        o = good_offer();
        market_price(&o, &(market_config_t){ .memory_mib = 8192, .vcpus = 4, .disk_gib = 100 }, &t);
        CHECK(t.running_price == 56000 && t.storage_price == 5000000);

        /* memory rounding alone (no vCPUs): */
        const struct {
                int64_t mib, price, want;
        } mem[] = {
                { 1, 1, 1 },          /* 1/1024 of a micro -> 1 */
                { 1024, 7, 7 },       /* whole GiB: exact */
                { 1025, 1024, 1025 }, /* 1025 x 1024 / 1024: exact */
                { 1025, 1000, 1001 }, /* 1025000 / 1024 = 1000.98 -> 1001 */
                { 512, 1, 1 },        /* 0.5 -> 1 (up, not half up) */
                { 1023, 1024, 1023 }, /* 1023 x 1024 / 1024 = 1023 */
                { 0, 1000, 0 },
                { 3, 0, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(mem); i++) {
                o = good_offer();
                o.memory_price = mem[i].price;
                market_price(&o, &(market_config_t){ .memory_mib = mem[i].mib }, &t);
                CHECK(t.running_price == mem[i].want);
                CHECK(t.storage_price == 0);
        }

        /* the largest offer, all of it: 4096 x 10^15 + 65536 x 10^15 > 2^63, and 2^20 x 10^15
         * > 2^63: saturate rather than wrap */
        o = (market_offer_t){ .vcpus = 4096, .vcpu_price = MONEY_INPUT_MAX, .memory_mib = INT64_C(67108864),
                              .memory_price = MONEY_INPUT_MAX, .running_period_s = 1, .disk_gib = INT64_C(1048576),
                              .disk_price = MONEY_INPUT_MAX, .storage_period_s = 1 };
        CHECK(market_offer_check(&o, NULL) == 0);
        market_price(&o, &(market_config_t){ .memory_mib = o.memory_mib, .vcpus = o.vcpus, .disk_gib = o.disk_gib }, &t);
        CHECK(t.running_price == INT64_MAX && t.storage_price == INT64_MAX);
        /* but 4096 vCPUs alone: 4096 x 10^15 = 4.096 x 10^18 < 2^63 */
        market_price(&o, &(market_config_t){ .vcpus = 4096 }, &t);
        CHECK(t.running_price == INT64_C(4096) * MONEY_INPUT_MAX);
}

static void test_price_per(void) {
        /* 1 unit per 3600 s is 720 units per 30 days (2592000 / 3600 = 720) */
        CHECK(market_price_per(1000000, 3600, 2592000) == 720000000);
        /* 3 units per 30 days, per hour: 3000000 x 3600 / 2592000 = 4166.67 -> 4167 */
        CHECK(market_price_per(3000000, 2592000, 3600) == 4167);
        CHECK(market_price_per(1, 2, 1) == 1);   /* 0.5 -> 1 */
        CHECK(market_price_per(1, 3, 1) == 0);   /* 0.33 -> 0 */
        CHECK(market_price_per(2, 3, 1) == 1);   /* 0.67 -> 1 */
        CHECK(market_price_per(5, 2, 1) == 3);   /* 2.5 -> 3 */
        CHECK(market_price_per(-5, 2, 1) == -2); /* -2.5 -> -2 (half up, toward +infinity) */
        CHECK(market_price_per(-7, 2, 1) == -3); /* -3.5 -> -3 */
        CHECK(market_price_per(0, 60, 3600) == 0);
        CHECK(market_price_per(100, 0, 3600) == 0);
        CHECK(market_price_per(100, -1, 3600) == 0);
        /* 10^15 x 315360000 / 1 = 3.15 x 10^23: saturates */
        CHECK(market_price_per(MONEY_INPUT_MAX, 1, PERIOD_MAX_S) == INT64_MAX);
        /* 10^15 per 3650 days, per 1 s: 10^15 / 315360000 = 3170979.198 -> 3170979 */
        CHECK(market_price_per(MONEY_INPUT_MAX, PERIOD_MAX_S, 1) == 3170979);
}

static void test_bid_covers(void) {
        /* bid: 3 per 30 days storage, 1 per hour running */
        market_terms_t bid = { .storage_price = 3000000, .storage_period_s = 2592000,
                               .running_price = 1000000, .running_period_s = 3600 };
        /* price: 0.1 per day (= 3 per 30 days: 3000000 x 86400 = 100000 x 2592000 = 2.592e11),
         *        24 per day (= 1 per hour: 1000000 x 86400 = 24000000 x 3600 = 8.64e10) */
        market_terms_t price = { .storage_price = 100000, .storage_period_s = 86400,
                                 .running_price = 24000000, .running_period_s = 86400 };
        CHECK(market_bid_covers(&bid, &price)); /* equal: covers */
        price.storage_price = 100001; /* 100001 x 2592000 = 259202592000 > 259200000000 */
        CHECK(!market_bid_covers(&bid, &price));
        price.storage_price = 100000;
        price.running_price = 24000001; /* one micro more per day: running no longer covered */
        CHECK(!market_bid_covers(&bid, &price));
        price.running_price = 23999999;
        CHECK(market_bid_covers(&bid, &price));

        /* where rounding to a common period would lie: bid 1 per 3 s against 0.333333 per s:
         * 1000000 x 1 = 1000000 >= 333333 x 3 = 999999: covers; 0.333334 per s: 1000002: not */
        bid = (market_terms_t){ .storage_price = 1000000, .storage_period_s = 3, .running_price = 0,
                                .running_period_s = 1 };
        price = (market_terms_t){ .storage_price = 333333, .storage_period_s = 1, .running_price = 0,
                                  .running_period_s = 7 };
        CHECK(market_bid_covers(&bid, &price));
        price.storage_price = 333334;
        CHECK(!market_bid_covers(&bid, &price));
        /* a free price is covered by a free bid; a period of 0 covers nothing */
        price = (market_terms_t){ .storage_period_s = 1, .running_period_s = 1 };
        bid = (market_terms_t){ .storage_period_s = PERIOD_MAX_S, .running_period_s = PERIOD_MAX_S };
        CHECK(market_bid_covers(&bid, &price));
        bid.running_period_s = 0;
        CHECK(!market_bid_covers(&bid, &price));
        /* the largest figures: 10^15 x 315360000 fits in 128 bits */
        bid = (market_terms_t){ MONEY_INPUT_MAX, PERIOD_MIN_S, MONEY_INPUT_MAX, PERIOD_MIN_S };
        price = (market_terms_t){ MONEY_INPUT_MAX, PERIOD_MAX_S, MONEY_INPUT_MAX, PERIOD_MAX_S };
        CHECK(market_bid_covers(&bid, &price));
        CHECK(!market_bid_covers(&price, &bid));
}

/* ---- billing ---- */

typedef struct history {
        billing_span_t v[32];
        size_t n;
} history_t;

/* Appends a span at T0 + at (ms). */
static void add(history_t *h, int64_t at, const char *state, const char *offer, const char *provider,
                market_terms_t terms) {
        billing_span_t *s = &h->v[h->n++];
        *s = (billing_span_t){ .at_ms = T0 + at, .terms = terms };
        SET(s->state, state);
        SET(s->offer, offer);
        SET(s->provider, provider);
}

static market_terms_t terms(int64_t storage_price, int64_t storage_period_s, int64_t running_price,
                            int64_t running_period_s) {
        return (market_terms_t){ storage_price, storage_period_s, running_price, running_period_s };
}

typedef struct result {
        billing_charge_t *v;
        size_t n;
        billing_open_t open[_CHARGE_KIND_MAX];
        billing_charge_t *kind[_CHARGE_KIND_MAX][64]; /* the rows of each kind, in order */
        size_t nkind[_CHARGE_KIND_MAX];
} result_t;

static void result_done(result_t *r) {
        free(r->v);
        *r = (result_t){ 0 };
}

/* billing_compute at T0 + now, since T0 + since (since < 0: 0, everything). */
static int compute(const history_t *h, int64_t now, int64_t since, result_t *r) {
        *r = (result_t){ 0 };
        int ret = billing_compute(h->v, h->n, T0 + now, since < 0 ? 0 : T0 + since, &r->v, &r->n, r->open);
        for (size_t i = 0; ret == 0 && i < r->n; i++) {
                charge_kind_t k = r->v[i].kind;
                if ((unsigned)k < _CHARGE_KIND_MAX && r->nkind[k] < 64)
                        r->kind[k][r->nkind[k]++] = &r->v[i];
        }
        return ret;
}

/* Is the row [T0 + start, T0 + end), amount, at provider? */
static bool row_is(const billing_charge_t *c, int64_t start, int64_t end, int64_t amount, const char *provider) {
        if (!(c && c->start_ms == T0 + start && c->end_ms == T0 + end && c->amount == amount &&
              streq(c->provider, provider)))
                fprintf(stderr, "  row [%lld, %lld) %lld %s\n", c ? (long long)(c->start_ms - T0) : -1,
                        c ? (long long)(c->end_ms - T0) : -1, c ? (long long)c->amount : -1, c ? c->provider : "");
        return c && c->start_ms == T0 + start && c->end_ms == T0 + end && c->amount == amount &&
               streq(c->provider, provider);
}

/* How many rows of kind k cover the instant T0 + t. */
static int covering(const result_t *r, charge_kind_t k, int64_t t) {
        int n = 0;
        for (size_t i = 0; i < r->nkind[k]; i++)
                n += r->kind[k][i]->start_ms <= T0 + t && T0 + t < r->kind[k][i]->end_ms;
        return n;
}

static void test_state_due(void) {
        CHECK_STREQ(charge_kind_name(CHARGE_STORAGE), "storage");
        CHECK_STREQ(charge_kind_name(CHARGE_RUNNING), "running");
        CHECK(charge_kind_name(_CHARGE_KIND_MAX) == NULL);
        CHECK(charge_kind_name((charge_kind_t)-1) == NULL);

        /* storage: everything but registered and deleted, whatever ran before */
        const char *stored[] = { "stored", "loading", "active", "suspended", "failed", "booting", "suspending",
                                 "migrating", "deleting", "storing", "some-future-state" };
        for (size_t i = 0; i < ELEMENTSOF(stored); i++)
                CHECK(billing_state_due(CHARGE_STORAGE, stored[i], false) &&
                      billing_state_due(CHARGE_STORAGE, stored[i], true));
        CHECK(!billing_state_due(CHARGE_STORAGE, "registered", false));
        CHECK(!billing_state_due(CHARGE_STORAGE, "deleted", true));
        CHECK(!billing_state_due(CHARGE_STORAGE, NULL, true));

        /* running: loading and active always; never in failed, stored, suspended, registered */
        for (int prev = 0; prev <= 1; prev++) {
                CHECK(billing_state_due(CHARGE_RUNNING, "loading", prev));
                CHECK(billing_state_due(CHARGE_RUNNING, "active", prev));
                const char *never[] = { "failed", "stored", "suspended", "registered", "deleted",
                                        "booting", "resuming", "some-future-state", "" };
                for (size_t i = 0; i < ELEMENTSOF(never); i++)
                        CHECK(!billing_state_due(CHARGE_RUNNING, never[i], prev));
        }
        /* the other transitional states inherit */
        const char *transit[] = { "suspending", "hibernating", "activating", "deactivating", "draining",
                                  "stopping", "deleting", "migrating", "storing" };
        for (size_t i = 0; i < ELEMENTSOF(transit); i++) {
                CHECK(billing_state_due(CHARGE_RUNNING, transit[i], true));
                CHECK(!billing_state_due(CHARGE_RUNNING, transit[i], false));
        }
        CHECK(!billing_state_due(_CHARGE_KIND_MAX, "active", true));
}

/* (a) Storage across several period boundaries, prorated at delete. */
static void test_storage_delete(void) {
        /* 1 unit per 100 s of storage; running is never due (the machine never runs) */
        market_terms_t t = terms(1000000, 100, 5000000, 10);
        history_t h = { 0 };
        add(&h, 0, "registered", "", "", (market_terms_t){ 0 }); /* nothing due, zero terms are fine */
        add(&h, 5000, "stored", "rm1", "alice", t);
        add(&h, 255000, "deleted", "rm1", "alice", t);
        add(&h, 1, "stored", "rm1", "alice", t); /* after delete: ignored, out of order or not */

        result_t r;
        CHECK(compute(&h, 1000000, -1, &r) == 0);
        /* segment [5000, 255000), P = 100000 ms: [5000,105000) whole, [105000,205000) whole,
         * [205000,255000) 50000 ms: 1000000 x 50000 / 100000 = 500000 */
        CHECK(r.n == 3 && r.nkind[CHARGE_STORAGE] == 3);
        CHECK(row_is(r.kind[CHARGE_STORAGE][0], 5000, 105000, 1000000, "alice"));
        CHECK(row_is(r.kind[CHARGE_STORAGE][1], 105000, 205000, 1000000, "alice"));
        CHECK(row_is(r.kind[CHARGE_STORAGE][2], 205000, 255000, 500000, "alice"));
        CHECK(r.n == 3 && streq(r.v[0].offer, "rm1") && r.v[0].kind == CHARGE_STORAGE);
        CHECK(!r.open[CHARGE_STORAGE].open && !r.open[CHARGE_RUNNING].open);
        result_done(&r);

        /* half up: 7 micro per 100 s, deleted after 50000 ms of the third period: 3.5 -> 4;
         * after 21429 ms: 7 x 21429 / 100000 = 1.50003 -> 2; after 21428: 1.49996 -> 1 */
        const struct {
                int64_t len, want;
        } cut[] = { { 50000, 4 }, { 21429, 2 }, { 21428, 1 }, { 1, 0 }, { 99999, 7 } };
        for (size_t i = 0; i < ELEMENTSOF(cut); i++) {
                h = (history_t){ 0 };
                add(&h, 0, "stored", "rm1", "alice", terms(7, 100, 0, 1));
                add(&h, 200000 + cut[i].len, "deleted", "", "", (market_terms_t){ 0 });
                CHECK(compute(&h, 10000000, -1, &r) == 0);
                CHECK(r.n == 3);
                CHECK(row_is(r.kind[CHARGE_STORAGE][0], 0, 100000, 7, "alice"));
                CHECK(row_is(r.kind[CHARGE_STORAGE][2], 200000, 200000 + cut[i].len, cut[i].want, "alice"));
                result_done(&r);
        }

        /* before the delete, at 150000: only [5000,105000) has ended; the second period is open
         * from 105000 and has accrued 1000000 x 45000 / 100000 = 450000 */
        h = (history_t){ 0 };
        add(&h, 0, "registered", "", "", (market_terms_t){ 0 });
        add(&h, 5000, "stored", "rm1", "alice", t);
        CHECK(compute(&h, 150000, -1, &r) == 0);
        CHECK(r.n == 1 && row_is(r.v, 5000, 105000, 1000000, "alice"));
        billing_open_t *o = &r.open[CHARGE_STORAGE];
        CHECK(o->open && o->start_ms == T0 + 105000 && o->price == 1000000 && o->period_s == 100);
        CHECK_STREQ(o->provider, "alice");
        CHECK(billing_open_accrued(o, T0 + 150000) == 450000);
        CHECK(!r.open[CHARGE_RUNNING].open);
        result_done(&r);
}

/* (b) Running through boot, suspend, resume and stop. */
static void test_running_lifecycle(void) {
        /* running 3.6 units per 60 s (60 micro per ms); storage 1 unit per 1000 s */
        market_terms_t t = terms(1000000, 1000, 3600000, 60);
        history_t h = { 0 };
        add(&h, 0, "stored", "rm1", "alice", t);
        add(&h, 10000, "booting", "rm1", "alice", t);    /* not running */
        add(&h, 25000, "loading", "rm1", "alice", t);    /* running from here */
        add(&h, 145000, "suspending", "rm1", "alice", t); /* still running: inherited */
        add(&h, 150000, "suspended", "rm1", "alice", t); /* stops */
        add(&h, 200000, "resuming", "rm1", "alice", t);  /* not running */
        add(&h, 203000, "loading", "rm1", "alice", t);
        add(&h, 233000, "active", "rm1", "alice", t);    /* same segment */
        add(&h, 263000, "stopping", "rm1", "alice", t);  /* inherited */
        add(&h, 273000, "stored", "rm1", "alice", t);

        result_t r;
        CHECK(compute(&h, 400000, -1, &r) == 0);
        /* segment [25000, 150000): [25000,85000) 3600000, [85000,145000) 3600000,
         *   [145000,150000) 5000 ms x 60 = 300000;
         * segment [203000, 273000): [203000,263000) 3600000, [263000,273000) 10000 x 60 = 600000.
         * Total 11700000 = (125000 + 70000) ms x 60. */
        CHECK(r.nkind[CHARGE_RUNNING] == 5);
        billing_charge_t **run = r.kind[CHARGE_RUNNING];
        CHECK(row_is(run[0], 25000, 85000, 3600000, "alice"));
        CHECK(row_is(run[1], 85000, 145000, 3600000, "alice"));
        CHECK(row_is(run[2], 145000, 150000, 300000, "alice"));
        CHECK(row_is(run[3], 203000, 263000, 3600000, "alice"));
        CHECK(row_is(run[4], 263000, 273000, 600000, "alice"));
        /* nothing while booting or resuming, or suspended, or stored */
        for (int64_t at = 0; at < 400000; at += 500)
                CHECK(covering(&r, CHARGE_RUNNING, at) ==
                      ((at >= 25000 && at < 150000) || (at >= 203000 && at < 273000)));
        /* storage: one segment from 0 through every state, its first period (to 1000000) open */
        CHECK(r.nkind[CHARGE_STORAGE] == 0);
        CHECK(r.open[CHARGE_STORAGE].open && r.open[CHARGE_STORAGE].start_ms == T0);
        CHECK(!r.open[CHARGE_RUNNING].open); /* stored at 400000 */
        result_done(&r);

        /* a rollback (suspending back to loading) stays due throughout: one segment [0, 100000):
         * [0,60000) 3600000, [60000,100000) 40000 x 60 = 2400000 */
        h = (history_t){ 0 };
        add(&h, 0, "loading", "rm1", "alice", t);
        add(&h, 30000, "suspending", "rm1", "alice", t);
        add(&h, 40000, "loading", "rm1", "alice", t);
        add(&h, 100000, "suspended", "rm1", "alice", t);
        CHECK(compute(&h, 200000, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_RUNNING] == 2);
        CHECK(row_is(r.kind[CHARGE_RUNNING][0], 0, 60000, 3600000, "alice"));
        CHECK(row_is(r.kind[CHARGE_RUNNING][1], 60000, 100000, 2400000, "alice"));
        result_done(&r);

        /* a suspend from stored->booting->loading->suspending->suspended: suspending inherits
         * running from loading even when loading lasted 0 ms; booting does not count. Segment
         * [10000, 10500): 500 ms x 60 = 30000 */
        h = (history_t){ 0 };
        add(&h, 0, "stored", "rm1", "alice", t);
        add(&h, 5000, "booting", "rm1", "alice", t);
        add(&h, 10000, "loading", "rm1", "alice", t);
        add(&h, 10000, "suspending", "rm1", "alice", t);
        add(&h, 10500, "suspended", "rm1", "alice", t);
        CHECK(compute(&h, 200000, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_RUNNING] == 1 && row_is(r.kind[CHARGE_RUNNING][0], 10000, 10500, 30000, "alice"));
        result_done(&r);
}

/* (c) A live migration mid-period: the old provider's segment ends at the switch, the new
 * one's starts there, and exactly one provider charges at any instant. */
static void test_migration(void) {
        /* A: storage 1 unit per 1000 s (1 micro/ms), running 0.1 per 100 s (1 micro/ms);
         * B: storage 2 per 1000 s (2 micro/ms), running 0.3 per 100 s (3 micro/ms) */
        market_terms_t a = terms(1000000, 1000, 100000, 100), b = terms(2000000, 1000, 300000, 100);
        history_t h = { 0 };
        add(&h, 0, "stored", "rm-a", "pa", a);
        add(&h, 10000, "booting", "rm-a", "pa", a);
        add(&h, 20000, "loading", "rm-a", "pa", a);
        add(&h, 50000, "active", "rm-a", "pa", a);
        add(&h, 130000, "migrating", "rm-a", "pa", a); /* live: still running at A */
        add(&h, 175000, "active", "rm-b", "pb", b);    /* the switch */
        add(&h, 400000, "stopping", "rm-b", "pb", b);
        add(&h, 410000, "stored", "rm-b", "pb", b);

        result_t r;
        CHECK(compute(&h, 500000, -1, &r) == 0);
        /* running at A [20000, 175000): [20000,120000) 100000, [120000,175000) 55000 x 1 = 55000;
         * at B [175000, 410000): [175000,275000) 300000, [275000,375000) 300000,
         *   [375000,410000) 35000 x 3 = 105000 */
        billing_charge_t **run = r.kind[CHARGE_RUNNING];
        CHECK(r.nkind[CHARGE_RUNNING] == 5);
        CHECK(row_is(run[0], 20000, 120000, 100000, "pa"));
        CHECK(row_is(run[1], 120000, 175000, 55000, "pa"));
        CHECK(row_is(run[2], 175000, 275000, 300000, "pb"));
        CHECK(row_is(run[3], 275000, 375000, 300000, "pb"));
        CHECK(row_is(run[4], 375000, 410000, 105000, "pb"));
        CHECK(r.nkind[CHARGE_RUNNING] == 5 && streq(run[1]->offer, "rm-a") && streq(run[2]->offer, "rm-b"));
        /* storage at A [0, 175000): its first period cut at 175000: 175000 x 1 = 175000; at B the
         * first period (175000 to 1175000) runs, 325000 ms accrued x 2 = 650000 */
        CHECK(r.nkind[CHARGE_STORAGE] == 1 && row_is(r.kind[CHARGE_STORAGE][0], 0, 175000, 175000, "pa"));
        billing_open_t *o = &r.open[CHARGE_STORAGE];
        CHECK(o->open && o->start_ms == T0 + 175000 && streq(o->provider, "pb"));
        CHECK(billing_open_accrued(o, T0 + 500000) == 650000);

        /* one provider at any instant: running rows tile [20000, 410000) with no gap or overlap */
        int64_t sum = 0;
        for (size_t i = 0; i < r.nkind[CHARGE_RUNNING]; i++) {
                sum += run[i]->end_ms - run[i]->start_ms;
                if (i > 0)
                        CHECK(run[i]->start_ms == run[i - 1]->end_ms);
        }
        CHECK(sum == 410000 - 20000);
        for (int64_t at = 0; at < 500000; at += 250) {
                CHECK(covering(&r, CHARGE_RUNNING, at) == (at >= 20000 && at < 410000));
                /* storage: A's row before the switch, B's open period after it */
                CHECK(covering(&r, CHARGE_STORAGE, at) + (at >= 175000) == 1);
        }
        result_done(&r);

        /* a change of terms at the same offer starts a new segment too: running 0.1 per 100 s,
         * then 0.2 per 100 s from 150000: [0,100000) 100000, [100000,150000) 50000 x 1 = 50000,
         * then [150000,250000) 200000 */
        h = (history_t){ 0 };
        add(&h, 0, "active", "rm-a", "pa", a);
        add(&h, 150000, "active", "rm-a", "pa", terms(1000000, 1000, 200000, 100));
        CHECK(compute(&h, 260000, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_RUNNING] == 3);
        CHECK(row_is(r.kind[CHARGE_RUNNING][1], 100000, 150000, 50000, "pa"));
        CHECK(row_is(r.kind[CHARGE_RUNNING][2], 150000, 250000, 200000, "pa"));
        /* storage terms did not change: its segment goes on, nothing ended by 260000 */
        CHECK(r.nkind[CHARGE_STORAGE] == 0 && r.open[CHARGE_STORAGE].start_ms == T0);
        result_done(&r);

        /* at the same terms, another offer or another provider starts a new segment as well:
         * running [0,100000) 100000, [100000,150000) 50000 at pa, then [150000,250000) 100000 at
         * pb; storage [0,150000) 150000 x 1 at pa */
        const char *where[][2] = { { "rm-b", "pb" }, { "rm-a", "pb" }, { "rm-b", "pa" } };
        for (size_t i = 0; i < ELEMENTSOF(where); i++) {
                h = (history_t){ 0 };
                add(&h, 0, "active", "rm-a", "pa", a);
                add(&h, 150000, "active", where[i][0], where[i][1], a);
                CHECK(compute(&h, 260000, -1, &r) == 0);
                CHECK(r.nkind[CHARGE_RUNNING] == 3);
                CHECK(row_is(r.kind[CHARGE_RUNNING][1], 100000, 150000, 50000, "pa"));
                CHECK(row_is(r.kind[CHARGE_RUNNING][2], 150000, 250000, 100000, where[i][1]));
                CHECK(r.nkind[CHARGE_RUNNING] == 3 && streq(r.kind[CHARGE_RUNNING][2]->offer, where[i][0]));
                CHECK(r.nkind[CHARGE_STORAGE] == 1 && row_is(r.kind[CHARGE_STORAGE][0], 0, 150000, 150000, "pa"));
                CHECK(r.open[CHARGE_STORAGE].start_ms == T0 + 150000);
                result_done(&r);
        }
}

static bool rows_equal(const billing_charge_t *x, const billing_charge_t *y) {
        return x->kind == y->kind && x->start_ms == y->start_ms && x->end_ms == y->end_ms && x->amount == y->amount &&
               streq(x->offer, y->offer) && streq(x->provider, y->provider);
}

/* (d) An Oracle outage over several periods: every missed period once, none twice. */
static void test_outage(void) {
        /* active from 0, running 1000 micro per 60 s, storage 0.5 per 100 s */
        history_t h = { 0 };
        add(&h, 0, "active", "rm1", "alice", terms(500000, 100, 1000, 60));

        /* before the outage, at 90000, the Oracle posted the running row [0, 60000) (and the
         * storage periods ended by then: none, the first ends at 100000) */
        result_t before, after, again, late;
        CHECK(compute(&h, 90000, -1, &before) == 0);
        CHECK(before.n == 1 && row_is(before.v, 0, 60000, 1000, "alice"));

        /* back at 400000, since the last end posted (60000): running periods ending 120000,
         * 180000, 240000, 300000, 360000 (5 rows); storage ending 100000..400000 (4 rows) */
        CHECK(compute(&h, 400000, 60000, &after) == 0);
        CHECK(after.nkind[CHARGE_RUNNING] == 5 && after.nkind[CHARGE_STORAGE] == 4);
        for (size_t i = 0; i < after.nkind[CHARGE_RUNNING]; i++)
                CHECK(row_is(after.kind[CHARGE_RUNNING][i], 60000 * (int64_t)(i + 1), 60000 * (int64_t)(i + 2),
                             1000, "alice"));
        for (size_t i = 0; i < after.nkind[CHARGE_STORAGE]; i++)
                CHECK(row_is(after.kind[CHARGE_STORAGE][i], 100000 * (int64_t)i, 100000 * (int64_t)(i + 1),
                             500000, "alice"));

        /* again, since the last end posted (400000): nothing new */
        CHECK(compute(&h, 400000, 400000, &again) == 0);
        CHECK(again.n == 0 && again.v == NULL);
        CHECK(again.open[CHARGE_RUNNING].open && again.open[CHARGE_RUNNING].start_ms == T0 + 360000);
        result_done(&again);
        /* and with since at 360000 the storage row ending at 400000 alone (running's ended there) */
        CHECK(compute(&h, 400000, 360000, &again) == 0);
        CHECK(again.n == 1 && row_is(again.v, 300000, 400000, 500000, "alice"));
        result_done(&again);
        /* 1 ms before a period ends it is not returned yet; at its end it is */
        CHECK(compute(&h, 119999, 60000, &again) == 0);
        CHECK(again.n == 1 && row_is(again.v, 0, 100000, 500000, "alice")); /* storage's first */
        result_done(&again);
        CHECK(compute(&h, 120000, 60000, &again) == 0);
        CHECK(again.nkind[CHARGE_RUNNING] == 1 && row_is(again.kind[CHARGE_RUNNING][0], 60000, 120000, 1000, "alice"));
        result_done(&again);
        /* since in the middle of a period: that period is still returned */
        CHECK(compute(&h, 400000, 90000, &again) == 0);
        CHECK(again.nkind[CHARGE_RUNNING] == 5 && row_is(again.kind[CHARGE_RUNNING][0], 60000, 120000, 1000, "alice"));
        result_done(&again);

        /* prefix consistency: all at 400000 and all at 1000000 agree on every row ended by 400000
         * (running 6 of 16, ends 60000..960000; storage 4 of 10) */
        result_done(&after);
        CHECK(compute(&h, 400000, -1, &after) == 0);
        CHECK(compute(&h, 1000000, -1, &late) == 0);
        CHECK(after.nkind[CHARGE_RUNNING] == 6 && late.nkind[CHARGE_RUNNING] == 16);
        CHECK(after.nkind[CHARGE_STORAGE] == 4 && late.nkind[CHARGE_STORAGE] == 10);
        for (charge_kind_t k = 0; k < _CHARGE_KIND_MAX; k++)
                for (size_t i = 0; i < after.nkind[k] && i < late.nkind[k]; i++)
                        CHECK(rows_equal(after.kind[k][i], late.kind[k][i]));
        CHECK(rows_equal(before.v, after.kind[CHARGE_RUNNING][0]));
        result_done(&before);
        result_done(&after);
        result_done(&late);

        /* a segment that ended: since skips into its truncated last period. Stored at 150000:
         * running [0,60000) [60000,120000) [120000,150000) (30000/60000 x 1000 = 500) */
        add(&h, 150000, "stored", "rm1", "alice", terms(500000, 100, 1000, 60));
        CHECK(compute(&h, 400000, 130000, &again) == 0);
        CHECK(again.nkind[CHARGE_RUNNING] == 1 && row_is(again.kind[CHARGE_RUNNING][0], 120000, 150000, 500, "alice"));
        result_done(&again);
        CHECK(compute(&h, 400000, 150000, &again) == 0);
        CHECK(again.nkind[CHARGE_RUNNING] == 0);
        result_done(&again);

        /* ten years of 1 s periods, since 1 s before now: one row, found by arithmetic (a loop
         * over the 3.15 x 10^8 periods before it would make this test crawl under ASan) */
        h = (history_t){ 0 };
        add(&h, 0, "active", "rm1", "alice", terms(0, 86400, 1000, 1));
        int64_t now = PERIOD_MAX_S * 1000; /* 3650 days in ms */
        CHECK(compute(&h, now + 500, now - 1000, &again) == 0);
        CHECK(again.nkind[CHARGE_RUNNING] == 1 && row_is(again.kind[CHARGE_RUNNING][0], now - 1000, now, 1000, "alice"));
        /* storage 0 per day: its 3650th period ends at now exactly, after since: a row of 0 (zero
         * rows are rows too, so that since_ms moves past them) */
        CHECK(again.nkind[CHARGE_STORAGE] == 1 &&
              row_is(again.kind[CHARGE_STORAGE][0], now - 86400000, now, 0, "alice"));
        CHECK(again.open[CHARGE_STORAGE].open && again.open[CHARGE_STORAGE].start_ms == T0 + now);
        result_done(&again);
}

/* (e) The provider's RM fails: running stops at the "failed" span; storage goes on. */
static void test_failure(void) {
        /* running 60000 per 60 s (1 micro/ms), storage 1 per 1000 s */
        market_terms_t t = terms(1000000, 1000, 60000, 60);
        history_t h = { 0 };
        add(&h, 0, "active", "rm1", "alice", t);
        add(&h, 90000, "failed", "rm1", "alice", t);
        add(&h, 120000, "stopping", "rm1", "alice", t); /* from failed: not running */
        add(&h, 130000, "stored", "rm1", "alice", t);
        add(&h, 200000, "booting", "rm1", "alice", t);
        add(&h, 210000, "loading", "rm1", "alice", t);

        result_t r;
        CHECK(compute(&h, 300000, -1, &r) == 0);
        /* [0,60000) 60000, [60000,90000) 30000; then from 210000: [210000,270000) 60000 */
        CHECK(r.nkind[CHARGE_RUNNING] == 3);
        CHECK(row_is(r.kind[CHARGE_RUNNING][0], 0, 60000, 60000, "alice"));
        CHECK(row_is(r.kind[CHARGE_RUNNING][1], 60000, 90000, 30000, "alice"));
        CHECK(row_is(r.kind[CHARGE_RUNNING][2], 210000, 270000, 60000, "alice"));
        for (int64_t at = 90000; at < 210000; at += 1000)
                CHECK(covering(&r, CHARGE_RUNNING, at) == 0);
        /* running again: the period from 270000 is open, 30000 ms accrued */
        CHECK(r.open[CHARGE_RUNNING].open && r.open[CHARGE_RUNNING].start_ms == T0 + 270000);
        CHECK(billing_open_accrued(&r.open[CHARGE_RUNNING], T0 + 300000) == 30000);
        /* storage never stopped: no row yet (first period ends at 1000000) */
        CHECK(r.nkind[CHARGE_STORAGE] == 0 && r.open[CHARGE_STORAGE].start_ms == T0);
        result_done(&r);
}

/* (f) Edge cases: free prices, 1 s periods, equal timestamps, bad histories. */
static void test_edges(void) {
        result_t r;
        history_t h = { 0 };

        /* price 0: rows of 0 are still rows (the caller's since_ms moves past them) */
        add(&h, 0, "stored", "rm1", "alice", terms(0, 10, 0, 10));
        add(&h, 25000, "deleted", "", "", (market_terms_t){ 0 });
        CHECK(compute(&h, 100000, -1, &r) == 0);
        CHECK(r.n == 3 && row_is(r.v, 0, 10000, 0, "alice") && row_is(&r.v[2], 20000, 25000, 0, "alice"));
        result_done(&r);

        /* 1 s periods, 1 micro per ms: active [0, 3500): three whole seconds and 500 ms */
        h = (history_t){ 0 };
        add(&h, 0, "active", "rm1", "alice", terms(0, 1, 1000, 1));
        add(&h, 3500, "stored", "rm1", "alice", terms(0, 1, 1000, 1));
        CHECK(compute(&h, 3500, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_RUNNING] == 4);
        CHECK(row_is(r.kind[CHARGE_RUNNING][2], 2000, 3000, 1000, "alice"));
        CHECK(row_is(r.kind[CHARGE_RUNNING][3], 3000, 3500, 500, "alice")); /* ended at now: returned */
        CHECK(r.nkind[CHARGE_STORAGE] == 3); /* [0,1000) [1000,2000) [2000,3000); 3000 runs at now */
        CHECK(!r.open[CHARGE_RUNNING].open && r.open[CHARGE_STORAGE].start_ms == T0 + 3000);
        result_done(&r);
        /* a segment that ends on a period boundary has no zero-length last part */
        h.v[1].at_ms = T0 + 3000;
        CHECK(compute(&h, 10000, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_RUNNING] == 3 && row_is(r.kind[CHARGE_RUNNING][2], 2000, 3000, 1000, "alice"));
        result_done(&r);

        /* equal timestamps: zero-length spans charge nothing but still pass on running-ness */
        market_terms_t t = terms(0, 1, 1000, 1);
        h = (history_t){ 0 };
        add(&h, 0, "stored", "rm1", "alice", t);
        add(&h, 1000, "booting", "rm1", "alice", t);
        add(&h, 1000, "loading", "rm1", "alice", t);  /* booting lasted 0 ms */
        add(&h, 2500, "loading", "rm1", "alice", t);  /* a repeated span: same segment */
        add(&h, 3000, "suspending", "rm1", "alice", t);
        add(&h, 3000, "suspended", "rm1", "alice", t); /* suspending lasted 0 ms */
        add(&h, 4000, "loading", "rm1", "alice", t);
        add(&h, 4000, "stored", "rm1", "alice", t);   /* loading lasted 0 ms: no row */
        CHECK(compute(&h, 10000, -1, &r) == 0);
        /* running [1000, 3000): [1000,2000) [2000,3000) */
        CHECK(r.nkind[CHARGE_RUNNING] == 2);
        CHECK(row_is(r.kind[CHARGE_RUNNING][0], 1000, 2000, 1000, "alice"));
        CHECK(row_is(r.kind[CHARGE_RUNNING][1], 2000, 3000, 1000, "alice"));
        result_done(&r);
        /* a history of one instant */
        h = (history_t){ 0 };
        add(&h, 0, "active", "rm1", "alice", t);
        add(&h, 0, "deleted", "", "", t);
        CHECK(compute(&h, 10000, -1, &r) == 0);
        CHECK(r.n == 0 && r.v == NULL && !r.open[CHARGE_RUNNING].open && !r.open[CHARGE_STORAGE].open);
        result_done(&r);

        /* no offer, nothing charged, whatever the state */
        h = (history_t){ 0 };
        add(&h, 0, "stored", "", "", t);
        add(&h, 1000, "active", "", "", t);
        CHECK(compute(&h, 10000, -1, &r) == 0);
        CHECK(r.n == 0 && !r.open[CHARGE_RUNNING].open && !r.open[CHARGE_STORAGE].open);
        result_done(&r);

        /* out of order: -EINVAL, and nothing returned */
        h = (history_t){ 0 };
        add(&h, 1000, "stored", "rm1", "alice", t);
        add(&h, 999, "active", "rm1", "alice", t);
        billing_charge_t *v = (billing_charge_t *)&h; /* sentinels: must stay untouched */
        size_t n = 77;
        billing_open_t op[_CHARGE_KIND_MAX] = { { .open = true, .price = 5 }, { .open = true, .price = 5 } };
        CHECK(billing_compute(h.v, h.n, T0 + 10000, 0, &v, &n, op) == -EINVAL);
        CHECK(v == (billing_charge_t *)&h && n == 77 && op[0].open && op[0].price == 5);

        /* a due span whose period is out of range, or whose price is negative: -EINVAL */
        const market_terms_t wrong[] = { terms(0, 0, 0, 1), terms(0, 1, 0, PERIOD_MAX_S + 1),
                                         terms(-1, 1, 0, 1), terms(0, 1, 0, -5) };
        for (size_t i = 0; i < ELEMENTSOF(wrong); i++) {
                h = (history_t){ 0 };
                add(&h, 0, "active", "rm1", "alice", wrong[i]);
                CHECK(compute(&h, 10000, -1, &r) == -EINVAL);
                result_done(&r);
        }
        /* the running terms do not matter while the machine is only stored */
        h = (history_t){ 0 };
        add(&h, 0, "stored", "rm1", "alice", terms(0, 1, -1, 0));
        CHECK(compute(&h, 10000, -1, &r) == 0 && r.nkind[CHARGE_STORAGE] == 10);
        result_done(&r);

        /* arguments */
        CHECK(billing_compute(NULL, 0, T0, 0, &v, &n, NULL) == 0 && v == NULL && n == 0);
        CHECK(billing_compute(NULL, 1, T0, 0, &v, &n, NULL) == -EINVAL);
        CHECK(billing_compute(h.v, h.n, T0, 0, NULL, &n, NULL) == -EINVAL);
        CHECK(billing_compute(h.v, h.n, T0, 0, &v, NULL, NULL) == -EINVAL);

        /* a state or name that fills its whole array (no terminator) is read within it */
        h = (history_t){ 0 };
        add(&h, 0, "active", "rm1", "alice", terms(0, 1, 1000, 1));
        memset(h.v[0].provider, 'p', sizeof h.v[0].provider);
        memset(h.v[0].offer, 'o', sizeof h.v[0].offer);
        add(&h, 2000, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", "rm1", "alice", terms(0, 1, 1000, 1)); /* cut to 23 */
        memset(h.v[1].state, 'x', sizeof h.v[1].state);
        CHECK(compute(&h, 5000, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_RUNNING] == 2 && strlen(r.kind[CHARGE_RUNNING][0]->provider) == 63);
        result_done(&r);
}

/* (g) The open periods and what they accrued. */
static void test_open(void) {
        /* running 3.6 units per hour (1 micro per ms) from 0 */
        history_t h = { 0 };
        add(&h, 0, "active", "rm1", "alice", terms(7, 100, 3600000, 3600));
        result_t r;
        CHECK(compute(&h, 5400000, -1, &r) == 0); /* 1.5 h */
        CHECK(r.nkind[CHARGE_RUNNING] == 1 && row_is(r.kind[CHARGE_RUNNING][0], 0, 3600000, 3600000, "alice"));
        billing_open_t *o = &r.open[CHARGE_RUNNING];
        CHECK(o->open && o->start_ms == T0 + 3600000 && o->price == 3600000 && o->period_s == 3600);
        CHECK_STREQ(o->provider, "alice");
        CHECK(billing_open_accrued(o, T0 + 5400000) == 1800000); /* 1800000 ms x 1 */
        CHECK(billing_open_accrued(o, T0 + 3600000) == 0);
        CHECK(billing_open_accrued(o, T0 + 3000000) == 0);              /* before its start */
        CHECK(billing_open_accrued(o, T0 + 7200000) == 3600000);        /* a whole period */
        CHECK(billing_open_accrued(o, T0 + 36000000) == 3600000);       /* capped */
        CHECK(billing_open_accrued(o, INT64_MAX) == 3600000);
        /* storage 7 micro per 100 s: open from 5400000 (54 periods ended); half up as a
         * closing charge: 50000 ms -> 3.5 -> 4, 21428 ms -> 1.49996 -> 1 */
        billing_open_t *s = &r.open[CHARGE_STORAGE];
        CHECK(r.nkind[CHARGE_STORAGE] == 54 && s->open && s->start_ms == T0 + 5400000);
        CHECK(billing_open_accrued(s, s->start_ms + 50000) == 4);
        CHECK(billing_open_accrued(s, s->start_ms + 21428) == 1);
        CHECK(billing_open_accrued(NULL, T0) == 0);
        CHECK(billing_open_accrued(&(billing_open_t){ .open = false, .price = 5, .period_s = 1 }, T0) == 0);
        result_done(&r);

        /* at a period boundary the new period is open and has accrued nothing */
        CHECK(compute(&h, 7200000, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_RUNNING] == 2 && r.open[CHARGE_RUNNING].start_ms == T0 + 7200000);
        CHECK(billing_open_accrued(&r.open[CHARGE_RUNNING], T0 + 7200000) == 0);
        result_done(&r);

        /* what an open period accrued by the instant its segment closes is the closing row:
         * suspended at 5421428 -> 21428 ms of storage -> 1 micro, 1821428 ms of running ->
         * 1821428 micro */
        CHECK(compute(&h, 5421428, -1, &r) == 0);
        int64_t acc_run = billing_open_accrued(&r.open[CHARGE_RUNNING], T0 + 5421428);
        int64_t acc_sto = billing_open_accrued(&r.open[CHARGE_STORAGE], T0 + 5421428);
        CHECK(acc_run == 1821428 && acc_sto == 1);
        result_done(&r);
        add(&h, 5421428, "suspended", "rm1", "alice", terms(7, 100, 3600000, 3600));
        CHECK(compute(&h, 5421428, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_RUNNING] == 2 && row_is(r.kind[CHARGE_RUNNING][1], 3600000, 5421428, acc_run, "alice"));
        CHECK(!r.open[CHARGE_RUNNING].open);
        CHECK(r.open[CHARGE_STORAGE].open); /* still stored: its segment goes on */
        result_done(&r);
        /* the same closing at delete, for storage */
        h.n--;
        add(&h, 5421428, "deleted", "", "", (market_terms_t){ 0 });
        CHECK(compute(&h, 5421428, -1, &r) == 0);
        CHECK(r.nkind[CHARGE_STORAGE] == 55 && row_is(r.kind[CHARGE_STORAGE][54], 5400000, 5421428, acc_sto, "alice"));
        CHECK(!r.open[CHARGE_RUNNING].open && !r.open[CHARGE_STORAGE].open);
        result_done(&r);
}

int main(void) {
        test_money();
        test_duration();
        test_rate();
        test_offer_check();
        test_price();
        test_price_per();
        test_bid_covers();
        test_state_due();
        test_storage_delete();
        test_running_lifecycle();
        test_migration();
        test_outage();
        test_failure();
        test_edges();
        test_open();
        return tap_finish();
}
