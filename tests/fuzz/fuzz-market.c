/* Harness: the marketplace's arithmetic (src/market/): the money, duration and rate texts a
 * client sends (vmatrix offer set, vm register: the CLI parses them, and every bound the API
 * checks is theirs), and the charge computation over a history made of the input's bytes.
 * Checked: a text accepted is in range and its formatted value parses back to the same value;
 * the charges of any ordered history are non-negative, each at most its period's whole price,
 * of one kind in order without overlap, and never more than the time since the first span;
 * computing from a later point (since_ms) gives exactly the tail. */
#include "fuzz.h"
#include "market/billing.h"
#include "market/market.h"

static void check_texts(const char *text) {
        int64_t v = 0, p = 0;
        if (money_parse(text, &v) == 0) {
                FUZZ_CHECK(v >= 0 && v <= MONEY_INPUT_MAX);
                char buf[MONEY_TEXT_MAX];
                int64_t again = -1;
                money_format(v, buf);
                FUZZ_CHECK(money_parse(buf, &again) == 0 && again == v);
        }
        if (duration_parse(text, &v) == 0) {
                FUZZ_CHECK(v >= PERIOD_MIN_S && v <= PERIOD_MAX_S);
                char buf[DURATION_TEXT_MAX];
                int64_t again = -1;
                duration_format(v, buf);
                FUZZ_CHECK(duration_parse(buf, &again) == 0 && again == v);
        }
        if (rate_parse(text, &v, &p) == 0)
                FUZZ_CHECK(v >= 0 && v <= MONEY_INPUT_MAX && p >= PERIOD_MIN_S && p <= PERIOD_MAX_S);
}

static const char *const states[] = { "registered", "stored",   "booting",  "loading",   "active",
                                      "suspending", "suspended", "resuming", "migrating", "stopping",
                                      "failed",     "deleted" };

/* Four bytes a span: state, time step (x 37 ms), offer (one of two), price. */
static void check_billing(const uint8_t *data, size_t size) {
        size_t n = size / 4;
        if (n == 0 || n > 64)
                return;
        billing_span_t spans[64];
        int64_t t = 1000000;
        for (size_t i = 0; i < n; i++) {
                const uint8_t *b = data + 4 * i;
                billing_span_t *s = &spans[i];
                *s = (billing_span_t){ 0 };
                t += (int64_t)b[1] * 37;
                s->at_ms = t;
                snprintf(s->state, sizeof s->state, "%s", states[b[0] % ELEMENTSOF(states)]);
                snprintf(s->offer, sizeof s->offer, "%s", b[2] & 1 ? "rm-a" : "rm-b");
                snprintf(s->provider, sizeof s->provider, "%s", b[2] & 2 ? "p1" : "p2");
                s->terms = (market_terms_t){ .storage_price = b[3] * 1000, .storage_period_s = 1 + (b[2] >> 4),
                                             .running_price = b[3] * 7, .running_period_s = 1 + (b[2] >> 6) };
        }
        int64_t now = t + 5000;
        billing_charge_t *all = NULL, *tail = NULL;
        size_t na = 0, nt = 0;
        billing_open_t open[_CHARGE_KIND_MAX];
        FUZZ_CHECK(billing_compute(spans, n, now, 0, &all, &na, open) == 0);
        int64_t last_end[_CHARGE_KIND_MAX] = { 0 }, total[_CHARGE_KIND_MAX] = { 0 };
        for (size_t i = 0; i < na; i++) {
                const billing_charge_t *c = &all[i];
                FUZZ_CHECK(c->kind == CHARGE_STORAGE || c->kind == CHARGE_RUNNING);
                FUZZ_CHECK(c->amount >= 0 && c->start_ms < c->end_ms && c->end_ms <= now);
                FUZZ_CHECK(c->start_ms >= last_end[c->kind]);
                FUZZ_CHECK(c->amount <= 255 * 1000); /* at most one whole period of the dearest price */
                last_end[c->kind] = c->end_ms;
                total[c->kind] += c->end_ms - c->start_ms;
        }
        for (int k = 0; k < _CHARGE_KIND_MAX; k++)
                FUZZ_CHECK(total[k] <= now - spans[0].at_ms);
        /* from the middle: exactly the charges that end after it */
        int64_t since = spans[n / 2].at_ms;
        FUZZ_CHECK(billing_compute(spans, n, now, since, &tail, &nt, NULL) == 0);
        size_t want = 0;
        for (size_t i = 0; i < na; i++)
                want += all[i].end_ms > since;
        FUZZ_CHECK(nt == want);
        free(all);
        free(tail);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size > 4096)
                return 0;
        char *text = malloc(size + 1);
        memcpy(text, data, size);
        text[size] = 0;
        check_texts(text);
        free(text);
        check_billing(data, size);
        return 0;
}
