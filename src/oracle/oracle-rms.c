/* RMs as the Oracle sees them: heartbeats (which subscribe an RM and carry its VMs' states),
 * the leases sent back, the reconciler that marks silent RMs down and fences their VMs, and
 * placement by the paper's rule: one VM per production RM, many per chamber RM. */
#include <arpa/inet.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "model/lifecycle.h"
#include "nest/gc.h"
#include "oracle/oracle-internal.h"
#include "store/store-market.h"
#include "store/store-auth.h"
#include "store/store-view.h"

static int view_vm_name_cmp(const void *key, const void *vm) {
        return strcmp(key, ((const store_view_vm_t *)vm)->name);
}

/* A VM the Oracle places on rm with no operation under way must be in rm's heartbeat. One that
 * stays out of it for MISSING_GRACE_MS (a node that lost its record, or a data directory
 * replaced) is failed, so that a service replaces it, instead of showing as running where
 * nothing knows it. The grace covers a heartbeat sent before the command that placed it. */
#define MISSING_GRACE_MS 3000

/* placed: the VMs the view places on rm (by name). */
static void heartbeat_missing(oracle_t *o, const char *rm, const json_t *vms, const store_view_vm_t *placed,
                              size_t n_placed, int64_t now) {
        _cleanup_(json_decrefp) json_t *reported = json_object();
        size_t i;
        const json_t *v;
        json_array_foreach(vms, i, v) {
                const char *name = json_string_value(json_object_get(v, "name"));
                if (name)
                        json_object_set_new(reported, name, json_true());
        }
        _cleanup_free_ const store_view_vm_t **overdue = NULL;
        size_t n_overdue = 0;
        pthread_mutex_lock(&o->strays_lock);
        if (!o->missing)
                o->missing = json_object();
        for (size_t k = 0; k < n_placed; k++) {
                const store_view_vm_t *p = &placed[k];
                bool expected = !*p->op_id && !streq(p->state, "failed");
                bool missing = expected && !json_object_get(reported, p->name);
                const json_t *since = json_object_get(o->missing, p->name);
                bool late = missing && since && now - json_integer_value(since) >= MISSING_GRACE_MS;
                if (missing && !since)
                        json_object_set_new(o->missing, p->name, json_integer(now));
                else if (!missing || late)
                        json_object_del(o->missing, p->name);
                if (late)
                        *(const store_view_vm_t **)array_append(&overdue, &n_overdue, sizeof *overdue) = p;
        }
        pthread_mutex_unlock(&o->strays_lock);
        /* failing one is a change: a transaction that reads the row again */
        for (size_t k = 0; k < n_overdue; k++) {
                if (store_tx_begin(o->store) < 0)
                        continue;
                vm_record_t vm = { 0 };
                if (store_vm_get(o->store, overdue[k]->name, &vm) >= 0 && streq(vm.rm, rm) && !*vm.op_id &&
                    vm.version == overdue[k]->version)
                        oracle_vm_mark_failed(o, &vm, rm, true, "its RM does not know it (its node lost its record)");
                vm_record_clear(&vm);
                store_tx_commit(o->store);
        }
}

/* The VMs of a heartbeat: the load profile of each that the view places here, and the crashed
 * ones (a VM that runs here at its current version and whose QEMU is gone becomes failed at
 * once). Only a change is written. */
static void heartbeat_vms(oracle_t *o, const char *rm, const json_t *vms, const store_view_vm_t *placed,
                          size_t n_placed) {
        size_t i;
        const json_t *v;
        int64_t now = time_now_ms();
        json_array_foreach(vms, i, v) {
                const char *name = json_string_value(json_object_get(v, "name"));
                const char *state = json_string_value(json_object_get(v, "state"));
                const json_t *stats = json_object_get(v, "stats");
                const store_view_vm_t *p =
                        name && n_placed ? bsearch(name, placed, n_placed, sizeof *placed, view_vm_name_cmp) : NULL;
                /* the load profile of a VM that runs here (an RM may report a copy it is about to
                 * be told to kill: only the placed one counts) */
                if (p && json_is_object(stats))
                        oracle_metrics_vm_report(o->metrics, name,
                                                 streq(p->state, "active") || streq(p->state, "deactivating"),
                                                 p->vcpus, stats, now);
                if (!p || !state || !streq(state, "crashed") || *p->op_id ||
                    (!streq(p->state, "loading") && !streq(p->state, "active")))
                        continue;
                if (store_tx_begin(o->store) < 0)
                        continue; /* the next heartbeat reports the crash again */
                vm_record_t vm = { 0 };
                if (store_vm_get(o->store, name, &vm) >= 0 && streq(vm.rm, rm) && !*vm.op_id &&
                    (streq(vm.state, "loading") || streq(vm.state, "active")))
                        oracle_vm_mark_failed(o, &vm, rm, false, "its QEMU process exited");
                vm_record_clear(&vm);
                store_tx_commit(o->store);
        }
        if (vms) /* a heartbeat without its list of VMs says nothing of them */
                heartbeat_missing(o, rm, vms, placed, n_placed, now);
}

/* Leases of an RM: every VM placed there, and the VM of a running operation that moves it from
 * or to it (the origin still holds the VM until the operation has saved it), at version 0. All
 * from the view, which holds committed rows only. */
static json_t *leases_for(oracle_t *o, const char *rm, const store_view_vm_t *placed, size_t n_placed) {
        json_t *leases = json_object();
        for (size_t i = 0; i < n_placed; i++)
                json_object_set_new(leases, placed[i].name, json_integer(placed[i].version));
        _cleanup_free_ store_view_op_t *ops = NULL;
        size_t n = 0;
        store_view_ops_touching(o->store, rm, &ops, &n);
        for (size_t i = 0; i < n; i++)
                if (!json_object_get(leases, ops[i].vm))
                        json_object_set_new(leases, ops[i].vm, json_integer(0));
        return leases;
}

/* Records that rm is up (its role and address), with its event when it was not: one
 * transaction. */
static int heartbeat_rm_write(oracle_t *o, rm_record_t *rm, bool known, bool was_up) {
        rm->last_seen_ms = time_wall_ms();
        int r = store_tx_begin(o->store);
        if (r < 0)
                return r;
        r = store_rm_upsert(o->store, rm);
        if (r >= 0 && !was_up)
                r = store_event_add(o->store, known ? "rm-up" : "rm-subscribed", NULL, NULL, rm->name, rm->role);
        if (r < 0) {
                store_tx_rollback(o->store);
                return r;
        }
        return store_tx_commit(o->store);
}

int64_t oracle_rm_last_seen_ms(oracle_t *o, const rm_record_t *rm) {
        int64_t ago = oracle_liveness_heard_ago_ms(o->liveness, rm->name, time_now_ms());
        int64_t heard = ago >= 0 ? time_wall_ms() - ago : 0;
        return heard > rm->last_seen_ms ? heard : rm->last_seen_ms;
}

/* A heartbeat is soft state: liveness and figures in memory, the store written only for a
 * change (the RM new, not up, or with another role or address; a VM crashed or missing). An
 * unchanged heartbeat reads the view and writes nothing. */
void oracle_heartbeat(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = req->params[0];
        if (!name_is_valid(name)) {
                http_reply_error(reply, 400, "invalid", "invalid RM name \"%s\"", name);
                return;
        }
        oracle_heartbeat_t hb;
        _cleanup_free_ char *msg = NULL;
        int r = oracle_proto_heartbeat_parse(req->body, &hb, &msg);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg);
                return;
        }
        /* only the RM's own certificate speaks for it, in the role it enrolled with (the node
         * channel's authorizer checked the name already; this holds on any listener) */
        rm_cert_record_t enrolled;
        if (oracle_tls_peer_rm(o, req, name, &enrolled) < 0) {
                http_reply_error(reply, 403, "forbidden", "a heartbeat of RM \"%s\" takes its certificate", name);
                return;
        }
        if (!streq(hb.role, enrolled.role)) {
                http_reply_error(reply, 409, "conflict", "RM \"%s\" enrolled as a %s RM; its heartbeat says %s", name,
                                 enrolled.role, hb.role);
                return;
        }
        /* heard before anything waits for the store: a busy store delays the answer, never the
         * RM's liveness */
        oracle_liveness_heard(o->liveness, name, time_now_ms());
        const char *role = hb.role, *address = hb.address;
        const json_t *vms = hb.vms;
        rm_record_t rm = { 0 };
        bool known = store_view_rm_get(o->store, name, &rm) >= 0;
        bool was_up = known && streq(rm.state, "up");
        if (known && !streq(rm.role, role)) {
                /* the placement rules (one VM per production RM) hold only if an RM keeps its
                 * role while it holds VMs */
                size_t held = store_view_count_on(o->store, name);
                if (held > 0) {
                        http_reply_errno(reply, -EBUSY, "RM \"%s\" is a %s RM holding %zu VM(s); it cannot become a %s RM",
                                         name, rm.role, held, role);
                        return;
                }
        }
        if (!was_up || !streq(rm.role, role) || !streq(rm.address, address)) {
                SET(rm.name, name);
                SET(rm.role, role);
                SET(rm.address, address);
                SET(rm.state, "up");
                if (heartbeat_rm_write(o, &rm, known, was_up) < 0) {
                        http_reply_errno(reply, -EIO, "cannot record the heartbeat");
                        return;
                }
                if (!was_up)
                        log_info("RM %s (%s) at %s is up", name, role, address);
        }
        _cleanup_free_ store_view_vm_t *placed = NULL;
        size_t n_placed = 0;
        store_view_vms_on(o->store, name, &placed, &n_placed);
        heartbeat_vms(o, name, vms, placed, n_placed);
        /* the leases are of the rows as they are now, read last (as close to the answer as can
         * be): a VM failed above, or an operation committed meanwhile */
        free(placed);
        store_view_vms_on(o->store, name, &placed, &n_placed);
        json_t *leases = leases_for(o, name, placed, n_placed);
        oracle_placement_strays_record(o, name, vms, leases);
        oracle_placement_snapshots_record(o, name, hb.snapshots);
        oracle_rm_view_record(o, name, &hb);
        http_reply_json(reply, 200, json_pack("{s:o}", "leases", leases));
}

/* Declares rm down and fails and fences its running VMs (their node kills any copy once it
 * hears that it holds no lease). 0, or -errno when the store refused (nothing changed). */
static int rm_declare_down(oracle_t *o, rm_record_t *rm, const char *reason) {
        /* when it was last heard, on the wall clock (the store's last_seen is only a periodic
         * checkpoint), whatever stalls of the Oracle's own the silence count skipped */
        int64_t ago = oracle_liveness_heard_ago_ms(o->liveness, rm->name, time_now_ms());
        int64_t heard_ms = time_wall_ms() - (ago >= 0 ? ago : oracle_liveness_silent_ms(o->liveness, rm->name, time_now_ms()));
        if (ago < 0 && rm->last_seen_ms > heard_ms)
                heard_ms = rm->last_seen_ms; /* not heard since the Oracle started: the checkpoint is later */
        _cleanup_free_ store_view_vm_t *placed = NULL;
        size_t m = 0;
        int r = store_tx_begin(o->store);
        if (r < 0)
                return r;
        SET(rm->state, "down");
        if (heard_ms > rm->last_seen_ms)
                rm->last_seen_ms = heard_ms;
        r = store_rm_upsert(o->store, rm);
        if (r >= 0)
                r = store_event_add(o->store, "rm-down", NULL, NULL, rm->name, reason);
        if (r < 0) {
                store_tx_rollback(o->store);
                return r;
        }
        /* the VMs on it from the view (committed rows, and no writer can commit while this
         * transaction holds the store), each read again before it is failed */
        store_view_vms_on(o->store, rm->name, &placed, &m);
        for (size_t k = 0; k < m; k++) {
                if (*placed[k].op_id || (!streq(placed[k].state, "loading") && !streq(placed[k].state, "active")))
                        continue;
                vm_record_t vm = { 0 };
                if (store_vm_get(o->store, placed[k].name, &vm) >= 0 && streq(vm.rm, rm->name) && !*vm.op_id &&
                    (streq(vm.state, "loading") || streq(vm.state, "active"))) {
                        oracle_vm_mark_failed(o, &vm, rm->name, true, reason);
                        /* a buyer pays for no time its provider's RM was silent: running ends at
                         * the RM's last heartbeat, not when the silence was noticed */
                        if (vm.market.machine)
                                store_span_backdate(o->store, vm.market.machine, heard_ms);
                }
                vm_record_clear(&vm);
        }
        r = store_tx_commit(o->store);
        if (r >= 0)
                log_warn("RM %s is down: %s", rm->name, reason);
        return r;
}

/* One liveness round (oracle-liveness.h): RMs silent while the Oracle was responsive are down,
 * unless so many are silent that the Oracle itself is the likely fault. */
static void reconcile_rms(oracle_t *o) {
        rm_record_t *rms = NULL;
        size_t n = 0;
        store_view_rms(o->store, &rms, &n);
        const char **up = n ? xcalloc(n, sizeof *up) : NULL;
        size_t n_up = 0;
        for (size_t i = 0; i < n; i++)
                if (streq(rms[i].state, "up"))
                        up[n_up++] = rms[i].name;
        /* the clock is read after the RMs were read: a wait for them is a stall of ours */
        liveness_verdict_t v;
        oracle_liveness_tick(o->liveness, up, n_up, time_now_ms(), &v);
        if (v.stall_ms > 0) {
                _cleanup_free_ char *why = xasprintf("the Oracle's reconciler was held up for %lld ms; RMs' silence "
                                                     "in that time is not counted",
                                                     (long long)v.stall_ms);
                store_event_add(o->store, "oracle-stall", NULL, NULL, NULL, why);
                log_warn("%s", why);
        }
        if (v.change == LIVENESS_ISOLATION_BEGAN) {
                _cleanup_free_ char *why = xasprintf("%zu of %zu RMs fell silent at once: the Oracle may be isolated; "
                                                     "fencing is held until RMs report again or an operator fences "
                                                     "one (vmatrix rm fence RM)",
                                                     v.n_suspect, n_up);
                store_event_add(o->store, "isolation", NULL, NULL, NULL, why);
                log_warn("%s", why);
        } else if (v.change == LIVENESS_ISOLATION_ENDED) {
                store_event_add(o->store, "isolation-ended", NULL, NULL, NULL, "RMs report again");
                log_info("isolation ended: RMs report again");
        }
        for (size_t i = 0; i < v.n_down; i++)
                for (size_t k = 0; k < n; k++)
                        if (rms[k].name == v.down[i])
                                rm_declare_down(o, &rms[k], "no heartbeat for 5 s");
        free(v.down);
        free(up);
        free(rms);
}

int oracle_rm_fence(oracle_t *o, const char *name, char **ret_msg) {
        rm_record_t rm = { 0 };
        if (store_rm_get(o->store, name, &rm) < 0) {
                *ret_msg = xasprintf("no RM named \"%s\"", name);
                return -ENOENT;
        }
        if (!streq(rm.state, "up")) {
                *ret_msg = xasprintf("RM \"%s\" is down already", name);
                return -EALREADY;
        }
        int r = rm_declare_down(o, &rm, "fenced by an operator");
        if (r < 0) {
                *ret_msg = xasprintf("cannot record RM \"%s\" as down: %s", name, strerror(-r));
                return r;
        }
        /* a heartbeat from it brings it up again, counted afresh */
        oracle_liveness_forget(o->liveness, name);
        return 0;
}

/* How often the RMs' last_seen is written (heartbeats do not write it one by one). */
#define SEEN_CHECKPOINT_MS 60000

/* The checkpoint: the last_seen_ms of every RM heard since it was last written, in one
 * transaction. What it loses to a kill -9 (at most a minute) only shows in GET /v1/rms for RMs
 * that do not come back; a running Oracle shows liveness's figure. */
static void rms_seen_checkpoint(oracle_t *o) {
        rm_record_t *rms = NULL;
        size_t n = 0, k = 0;
        store_view_rms(o->store, &rms, &n);
        int64_t now = time_now_ms(), wall = time_wall_ms();
        for (size_t i = 0; i < n; i++) {
                int64_t ago = oracle_liveness_heard_ago_ms(o->liveness, rms[i].name, now);
                if (ago < 0 || wall - ago <= rms[i].last_seen_ms)
                        continue;
                rms[i].last_seen_ms = wall - ago;
                rms[k++] = rms[i];
        }
        int r = store_rm_seen_batch(o->store, rms, k);
        if (r < 0)
                log_warn("cannot write when the RMs were last seen: %s", strerror(-r));
        free(rms);
}

/* How often the check mode compares the store view with the tables. */
#define VIEW_CHECK_INTERVAL_MS 2000

/* The check mode (VMATRIX_VIEW_CHECK=1, set by the daemon tests for every Oracle): a view that
 * differs from the committed tables could withhold a lease and fence a healthy VM, so the
 * difference stops the Oracle at once, loudly, with the first differing row in its log. */
static void view_check(oracle_t *o) {
        _cleanup_free_ char *msg = NULL;
        if (store_view_check(o->store, &msg) == -EPROTO) {
                log_error("the store view differs from the store: %s", msg);
                abort();
        }
}

void *oracle_reconciler_thread(void *arg) {
        oracle_t *o = arg;
        const char *check = getenv("VMATRIX_VIEW_CHECK");
        bool checking = check && streq(check, "1");
        if (checking)
                log_info("check mode: the store view is compared with the tables every %d ms", VIEW_CHECK_INTERVAL_MS);
        int64_t last_check = time_now_ms(), last_seen_write = time_now_ms();
        while (!o->stopping) {
                reconcile_rms(o);
                if (time_now_ms() - last_seen_write >= SEEN_CHECKPOINT_MS) {
                        rms_seen_checkpoint(o);
                        last_seen_write = time_now_ms();
                }
                if (checking && time_now_ms() - last_check >= VIEW_CHECK_INTERVAL_MS) {
                        view_check(o);
                        last_check = time_now_ms();
                }
                time_sleep_ms(500);
        }
        return NULL;
}

#define NEST_GC_INTERVAL_MS (10 * 60 * 1000)

/* The Nest's garbage collection, in its own thread: a collection of a large Nest takes
 * seconds and must not delay the liveness rounds. */
void *oracle_gc_thread(void *arg) {
        oracle_t *o = arg;
        int64_t last_gc = time_now_ms();
        while (!o->stopping) {
                /* chunks of deleted VMs and superseded bundles go after a grace period (gc.h) */
                if (time_now_ms() - last_gc > NEST_GC_INTERVAL_MS) {
                        nest_gc_stats_t st = { 0 };
                        int r = nest_gc(o->nest_store, NULL, &st);
                        if (r < 0)
                                log_warn("Nest garbage collection: %s", strerror(-r));
                        else if (st.chunks_removed > 0)
                                log_info("Nest garbage collection removed %llu chunks (%llu bytes)",
                                         (unsigned long long)st.chunks_removed, (unsigned long long)st.bytes_removed);
                        last_gc = time_now_ms();
                        /* expired tokens (12-hour sessions, mostly) go with them: a row per login
                         * would otherwise stay forever */
                        r = store_token_prune(o->store, time_wall_ms());
                        if (r > 0)
                                log_info("removed %d expired tokens", r);
                }
                time_sleep_ms(500);
        }
        return NULL;
}

