/* The marketplace's arithmetic (DESIGN.md §11, Virtuoso report §5): money, durations, rates,
 * offers and the price of a machine's configuration at an offer. Pure: no I/O, no allocation,
 * no floating point (money is an integer count of micro-units, 1 unit = 1,000,000). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define MONEY_SCALE INT64_C(1000000)
/* The largest price or amount one input may carry: 10^9 units. Products of a price and a time
 * are taken in 128 bits, so no figure the API accepts can overflow. */
#define MONEY_INPUT_MAX (INT64_C(1000000000) * MONEY_SCALE)
/* Periods: 1 s (so tests run fast) to 3650 days. */
#define PERIOD_MIN_S INT64_C(1)
#define PERIOD_MAX_S (INT64_C(3650) * 86400)
#define MONEY_TEXT_MAX 32
#define DURATION_TEXT_MAX 24

/* "12", "0.5", "1.000001" (at most six decimals, no sign, no exponent) into micro-units:
 * 0, -EINVAL (not such a number), -ERANGE (above MONEY_INPUT_MAX). The grammar is DIGITS
 * ["." DIGITS]: ".5", "5.", "-1", "+1", "1e3", " 1", "" and NULL are -EINVAL, and so is a
 * seventh decimal (even "1.0000000"); leading zeros are accepted. A malformed string is -EINVAL
 * whatever its size. *ret is set on success only. */
int money_parse(const char *s, int64_t *ret);
/* "-1.500000": always six decimals (any int64, INT64_MIN included); money_parse reads back
 * every non-negative figure it prints up to MONEY_INPUT_MAX. */
void money_format(int64_t micro, char ret[MONEY_TEXT_MAX]);
/* "30d", "12h", "5m", "3600s" or a bare number of seconds, into seconds in
 * [PERIOD_MIN_S, PERIOD_MAX_S]: 0, -EINVAL, -ERANGE. One unit at most, lower case, no blanks,
 * sign or fraction ("1h30m", "5D", "1.5h", "-1" are -EINVAL); 0 and anything above 3650 days
 * are -ERANGE, however many digits. */
int duration_parse(const char *s, int64_t *ret_s);
/* The largest unit that divides s exactly: "30d", "1h", "90s"; 0 is "0s", negatives keep
 * their sign ("-1h"). */
void duration_format(int64_t s, char ret[DURATION_TEXT_MAX]);
/* "P/D" (a price per duration, such as "3/30d") into its price and period: 0, -EINVAL, -ERANGE.
 * Exactly one "/"; P as money_parse, D as duration_parse; -EINVAL when either part is malformed,
 * else -ERANGE when either is out of range. */
int rate_parse(const char *s, int64_t *ret_price, int64_t *ret_period_s);

/* What a machine pays, or a buyer bids: a total price per storage period and per running
 * period. */
typedef struct market_terms {
        int64_t storage_price, storage_period_s;
        int64_t running_price, running_period_s;
} market_terms_t;

/* What a provider sells on one RM (report Figure 27): capacity, and unit prices per period —
 * vCPUs and GiB of RAM per running period, GiB of disk per storage period. */
typedef struct market_offer {
        int64_t vcpus, vcpu_price;
        int64_t memory_mib, memory_price; /* memory_price is per GiB (1024 MiB) */
        int64_t running_period_s;
        int64_t disk_gib, disk_price;
        int64_t storage_period_s;
} market_offer_t;

/* A machine's size. */
typedef struct market_config {
        int64_t memory_mib, vcpus, disk_gib;
} market_config_t;

/* Is o well formed (capacities positive, prices in [0, MONEY_INPUT_MAX], periods in range)?
 * 0, or -EINVAL/-ERANGE and the name of the first bad field in *ret_field. Capacities are
 * bounded too: vcpus <= 4096, memory_mib <= 64 TiB, disk_gib <= 1 PiB. A negative figure is
 * -EINVAL (what the parsers reject as not a number), any other figure out of range -ERANGE (as
 * duration_parse says of "0"). Fields are checked in the order of the struct; *ret_field (may be
 * NULL) is the member's name ("vcpu_price"), "offer" for o == NULL, and is set on failure only. */
int market_offer_check(const market_offer_t *o, const char **ret_field);
/* The terms of config c at offer o (§11): running = vcpus x vcpu-price + GiB of RAM x
 * memory-price per running period; storage = GiB of disk x disk-price per storage period.
 * Fractions of a micro-unit (memory that is not a whole GiB) round up: a provider is never
 * paid less than its unit prices say. Computed in 128 bits; a total above INT64_MAX (possible
 * for the largest offers) saturates to INT64_MAX, which no bid covers. */
void market_price(const market_offer_t *o, const market_config_t *c, market_terms_t *ret);
/* price per period_s, expressed per per_s instead (rounded half up, i.e. toward +infinity on
 * exact halves, negative prices included): a price per 3600 s is 720x per 30 days. Saturates
 * to the int64 range; 0 when period_s <= 0. */
int64_t market_price_per(int64_t price, int64_t period_s, int64_t per_s);
/* Does bid pay at least price, both for storage and for running? Compared exactly over
 * their own periods (cross-multiplied in 128 bits, no rounding). false when any of the four
 * periods is not positive. */
bool market_bid_covers(const market_terms_t *bid, const market_terms_t *price);
