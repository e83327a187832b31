/* The market's prices (issue 12, Virtuoso's priceaverage.pl): the average unit prices the
 * offers ask — a vCPU and a GiB of RAM per running period, a GiB of disk per storage period —
 * each normalised per hour and per 30 days, and the average price of each suggested
 * configuration over the offers that can host it (left as it was when none can). Recomputed
 * when an offer or a configuration changes and on the billing loop's minute; every change is
 * kept in the history (market prices --history). Averages round half up to the micro-unit. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"
#include "store/store-market.h"

#define HOUR_S INT64_C(3600)
#define MONTH_S (INT64_C(30) * 86400)

/* The mean of sum over n, rounded half up (n > 0, sum >= 0). */
static int64_t mean(__int128 sum, int64_t n) { return (int64_t)((sum + n / 2) / n); }

static json_t *per_json(__int128 hour_sum, __int128 month_sum, int64_t n) {
        if (n == 0)
                return json_null();
        return json_pack("{s:I,s:I}", "per_hour", (json_int_t)mean(hour_sum, n), "per_30d",
                         (json_int_t)mean(month_sum, n));
}

/* Does offer o (with used of it held) have room for c? */
static bool offer_fits(const market_offer_t *o, const market_config_t *used, const market_config_t *c) {
        return used->memory_mib + c->memory_mib <= o->memory_mib && used->vcpus + c->vcpus <= o->vcpus &&
               used->disk_gib + c->disk_gib <= o->disk_gib;
}

/* The averages over offers[0..n) as JSON (without configs). */
static json_t *averages_json(const offer_record_t *offers, size_t n) {
        __int128 vh = 0, vm = 0, gh = 0, gm = 0, dh = 0, dm = 0;
        for (size_t i = 0; i < n; i++) {
                const market_offer_t *f = &offers[i].offer;
                vh += market_price_per(f->vcpu_price, f->running_period_s, HOUR_S);
                vm += market_price_per(f->vcpu_price, f->running_period_s, MONTH_S);
                gh += market_price_per(f->memory_price, f->running_period_s, HOUR_S);
                gm += market_price_per(f->memory_price, f->running_period_s, MONTH_S);
                dh += market_price_per(f->disk_price, f->storage_period_s, HOUR_S);
                dm += market_price_per(f->disk_price, f->storage_period_s, MONTH_S);
        }
        return json_pack("{s:o,s:o,s:o,s:I}", "running_vcpu", per_json(vh, vm, (int64_t)n), "running_gib",
                         per_json(gh, gm, (int64_t)n), "storage_gib", per_json(dh, dm, (int64_t)n), "offers",
                         (json_int_t)n);
}

int oracle_market_prices(oracle_t *o, bool update, json_t **ret) {
        offer_record_t *offers = NULL;
        market_config_record_t *configs = NULL;
        size_t n = 0, nc = 0;
        int r = store_offer_list(o->store, &offers, &n);
        if (r >= 0)
                r = store_market_config_list(o->store, &configs, &nc);
        if (r < 0) {
                free(offers);
                return r;
        }
        market_config_t *used = xcalloc(n ? n : 1, sizeof *used);
        for (size_t i = 0; i < n; i++)
                store_offer_used(o->store, offers[i].rm, &used[i]);
        json_t *prices = averages_json(offers, n);
        json_t *cj = json_array();
        for (size_t k = 0; k < nc; k++) {
                market_config_record_t *c = &configs[k];
                __int128 storage = 0, running = 0;
                int64_t m = 0;
                for (size_t i = 0; i < n; i++) {
                        if (!offer_fits(&offers[i].offer, &used[i], &c->config))
                                continue;
                        market_terms_t t;
                        market_price(&offers[i].offer, &c->config, &t);
                        storage += market_price_per(t.storage_price, t.storage_period_s, MONTH_S);
                        running += market_price_per(t.running_price, t.running_period_s, HOUR_S);
                        m++;
                }
                if (m > 0) {
                        c->storage_price_30d = mean(storage, m);
                        c->running_price_1h = mean(running, m);
                        if (update)
                                store_market_config_estimate(o->store, c->name, c->storage_price_30d,
                                                             c->running_price_1h);
                }
                json_array_append_new(cj, json_pack("{s:s,s:o,s:o,s:I}", "name", c->name, "storage_price",
                                                     c->storage_price_30d >= 0 ? json_integer(c->storage_price_30d)
                                                                               : json_null(),
                                                     "running_price",
                                                     c->running_price_1h >= 0 ? json_integer(c->running_price_1h)
                                                                              : json_null(),
                                                     "hosts", (json_int_t)m));
        }
        json_object_set_new(prices, "configs", cj);
        free(used);
        free(offers);
        free(configs);
        if (update) {
                /* the history keeps each change, not each minute */
                json_t *last = NULL;
                bool same = false;
                if (store_market_prices_list(o->store, 1, &last) >= 0 && json_array_size(last) == 1) {
                        json_t *prev = json_deep_copy(json_array_get(last, 0));
                        json_object_del(prev, "at_ms");
                        same = json_equal(prev, prices);
                        json_decref(prev);
                }
                json_decref(last);
                if (!same && store_market_prices_add(o->store, time_wall_ms(), prices) < 0)
                        log_warn("market: cannot record the prices' history");
        }
        *ret = prices;
        return 0;
}

void oracle_market_prices_update(oracle_t *o) {
        json_t *p = NULL;
        if (oracle_market_prices(o, true, &p) < 0)
                log_warn("market: cannot compute the average prices");
        json_decref(p);
}
