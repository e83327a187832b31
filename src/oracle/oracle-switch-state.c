/* The switching state that the switching loop, the pool loop and the operation engine's hooks
 * share: the wake flags and their sleep, HAProxy's counters as the last tick read them (for a
 * drain to wait on), and the failures awaiting replacement. Below both loops, so that neither
 * loop names the other; oracle_switch_init registers the hooks here with the engine. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "lb/lb.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-switch.h"

void oracle_switch_wake(oracle_t *o) {
        oracle_switch_t *sw = o->sw;
        if (!sw)
                return;
        pthread_mutex_lock(&sw->lock);
        sw->wake_switch = sw->wake_pool = true;
        pthread_cond_broadcast(&sw->wake);
        pthread_mutex_unlock(&sw->lock);
}

void oracle_switch_sleep(oracle_t *o, bool *flag, int64_t ms) {
        oracle_switch_t *sw = o->sw;
        struct timespec ts = time_realtime_after_ms(ms);
        pthread_mutex_lock(&sw->lock);
        while (!*flag && !o->stopping)
                if (pthread_cond_timedwait(&sw->wake, &sw->lock, &ts) != 0)
                        break;
        *flag = false;
        pthread_mutex_unlock(&sw->lock);
}

const lb_server_stats_t *oracle_switch_stats_server(const lb_stats_t *st, const char *service, const char *vm) {
        for (size_t i = 0; i < st->n_servers; i++)
                if (streq(st->servers[i].service, service) && streq(st->servers[i].name, vm))
                        return &st->servers[i];
        return NULL;
}

int oracle_switch_drain_wait(oracle_t *o, const char *service, const char *vm, int64_t timeout_ms) {
        oracle_switch_t *sw = o->sw;
        if (!sw || !sw->started)
                return 0;
        pthread_mutex_lock(&sw->stats_lock);
        uint64_t gen0 = sw->stats_gen;
        bool live = sw->lb_live;
        pthread_mutex_unlock(&sw->stats_lock);
        if (!live)
                return 0; /* HAProxy does not run: nothing routes to the VM, nothing to wait for */
        pthread_mutex_lock(&sw->stats_lock);
        pthread_mutex_unlock(&sw->stats_lock);
        oracle_switch_wake(o);
        int64_t deadline = time_now_ms() + timeout_ms;
        while (time_now_ms() < deadline) {
                if (o->stopping)
                        return -ECANCELED;
                pthread_mutex_lock(&sw->stats_lock);
                if (!sw->lb_live) {
                        pthread_mutex_unlock(&sw->stats_lock);
                        return 0;
                }
                /* two generations later the figures come from a tick that began after the VM
                 * entered "deactivating", so HAProxy was told to drain it */
                bool fresh = sw->stats_gen >= gen0 + 2;
                const lb_server_stats_t *s = oracle_switch_stats_server(&sw->stats, service, vm);
                bool out = fresh && (!s || ((strstr(s->status, "DRAIN") || strstr(s->status, "MAINT") || s->down) &&
                                            s->sessions == 0));
                pthread_mutex_unlock(&sw->stats_lock);
                if (out)
                        return 0;
                time_sleep_ms(100);
        }
        return -ETIMEDOUT;
}

static failure_t *failure_find(oracle_switch_t *sw, const char *vm) {
        for (size_t i = 0; i < sw->n_failures; i++)
                if (streq(sw->failures[i].vm, vm))
                        return &sw->failures[i];
        return NULL;
}

/* Every failure is kept until it is over (failures_track forgets it): a VM whose failure were
 * dropped would never be replaced, so the list grows as it must. */
void oracle_switch_failure_add(oracle_switch_t *sw, const char *vm, const char *service, bool replace, int64_t now) {
        if (failure_find(sw, vm))
                return;
        failure_t *f = array_append(&sw->failures, &sw->n_failures, sizeof *f);
        *f = (failure_t){ .failed_ms = now, .replace = replace };
        SET(f->vm, vm);
        SET(f->service, service);
        if (replace)
                log_info("service %s: vm %s failed; replacing it", f->service, f->vm);
}

void oracle_switch_failure_note(oracle_t *o, const char *vm, const char *service, bool replace) {
        oracle_switch_t *sw = o->sw;
        if (!sw || !service || !*service)
                return;
        pthread_mutex_lock(&sw->failures_lock);
        oracle_switch_failure_add(sw, vm, service, replace, time_now_ms());
        pthread_mutex_unlock(&sw->failures_lock);
}

bool oracle_switch_failure_known(oracle_t *o, const char *vm) {
        oracle_switch_t *sw = o->sw;
        pthread_mutex_lock(&sw->failures_lock);
        bool known = failure_find(sw, vm) != NULL;
        pthread_mutex_unlock(&sw->failures_lock);
        return known;
}
