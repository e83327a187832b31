/* The switching loop: what moves RMs between services. Every tick (and at once when woken by a
 * failure or the end of an operation) it
 *   1. makes HAProxy match the cluster (lb_sync): a frontend per service, its active VMs in
 *      rotation, the ones being deactivated draining;
 *   2. reads HAProxy's counters and the VMs' figures (oracle-metrics.c) into each service's load,
 *      in units of one VM's capacity: the CPU its VMs use, or, when requests queue in HAProxy
 *      (every server busy up to its maxconn), the active VMs plus one per maxconn queued;
 *   3. runs the switching policy (src/policy/, the same code the simulator measures) on that
 *      snapshot and carries out its decisions as ordinary operations (activate, deactivate),
 *      each recorded as an event with the policy's reason;
 *   4. replaces failed VMs: a VM whose QEMU exited, whose RM went silent (both marked failed by
 *      oracle-rms.c) or whose health probe has failed for HEALTH_FENCE_MS (fenced here) is
 *      replaced by a pre-booted VM of its service at once; the event says how long it took.
 * A round reads the services' rows and one snapshot of the store view (oracle-switch-agg.c
 * sorts its VMs into their services in one pass): never a VM row from the store.
 * The state kept here (when a service went above its mark, failures awaiting replacement) is
 * memory only: after a restart the windows start again and failed VMs are found in the store. */
#include <math.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "lb/lb.h"
#include "oracle/oracle-figures.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-switch.h"
#include "policy/policy.h"

#define SWITCH_TICK_MS 500
/* A server HAProxy reports down this long (its guest hangs) is fenced and replaced. Long
 * enough that a guest slowed down by load is not taken for a hung one. */
#define HEALTH_FENCE_MS 10000
#define LB_SERVER_MAXCONN 4
#define LOSS_EVENT_EVERY_MS 30000

static svc_state_t *svc_state(oracle_switch_t *sw, const char *name) {
        for (size_t i = 0; i < sw->n_svcs; i++)
                if (streq(sw->svcs[i].name, name))
                        return &sw->svcs[i];
        svc_state_t *s = array_append(&sw->svcs, &sw->n_svcs, sizeof *s);
        s->above_since = s->below_since = -1;
        SET(s->name, name);
        return s;
}

/* ---- HAProxy ---- */

static bool service_has_frontend(const service_record_t *sv) { return !streq(sv->state, "failed"); }

/* The picture lb_sync is given: every service's frontend; active VMs in rotation, VMs being
 * deactivated draining (so their sessions finish), nothing else. */
static void lb_apply(oracle_t *o, const switch_agg_t *agg) {
        oracle_switch_t *sw = o->sw;
        if (!sw->lb)
                return;
        size_t ns = agg->ns, nv = 0;
        for (size_t i = 0; i < ns; i++)
                nv += agg->svcs[i].n_servers;
        lb_service_t *list = xcalloc(ns + 1, sizeof *list);
        lb_server_t *servers = xcalloc(nv + 1, sizeof *servers);
        char (*binds)[80] = xcalloc(ns + 1, sizeof *binds);
        size_t n = 0, k = 0;
        for (size_t i = 0; i < ns; i++) {
                const service_record_t *sv = &agg->svs[i];
                if (!service_has_frontend(sv))
                        continue;
                _cleanup_free_ char *bind = oracle_service_endpoint(o->listen, sv->port);
                SET(binds[n], bind);
                list[n] = (lb_service_t){ .name = sv->name, .bind = binds[n], .servers = &servers[k],
                                          .health = oracle_service_health_kind(sv),
                                          .health_path = oracle_service_health_path(sv) };
                for (size_t v = 0; v < agg->svcs[i].n_servers; v++) {
                        const store_view_vm_t *vm = agg->svcs[i].servers[v];
                        servers[k++] = (lb_server_t){ vm->name, vm->address,
                                                      streq(vm->state, "active") ? LB_SERVER_READY : LB_SERVER_DRAIN };
                        list[n].n_servers++;
                }
                n++;
        }
        _cleanup_free_ char *msg = NULL;
        unsigned restarts = lb_restarts(sw->lb);
        int r = lb_sync(sw->lb, list, n, &msg);
        if (r < 0) {
                int64_t now = time_now_ms();
                if (now - sw->last_lb_error_ms > LOSS_EVENT_EVERY_MS || !streq(sw->last_lb_error, msg ? msg : "")) {
                        log_warn("load balancer: %s", msg ? msg : strerror(-r));
                        store_event_add(o->store, "lb-error", NULL, NULL, NULL, msg ? msg : strerror(-r));
                        sw->last_lb_error_ms = now;
                        SET(sw->last_lb_error, msg ? msg : "");
                }
        }
        if (lb_restarts(sw->lb) != restarts) {
                log_warn("HAProxy had died: restarted it (pid %d) with every service and server", lb_pid(sw->lb));
                store_event_add(o->store, "lb-restarted", NULL, NULL, NULL,
                                "HAProxy exited; started again with every frontend and server restored");
        }
        free(binds);
        free(servers);
        free(list);
}

/* Takes HAProxy's counters: to the metrics, and to the copy the drain waits read. */
static void lb_read(oracle_t *o) {
        oracle_switch_t *sw = o->sw;
        lb_stats_t st = { 0 };
        bool ok = sw->lb && lb_stats(sw->lb, &st) >= 0;
        if (ok)
                oracle_metrics_lb_report(o->metrics, &st, time_now_ms());
        /* no figures rather than old ones: an old "DOWN" would fence, an old queue would scale */
        pthread_mutex_lock(&sw->stats_lock);
        lb_stats_clear(&sw->stats);
        sw->stats = st;
        sw->stats_gen += ok;
        sw->lb_live = ok;
        pthread_mutex_unlock(&sw->stats_lock);
}

static const lb_service_stats_t *stats_service(const lb_stats_t *st, const char *service) {
        for (size_t i = 0; i < st->n_services; i++)
                if (streq(st->services[i].name, service))
                        return &st->services[i];
        return NULL;
}

/* ---- failures ---- */

typedef struct recovery {
        char vm[64], service[64], rm[64];
        char why[192];
} recovery_t;

/* Creating or ready: its pool is looked after. */
static bool service_is_live(const service_record_t *svs, size_t ns, const char *name) {
        for (size_t k = 0; k < ns; k++)
                if (streq(svs[k].name, name))
                        return streq(svs[k].state, "ready") || streq(svs[k].state, "creating");
        return false;
}

/* Notes failures found in the snapshot (after a restart: oracle_switch_failure_note saw the
 * others), reports recoveries, forgets what is over. The events are written after the lock is
 * released: oracle_vm_mark_failed takes failures_lock inside a store transaction. */
static void failures_track(oracle_t *o, const switch_agg_t *agg, int64_t now) {
        oracle_switch_t *sw = o->sw;
        const service_record_t *svs = agg->svs;
        size_t ns = agg->ns;
        recovery_t done[16];
        size_t n_done = 0;
        pthread_mutex_lock(&sw->failures_lock);
        for (size_t i = 0; i < ns; i++)
                for (size_t v = 0; streq(svs[i].state, "ready") && v < agg->svcs[i].n_failed; v++)
                        oracle_switch_failure_add(sw, agg->svcs[i].failed[v]->name, svs[i].name, true,
                                                  now); /* after a restart: not known */
        for (size_t i = 0; i < sw->n_failures;) {
                failure_t *f = &sw->failures[i];
                if (!service_is_live(svs, ns, f->service)) {
                        /* a service being deleted (or gone) replaces nothing */
                        sw->failures[i] = sw->failures[--sw->n_failures];
                        continue;
                }
                const store_view_vm_t *rep = *f->replacement ? store_view_snap_vm(agg->snap, f->replacement) : NULL;
                const store_view_vm_t *self = store_view_snap_vm(agg->snap, f->vm);
                if (f->replace && *f->replacement && !f->recovered) {
                        if (rep && streq(rep->state, "active") && !*rep->op_id) {
                                if (n_done == ELEMENTSOF(done))
                                        break; /* the rest next tick */
                                f->recovered = true;
                                recovery_t *d = &done[n_done++];
                                SET(d->vm, rep->name);
                                SET(d->service, f->service);
                                SET(d->rm, rep->rm);
                                snprintf(d->why, sizeof d->why, "vm %.63s replaced failed vm %.63s in %lld ms", rep->name,
                                         f->vm, (long long)(now - f->failed_ms));
                        } else if (!rep || (!*rep->op_id && !streq(rep->state, "activating"))) {
                                SET(f->replacement, ""); /* its activation failed: start another */
                        }
                }
                bool still_failed = self && streq(self->state, "failed");
                if ((f->recovered || !f->replace) && !still_failed) {
                        sw->failures[i] = sw->failures[--sw->n_failures];
                        continue;
                }
                i++;
        }
        pthread_mutex_unlock(&sw->failures_lock);
        for (size_t i = 0; i < n_done; i++) {
                store_event_add(o->store, "recovered", done[i].vm, done[i].service, done[i].rm, done[i].why);
                log_info("service %s: %s", done[i].service, done[i].why);
        }
}

static int failures_pending(oracle_switch_t *sw, const char *service) {
        int n = 0;
        pthread_mutex_lock(&sw->failures_lock);
        for (size_t i = 0; i < sw->n_failures; i++)
                n += sw->failures[i].replace && streq(sw->failures[i].service, service) && !*sw->failures[i].replacement;
        pthread_mutex_unlock(&sw->failures_lock);
        return n;
}

static void failures_assign(oracle_switch_t *sw, const char *service, const char *replacement) {
        pthread_mutex_lock(&sw->failures_lock);
        for (size_t i = 0; i < sw->n_failures; i++)
                if (sw->failures[i].replace && streq(sw->failures[i].service, service) &&
                    !*sw->failures[i].replacement) {
                        SET(sw->failures[i].replacement, replacement);
                        break;
                }
        pthread_mutex_unlock(&sw->failures_lock);
}

/* Active VMs whose health probe has failed for HEALTH_FENCE_MS are fenced (failed, lease
 * dropped: their node kills them) so that a replacement takes their RM's place. */
static void health_fence(oracle_t *o, const switch_agg_t *agg, int64_t now) {
        oracle_switch_t *sw = o->sw;
        down_server_t still[SWITCH_MAX_DOWN];
        size_t n_still = 0;
        pthread_mutex_lock(&sw->stats_lock);
        for (size_t i = 0; i < agg->ns; i++) {
                for (size_t v = 0; v < agg->svcs[i].n_active && n_still < SWITCH_MAX_DOWN; v++) {
                        const store_view_vm_t *vm = agg->svcs[i].active_vms[v];
                        if (*vm->op_id)
                                continue;
                        const lb_server_stats_t *s = oracle_switch_stats_server(&sw->stats, vm->service, vm->name);
                        if (!s || !s->down)
                                continue;
                        int64_t since = now;
                        for (size_t d = 0; d < sw->n_down; d++)
                                if (streq(sw->down[d].vm, vm->name))
                                        since = sw->down[d].since_ms;
                        still[n_still] = (down_server_t){ .since_ms = since };
                        SET(still[n_still].vm, vm->name);
                        n_still++;
                }
        }
        pthread_mutex_unlock(&sw->stats_lock);
        memcpy(sw->down, still, n_still * sizeof *still);
        sw->n_down = n_still;
        for (size_t d = 0; d < sw->n_down; d++) {
                if (now - sw->down[d].since_ms < HEALTH_FENCE_MS)
                        continue;
                if (store_tx_begin(o->store) < 0)
                        continue; /* the store is busy: the next tick fences it */
                vm_record_t vm = { 0 };
                if (store_vm_get(o->store, sw->down[d].vm, &vm) >= 0 && streq(vm.state, "active") && !*vm.op_id) {
                        service_record_t sv = { 0 };
                        (void)store_service_get(o->store, vm.service, &sv); /* gone: its default check */
                        _cleanup_free_ char *rm = xstrdup(vm.rm), *health = oracle_service_health_text(&sv);
                        _cleanup_free_ char *why = xasprintf("its health probe (%s) failed for %lld s", health,
                                                             (long long)((now - sw->down[d].since_ms) / 1000));
                        oracle_vm_mark_failed(o, &vm, rm, true, why);
                }
                vm_record_clear(&vm);
                store_tx_commit(o->store);
        }
}

/* ---- the policy ---- */

/* Load of a service in VM-capacity units (see the top comment). */
static double service_load(oracle_t *o, const service_record_t *sv, const switch_svc_agg_t *agg, int active) {
        double cpu = agg->cpu;
        double queued = 0;
        pthread_mutex_lock(&o->sw->stats_lock);
        const lb_service_stats_t *s = stats_service(&o->sw->stats, sv->name);
        if (s && s->queue > 0)
                queued = active + (double)s->queue / LB_SERVER_MAXCONN;
        /* with no VM in rotation HAProxy answers 503 at once and queues nothing: requests
         * arriving at all are load for one VM (a service scaled to min 0 comes back) */
        if (s && active == 0 && s->request_rate > 0)
                queued = fmax(queued, 1);
        pthread_mutex_unlock(&o->sw->stats_lock);
        return fmax(cpu, queued);
}

/* Starts action on up to count VMs of service: activate its pre-booted stored VMs, lowest name
 * first; deactivate its active ones, highest name first (a stable order is easy to follow).
 * Returns how many started, their names appended to started (may be NULL). */
static int start_on(oracle_t *o, switch_agg_t *agg, const char *service, const char *action, int count,
                    const char *why, char started[][64], int max_started) {
        int n = 0;
        bool activate = streq(action, "activate");
        ssize_t svc = oracle_switch_agg_find(agg, service);
        if (svc < 0)
                return 0;
        size_t nc = 0;
        const store_view_vm_t *const *list = activate ? oracle_switch_agg_candidates(agg, (size_t)svc, &nc)
                                                      : (const store_view_vm_t *const *)agg->svcs[svc].active_vms;
        if (!activate)
                nc = agg->svcs[svc].n_active;
        for (size_t k = 0; k < nc && n < count; k++) {
                const store_view_vm_t *vm = list[activate ? k : nc - 1 - k];
                if (*vm->op_id)
                        continue;
                op_request_t req = { .action = action };
                json_t *op = NULL;
                _cleanup_free_ char *msg = NULL;
                if (oracle_op_start(o, vm->name, &req, &op, &msg) < 0) {
                        log_warn("service %s: cannot %s vm %s: %s", service, action, vm->name, msg ? msg : "");
                        continue;
                }
                json_decref(op);
                store_event_add(o->store, activate ? "scale-up" : "scale-down", vm->name, service, NULL, why);
                if (started && n < max_started)
                        SET(started[n], vm->name);
                n++;
        }
        return n;
}

static void decision_apply(oracle_t *o, const policy_snapshot_t *snap, const policy_decision_t *d, switch_agg_t *agg,
                           int64_t now) {
        const policy_service_t *ps = &snap->services[d->service];
        svc_state_t *st = svc_state(o->sw, ps->name);
        switch (d->kind) {
        case POLICY_ACTIVATE: {
                char started[16][64];
                int n = start_on(o, agg, ps->name, "activate", d->count, d->reason, started, 16);
                for (int i = 0; i < n && i < 16; i++)
                        failures_assign(o->sw, ps->name, started[i]);
                if (n < d->count && now - st->last_exhausted_ms > LOSS_EVENT_EVERY_MS) {
                        _cleanup_free_ char *why = xasprintf("%s; only %d pre-booted VM(s) of the pool could be activated",
                                                             d->reason, n);
                        store_event_add(o->store, "pool-exhausted", NULL, ps->name, NULL, why);
                        st->last_exhausted_ms = now;
                }
                break;
        }
        case POLICY_DRAIN:
                start_on(o, agg, ps->name, "deactivate", d->count, d->reason, NULL, 0);
                break;
        case POLICY_RECLAIM: {
                const policy_service_t *donor = &snap->services[d->from_service];
                char started[SVC_RECLAIMS_MAX][64];
                int room = SVC_RECLAIMS_MAX - st->n_reclaims;
                int n = start_on(o, agg, donor->name, "deactivate", d->count < room ? d->count : room, d->reason, started,
                                 SVC_RECLAIMS_MAX);
                /* counted as reclaiming for this service until their RMs are free */
                for (int i = 0; i < n; i++)
                        SET(st->reclaims[st->n_reclaims++], started[i]);
                if (n > 0)
                        store_event_add(o->store, "reclaim", NULL, ps->name, NULL, d->reason);
                break;
        }
        case POLICY_SERVER_LOSS:
                if (now - st->last_loss_ms > LOSS_EVENT_EVERY_MS) {
                        store_event_add(o->store, "server-loss", NULL, ps->name, NULL, d->reason);
                        log_warn("service %s: server loss: %s", ps->name, d->reason);
                        st->last_loss_ms = now;
                }
                break;
        }
}

/* The donor VMs drained for st's service that are still being deactivated (their RMs are not
 * free yet); the others are forgotten. */
static int reclaims_in_flight(svc_state_t *st, const store_view_snap_t *snap) {
        int keep = 0;
        for (int i = 0; i < st->n_reclaims; i++) {
                const store_view_vm_t *vm = store_view_snap_vm(snap, st->reclaims[i]);
                bool draining = vm && streq(vm->state, "deactivating");
                if (draining)
                        memmove(st->reclaims[keep++], st->reclaims[i], sizeof st->reclaims[i]);
        }
        st->n_reclaims = keep;
        return keep;
}

/* Forgets the state of services that are gone (a service created again under the name starts
 * afresh). */
static void svc_states_prune(oracle_switch_t *sw, const service_record_t *svs, size_t ns) {
        for (size_t i = 0; i < sw->n_svcs;) {
                bool exists = false;
                for (size_t k = 0; k < ns && !exists; k++)
                        exists = streq(svs[k].name, sw->svcs[i].name) && !streq(svs[k].state, "failed");
                if (!exists) {
                        sw->svcs[i] = sw->svcs[--sw->n_svcs];
                        continue;
                }
                i++;
        }
}

static void policy_tick(oracle_t *o, switch_agg_t *agg, int64_t now) {
        const service_record_t *svs = agg->svs;
        size_t ns = agg->ns;
        oracle_switch_t *sw = o->sw;
        policy_service_t *ps = xcalloc(ns + 1, sizeof *ps);
        size_t n = 0;
        uint64_t biggest = 0;
        double t = now / 1000.0;
        for (size_t i = 0; i < ns; i++) {
                const service_record_t *sv = &svs[i];
                if (!streq(sv->state, "ready"))
                        continue;
                svc_state_t *st = svc_state(sw, sv->name);
                const switch_svc_agg_t *ag = &agg->svcs[i];
                int active = ag->active;
                ps[n] = (policy_service_t){
                        .name = sv->name,
                        .priority = (int)sv->priority,
                        .min = (int)sv->min,
                        .max = (int)sv->max,
                        .high = sv->high,
                        .window_s = sv->window_s,
                        .load = service_load(o, sv, ag, active),
                        .active = active,
                        .activating = ag->activating,
                        .draining = ag->draining,
                        .reclaiming = reclaims_in_flight(st, agg->snap),
                        .replace = failures_pending(sw, sv->name),
                        .above_since = st->above_since,
                        .below_since = st->below_since,
                };
                oracle_figures_fill(o, sv, &ps[n]);
                ps[n].predicted = oracle_switch_predict(o, sv, t + policy_lead_s(&ps[n]), &ps[n].predicted_now);
                policy_service_observe(&ps[n], t);
                st->above_since = ps[n].above_since;
                st->below_since = ps[n].below_since;
                oracle_metrics_service_load(o->metrics, sv->name, ps[n].load, active, now);
                if ((uint64_t)sv->memory_mib << 20 > biggest)
                        biggest = (uint64_t)sv->memory_mib << 20;
                n++;
        }
        policy_snapshot_t snap = {
                .t = t,
                .services = ps,
                .n_services = n,
                .free_rms = oracle_switch_free_rms(o, agg->snap),
                .vm_bytes = biggest,
                .network_bps = sw->network_bps,
                .tick_s = SWITCH_TICK_MS / 1000.0,
        };
        /* at most an activation, a loss and a drain per service and a reclaim per pair */
        size_t max_d = n * (n + 3) + 1;
        _cleanup_free_ policy_decision_t *d = xcalloc(max_d, sizeof *d);
        size_t nd = 0;
        int r = policy_decide(&snap, d, max_d, &nd);
        if (r < 0)
                log_warn("switching policy: %s", strerror(-r));
        for (size_t i = 0; r >= 0 && i < nd; i++)
                decision_apply(o, &snap, &d[i], agg, now);
        free(ps);
}

/* One round on one snapshot of the view (and the services' few rows): no VM is read from the
 * store. Timed on the monotonic clock, its sleep apart (/v1/health's switch_round_ms). */
static void switch_tick(oracle_t *o) {
        int64_t began = time_now_ms();
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        service_record_t *svs = NULL;
        size_t ns = 0;
        if (store_service_list(o->store, &svs, &ns) < 0)
                return;
        store_view_snap_t *snap = store_view_snapshot(o->store);
        switch_agg_t agg;
        oracle_switch_aggregate(snap, svs, ns, o->metrics, began, &agg);
        int64_t now = time_now_ms();
        lb_apply(o, &agg);
        lb_read(o);
        failures_track(o, &agg, now);
        health_fence(o, &agg, now);
        svc_states_prune(o->sw, svs, ns);
        policy_tick(o, &agg, now);
        oracle_switch_agg_clear(&agg);
        store_view_release(snap);
        free(svs);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        oracle_switch_round_note(o->sw, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
}

/* The samples of the heartbeats and rounds into the store, one transaction per tick: on a thread
 * of its own, so that a long write (many VMs) never delays a switching decision. */
static void *samples_thread(void *arg) {
        oracle_t *o = arg;
        while (!o->stopping) {
                int r = oracle_metrics_flush(o->metrics, time_wall_ms());
                if (r < 0)
                        log_warn("load profiles: cannot write the samples of this tick: %s", strerror(-r));
                for (int i = 0; i < SWITCH_TICK_MS / 100 && !o->stopping; i++)
                        time_sleep_ms(100);
        }
        (void)oracle_metrics_flush(o->metrics, time_wall_ms());
        return NULL;
}

static void *switch_thread(void *arg) {
        oracle_t *o = arg;
        while (!o->stopping) {
                switch_tick(o);
                oracle_switch_sleep(o, &o->sw->wake_switch, SWITCH_TICK_MS);
        }
        return NULL;
}

void oracle_switch_init(oracle_t *o) {
        oracle_switch_t *sw = xcalloc(1, sizeof *sw);
        pthread_mutex_init(&sw->lock, NULL);
        pthread_mutex_init(&sw->stats_lock, NULL);
        pthread_mutex_init(&sw->failures_lock, NULL);
        pthread_cond_init(&sw->wake, NULL);
        const char *bps = getenv("VMATRIX_ACTIVATION_BPS");
        /* what activations may spend of the data-centre network: 10 Gbit/s unless told */
        sw->network_bps = bps ? atof(bps) : 1.25e9;
        o->sw = sw;
        /* the engine learns of failures and ends through these, and waits on drains */
        o->hooks = (oracle_hooks_t){
                .wake = oracle_switch_wake,
                .failure_note = oracle_switch_failure_note,
                .drain_wait = oracle_switch_drain_wait,
        };
}

int oracle_switch_start(oracle_t *o) {
        oracle_switch_t *sw = o->sw;
        _cleanup_free_ char *dir = xasprintf("%s/lb", o->data);
        lb_options_t opts = { .haproxy = getenv("VMATRIX_HAPROXY"), .server_maxconn = LB_SERVER_MAXCONN };
        int r = lb_new(dir, &opts, &sw->lb);
        if (r < 0) {
                log_error("services will have no load balancer: cannot use HAProxy (%s)", strerror(-r));
                sw->lb = NULL;
        }
        if (pthread_create(&sw->switch_thread, NULL, switch_thread, o) != 0) {
                log_error("cannot start the switching thread: %m");
                return -EAGAIN;
        }
        if (pthread_create(&sw->pool_thread, NULL, oracle_pool_thread, o) != 0) {
                log_error("cannot start the pool thread: %m");
                o->stopping = 1;
                pthread_join(sw->switch_thread, NULL);
                return -EAGAIN;
        }
        if (pthread_create(&sw->samples_thread, NULL, samples_thread, o) != 0) {
                log_error("cannot start the samples thread: %m");
                o->stopping = 1;
                pthread_join(sw->switch_thread, NULL);
                pthread_join(sw->pool_thread, NULL);
                return -EAGAIN;
        }
        sw->started = true;
        return 0;
}

void oracle_switch_stop(oracle_t *o) {
        oracle_switch_t *sw = o->sw;
        if (!sw)
                return;
        oracle_switch_wake(o);
        if (sw->started) {
                pthread_join(sw->switch_thread, NULL);
                pthread_join(sw->pool_thread, NULL);
                pthread_join(sw->samples_thread, NULL);
                sw->started = false;
        }
        sw->lb = lb_free(sw->lb);
}

void oracle_switch_free(oracle_t *o) {
        oracle_switch_t *sw = o->sw;
        if (!sw)
                return;
        oracle_switch_stop(o);
        o->hooks = (oracle_hooks_t){ 0 };
        lb_stats_clear(&sw->stats);
        free(sw->failures);
        free(sw->svcs);
        oracle_pool_free(sw->pool);
        oracle_predict_free(sw->predict);
        o->sw = NULL;
        free(sw);
}
