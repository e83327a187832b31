/* The switching policy (see policy.h): rules over one snapshot, in this order:
 *   1. services by priority, higher first: a confirmed bottleneck or a predicted one gets the
 *      VMs that bring utilisation under high, from free RMs within max and the network budget;
 *      RMs still lacking are reclaimed from lower-priority idle services, then from what services
 *      of the same priority hold beyond their load at high, else a server loss;
 *   2. then every service that had VMs to spare (its load under the drain margin of high without
 *      them) for its window drains them, a quarter of its VMs at most per decision.
 * Activations come first because a late activation costs SLO violations while a late drain
 * costs only RM time. */
#include "policy/policy.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>

/* A reason or its prefix, cut to fit: decisions carry fixed-size texts and a cut one is fine. */
__attribute__((format(printf, 3, 4))) static void text_set(char *buf, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, size, fmt, ap);
        va_end(ap);
}

static inline int min_int(int a, int b) { return a < b ? a : b; }
static inline int max_int(int a, int b) { return a > b ? a : b; }

const char *policy_kind_to_string(policy_kind_t k) {
        switch (k) {
        case POLICY_ACTIVATE:
                return "activate";
        case POLICY_DRAIN:
                return "drain";
        case POLICY_RECLAIM:
                return "reclaim";
        case POLICY_SERVER_LOSS:
                return "server_loss";
        }
        return "unknown";
}

double policy_service_utilisation(const policy_service_t *s) {
        if (s->active > 0)
                return 100.0 * s->load / s->active;
        return s->load > 0 ? INFINITY : 0.0;
}

double policy_service_expected(const policy_service_t *s) {
        if (s->predicted < 0)
                return -1;
        if (s->predicted_now >= 0)
                return fmax(0, s->load + s->predicted - s->predicted_now);
        return s->predicted;
}

int policy_service_spare(const policy_service_t *s) {
        int keep = max_int(s->min, policy_vms_for(s->load, POLICY_DRAIN_MARGIN * s->high));
        double e = policy_service_expected(s);
        if (e >= 0)
                keep = max_int(keep, policy_vms_for(e, s->high));
        return max_int(0, s->active - keep);
}

void policy_service_observe(policy_service_t *s, double t) {
        if (policy_service_utilisation(s) > s->high) {
                if (s->above_since < 0)
                        s->above_since = t;
        } else
                s->above_since = -1;
        if (policy_service_spare(s) > 0) {
                if (s->below_since < 0)
                        s->below_since = t;
        } else
                s->below_since = -1;
}

/* The epsilon keeps 2.1 / 0.7 at 3, not 4. */
int policy_vms_for(double load, double high) {
        if (load <= 0)
                return 0;
        return (int)ceil(load / (high / 100.0) - 1e-9);
}

static policy_decision_t *emit(policy_decision_t *out, size_t max, size_t *n, policy_kind_t kind, size_t service,
                               size_t from, int count) {
        if (*n >= max)
                return NULL;
        policy_decision_t *d = &out[(*n)++];
        *d = (policy_decision_t){ .kind = kind, .service = service, .from_service = from, .count = count };
        return d;
}

/* Has a decision of this tick already touched service i (as recipient, or as donor)? One
 * change per service per tick keeps the arithmetic of each rule on an unchanged snapshot. */
static bool touched(const policy_decision_t *out, size_t n, size_t i) {
        for (size_t k = 0; k < n; k++)
                if (out[k].service == i || (out[k].kind == POLICY_RECLAIM && out[k].from_service == i))
                        return true;
        return false;
}

/* VMs service d can give up now: above its min, and still carrying its load under high. */
static int spare_vms(const policy_service_t *d) {
        int keep = max_int(d->min, policy_vms_for(d->load, d->high));
        return d->active - keep;
}

/* VMs a service of the recipient's priority can give up: spare_vms(), but also keeping what its
 * own prediction needs, since its claim weighs as much as the recipient's. */
static int spare_now(const policy_service_t *d) {
        double e = policy_service_expected(d);
        int keep = max_int(d->min, policy_vms_for(d->load, d->high));
        if (e >= 0)
                keep = max_int(keep, policy_vms_for(e, d->high));
        return d->active - keep;
}

static int decide_service(const policy_snapshot_t *snap, size_t i, int *free_rms, int *budget,
                          policy_decision_t *out, size_t max, size_t *n) {
        const policy_service_t *s = &snap->services[i];
        int have = s->active + s->activating + s->reclaiming;
        char why[128] = "";
        int target = 0;

        if (s->above_since >= 0 && snap->t - s->above_since >= s->window_s) {
                target = policy_vms_for(s->load, s->high);
                text_set(why, sizeof why, "cpu %.0f%% > %.0f%% for %.0f s: %d active for load %.2g",
                         policy_service_utilisation(s), s->high, snap->t - s->above_since, s->active, s->load);
        }
        /* Predictive: what the history says is coming by the time an activation started now would
         * otherwise have been confirmed and finished. */
        double e = policy_service_expected(s);
        if (e >= 0 && policy_vms_for(e, s->high) > max_int(target, have)) {
                target = policy_vms_for(e, s->high);
                text_set(why, sizeof why, "history predicts load %.2g in %.0f s: %d active carry %.2g under %.0f%%",
                         e, policy_lead_s(s), have, have * s->high / 100.0, s->high);
        }
        /* Below min (a new service, an operator's deactivate) or short of failed VMs: no window,
         * nothing is being measured, capacity the service had or must have is missing. */
        if (have < s->min && s->min > target) {
                target = s->min;
                text_set(why, sizeof why, "%d active or starting, below min %d", have, s->min);
        }
        if (s->replace > 0 && have + s->replace > target) {
                target = have + s->replace;
                text_set(why, sizeof why, "replacing %d failed VM(s)", s->replace);
        }
        if (target > s->max)
                target = s->max;
        int need = target - have;
        if (need <= 0)
                return 0;

        int use_free = min_int(need, *free_rms);
        int start = min_int(use_free, *budget);
        int lacking = need - use_free;
        if (start > 0) {
                policy_decision_t *d = emit(out, max, n, POLICY_ACTIVATE, i, i, start);
                if (!d)
                        return -ENOBUFS;
                text_set(d->reason, sizeof d->reason, "%s; activating %d for %d%s", why, start, target,
                         start < use_free ? " (network budget per tick reached)" : "");
                *free_rms -= start;
                *budget -= start;
        }

        /* No RM free: take idle VMs of lower-priority services, lowest priority first; then VMs
         * that services of the same priority hold beyond their load at high (the drain margin's
         * and noise's few), most spare first, so a pool near its size passes RMs on at once. */
        while (lacking > 0) {
                size_t donor = SIZE_MAX;
                int donor_spare = 0;
                for (size_t k = 0; k < snap->n_services; k++) {
                        const policy_service_t *c = &snap->services[k];
                        if (k == i || c->priority > s->priority || touched(out, *n, k))
                                continue;
                        int spare = c->priority < s->priority ? spare_vms(c) : spare_now(c);
                        if (spare <= 0 || (c->priority < s->priority && policy_service_utilisation(c) >= c->high / 2))
                                continue;
                        if (donor != SIZE_MAX) {
                                const policy_service_t *b = &snap->services[donor];
                                if (c->priority > b->priority || (c->priority == b->priority && spare <= donor_spare))
                                        continue;
                        }
                        donor = k;
                        donor_spare = spare;
                }
                if (donor == SIZE_MAX)
                        break;
                const policy_service_t *c = &snap->services[donor];
                int give = min_int(lacking, donor_spare);
                policy_decision_t *d = emit(out, max, n, POLICY_RECLAIM, i, donor, give);
                if (!d)
                        return -ENOBUFS;
                if (c->priority < s->priority)
                        text_set(d->reason, sizeof d->reason,
                                 "%s; no free RM: reclaiming %d from \"%s\" (priority %d < %d, cpu %.0f%% with %d active)",
                                 why, give, c->name, c->priority, s->priority, policy_service_utilisation(c), c->active);
                else
                        text_set(d->reason, sizeof d->reason,
                                 "%s; no free RM: reclaiming %d from \"%s\" (same priority, %d active for load %.2g)", why,
                                 give, c->name, c->active, c->load);
                lacking -= give;
        }
        if (lacking > 0) {
                policy_decision_t *d = emit(out, max, n, POLICY_SERVER_LOSS, i, i, lacking);
                if (!d)
                        return -ENOBUFS;
                text_set(d->reason, sizeof d->reason, "%s; %d more needed, no free RM and nothing to reclaim", why,
                         lacking);
        }
        return 0;
}

static int decide_drain(const policy_snapshot_t *snap, size_t i, policy_decision_t *out, size_t max, size_t *n) {
        const policy_service_t *s = &snap->services[i];
        if (s->below_since < 0 || snap->t - s->below_since < s->window_s)
                return 0;
        /* Nothing in flight, nothing else decided for it this tick. */
        if (s->activating > 0 || s->draining > 0 || touched(out, *n, i))
                return 0;
        int count = min_int(policy_service_spare(s), max_int(1, (int)ceil(POLICY_DRAIN_SHARE * s->active)));
        if (count <= 0)
                return 0;
        policy_decision_t *d = emit(out, max, n, POLICY_DRAIN, i, i, count);
        if (!d)
                return -ENOBUFS;
        policy_service_t after = *s;
        after.active -= count;
        text_set(d->reason, sizeof d->reason, "cpu %.0f%% for %.0f s: %d active for load %.2g; draining %d (cpu %.0f%% after)",
                 policy_service_utilisation(s), snap->t - s->below_since, s->active, s->load, count,
                 policy_service_utilisation(&after));
        return 0;
}

int policy_decide(const policy_snapshot_t *snap, policy_decision_t *out, size_t max, size_t *ret_n) {
        for (size_t i = 0; i < snap->n_services; i++) {
                const policy_service_t *s = &snap->services[i];
                if (s->high <= 0 || s->min < 0 || s->min > s->max || s->window_s < 0 || s->activation_s < 0 ||
                    s->drain_s < 0)
                        return -EINVAL;
        }
        int free_rms = max_int(snap->free_rms, 0);
        int budget = INT_MAX;
        if (snap->network_bps > 0 && snap->vm_bytes > 0) {
                /* A VM bigger than one tick's budget still starts alone: its transfer then spreads
                 * over several ticks, which is what limiting the rate means. */
                double per_tick = floor(snap->network_bps * snap->tick_s / (double)snap->vm_bytes);
                budget = per_tick < 1 ? 1 : per_tick > INT_MAX ? INT_MAX : (int)per_tick;
        }

        size_t n = 0;
        /* Priorities from the highest down, services of equal priority in index order. */
        bool have_prev = false;
        int prev = 0;
        for (;;) {
                bool found = false;
                int p = INT_MIN;
                for (size_t i = 0; i < snap->n_services; i++) {
                        int q = snap->services[i].priority;
                        if ((!have_prev || q < prev) && (!found || q > p)) {
                                p = q;
                                found = true;
                        }
                }
                if (!found)
                        break;
                for (size_t i = 0; i < snap->n_services; i++)
                        if (snap->services[i].priority == p) {
                                int r = decide_service(snap, i, &free_rms, &budget, out, max, &n);
                                if (r < 0)
                                        return r;
                        }
                prev = p;
                have_prev = true;
        }
        for (size_t i = 0; i < snap->n_services; i++) {
                int r = decide_drain(snap, i, out, max, &n);
                if (r < 0)
                        return r;
        }
        *ret_n = n;
        return 0;
}

void policy_history_clear(policy_history_t *h) {
        for (size_t i = 0; i < h->n_bins; i++)
                h->bins[i] = -1;
}

/* The bin holding time t, or -1 outside the bins. */
static long history_bin(const policy_history_t *h, double t) {
        if (h->n_bins == 0 || h->bin_s <= 0 || t < h->t0)
                return -1;
        double b = floor((t - h->t0) / h->bin_s);
        return b < (double)h->n_bins ? (long)b : -1;
}

void policy_history_record(policy_history_t *h, double from, double to, double load) {
        long first = history_bin(h, from);
        if (first < 0)
                return;
        for (long b = first; b < (long)h->n_bins; b++) {
                if (b > first && h->t0 + (double)b * h->bin_s >= to)
                        break;
                if (load > h->bins[b])
                        h->bins[b] = load;
        }
}

/* The highest load recorded in the bins meeting [from, to], or -1. */
static double history_max(const policy_history_t *h, double from, double to) {
        double best = -1;
        if (h->n_bins == 0 || h->bin_s <= 0 || to < h->t0)
                return -1;
        long b = from < h->t0 ? 0 : (long)floor((from - h->t0) / h->bin_s);
        for (; b < (long)h->n_bins && h->t0 + (double)b * h->bin_s <= to; b++)
                if (h->bins[b] > best)
                        best = h->bins[b];
        return best;
}

double policy_history_predict(const policy_history_t *h, double t) {
        double week = history_max(h, t - POLICY_WEEK_S - POLICY_PREDICT_SPAN_S, t - POLICY_WEEK_S + POLICY_PREDICT_SPAN_S);
        if (week >= 0)
                return week;
        return history_max(h, t - POLICY_DAY_S - POLICY_PREDICT_SPAN_S, t - POLICY_DAY_S + POLICY_PREDICT_SPAN_S);
}
