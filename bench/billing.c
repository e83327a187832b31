/* bench/billing: what billing as a ledger (src/market/billing.c) costs the Oracle.
 *   month        computing every charge of MACHINES machines over DAYS days of state history
 *                (since_ms = 0): total ms, charges produced, us per machine
 *   tick         the same histories with since_ms = now - 1 s, what the Oracle's 1 s billing tick
 *                pays per machine when nothing new ended: ns per machine, and its ratio to month
 * Histories are generated, not recorded: each machine is stored at t0 at one of 50 offers
 * (storage period 1 day, running period 1 hour), then changes state a few times a day through
 * the lifecycle (boot, suspend, resume, activate, deactivate, stop, the odd failure, each with
 * its transitional state); one machine in ten migrates to another offer mid-month (live when it
 * runs). Generation is not timed.
 * Usage: bench-billing [MACHINES] [DAYS] [RUNS]. Prints medians; never passes or fails. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/macro.h"
#include "market/billing.h"

#define T0 INT64_C(1700000000000)
#define HOUR_MS INT64_C(3600000)
#define DAY_MS (24 * HOUR_MS)
#define OFFERS 50

static uint64_t rng_next(uint64_t *state) {
        uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
        return z ^ (z >> 31);
}

/* Uniform in [lo, hi]. */
static int64_t rng_range(uint64_t *state, int64_t lo, int64_t hi) {
        return lo + (int64_t)(rng_next(state) % (uint64_t)(hi - lo + 1));
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
        qsort(v, (size_t)n, sizeof *v, cmp_double);
        return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct machine {
        billing_span_t *spans;
        size_t n, cap;
        int offer;
        market_terms_t terms;
} machine_t;

static void machine_add(machine_t *m, int64_t at_ms, const char *state) {
        if (m->n == m->cap) {
                m->cap = m->cap ? 2 * m->cap : 64;
                m->spans = realloc(m->spans, m->cap * sizeof *m->spans);
                if (!m->spans) {
                        fprintf(stderr, "out of memory\n");
                        exit(1);
                }
        }
        billing_span_t *s = &m->spans[m->n++];
        memset(s, 0, sizeof *s);
        s->at_ms = at_ms;
        snprintf(s->state, sizeof s->state, "%s", state);
        snprintf(s->offer, sizeof s->offer, "rm-%02d", m->offer);
        snprintf(s->provider, sizeof s->provider, "provider-%02d", m->offer % 7);
        s->terms = m->terms;
}

/* The terms of a machine of 1-8 vCPUs, 1-16 GiB, 10-100 GiB of disk at offer k: prices vary
 * with k so that migrations change them. */
static market_terms_t offer_terms(int k, uint64_t *rng) {
        int64_t vcpus = rng_range(rng, 1, 8), gib = rng_range(rng, 1, 16), disk = rng_range(rng, 10, 100);
        int64_t f = 100 + k; /* percent */
        return (market_terms_t){
                .storage_price = disk * 2000 * f / 100, /* 0.002 per GiB per day */
                .storage_period_s = 86400,
                .running_price = (vcpus * 10000 + gib * 3000) * f / 100, /* per hour */
                .running_period_s = 3600,
        };
}

/* One machine's month: a few stable states a day (exponential-ish holding times around 8 h),
 * each change through its transitional state (5 to 60 s). */
static void machine_generate(machine_t *m, uint64_t seed, int64_t days, bool migrates) {
        uint64_t rng = seed;
        m->offer = (int)rng_range(&rng, 0, OFFERS - 1);
        m->terms = offer_terms(m->offer, &rng);
        int64_t t = T0, end = T0 + days * DAY_MS, mid = T0 + days * DAY_MS / 2;
        const char *state = "stored";
        machine_add(m, t, "registered");
        t += rng_range(&rng, 1000, 60000);
        machine_add(m, t, state);
        bool migrated = !migrates;
        for (;;) {
                /* holding time: the sum of two uniforms, 0..16 h, mean 8 h */
                t += rng_range(&rng, 0, 8 * HOUR_MS) + rng_range(&rng, 0, 8 * HOUR_MS);
                if (t >= end)
                        break;
                bool running = streq(state, "loading") || streq(state, "active");
                if (!migrated && t >= mid && !streq(state, "failed")) {
                        /* a live migration while it runs, a cold one otherwise */
                        migrated = true;
                        machine_add(m, t, streq(state, "stored") ? "storing" : "migrating");
                        m->offer = (m->offer + 1 + (int)rng_range(&rng, 0, OFFERS - 2)) % OFFERS;
                        m->terms = offer_terms(m->offer, &rng);
                        t += rng_range(&rng, 20000, 120000);
                        machine_add(m, t, state);
                        continue;
                }
                int64_t r = rng_range(&rng, 0, 99);
                const char *transit, *next;
                if (streq(state, "stored") || streq(state, "failed")) {
                        transit = r < 70 ? "booting" : "activating";
                        next = r < 70 ? "loading" : "active";
                } else if (streq(state, "loading")) {
                        transit = r < 40 ? "suspending" : r < 70 ? "activating" : "stopping";
                        next = r < 40 ? "suspended" : r < 70 ? "active" : "stored";
                } else if (streq(state, "active")) {
                        transit = r < 40 ? "deactivating" : r < 70 ? "suspending" : "stopping";
                        next = r < 40 ? "stored" : r < 70 ? "suspended" : "stored";
                } else { /* suspended */
                        transit = r < 70 ? "resuming" : "stopping";
                        next = r < 70 ? "loading" : "stored";
                }
                if (running && r == 99) { /* the odd failure of the RM: no transitional state */
                        machine_add(m, t, "failed");
                        state = "failed";
                        continue;
                }
                machine_add(m, t, transit);
                t += rng_range(&rng, 5000, 60000);
                machine_add(m, t, next);
                state = next;
        }
}

/* One pass over every machine at now_ms, since_ms: seconds taken; *ret_charges rows. */
static double pass(const machine_t *ms, size_t n, int64_t now_ms, int64_t since_ms, size_t *ret_charges) {
        size_t total = 0;
        double t = now_s();
        for (size_t i = 0; i < n; i++) {
                billing_charge_t *v = NULL;
                size_t nv = 0;
                billing_open_t open[_CHARGE_KIND_MAX];
                if (billing_compute(ms[i].spans, ms[i].n, now_ms, since_ms, &v, &nv, open) < 0) {
                        fprintf(stderr, "billing_compute failed on machine %zu\n", i);
                        exit(1);
                }
                total += nv;
                free(v);
        }
        t = now_s() - t;
        *ret_charges = total;
        return t;
}

int main(int argc, char **argv) {
        long machines = argc > 1 ? atol(argv[1]) : 10000;
        long days = argc > 2 ? atol(argv[2]) : 30;
        int runs = argc > 3 ? atoi(argv[3]) : 5;
        if (machines < 1 || days < 1 || runs < 1 || runs > 100) {
                fprintf(stderr, "usage: bench-billing [MACHINES] [DAYS] [RUNS]\n");
                return 2;
        }

        machine_t *ms = calloc((size_t)machines, sizeof *ms);
        if (!ms)
                return 1;
        size_t spans = 0;
        for (long i = 0; i < machines; i++) {
                machine_generate(&ms[i], 0x5eed0000u + (uint64_t)i, days, i % 10 == 0);
                spans += ms[i].n;
        }
        int64_t now = T0 + days * DAY_MS;

        double full[100], tick[100];
        size_t charges = 0, tick_charges = 0;
        for (int r = 0; r < runs; r++) {
                full[r] = pass(ms, (size_t)machines, now, 0, &charges);
                tick[r] = pass(ms, (size_t)machines, now, now - 1000, &tick_charges);
        }
        double f = median(full, runs), k = median(tick, runs);

        printf("billing: %ld machines, %ld days, %zu spans (%.1f per machine, %.0f MB), median of %d runs\n",
               machines, days, spans, (double)spans / (double)machines,
               (double)(spans * sizeof(billing_span_t)) / 1e6, runs);
        printf("  month    %.1f ms total, %zu charges, %.2f us per machine\n", f * 1e3, charges,
               f * 1e6 / (double)machines);
        printf("  tick     %.1f ms total, %zu charges, %.0f ns per machine, %.3f of month\n", k * 1e3, tick_charges,
               k * 1e9 / (double)machines, k / f);

        for (long i = 0; i < machines; i++)
                free(ms[i].spans);
        free(ms);
        return 0;
}
