/* bench/billing-oracle: the second figure of bench/billing, what the Oracle's billing loop
 * costs in CPU with MACHINES running market machines: CPU per tick, CPU seconds per hour of
 * wall time and the share of one core, side by side for a running period of 1 h and of 60 s
 * (sixty times the posting), the storage period being 1 day in both.
 *
 * Why the figure is honest: nothing is modelled. The loop is the product's own
 * oracle_billing_thread (src/oracle/oracle-billing.c, unchanged: its 1 s tick, bill_tick and
 * money_tick, the minute's price refresh), started in this process on a small oracle_t whose
 * only part it uses is the store: a real SQLite store (store_open on a file under TMPDIR, so
 * WAL and synchronous=FULL as the Oracle has them, fsyncs included). The store is filled only
 * through its API, so its rows are the product's: users (providers and buyers with a large
 * balance, store_deposit, so that money never runs out and the loop never reaches the
 * operation engine), RMs with providers and 50 offers, suggested configurations, and each
 * machine made as vm register makes it (store_vm_insert, state "registered") and then taken
 * by store_vm_update through a few days of lifecycle (storing, stored, booting, loading,
 * suspending...), ending in "loading", so that its spans are the ones the store writes with
 * every row change. Each span is moved to its time in the past by store_span_backdate (the
 * store's own call for a failure detected late). Billing's bookkeeping is then left as the
 * loop would have left it after posting that history (store_billing_progress to the end of
 * the last period that ended), so the window measures the steady state, not a catch-up; the
 * charges table starts empty (its inserts are B-tree inserts: a month of rows would add a
 * level at most). Running periods are staggered uniformly over one period and storage periods
 * over one day, as independent machines would be.
 *
 * What is measured: the CPU clock of the billing thread alone (pthread_getcpuclockid: user and
 * system time of that thread, the kernel's side of SQLite's writes and fsyncs included, the
 * waiting for the disk not), read by the main thread every millisecond, which touches nothing
 * else meanwhile. The window (SECONDS) starts 1 s after the first tick, which bills every
 * machine once as an Oracle's start does and is shown apart. Ticks are told apart in the trace
 * by the loop's shape: a tick is a burst of CPU, then ten 100 ms sleeps whose wake-ups cost a
 * few microseconds each; bursts separated by less than 80 ms are one, and a big burst less
 * than 700 ms after a tick belongs to it (the tick waited on a slow fsync). Per tick: the
 * median and the 90th percentile over the ticks of the window; per hour: the CPU of the whole
 * window (wake-ups included) over its wall time, times 3600. The price refresh runs once a
 * minute, so a window under a minute holds none: it is measured apart (called on the main
 * thread, its CPU clock) and added 60 times to the hourly figure. Charges: the ledger rows
 * whose posted_ms falls in the window, read afterwards through a separate read-only
 * connection.
 *
 * Usage: bench-billing-oracle [SECONDS] [MACHINES] [BUYERS] [HISTORY_DAYS] [RUNS]
 * (25, 1000, 100, 7, 1). Each run seeds a fresh store per variant. Prints medians over runs;
 * never passes or fails on time. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"
#include "market/billing.h"
#include "oracle/oracle-internal.h"
#include "store/store-auth.h"
#include "store/store-market.h"

#define SEC_MS INT64_C(1000)
#define MIN_MS (60 * SEC_MS)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define OFFERS 50
#define PROVIDERS 7
#define SAMPLE_NS INT64_C(1000000)
#define TICK_GAP_NS (INT64_C(80) * 1000000)
#define TICK_SPLIT_NS (INT64_C(700) * 1000000)
#define BALANCE (INT64_C(1000000) * MONEY_SCALE) /* a million units each: never runs out */
#define RUNS_MAX 25

typedef struct params {
        double seconds;
        long machines, buyers, history_days;
        int64_t running_period_s;
} params_t;

/* One run of one variant. */
typedef struct result {
        double spans_per_machine;
        double first_tick_ms;       /* CPU of the thread up to the end of its first tick */
        double prices_ms;           /* CPU of one oracle_market_prices_update */
        double tick_median_ms, tick_p90_ms, tick_wall_median_ms;
        long ticks, ticks_expected;
        bool ticks_found;           /* the trace showed one burst per tick */
        double window_cpu_ms, window_s;
        long charges_running, charges_storage;
} result_t;

static void die(const char *what, int r) {
        fprintf(stderr, "bench-billing-oracle: %s: %s\n", what, strerror(r < 0 ? -r : r));
        exit(1);
}

static void check(int r, const char *what) {
        if (r < 0)
                die(what, r);
}

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

static int64_t clock_ns(clockid_t c) {
        struct timespec ts;
        clock_gettime(c, &ts);
        return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* The q-quantile (0.5: the median) of v[0..n), sorted in place; 0 when n is 0. */
static double quantile(double *v, size_t n, double q) {
        if (n == 0)
                return 0;
        qsort(v, n, sizeof *v, cmp_double);
        double pos = q * (double)(n - 1);
        size_t i = (size_t)pos;
        return i + 1 < n ? v[i] + (pos - (double)i) * (v[i + 1] - v[i]) : v[i];
}

/* ---- the store, filled through its API ---- */

/* Offer k's prices: 0.01 per vCPU and 0.003 per GiB of RAM per hour, 0.002 per GiB of disk per
 * day, k % more at offer k; the running price is per running_period_s (the hourly rate scaled,
 * rounded half up). */
static market_offer_t offer_of(int k, int64_t running_period_s) {
        int64_t f = 100 + k;
        return (market_offer_t){
                .vcpus = 256,
                .vcpu_price = (10000 * f / 100 * running_period_s + 1800) / 3600,
                .memory_mib = 512 * 1024,
                .memory_price = (3000 * f / 100 * running_period_s + 1800) / 3600,
                .running_period_s = running_period_s,
                .disk_gib = 4096,
                .disk_price = 2000 * f / 100,
                .storage_period_s = 86400,
        };
}

static void seed_market(store_t *s, const params_t *p, int64_t now) {
        for (int k = 0; k < PROVIDERS; k++) {
                user_record_t u = { .role = "provider", .password_hash = "-", .created_ms = now };
                snprintf(u.name, sizeof u.name, "provider-%d", k);
                check(store_user_insert(s, &u), "store_user_insert");
        }
        for (long b = 0; b < p->buyers; b++) {
                user_record_t u = { .role = "buyer", .password_hash = "-", .created_ms = now };
                snprintf(u.name, sizeof u.name, "buyer-%04ld", b);
                check(store_user_insert(s, &u), "store_user_insert");
                int64_t balance = 0;
                check(store_deposit(s, u.name, BALANCE, "admin", &balance), "store_deposit");
        }
        for (int k = 0; k < OFFERS; k++) {
                rm_record_t rm = { .role = "production", .state = "up", .last_seen_ms = now };
                snprintf(rm.name, sizeof rm.name, "rm-%02d", k);
                snprintf(rm.address, sizeof rm.address, "127.0.0.1:%d", 7100 + k);
                check(store_rm_upsert(s, &rm), "store_rm_upsert");
                offer_record_t of = { .offer = offer_of(k, p->running_period_s), .updated_ms = now };
                SET(of.rm, rm.name);
                snprintf(of.provider, sizeof of.provider, "provider-%d", k % PROVIDERS);
                check(store_rm_provider_set(s, rm.name, of.provider), "store_rm_provider_set");
                check(store_offer_put(s, &of), "store_offer_put");
        }
        static const struct {
                const char *name;
                market_config_t c;
        } configs[] = {
                { "small", { 1024, 1, 10 } },
                { "medium", { 4096, 2, 40 } },
                { "large", { 16384, 8, 100 } },
                { "xlarge", { 65536, 32, 500 } },
        };
        for (size_t i = 0; i < ELEMENTSOF(configs); i++) {
                market_config_record_t c = { .config = configs[i].c, .storage_price_30d = -1, .running_price_1h = -1,
                                             .created_ms = now };
                SET(c.name, configs[i].name);
                SET(c.image, "tiny-http");
                check(store_market_config_put(s, &c), "store_market_config_put");
        }
}

typedef struct event {
        int64_t at_ms;
        const char *state;
} event_t;

typedef struct history {
        event_t *v;
        size_t n;
} history_t;

static void history_add(history_t *h, int64_t at_ms, const char *state) {
        event_t *e = array_append(&h->v, &h->n, sizeof *h->v);
        e->at_ms = at_ms;
        e->state = state;
}

/* A machine's life: registered, stored at its offer about history_days (plus up to one day)
 * before now, then a few stable states a day (holding times of 0 to 16 h, each change through
 * its transitional state of 5 to 60 s, the odd failure), and at last booted so that it has
 * been loading since run_start (within one running period of now). As bench/billing.c's
 * machines, without migrations. */
static void history_generate(history_t *h, uint64_t *rng, int64_t history_days, int64_t run_start) {
        int64_t t = run_start - 15 * MIN_MS - history_days * DAY_MS - rng_range(rng, 0, DAY_MS - 1);
        history_add(h, t - 5 * MIN_MS, "registered");
        history_add(h, t - rng_range(rng, 20, 120) * SEC_MS, "storing");
        history_add(h, t, "stored");
        const char *state = "stored";
        for (;;) {
                int64_t hold = rng_range(rng, 0, 8 * HOUR_MS) + rng_range(rng, 0, 8 * HOUR_MS);
                if (t + hold > run_start - 15 * MIN_MS)
                        break;
                t += hold;
                bool running = streq(state, "loading") || streq(state, "active");
                int64_t r = rng_range(rng, 0, 99);
                if (running && r == 99) {
                        history_add(h, t, "failed");
                        state = "failed";
                        continue;
                }
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
                history_add(h, t, transit);
                t += rng_range(rng, 5, 60) * SEC_MS;
                history_add(h, t, next);
                state = next;
        }
        /* to rest, then booted (or resumed) into the run that is still going on */
        if (streq(state, "loading") || streq(state, "active")) {
                history_add(h, run_start - 4 * MIN_MS, "stopping");
                history_add(h, run_start - 3 * MIN_MS, "stored");
                state = "stored";
        }
        history_add(h, run_start - MIN_MS, streq(state, "suspended") ? "resuming" : "booting");
        history_add(h, run_start, "loading");
}

/* Machine i of p, seeded as the product writes it; its span count into *spans. */
static void seed_machine(store_t *s, const params_t *p, long i, int64_t now, uint64_t *rng, size_t *spans) {
        int k = (int)rng_range(rng, 0, OFFERS - 1);
        market_offer_t offer = offer_of(k, p->running_period_s);
        market_config_t c = { .vcpus = rng_range(rng, 1, 8), .memory_mib = rng_range(rng, 1, 16) * 1024,
                              .disk_gib = rng_range(rng, 10, 100) };
        vm_record_t v = { .state = "registered", .version = 1, .image = "tiny-http", .memory_mib = c.memory_mib,
                          .vcpus = c.vcpus, .created_ms = now };
        snprintf(v.name, sizeof v.name, "m-%05ld", i);
        snprintf(v.owner, sizeof v.owner, "buyer-%04ld", i % p->buyers);
        oracle_mac_format(i + 1, v.mac);
        v.bundle = json_object();
        check(store_counter_next(s, "machine", &v.market.machine), "store_counter_next");
        v.market.disk_gib = c.disk_gib;
        market_terms_t terms;
        market_price(&offer, &c, &terms);
        v.market.bid = terms;

        history_t h = { 0 };
        int64_t run_start = now - rng_range(rng, 0, p->running_period_s * SEC_MS - 1);
        history_generate(&h, rng, p->history_days, run_start);
        v.market.registered_ms = h.v[0].at_ms;
        check(store_vm_insert(s, &v), "store_vm_insert");
        check(store_span_backdate(s, v.market.machine, h.v[0].at_ms), "store_span_backdate");
        for (size_t j = 1; j < h.n; j++) {
                const char *st = h.v[j].state;
                SET(v.state, st);
                v.version++;
                snprintf(v.market.offer, sizeof v.market.offer, "rm-%02d", k);
                snprintf(v.market.provider, sizeof v.market.provider, "provider-%d", k % PROVIDERS);
                v.market.terms = terms;
                bool away = streq(st, "stored") || streq(st, "storing") || streq(st, "suspended") ||
                            streq(st, "failed");
                SET(v.rm, away ? "" : v.market.offer);
                check(store_vm_update(s, &v, v.version - 1), "store_vm_update");
                check(store_span_backdate(s, v.market.machine, h.v[j].at_ms), "store_span_backdate");
        }
        free(h.v);

        /* the bookkeeping the loop would have left after posting that history */
        billing_span_t *sp = NULL;
        size_t n = 0;
        check(store_spans_get(s, v.market.machine, &sp, &n), "store_spans_get");
        billing_charge_t *ch = NULL;
        size_t nc = 0;
        check(billing_compute(sp, n, now, 0, &ch, &nc, NULL), "billing_compute");
        int64_t until = 0;
        for (size_t j = 0; j < nc; j++)
                until = MAX(until, ch[j].end_ms);
        if (until)
                check(store_billing_progress(s, v.market.machine, until, false), "store_billing_progress");
        free(ch);
        free(sp);
        *spans += n;
        vm_record_clear(&v);
}

static size_t seed(store_t *s, const params_t *p, uint64_t rng) {
        int64_t now = time_wall_ms();
        check(store_tx_begin(s), "store_tx_begin");
        seed_market(s, p, now);
        size_t spans = 0;
        for (long i = 0; i < p->machines; i++) {
                seed_machine(s, p, i, now, &rng, &spans);
                if (i % 100 == 99) { /* one transaction per 100 machines: seeding is not timed */
                        check(store_tx_commit(s), "store_tx_commit");
                        check(store_tx_begin(s), "store_tx_begin");
                }
        }
        check(store_tx_commit(s), "store_tx_commit");
        return spans;
}

/* ---- the measurement ---- */

typedef struct sample {
        int64_t mono_ns, cpu_ns;
} sample_t;

/* A burst of the thread's CPU in the trace. */
typedef struct burst {
        int64_t start_ns, end_ns, cpu_ns;
} burst_t;

/* The bursts of samples[from..to): runs of samples where the CPU clock moved, joined across
 * pauses shorter than TICK_GAP_NS. */
static burst_t *bursts_find(const sample_t *v, size_t from, size_t to, size_t *ret_n) {
        burst_t *b = NULL;
        size_t n = 0;
        int64_t last_active = INT64_MIN / 2;
        for (size_t i = MAX(from, (size_t)1); i < to; i++) {
                int64_t d = v[i].cpu_ns - v[i - 1].cpu_ns;
                if (d <= 0)
                        continue;
                if (n == 0 || v[i].mono_ns - last_active > TICK_GAP_NS) {
                        burst_t *x = array_append(&b, &n, sizeof *b);
                        x->start_ns = v[i - 1].mono_ns;
                }
                b[n - 1].cpu_ns += d;
                b[n - 1].end_ns = v[i].mono_ns;
                last_active = v[i].mono_ns;
        }
        *ret_n = n;
        return b;
}

/* The ledger rows posted in [from_ms, to_ms), by kind, through a connection of their own. */
static void charges_count(const char *db, int64_t from_ms, int64_t to_ms, result_t *r) {
        sqlite3 *c = NULL;
        sqlite3_stmt *st = NULL;
        if (sqlite3_open_v2(db, &c, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
            sqlite3_prepare_v2(c,
                               "SELECT kind, COUNT(*) FROM charges WHERE posted_ms >= ? AND posted_ms < ? "
                               "GROUP BY kind",
                               -1, &st, NULL) != SQLITE_OK) {
                fprintf(stderr, "bench-billing-oracle: cannot read %s: %s\n", db, sqlite3_errmsg(c));
                exit(1);
        }
        sqlite3_bind_int64(st, 1, from_ms);
        sqlite3_bind_int64(st, 2, to_ms);
        while (sqlite3_step(st) == SQLITE_ROW) {
                const char *kind = (const char *)sqlite3_column_text(st, 0);
                long count = (long)sqlite3_column_int64(st, 1);
                if (streq(kind, "running"))
                        r->charges_running = count;
                else if (streq(kind, "storage"))
                        r->charges_storage = count;
        }
        sqlite3_finalize(st);
        sqlite3_close(c);
}

static const char *fs_name(const char *path) {
        struct statfs f;
        if (statfs(path, &f) < 0)
                return "?";
        switch ((unsigned long)f.f_type) {
        case 0x01021994: return "tmpfs (fsync free)";
        case 0xEF53: return "ext4";
        case 0x58465342: return "xfs";
        case 0x9123683E: return "btrfs";
        case 0x794c7630: return "overlayfs";
        default: return "another file system";
        }
}

/* One variant once: a fresh store, seeded, then the loop measured over p->seconds. */
static void run_once(const params_t *p, uint64_t rng, const char *tmp, result_t *r) {
        *r = (result_t){ 0 };
        _cleanup_free_ char *dir = xasprintf("%s/vmx-bench-billing-oracle-XXXXXX", tmp);
        if (!mkdtemp(dir))
                die("mkdtemp", errno);
        _cleanup_free_ char *db = xasprintf("%s/state.db", dir);
        oracle_t o = { .data = dir };
        check(store_open(db, &o.store), "store_open");
        r->spans_per_machine = (double)seed(o.store, p, rng) / (double)p->machines;

        /* the minute's price refresh, apart: once to write what it writes, then timed */
        oracle_market_prices_update(&o);
        double pv[5];
        for (size_t i = 0; i < ELEMENTSOF(pv); i++) {
                int64_t c0 = clock_ns(CLOCK_THREAD_CPUTIME_ID);
                oracle_market_prices_update(&o);
                pv[i] = (double)(clock_ns(CLOCK_THREAD_CPUTIME_ID) - c0) / 1e6;
        }
        r->prices_ms = quantile(pv, ELEMENTSOF(pv), 0.5);

        size_t cap = (size_t)((p->seconds + 120) * 1e9 / (double)SAMPLE_NS), n = 0;
        sample_t *v = xcalloc(cap, sizeof *v);
        pthread_t t;
        clockid_t cid;
        int e = pthread_create(&t, NULL, oracle_billing_thread, &o);
        if (e == 0)
                e = pthread_getcpuclockid(t, &cid);
        if (e == 0)
                pthread_setname_np(t, "billing"); /* for perf report --comm billing */
        if (e != 0)
                die("the billing thread", e);

        /* the first tick ends when the clock has not moved for TICK_GAP_NS; the window opens 1 s
         * later and lasts p->seconds */
        int64_t start = clock_ns(CLOCK_MONOTONIC), next = start, first_end = 0, win_from = 0, win_to = 0;
        int64_t wall_from = 0, wall_to = 0;
        size_t i_from = 0, i_to = 0, i_first = 0;
        int64_t last_move = start;
        for (;;) {
                next += SAMPLE_NS;
                struct timespec ts = { .tv_sec = next / 1000000000, .tv_nsec = next % 1000000000 };
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
                sample_t x = { .mono_ns = clock_ns(CLOCK_MONOTONIC), .cpu_ns = clock_ns(cid) };
                if (n == cap)
                        break; /* the first tick never ended: reported as such below */
                if (n > 0 && x.cpu_ns != v[n - 1].cpu_ns)
                        last_move = x.mono_ns;
                v[n++] = x;
                if (!first_end && x.cpu_ns > 0 && x.mono_ns - last_move > TICK_GAP_NS) {
                        first_end = last_move;
                        i_first = n;
                        win_from = first_end + INT64_C(1000000000);
                }
                if (first_end && !wall_from && x.mono_ns >= win_from) {
                        wall_from = time_wall_ms();
                        i_from = n - 1;
                }
                if (wall_from && x.mono_ns >= win_from + (int64_t)(p->seconds * 1e9)) {
                        wall_to = time_wall_ms();
                        i_to = n;
                        break;
                }
        }
        o.stopping = 1;
        pthread_join(t, NULL);
        if (!i_to) {
                fprintf(stderr, "bench-billing-oracle: the first tick did not end within %.0f s\n", p->seconds + 120);
                exit(1);
        }
        win_to = v[i_to - 1].mono_ns;
        win_from = v[i_from].mono_ns;

        r->first_tick_ms = (double)v[i_first - 1].cpu_ns / 1e6; /* the thread's start included */

        r->window_cpu_ms = (double)(v[i_to - 1].cpu_ns - v[i_from].cpu_ns) / 1e6;
        r->window_s = (double)(win_to - win_from) / 1e9;
        size_t nb = 0;
        burst_t *b = bursts_find(v, i_from, i_to, &nb);
        /* the bursts wholly inside the window; a tick is one that costs more than five times the
         * median burst (the median is a wake-up: nine of ten bursts are), together with any that
         * follows it closer than TICK_SPLIT_NS (the same tick, after a slow fsync: the loop
         * sleeps a whole second between two) */
        double *cpu = xcalloc(nb ? nb : 1, sizeof *cpu), *wall = xcalloc(nb ? nb : 1, sizeof *wall);
        burst_t *tk = xcalloc(nb ? nb : 1, sizeof *tk);
        size_t m = 0, ticks = 0;
        for (size_t i = 0; i < nb; i++)
                if (b[i].start_ns > win_from && b[i].end_ns < win_to)
                        cpu[m++] = (double)b[i].cpu_ns / 1e6;
        double wake = quantile(cpu, m, 0.5);
        int64_t pending = 0; /* small bursts after the last tick, its own if a big one follows */
        for (size_t i = 0; i < nb; i++) {
                if (b[i].start_ns <= win_from || b[i].end_ns >= win_to)
                        continue;
                bool big = (double)b[i].cpu_ns / 1e6 > 5 * wake;
                bool same = ticks > 0 && b[i].start_ns - tk[ticks - 1].end_ns < TICK_SPLIT_NS;
                if (!big) {
                        pending += b[i].cpu_ns;
                } else if (same) {
                        tk[ticks - 1].cpu_ns += pending + b[i].cpu_ns;
                        tk[ticks - 1].end_ns = b[i].end_ns;
                        pending = 0;
                } else {
                        tk[ticks++] = b[i];
                        pending = 0;
                }
        }
        for (size_t i = 0; i < ticks; i++) {
                cpu[i] = (double)tk[i].cpu_ns / 1e6;
                wall[i] = (double)(tk[i].end_ns - tk[i].start_ns) / 1e6;
        }
        free(tk);
        double tick_wall = quantile(wall, ticks, 0.5);
        r->ticks_expected = (long)(r->window_s / (1.0 + tick_wall / 1e3));
        r->ticks = (long)ticks;
        r->ticks_found = ticks > 0 && labs(r->ticks - r->ticks_expected) <= 1 + r->ticks_expected / 10;
        if (r->ticks_found) {
                r->tick_median_ms = quantile(cpu, ticks, 0.5);
                r->tick_p90_ms = quantile(cpu, ticks, 0.9);
                r->tick_wall_median_ms = tick_wall;
        } else { /* no per-tick trace to trust: the window's CPU over its ticks */
                r->ticks = r->ticks_expected;
                r->tick_median_ms = r->tick_p90_ms = r->window_cpu_ms / (double)MAX(r->ticks, 1);
        }
        free(cpu);
        free(wall);
        free(b);
        free(v);

        charges_count(db, wall_from, wall_to, r);
        o.store = store_close(o.store);
        rm_rf(dir);
}

/* ---- the report ---- */

#define VARIANTS 2

typedef double (*figure_fn)(const result_t *r, const params_t *p);

static double f_tick(const result_t *r, const params_t *p) { return r->tick_median_ms; }
static double f_p90(const result_t *r, const params_t *p) { return r->tick_p90_ms; }
static double f_tick_wall(const result_t *r, const params_t *p) { return r->tick_wall_median_ms; }
static double f_ticks(const result_t *r, const params_t *p) { return (double)r->ticks; }
static double f_window_cpu(const result_t *r, const params_t *p) { return r->window_cpu_ms; }
static double f_per_hour(const result_t *r, const params_t *p) { return r->window_cpu_ms / 1e3 / r->window_s * 3600; }
static double f_core(const result_t *r, const params_t *p) { return r->window_cpu_ms / 1e3 / r->window_s * 100; }
static double f_running(const result_t *r, const params_t *p) { return (double)r->charges_running; }
static double f_storage(const result_t *r, const params_t *p) { return (double)r->charges_storage; }
static double f_prices(const result_t *r, const params_t *p) { return r->prices_ms; }
static double f_per_hour_all(const result_t *r, const params_t *p) {
        /* a window of a minute or more holds the refresh already */
        return f_per_hour(r, p) + (p->seconds < 59 ? 60 * r->prices_ms / 1e3 : 0);
}
static double f_core_all(const result_t *r, const params_t *p) { return f_per_hour_all(r, p) / 36; }
static double f_first(const result_t *r, const params_t *p) { return r->first_tick_ms; }
static double f_spans(const result_t *r, const params_t *p) { return r->spans_per_machine; }

static const struct {
        const char *label;
        const char *format;
        figure_fn fn;
} figures[] = {
        { "ticks in the window", "%14.0f", f_ticks },
        { "CPU per tick, median (ms)", "%14.3f", f_tick },
        { "CPU per tick, p90 (ms)", "%14.3f", f_p90 },
        { "wall per tick, median (ms)", "%14.3f", f_tick_wall },
        { "CPU over the window (ms)", "%14.1f", f_window_cpu },
        { "CPU per hour of wall time (s)", "%14.2f", f_per_hour },
        { "  share of one core (%)", "%14.3f", f_core },
        { "running charges posted", "%14.0f", f_running },
        { "storage charges posted", "%14.0f", f_storage },
        { "price refresh, each (ms CPU)", "%14.3f", f_prices },
        { "CPU per hour with 60 refreshes (s)", "%14.2f", f_per_hour_all },
        { "  share of one core (%)", "%14.3f", f_core_all },
        { "first tick: every machine, prices (ms)", "%14.1f", f_first },
        { "spans per machine", "%14.1f", f_spans },
};

int main(int argc, char **argv) {
        double seconds = argc > 1 ? atof(argv[1]) : 25;
        long machines = argc > 2 ? atol(argv[2]) : 1000;
        long buyers = argc > 3 ? atol(argv[3]) : 100;
        long history = argc > 4 ? atol(argv[4]) : 7;
        int runs = argc > 5 ? atoi(argv[5]) : 1;
        if (argc > 6 || seconds < 2 || seconds > 3600 || machines < 1 || buyers < 1 || buyers > machines ||
            history < 0 || history > 60 || runs < 1 || runs > RUNS_MAX) {
                fprintf(stderr, "usage: bench-billing-oracle [SECONDS] [MACHINES] [BUYERS] [HISTORY_DAYS] [RUNS]\n"
                                "  (2-3600 s, BUYERS <= MACHINES, 0-60 days, 1-%d runs)\n", RUNS_MAX);
                return 2;
        }
        log_setup("bench");
        log_set_level(LOG_LEVEL_WARN); /* not the store's migrations, seven times a run */
        const char *tmp = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
        const int64_t periods[VARIANTS] = { 3600, 60 };
        params_t p[VARIANTS];
        static result_t res[VARIANTS][RUNS_MAX];
        for (int k = 0; k < VARIANTS; k++)
                p[k] = (params_t){ .seconds = seconds, .machines = machines, .buyers = buyers,
                                   .history_days = history, .running_period_s = periods[k] };
        /* the variants alternate, so that a change in the machine's load falls on both */
        for (int r = 0; r < runs; r++)
                for (int k = 0; k < VARIANTS; k++) {
                        fprintf(stderr, "run %d/%d, running period %" PRId64 " s: seeding, then %.0f s...\n", r + 1,
                                runs, periods[k], seconds);
                        run_once(&p[k], 0x5eed0000u + (uint64_t)r, tmp, &res[k][r]);
                }

        printf("billing-oracle: the Oracle's billing loop (oracle_billing_thread) on a SQLite store on %s (%s),\n"
               "  %ld machines loading, %ld buyers, %d offers, %ld day%s of history, storage period 1 day;\n"
               "  a window of %.0f s after the first tick, median of %d run%s\n",
               fs_name(tmp), tmp, machines, buyers, OFFERS, history, history == 1 ? "" : "s", seconds, runs, runs > 1 ? "s" : "");
        printf("  %-38s %14s %14s\n", "", "running 1 h", "running 60 s");
        double col[RUNS_MAX];
        for (size_t f = 0; f < ELEMENTSOF(figures); f++) {
                printf("  %-38s", figures[f].label);
                for (int k = 0; k < VARIANTS; k++) {
                        for (int r = 0; r < runs; r++)
                                col[r] = figures[f].fn(&res[k][r], &p[k]);
                        printf(" ");
                        printf(figures[f].format, quantile(col, (size_t)runs, 0.5));
                }
                printf("\n");
        }
        for (int k = 0; k < VARIANTS; k++)
                for (int r = 0; r < runs; r++)
                        if (!res[k][r].ticks_found)
                                printf("  (running %" PRId64 " s, run %d: the ticks were not told apart in the trace; "
                                       "per tick is the window's CPU over %ld ticks)\n",
                                       periods[k], r + 1, res[k][r].ticks);
        return 0;
}
