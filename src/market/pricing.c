/* Offers and prices (DESIGN.md §11): whether an offer is well formed, what a machine's
 * configuration costs at it, a price restated over another period, and whether a buyer's bid
 * covers a price. Every product of two figures is taken in 128 bits; a result that does not
 * fit the int64 of market_terms_t saturates (no bid, which is at most MONEY_INPUT_MAX per
 * period, covers such a price). */
#include "market/market.h"

#include <errno.h>
#include <stddef.h>

/* The largest capacities an offer may sell: 4096 vCPUs, 64 TiB of RAM, 1 PiB of disk. */
#define OFFER_VCPUS_MAX INT64_C(4096)
#define OFFER_MEMORY_MIB_MAX (INT64_C(64) * 1024 * 1024)
#define OFFER_DISK_GIB_MAX (INT64_C(1024) * 1024)

static int64_t saturate(__int128 v) {
        return v > INT64_MAX ? INT64_MAX : v < INT64_MIN ? INT64_MIN : (int64_t)v;
}

/* floor(a / b) for b > 0 (C division truncates toward zero). */
static __int128 floor_div(__int128 a, __int128 b) {
        __int128 q = a / b;
        return (a % b != 0 && a < 0) ? q - 1 : q;
}

static __int128 ceil_div(__int128 a, __int128 b) {
        return -floor_div(-a, b);
}

/* 0, or -EINVAL when v is negative (what the parsers reject as not a number), -ERANGE when it
 * is outside [lo, hi] otherwise. */
static int check_range(int64_t v, int64_t lo, int64_t hi) {
        if (v < 0)
                return -EINVAL;
        return v < lo || v > hi ? -ERANGE : 0;
}

/* Fields are checked in the order of market_offer_t; *ret_field (when ret_field is not NULL)
 * is set on failure only, to the member's name ("vcpu_price"), "offer" for o == NULL. */
int market_offer_check(const market_offer_t *o, const char **ret_field) {
        const char *field = "offer";
        int r = -EINVAL;
        if (o) {
                const struct {
                        const char *name;
                        int64_t v, lo, hi;
                } fields[] = {
                        { "vcpus", o->vcpus, 1, OFFER_VCPUS_MAX },
                        { "vcpu_price", o->vcpu_price, 0, MONEY_INPUT_MAX },
                        { "memory_mib", o->memory_mib, 1, OFFER_MEMORY_MIB_MAX },
                        { "memory_price", o->memory_price, 0, MONEY_INPUT_MAX },
                        { "running_period_s", o->running_period_s, PERIOD_MIN_S, PERIOD_MAX_S },
                        { "disk_gib", o->disk_gib, 1, OFFER_DISK_GIB_MAX },
                        { "disk_price", o->disk_price, 0, MONEY_INPUT_MAX },
                        { "storage_period_s", o->storage_period_s, PERIOD_MIN_S, PERIOD_MAX_S },
                };
                r = 0;
                for (size_t i = 0; i < sizeof fields / sizeof fields[0] && r == 0; i++) {
                        r = check_range(fields[i].v, fields[i].lo, fields[i].hi);
                        field = fields[i].name;
                }
        }
        if (r < 0 && ret_field)
                *ret_field = field;
        return r;
}

/* Memory is priced per GiB: memory_mib x memory_price / 1024, rounded up as a whole (the sum
 * of the vCPUs' part, always whole, and the memory's part). */
void market_price(const market_offer_t *o, const market_config_t *c, market_terms_t *ret) {
        __int128 running = (__int128)c->vcpus * o->vcpu_price +
                           ceil_div((__int128)c->memory_mib * o->memory_price, 1024);
        __int128 storage = (__int128)c->disk_gib * o->disk_price;
        *ret = (market_terms_t){
                .storage_price = saturate(storage),
                .storage_period_s = o->storage_period_s,
                .running_price = saturate(running),
                .running_period_s = o->running_period_s,
        };
}

/* price x per_s / period_s, the fraction rounded half up (toward +infinity for a negative
 * price: -2.5 is -2); saturates; 0 when period_s <= 0. */
int64_t market_price_per(int64_t price, int64_t period_s, int64_t per_s) {
        if (period_s <= 0)
                return 0;
        __int128 x = (__int128)price * per_s;
        __int128 q = floor_div(x, period_s);
        __int128 rem = x - q * period_s; /* 0 <= rem < period_s */
        if (2 * rem >= period_s)
                q++;
        return saturate(q);
}

/* a per a_period >= b per b_period, exactly. */
static bool rate_ge(int64_t a, int64_t a_period, int64_t b, int64_t b_period) {
        return (__int128)a * b_period >= (__int128)b * a_period;
}

/* false when any period is not positive: no comparison is meaningful then. */
bool market_bid_covers(const market_terms_t *bid, const market_terms_t *price) {
        if (bid->storage_period_s <= 0 || bid->running_period_s <= 0 || price->storage_period_s <= 0 ||
            price->running_period_s <= 0)
                return false;
        return rate_ge(bid->storage_price, bid->storage_period_s, price->storage_price, price->storage_period_s) &&
               rate_ge(bid->running_price, bid->running_period_s, price->running_price, price->running_period_s);
}
