/* Billing as a ledger (billing.h, issue 12): the charges of one machine computed from its state
 * history alone, so that the Oracle can compute them again at any time (after an outage, at
 * every tick) and post only the rows it has not posted yet.
 *
 * One pass over the spans keeps, for each kind, the segment in progress (its first span, start,
 * price and period); a span that is not due, or due at another provider, offer or price, closes
 * it, and a closed segment is cut into its periods at once. Periods that ended by since_ms are
 * skipped by arithmetic (the first period to return is found by one division), so a caller's
 * tick costs one pass over the spans however long the segments are. Positions in time are
 * taken in 128 bits: a period's end may lie beyond what an int64 holds even though every row
 * returned ends by now_ms. */
#include "market/billing.h"
#include "base/macro.h"

#include <errno.h>
#include <string.h>

/* What a state means for billing. Keep in sync with the state names of model/lifecycle.c
 * (and DESIGN.md §5); an unknown state is STATE_OTHER: stored, not running. */
typedef enum state_class {
        STATE_OTHER,       /* stored, suspended, failed, unknown: storage due, running not */
        STATE_REGISTERED,  /* nothing due: not stored at any offer yet */
        STATE_DELETED,     /* ends everything */
        STATE_RUNNING,     /* loading, active */
        STATE_STARTING,    /* booting, resuming: the guest does not run until they end */
        STATE_TRANSIT,     /* every other transitional state: runs if the state before ran */
} state_class_t;

#define S(name, class) { name, sizeof name - 1, class }
static const struct {
        const char *name;
        size_t len;
        state_class_t class;
} state_classes[] = {
        S("registered", STATE_REGISTERED), S("deleted", STATE_DELETED),
        S("loading", STATE_RUNNING),       S("active", STATE_RUNNING),
        S("booting", STATE_STARTING),      S("resuming", STATE_STARTING),
        S("suspending", STATE_TRANSIT),    S("hibernating", STATE_TRANSIT),
        S("activating", STATE_TRANSIT),    S("deactivating", STATE_TRANSIT),
        S("draining", STATE_TRANSIT),      S("stopping", STATE_TRANSIT),
        S("deleting", STATE_TRANSIT),      S("migrating", STATE_TRANSIT),
        S("storing", STATE_TRANSIT),
};
#undef S

/* The class of the len bytes of state (no terminator needed): matched on length and first
 * byte before any comparison, since this runs once per span of every history. */
static state_class_t state_classify(const char *state, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(state_classes); i++)
                if (state_classes[i].len == len && state_classes[i].name[0] == state[0] &&
                    memcmp(state_classes[i].name, state, len) == 0)
                        return state_classes[i].class;
        return STATE_OTHER;
}

/* The rule of billing.h on a classified state; prev_running is whether the span before ran. */
static bool class_due(charge_kind_t k, state_class_t c, bool prev_running) {
        switch (k) {
        case CHARGE_STORAGE:
                return c != STATE_REGISTERED && c != STATE_DELETED;
        case CHARGE_RUNNING:
                return c == STATE_RUNNING || (c == STATE_TRANSIT && prev_running);
        default:
                return false;
        }
}

const char *charge_kind_name(charge_kind_t k) {
        static const char *const names[_CHARGE_KIND_MAX] = {
                [CHARGE_STORAGE] = "storage",
                [CHARGE_RUNNING] = "running",
        };
        return (unsigned)k < _CHARGE_KIND_MAX ? names[k] : NULL;
}

/* Booting and resuming are never due for running, whatever came before (the guest starts
 * running when they end); every other transitional state is due exactly when prev_running. */
bool billing_state_due(charge_kind_t k, const char *state, bool prev_running) {
        return state && class_due(k, state_classify(state, strlen(state)), prev_running);
}

/* The price and period of kind k in terms. */
static void terms_of(const market_terms_t *t, charge_kind_t k, int64_t *ret_price, int64_t *ret_period_s) {
        *ret_price = k == CHARGE_STORAGE ? t->storage_price : t->running_price;
        *ret_period_s = k == CHARGE_STORAGE ? t->storage_period_s : t->running_period_s;
}

/* a / b for a >= 0, b > 0: in 64 bits when a fits, as it does for any realistic figure (a
 * 128-bit division is a libgcc call several times slower, and this runs for every segment). */
static __int128 div_nonneg(__int128 a, int64_t b) {
        return a <= INT64_MAX ? (__int128)((int64_t)a / b) : a / b;
}

/* price x len_ms / period_ms, rounded half up (price >= 0, period_ms is a multiple of 1000 and
 * 0 <= len_ms <= period_ms in every use, so the result is in [0, price]). */
static int64_t prorate(int64_t price, int64_t len_ms, int64_t period_ms) {
        return (int64_t)div_nonneg((__int128)price * len_ms + period_ms / 2, period_ms);
}

/* The charges being built: the one allocation of billing_compute. */
typedef struct charges {
        billing_charge_t *v;
        size_t n, cap;
} charges_t;

static int charges_push(charges_t *c, const billing_charge_t *ch) {
        if (c->n == c->cap) {
                size_t cap = c->cap ? 2 * c->cap : 16;
                billing_charge_t *v = realloc(c->v, cap * sizeof *v);
                if (!v)
                        return -ENOMEM;
                c->v = v;
                c->cap = cap;
        }
        c->v[c->n++] = *ch;
        return 0;
}

static void charges_freep(charges_t *c) {
        free(c->v);
}

/* A segment of one kind: consecutive due spans with one key (provider, offer, price, period). */
typedef struct segment {
        const billing_span_t *first; /* NULL: no segment in progress */
        int64_t price, period_s;
} segment_t;

/* Copies a char[64] field of a span, terminated even if the span's was not. */
static void copy_name(char dst[64], const char src[64]) {
        memcpy(dst, src, 64);
        dst[63] = '\0';
}

/* Are two spans at the same offer of the same provider? */
static bool same_place(const billing_span_t *a, const billing_span_t *b) {
        return strncmp(a->offer, b->offer, sizeof a->offer) == 0 &&
               strncmp(a->provider, b->provider, sizeof a->provider) == 0;
}

/* Cuts the segment g of kind k, over [g->first->at_ms, end_ms) (end_ms beyond INT64_MAX: still
 * open), into its periods: pushes those that ended by now_ms and after since_ms onto c, and
 * fills *open when a period of it runs at now_ms. 0 or -ENOMEM. */
static int segment_cut(const segment_t *g, charge_kind_t k, __int128 end_ms, int64_t now_ms, int64_t since_ms,
                       charges_t *c, billing_open_t *open) {
        __int128 s = g->first->at_ms;
        int64_t p = g->period_s * 1000; /* <= PERIOD_MAX_S x 1000 */

        if (s <= now_ms && now_ms < end_ms) {
                *open = (billing_open_t){
                        .open = true,
                        .start_ms = (int64_t)(s + div_nonneg(now_ms - s, p) * p),
                        .price = g->price,
                        .period_s = g->period_s,
                };
                copy_name(open->provider, g->first->provider);
        }
        if (end_ms <= since_ms)
                return 0;

        /* the first period that ends after since_ms: s + (i + 1) p > since_ms */
        __int128 i = since_ms > s ? div_nonneg(since_ms - s, p) : 0;
        billing_charge_t ch = { .kind = k };
        bool named = false; /* the names are copied for the first row only, not per segment */
        for (__int128 start = s + i * p; start < end_ms; start += p) {
                __int128 end = start + p < end_ms ? start + p : end_ms;
                if (end > now_ms)
                        break;
                if (!named) {
                        copy_name(ch.offer, g->first->offer);
                        copy_name(ch.provider, g->first->provider);
                        named = true;
                }
                ch.start_ms = (int64_t)start;
                ch.end_ms = (int64_t)end;
                ch.amount = end - start == p ? g->price : prorate(g->price, (int64_t)(end - start), p);
                int r = charges_push(c, &ch);
                if (r < 0)
                        return r;
        }
        return 0;
}

/* Rows are oldest first within each kind; rows of the two kinds interleave (in the order their
 * segments close). Also -ENOMEM, and -EINVAL for arguments that are NULL (spans with n > 0,
 * ret, ret_n) and for a span due for a kind at a negative price. spans[i].state and the names
 * need not be terminated within their arrays. *ret, *ret_n and open[] are set on success only. */
int billing_compute(const billing_span_t *spans, size_t n, int64_t now_ms, int64_t since_ms,
                    billing_charge_t **ret, size_t *ret_n, billing_open_t open[_CHARGE_KIND_MAX]) {
        if ((!spans && n > 0) || !ret || !ret_n)
                return -EINVAL;
        if (since_ms == 0)
                since_ms = INT64_MIN; /* "0: all", even for a history before the epoch */

        _cleanup_(charges_freep) charges_t c = { 0 };
        billing_open_t op[_CHARGE_KIND_MAX] = { 0 };
        segment_t seg[_CHARGE_KIND_MAX] = { 0 };
        bool prev_running = false;
        __int128 open_end = (__int128)INT64_MAX + 1; /* a segment the history has not closed */
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i++) {
                const billing_span_t *sp = &spans[i];
                if (i > 0 && sp->at_ms < spans[i - 1].at_ms) {
                        r = -EINVAL;
                        break;
                }
                state_class_t cls = state_classify(sp->state, strnlen(sp->state, sizeof sp->state));
                bool running = class_due(CHARGE_RUNNING, cls, prev_running);
                prev_running = running;
                /* a segment in progress holds span i - 1 (segments are runs of consecutive
                 * spans), so its place is the place of span i - 1: compared once for both kinds */
                bool moved = (seg[CHARGE_STORAGE].first || seg[CHARGE_RUNNING].first) &&
                             !same_place(sp, &spans[i - 1]);

                for (charge_kind_t k = 0; k < _CHARGE_KIND_MAX && r == 0; k++) {
                        segment_t *g = &seg[k];
                        /* nothing is charged without an offer to charge it at */
                        bool due = (k == CHARGE_RUNNING ? running : class_due(k, cls, false)) && sp->offer[0];
                        int64_t price = 0, period_s = 0;
                        if (due) {
                                terms_of(&sp->terms, k, &price, &period_s);
                                if (price < 0 || period_s < PERIOD_MIN_S || period_s > PERIOD_MAX_S) {
                                        r = -EINVAL;
                                        break;
                                }
                        }
                        if (g->first && (!due || moved || g->price != price || g->period_s != period_s)) {
                                r = segment_cut(g, k, sp->at_ms, now_ms, since_ms, &c, &op[k]);
                                g->first = NULL;
                        }
                        if (due && !g->first)
                                *g = (segment_t){ .first = sp, .price = price, .period_s = period_s };
                }
                if (cls == STATE_DELETED)
                        break; /* closed everything; what follows is ignored */
        }
        for (charge_kind_t k = 0; k < _CHARGE_KIND_MAX && r == 0; k++)
                if (seg[k].first)
                        r = segment_cut(&seg[k], k, open_end, now_ms, since_ms, &c, &op[k]);
        if (r < 0)
                return r;

        if (open)
                memcpy(open, op, sizeof op);
        *ret_n = c.n;
        *ret = TAKE_PTR(c.v); /* NULL when nothing was pushed */
        return 0;
}

/* 0 also for an o that billing_compute would not fill: a period out of range, a negative price. */
int64_t billing_open_accrued(const billing_open_t *o, int64_t now_ms) {
        if (!o || !o->open || o->period_s < PERIOD_MIN_S || o->period_s > PERIOD_MAX_S || o->price <= 0)
                return 0;
        int64_t p = o->period_s * 1000;
        __int128 len = (__int128)now_ms - o->start_ms;
        return prorate(o->price, len < 0 ? 0 : len > p ? p : (int64_t)len, p);
}
