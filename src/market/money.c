/* Money, durations and rates as text (DESIGN.md §11): the one place where the marketplace's
 * figures are read from and written as strings. Money is an integer count of micro-units, so
 * "0.1" is exactly 100000 and no sum drifts; nothing here touches floating point.
 *
 * The grammar is deliberately narrow, since these strings come from the CLI and the API:
 *   money     DIGITS [ "." DIGITS ]      at most six decimals; no sign, no exponent, no
 *                                        blanks, no ".5" and no "5."
 *   duration  DIGITS [ "s" | "m" | "h" | "d" ]   a bare number is seconds
 *   rate      money "/" duration
 * A string that does not match is -EINVAL; one that matches but is too large (or a duration of
 * 0) is -ERANGE. Long runs of digits (leading zeros included) are read without overflow. */
#include "market/market.h"
#include "base/macro.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* The value of the decimal digits s[0..len) (all digits, len >= 1), or -1 when it exceeds
 * limit (>= 0): stops accumulating as soon as it does, so any length is safe. */
static int64_t digits_value(const char *s, size_t len, int64_t limit) {
        int64_t v = 0;
        for (size_t i = 0; i < len; i++) {
                int d = s[i] - '0';
                if (v > (limit - d) / 10)
                        return -1;
                v = v * 10 + d;
        }
        return v;
}

/* How many decimal digits s starts with. */
static size_t digits_span(const char *s, size_t len) {
        size_t i = 0;
        while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
        return i;
}

/* money_parse on the first len bytes of s (not necessarily terminated there). */
static int money_parse_n(const char *s, size_t len, int64_t *ret) {
        size_t ilen = digits_span(s, len);
        if (ilen == 0)
                return -EINVAL; /* "", ".5", "-1", "+1", " 1" */
        size_t flen = 0;
        if (ilen < len) {
                if (s[ilen] != '.')
                        return -EINVAL; /* "1e3", "1 ", "1,5" */
                flen = digits_span(s + ilen + 1, len - ilen - 1);
                if (flen == 0 || ilen + 1 + flen != len || flen > 6)
                        return -EINVAL; /* "5.", "1.2.3", "1.0000001" */
        }

        int64_t units = digits_value(s, ilen, MONEY_INPUT_MAX / MONEY_SCALE);
        if (units < 0)
                return -ERANGE;
        int64_t micro = 0;
        for (size_t i = 0; i < 6; i++)
                micro = micro * 10 + (i < flen ? s[ilen + 1 + i] - '0' : 0);
        /* units <= 10^9, so units * 10^6 + micro < 2^63 */
        int64_t v = units * MONEY_SCALE + micro;
        if (v > MONEY_INPUT_MAX)
                return -ERANGE; /* "1000000000.000001" */
        *ret = v;
        return 0;
}

int money_parse(const char *s, int64_t *ret) {
        if (!s || !ret)
                return -EINVAL;
        return money_parse_n(s, strlen(s), ret);
}

void money_format(int64_t micro, char ret[MONEY_TEXT_MAX]) {
        /* the magnitude in unsigned arithmetic, so INT64_MIN formats too */
        uint64_t m = micro < 0 ? -(uint64_t)micro : (uint64_t)micro;
        snprintf(ret, MONEY_TEXT_MAX, "%s%" PRIu64 ".%06" PRIu64, micro < 0 ? "-" : "",
                 m / (uint64_t)MONEY_SCALE, m % (uint64_t)MONEY_SCALE);
}

/* duration_parse on the first len bytes of s. */
static int duration_parse_n(const char *s, size_t len, int64_t *ret_s) {
        size_t dlen = digits_span(s, len);
        if (dlen == 0)
                return -EINVAL;
        int64_t unit = 1;
        if (dlen < len) {
                if (dlen + 1 != len)
                        return -EINVAL; /* "1h30m", "5 d", "1.5h" */
                switch (s[dlen]) {
                case 's':
                        unit = 1;
                        break;
                case 'm':
                        unit = 60;
                        break;
                case 'h':
                        unit = 3600;
                        break;
                case 'd':
                        unit = 86400;
                        break;
                default:
                        return -EINVAL; /* "5w", "5D", "5ms" */
                }
        }
        int64_t n = digits_value(s, dlen, PERIOD_MAX_S / unit);
        if (n < 0)
                return -ERANGE;
        int64_t v = n * unit;
        if (v < PERIOD_MIN_S || v > PERIOD_MAX_S)
                return -ERANGE;
        *ret_s = v;
        return 0;
}

int duration_parse(const char *s, int64_t *ret_s) {
        if (!s || !ret_s)
                return -EINVAL;
        return duration_parse_n(s, strlen(s), ret_s);
}

void duration_format(int64_t s, char ret[DURATION_TEXT_MAX]) {
        static const struct {
                int64_t seconds;
                char suffix;
        } units[] = { { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' } };
        /* 0 and every figure no larger unit divides: seconds */
        for (size_t i = 0; s != 0 && i < ELEMENTSOF(units); i++)
                if (s % units[i].seconds == 0) {
                        snprintf(ret, DURATION_TEXT_MAX, "%" PRId64 "%c", s / units[i].seconds,
                                 units[i].suffix);
                        return;
                }
        snprintf(ret, DURATION_TEXT_MAX, "%" PRId64 "s", s);
}

int rate_parse(const char *s, int64_t *ret_price, int64_t *ret_period_s) {
        if (!s || !ret_price || !ret_period_s)
                return -EINVAL;
        const char *slash = strchr(s, '/');
        if (!slash)
                return -EINVAL;
        int64_t price = 0, period = 0;
        /* a malformed part makes the rate malformed (-EINVAL) even when the other part is only
         * out of range; a second '/' makes the duration malformed */
        int rp = money_parse_n(s, (size_t)(slash - s), &price);
        int rd = duration_parse(slash + 1, &period);
        if (rp == -EINVAL || rd == -EINVAL)
                return -EINVAL;
        if (rp < 0)
                return rp;
        if (rd < 0)
                return rd;
        *ret_price = price;
        *ret_period_s = period;
        return 0;
}
