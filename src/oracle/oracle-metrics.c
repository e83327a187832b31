/* Load profiles, the in-memory half (oracle-metrics.h): the latest figures of every VM and
 * service, the rates computed from the nodes' cumulative counters, and the samples waiting to
 * be written to the store by oracle_metrics_flush. The HTTP side (/metrics, /v1/metrics,
 * /v1/services/NAME/top) is oracle-metrics-http.c.
 *
 * VMs are found by a hash of their names (a heartbeat looks up each of its VMs: at 10,000 RMs a
 * linear scan would cost the table per VM), services by a linear scan (a few), under one
 * mutex; nothing slow (the store) happens while it is held: flush takes the pending samples
 * out and writes them, all in one transaction, after letting go. Report times are monotonic (time_now_ms); samples get
 * their wall-clock second only when flushed, from the offset between the two clocks then. */
#include "oracle/oracle-metrics.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include "base/util.h"
#include "store/store-metrics.h"

#define PENDING_MAX 65536           /* samples kept for the store when flushes do not come */
#define PRUNE_EVERY_MS 60000
#define RATE_MIN_INTERVAL_MS 200    /* closer reports than this do not give a rate: too noisy */

/* The cumulative counters of a heartbeat's "stats", and the vm_metrics_t rate each gives. */
enum { CTR_CPU, CTR_RD, CTR_WR, CTR_RX, CTR_TX, _CTR_MAX };
static const char *const counter_keys[_CTR_MAX] = { "cpu_ns", "block_rd_bytes", "block_wr_bytes", "net_rx_bytes",
                                                    "net_tx_bytes" };
/* the series KIND of each counter's rate; keep in sync with oracle_metrics_series_is_valid */
static const char *const counter_series[_CTR_MAX] = { "cpu", "disk_read_bps", "disk_write_bps", "net_rx_bps",
                                                      "net_tx_bps" };

typedef struct vm_entry {
        char name[64];
        bool have[_CTR_MAX];      /* a baseline for the counter */
        uint64_t base[_CTR_MAX];  /* the counter at the last rate (or restart) */
        int64_t base_ms[_CTR_MAX];
        int64_t sampled_ms;       /* of its last samples (monotonic), 0: none yet */
        vm_metrics_t m;
} vm_entry_t;

typedef struct service_entry {
        char name[64];
        service_metrics_t m;
} service_entry_t;

typedef struct pending_sample {
        char series[STORE_SAMPLES_SERIES_MAX];
        int64_t at_ms; /* monotonic */
        double value;
} pending_sample_t;

struct oracle_metrics {
        store_t *store;
        pthread_mutex_t lock; /* guards everything below */
        vm_entry_t *vms;
        size_t n_vms, cap_vms;
        uint32_t *vm_slots;   /* open addressing: index into vms + 1, 0 empty */
        size_t n_vm_slots;    /* a power of two, at least twice n_vms */
        service_entry_t *services;
        size_t n_services, cap_services;
        pending_sample_t *pending;
        size_t n_pending, cap_pending;
        uint64_t dropped;     /* samples lost to PENDING_MAX */
        int64_t pruned_ms;    /* wall clock of the last prune */
};

/* Grows *array (of *cap elements of size) to hold one more than n. */
static void grow(void **array, size_t *cap, size_t n, size_t size) {
        if (n < *cap)
                return;
        size_t cap2 = *cap ? *cap * 2 : 8;
        void *a = realloc(*array, cap2 * size);
        if (!a)
                abort(); /* as xcalloc: out of memory is not recoverable here */
        *array = a;
        *cap = cap2;
}

oracle_metrics_t *oracle_metrics_new(store_t *store) {
        oracle_metrics_t *m = xcalloc(1, sizeof *m);
        m->store = store;
        pthread_mutex_init(&m->lock, NULL);
        return m;
}

oracle_metrics_t *oracle_metrics_free(oracle_metrics_t *m) {
        if (!m)
                return NULL;
        pthread_mutex_destroy(&m->lock);
        free(m->vms);
        free(m->vm_slots);
        free(m->services);
        free(m->pending);
        free(m);
        return NULL;
}

/* Queues a sample of series "PREFIX:NAME:KIND"; with m->lock held. */
static void sample_push(oracle_metrics_t *m, const char *prefix, const char *name, const char *kind, int64_t at_ms,
                        double value) {
        if (!isfinite(value))
                return;
        if (m->n_pending >= PENDING_MAX) {
                m->dropped++;
                return;
        }
        grow((void **)&m->pending, &m->cap_pending, m->n_pending, sizeof *m->pending);
        pending_sample_t *p = &m->pending[m->n_pending];
        int k = snprintf(p->series, sizeof p->series, "%s:%s:%s", prefix, name, kind);
        if (k < 0 || (size_t)k >= sizeof p->series)
                return; /* names are at most 63 characters: cannot happen */
        p->at_ms = at_ms;
        p->value = value;
        m->n_pending++;
}

/* The slot of name in m->vm_slots: the one that holds it, or the empty one where it would go. */
static size_t vm_slot(const oracle_metrics_t *m, const char *name) {
        size_t mask = m->n_vm_slots - 1;
        for (size_t i = str_fnv1a32(name) & mask;; i = (i + 1) & mask)
                if (!m->vm_slots[i] || streq(m->vms[m->vm_slots[i] - 1].name, name))
                        return i;
}

static void vm_slots_rebuild(oracle_metrics_t *m, size_t n_slots) {
        free(m->vm_slots);
        m->vm_slots = xcalloc(n_slots, sizeof *m->vm_slots);
        m->n_vm_slots = n_slots;
        for (size_t i = 0; i < m->n_vms; i++)
                m->vm_slots[vm_slot(m, m->vms[i].name)] = (uint32_t)(i + 1);
}

/* The entry of name, or NULL (create: a new zeroed entry); with m->lock held. */
static vm_entry_t *vm_find(oracle_metrics_t *m, const char *name, bool create) {
        if (m->n_vm_slots) {
                uint32_t at = m->vm_slots[vm_slot(m, name)];
                if (at)
                        return &m->vms[at - 1];
        }
        if (!create)
                return NULL;
        grow((void **)&m->vms, &m->cap_vms, m->n_vms, sizeof *m->vms);
        vm_entry_t *e = &m->vms[m->n_vms++];
        *e = (vm_entry_t){ 0 };
        snprintf(e->name, sizeof e->name, "%s", name);
        if (m->n_vms * 2 > m->n_vm_slots)
                vm_slots_rebuild(m, m->n_vm_slots ? m->n_vm_slots * 2 : 64);
        else
                m->vm_slots[vm_slot(m, e->name)] = (uint32_t)m->n_vms;
        return e;
}

static service_entry_t *service_find(oracle_metrics_t *m, const char *name, bool create) {
        for (size_t i = 0; i < m->n_services; i++)
                if (streq(m->services[i].name, name))
                        return &m->services[i];
        if (!create)
                return NULL;
        grow((void **)&m->services, &m->cap_services, m->n_services, sizeof *m->services);
        service_entry_t *e = &m->services[m->n_services++];
        *e = (service_entry_t){ 0 };
        snprintf(e->name, sizeof e->name, "%s", name);
        return e;
}

/* stats[key] as a non-negative whole number; false when absent or not one. */
static bool stat_get(const json_t *stats, const char *key, uint64_t *ret) {
        const json_t *v = json_object_get(stats, key);
        if (json_is_integer(v)) {
                if (json_integer_value(v) < 0)
                        return false;
                *ret = (uint64_t)json_integer_value(v);
                return true;
        }
        if (json_is_real(v)) {
                double d = json_real_value(v);
                if (!isfinite(d) || d < 0 || d >= 18446744073709551616.0)
                        return false;
                *ret = (uint64_t)d;
                return true;
        }
        return false;
}

void oracle_metrics_vm_report(oracle_metrics_t *m, const char *vm, bool serving, int64_t vcpus, const json_t *stats,
                              int64_t now_ms) {
        if (!m || !vm || !name_is_valid(vm) || !json_is_object(stats))
                return;
        uint64_t v[_CTR_MAX];
        bool have[_CTR_MAX], backwards = false;
        pthread_mutex_lock(&m->lock);
        vm_entry_t *e = vm_find(m, vm, true);
        bool sample = serving || !e->sampled_ms || now_ms - e->sampled_ms >= ORACLE_METRICS_IDLE_SAMPLE_MS;
        if (sample)
                e->sampled_ms = now_ms;
        for (int k = 0; k < _CTR_MAX; k++) {
                have[k] = stat_get(stats, counter_keys[k], &v[k]);
                backwards |= have[k] && e->have[k] && v[k] < e->base[k];
        }
        /* a new QEMU (restarted, or the VM moved): every counter starts again from here; the
         * last rates stand until the next report gives new ones */
        if (backwards)
                for (int k = 0; k < _CTR_MAX; k++)
                        e->have[k] = false;
        double cores = (double)(vcpus > 0 ? vcpus : 1);
        for (int k = 0; k < _CTR_MAX; k++) {
                if (!have[k])
                        continue;
                int64_t dt = now_ms - e->base_ms[k];
                if (e->have[k] && dt < RATE_MIN_INTERVAL_MS && dt >= 0)
                        continue; /* keep the baseline: the next report measures over longer */
                if (e->have[k] && dt > 0) {
                        double delta = (double)(v[k] - e->base[k]);
                        double rate = k == CTR_CPU ? delta / ((double)dt * 1e6) / cores : delta * 1000.0 / (double)dt;
                        double *field[_CTR_MAX] = { &e->m.cpu, &e->m.disk_read_bps, &e->m.disk_write_bps,
                                                    &e->m.net_rx_bps, &e->m.net_tx_bps };
                        *field[k] = rate;
                        if (sample)
                                sample_push(m, "vm", vm, counter_series[k], now_ms, rate);
                }
                e->have[k] = true;
                e->base[k] = v[k];
                e->base_ms[k] = now_ms;
        }
        uint64_t rss;
        if (stat_get(stats, "rss_bytes", &rss)) {
                e->m.rss_bytes = rss;
                if (sample)
                        sample_push(m, "vm", vm, "rss_bytes", now_ms, (double)rss);
        }
        e->m.updated_ms = now_ms;
        pthread_mutex_unlock(&m->lock);
}

void oracle_metrics_vm_forget(oracle_metrics_t *m, const char *vm) {
        if (!m || !vm)
                return;
        pthread_mutex_lock(&m->lock);
        vm_entry_t *e = vm_find(m, vm, false);
        if (e) {
                /* the last entry moves into its place; the hash is made again (a VM that
                 * stops is rare beside its reports) */
                *e = m->vms[--m->n_vms];
                vm_slots_rebuild(m, m->n_vm_slots);
        }
        pthread_mutex_unlock(&m->lock);
}

int oracle_metrics_vm_get(oracle_metrics_t *m, const char *vm, vm_metrics_t *ret) {
        if (!m || !vm)
                return -ENOENT;
        pthread_mutex_lock(&m->lock);
        vm_entry_t *e = vm_find(m, vm, false);
        if (e)
                *ret = e->m;
        pthread_mutex_unlock(&m->lock);
        return e ? 0 : -ENOENT;
}

/* dst = v when v is a sane figure (HAProxy leaves some fields empty: parsed as -1 or 0). */
static void set_nonneg(double *dst, int64_t v) {
        if (v >= 0)
                *dst = (double)v;
}

void oracle_metrics_lb_report(oracle_metrics_t *m, const lb_stats_t *st, int64_t now_ms) {
        if (!m || !st)
                return;
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < st->n_services; i++) {
                const lb_service_stats_t *s = &st->services[i];
                char name[sizeof s->name + 1];
                snprintf(name, sizeof name, "%.*s", (int)sizeof s->name, s->name); /* NUL even if full */
                if (!name_is_valid(name))
                        continue;
                service_entry_t *e = service_find(m, name, true);
                set_nonneg(&e->m.request_rate, s->request_rate);
                set_nonneg(&e->m.queue, s->queue);
                set_nonneg(&e->m.sessions, s->sessions);
                set_nonneg(&e->m.response_ms, s->response_ms);
                set_nonneg(&e->m.queue_ms, s->queue_ms);
                if (s->requests >= 0)
                        e->m.requests = s->requests;
                if (s->errors >= 0)
                        e->m.errors = s->errors;
                e->m.updated_ms = e->m.lb_updated_ms = now_ms;
                sample_push(m, "service", name, "request_rate", now_ms, e->m.request_rate);
                sample_push(m, "service", name, "queue", now_ms, e->m.queue);
                sample_push(m, "service", name, "response_ms", now_ms, e->m.response_ms);
                sample_push(m, "service", name, "sessions", now_ms, e->m.sessions);
        }
        pthread_mutex_unlock(&m->lock);
}

void oracle_metrics_service_load(oracle_metrics_t *m, const char *service, double load, int active, int64_t now_ms) {
        if (!m || !service || !name_is_valid(service) || !isfinite(load))
                return;
        pthread_mutex_lock(&m->lock);
        service_entry_t *e = service_find(m, service, true);
        e->m.load = load;
        e->m.active = active;
        e->m.updated_ms = e->m.load_updated_ms = now_ms;
        sample_push(m, "service", service, "load", now_ms, load);
        sample_push(m, "service", service, "active", now_ms, active);
        pthread_mutex_unlock(&m->lock);
}

int oracle_metrics_service_get(oracle_metrics_t *m, const char *service, service_metrics_t *ret) {
        if (!m || !service)
                return -ENOENT;
        pthread_mutex_lock(&m->lock);
        service_entry_t *e = service_find(m, service, false);
        if (e)
                *ret = e->m;
        pthread_mutex_unlock(&m->lock);
        return e ? 0 : -ENOENT;
}

void oracle_metrics_service_forget(oracle_metrics_t *m, const char *service) {
        if (!m || !service)
                return;
        pthread_mutex_lock(&m->lock);
        service_entry_t *e = service_find(m, service, false);
        if (e)
                *e = m->services[--m->n_services];
        pthread_mutex_unlock(&m->lock);
}

/* The pending samples are taken out first: if the store then fails they are lost (the figures
 * of a few seconds), rather than piling up behind a store that stays broken. */
int oracle_metrics_flush(oracle_metrics_t *m, int64_t wall_ms) {
        if (!m)
                return 0;
        pthread_mutex_lock(&m->lock);
        pending_sample_t *p = TAKE_PTR(m->pending);
        size_t n = m->n_pending;
        m->n_pending = m->cap_pending = 0;
        bool prune = wall_ms - m->pruned_ms >= PRUNE_EVERY_MS;
        if (prune)
                m->pruned_ms = wall_ms;
        pthread_mutex_unlock(&m->lock);

        _cleanup_free_ pending_sample_t *pending = p;
        if (!m->store)
                return 0;
        int64_t offset_ms = wall_ms - time_now_ms();
        _cleanup_free_ store_sample_t *samples = n ? xcalloc(n, sizeof *samples) : NULL;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                int64_t t_ms = pending[i].at_ms + offset_ms;
                if (t_ms < 0)
                        continue;
                samples[k++] = (store_sample_t){ .series = pending[i].series, .t = t_ms / 1000, .value = pending[i].value };
        }
        int r = store_samples_add(m->store, samples, k);
        if (r >= 0 && prune) {
                int p2 = store_samples_prune(m->store, wall_ms / 1000);
                r = p2 < 0 ? p2 : r;
        }
        return r < 0 ? r : 0;
}

uint64_t oracle_metrics_dropped(oracle_metrics_t *m) {
        if (!m)
                return 0;
        pthread_mutex_lock(&m->lock);
        uint64_t d = m->dropped;
        pthread_mutex_unlock(&m->lock);
        return d;
}
