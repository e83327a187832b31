/* The pool thread: keeps every service's VMs pre-booted (the paper's "VM pre-creation") and
 * carries out the end of services.
 *   - a stored VM of a service without saved state is booted in a Loading Chamber; once its
 *     guest passes the service's health check (GET /health unless the service says otherwise,
 *     oracle-health.c) it is hibernated into the Nest, ready to resume in a fraction of a second;
 *   - a failed VM of a service is stopped (its RM is freed; it comes back as a stored VM and is
 *     pre-booted again);
 *   - a service whose pool is all pre-booted becomes "ready" (the switching loop then runs it);
 *   - a service being created whose VM does not boot (the boot fails, or the guest does not
 *     answer within the boot timeout) becomes "failed" with the reason, and its VMs are
 *     deleted: nothing half-made stays;
 *   - a service being deleted has its VMs deleted (stopped first), then its row.
 * Every step is an ordinary operation, so a killed Oracle re-drives them and this loop carries
 * on from what the store shows. A tick reads the services' rows and one snapshot of the store
 * view: each service's VMs, by name, from one pass over it. */
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-figures.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-switch.h"

#define POOL_TICK_MS 1000
/* Boots at once across the cluster: each is a guest booting from scratch in TCG or KVM. */
#define POOL_BOOTS_MAX 4
#define POOL_RETRY_MS 30000
#define POOL_BOOT_TIMEOUT_S 300
#define POOL_START_ATTEMPTS 5
#define POOL_PROBE_TIMEOUT_MS 1000

typedef struct boot {
        char vm[64];
        char op_id[40];       /* the boot or hibernate operation in flight, "" when none */
        int64_t started_ms;   /* when its boot began (or when this loop first saw it loading) */
        int64_t retry_after_ms;
        int failed_starts;    /* boots that could not even start, in a row */
} boot_t;

struct oracle_pool {
        boot_t *boots;
        size_t n_boots;
        int64_t boot_timeout_ms;
};


oracle_pool_t *oracle_pool_free(oracle_pool_t *p) {
        if (p) {
                free(p->boots);
                free(p);
        }
        return NULL;
}

static boot_t *boot_get(oracle_pool_t *p, const char *vm, bool create) {
        for (size_t i = 0; i < p->n_boots; i++)
                if (streq(p->boots[i].vm, vm))
                        return &p->boots[i];
        if (!create)
                return NULL;
        boot_t *b = array_append(&p->boots, &p->n_boots, sizeof *b);
        b->started_ms = time_now_ms();
        SET(b->vm, vm);
        return b;
}

static void boot_forget(oracle_pool_t *p, const char *vm) {
        boot_t *b = boot_get(p, vm, false);
        if (b)
                *b = p->boots[--p->n_boots];
}

/* Starts action on vm; the op id in ret_op_id (may be NULL); why it could not start in
 * *ret_msg (may be NULL). */
static int op_start(oracle_t *o, const char *vm, const char *action, bool force, char ret_op_id[40], char **ret_msg) {
        op_request_t req = { .action = action, .force = force };
        json_t *op = NULL;
        _cleanup_free_ char *msg = NULL;
        int r = oracle_op_start(o, vm, &req, &op, &msg);
        if (r < 0) {
                log_warn("pool: cannot %s vm %s: %s", action, vm, msg ? msg : strerror(-r));
                if (ret_msg)
                        *ret_msg = msg ? TAKE_PTR(msg) : xstrdup(strerror(-r));
                return r;
        }
        if (ret_op_id)
                snprintf(ret_op_id, 40, "%s", json_string_value(json_object_get(op, "id")) ?: "");
        json_decref(op);
        return 0;
}

/* Moves sv from state from to state to (with error) if it is still in from: the row is read
 * again in one transaction, so a DELETE that came meanwhile is not overwritten. */
static bool service_state_move(oracle_t *o, service_record_t *sv, const char *from, const char *to, const char *error) {
        service_record_t now = { 0 };
        bool moved = false;
        if (store_tx_begin(o->store) < 0)
                return false;
        if (store_service_get(o->store, sv->name, &now) >= 0 && streq(now.state, from) &&
            now.created_ms == sv->created_ms) {
                SET(now.state, to);
                SET(now.error, error ? error : "");
                utf8_sanitize(now.error);
                moved = store_service_update(o->store, &now) >= 0;
        }
        if (moved && store_tx_commit(o->store) >= 0) {
                *sv = now;
                return true;
        }
        if (!moved)
                store_tx_rollback(o->store);
        return false;
}

/* A VM of sv could not be pre-booted. A service being created fails as a whole (its VMs are
 * deleted by the next ticks); a ready one retries later. */
static void preboot_failed(oracle_t *o, service_record_t *sv, boot_t *b, const char *reason) {
        log_warn("service %s: %s", sv->name, reason);
        if (streq(sv->state, "creating")) {
                if (service_state_move(o, sv, "creating", "failed", reason))
                        store_event_add(o->store, "service-failed", b->vm, sv->name, NULL, reason);
                return;
        }
        store_event_add(o->store, "preboot-failed", b->vm, sv->name, NULL, reason);
        b->retry_after_ms = time_now_ms() + POOL_RETRY_MS;
}

/* The end of the operation this loop started on b, if it ended. */
static void boot_op_check(oracle_t *o, service_record_t *sv, boot_t *b) {
        if (!*b->op_id)
                return;
        op_record_t op = { 0 };
        if (store_op_get(o->store, b->op_id, &op) < 0)
                return;
        if (streq(op.state, "failed")) {
                _cleanup_free_ char *why = xasprintf("%s of vm %s failed: %s", op.kind, b->vm, op.error);
                SET(b->op_id, "");
                preboot_failed(o, sv, b, why);
        } else if (streq(op.state, "done")) {
                SET(b->op_id, "");
        }
        op_record_clear(&op);
}

/* Deletes the VMs of a failed or deleted service; true when none is left. */
static bool service_vms_delete(oracle_t *o, const store_view_vm_t *const *vms, size_t nv) {
        for (size_t v = 0; v < nv; v++)
                if (!*vms[v]->op_id)
                        op_start(o, vms[v]->name, "delete", true, NULL, NULL);
        return nv == 0;
}

/* Booting a VM costs most while it is loading (the guest boots): these count against
 * POOL_BOOTS_MAX. */
static bool vm_is_prebooting(const store_view_vm_t *vm) {
        return streq(vm->state, "booting") || streq(vm->state, "loading") || streq(vm->state, "hibernating");
}

/* vms: sv's VMs, by name. */
static void pool_service(oracle_t *o, oracle_pool_t *p, service_record_t *sv, const store_view_vm_t *const *vms,
                         size_t nv, int *booting) {
        int64_t now = time_now_ms();
        int64_t prebooted = 0;
        for (size_t v = 0; v < nv && !streq(sv->state, "failed"); v++) {
                const store_view_vm_t *vm = vms[v];
                boot_t *b = boot_get(p, vm->name, false);
                if (b)
                        boot_op_check(o, sv, b);
                if (streq(sv->state, "failed"))
                        break;
                if (vm->prebooted && streq(vm->state, "stored")) {
                        prebooted++;
                        if (b && !*b->op_id)
                                boot_forget(p, vm->name);
                        continue;
                }
                if (streq(vm->state, "active") || streq(vm->state, "activating") || streq(vm->state, "deactivating")) {
                        prebooted++;
                        continue;
                }
                if (*vm->op_id || (b && b->retry_after_ms > now))
                        continue;
                if (streq(vm->state, "stored")) {
                        if (*booting >= POOL_BOOTS_MAX)
                                continue;
                        b = boot_get(p, vm->name, true);
                        b->started_ms = now;
                        SET(b->op_id, "");
                        _cleanup_free_ char *msg = NULL;
                        if (op_start(o, vm->name, "boot", false, b->op_id, &msg) >= 0) {
                                (*booting)++;
                        } else if (++b->failed_starts >= POOL_START_ATTEMPTS) {
                                /* e.g. no chamber RM: say so rather than try for ever */
                                _cleanup_free_ char *why = xasprintf("cannot boot vm %s: %s", vm->name, msg);
                                b->failed_starts = 0;
                                preboot_failed(o, sv, b, why);
                        }
                } else if (streq(vm->state, "loading")) {
                        if (!b)
                                b = boot_get(p, vm->name, true);
                        if (*vm->address && oracle_service_health_probe(sv, vm->address, POOL_PROBE_TIMEOUT_MS)) {
                                oracle_figures_note(o->figures, ORACLE_FIGURE_BOOT, vm->image, vm->rm,
                                                    (double)(now - b->started_ms) / 1000.0);
                                op_start(o, vm->name, "hibernate", false, b->op_id, NULL);
                        } else if (now - b->started_ms > p->boot_timeout_ms) {
                                _cleanup_free_ char *health = oracle_service_health_text(sv);
                                _cleanup_free_ char *why = xasprintf(
                                        "vm %s did not answer %s within %lld s of booting", vm->name,
                                        oracle_service_health_kind(sv) == LB_HEALTH_TCP ? "a TCP connect" : health,
                                        (long long)(p->boot_timeout_ms / 1000));
                                preboot_failed(o, sv, b, why);
                                if (!streq(sv->state, "failed"))
                                        op_start(o, vm->name, "stop", false, NULL, NULL);
                        }
                } else if (streq(vm->state, "failed") && streq(sv->state, "creating")) {
                        if (!b)
                                b = boot_get(p, vm->name, true);
                        _cleanup_free_ char *why = xasprintf("vm %s failed while it was being pre-booted", vm->name);
                        preboot_failed(o, sv, b, why);
                } else if ((streq(vm->state, "failed") && oracle_switch_failure_known(o, vm->name)) ||
                           streq(vm->state, "suspended")) {
                        /* its RM is freed and it comes back stored, to be pre-booted again (a
                         * failed one once the switching loop has counted it for replacement) */
                        if (!b)
                                b = boot_get(p, vm->name, true);
                        if (op_start(o, vm->name, "stop", false, NULL, NULL) < 0)
                                b->retry_after_ms = now + POOL_RETRY_MS;
                }
        }
        if (streq(sv->state, "creating") && prebooted >= sv->pool &&
            service_state_move(o, sv, "creating", "ready", NULL)) {
                _cleanup_free_ char *why = xasprintf("%lld VMs pre-booted in the Nest", (long long)prebooted);
                store_event_add(o->store, "service-ready", NULL, sv->name, NULL, why);
                log_info("service %s: ready (%s)", sv->name, why);
                oracle_switch_wake(o);
        }
}

/* Forgets the boots of VMs that are gone or whose service no longer pre-boots (a service made
 * again under the same name starts afresh). */
static void boots_prune(oracle_pool_t *p, const service_record_t *svs, size_t ns, const store_view_snap_t *snap) {
        for (size_t i = 0; i < p->n_boots;) {
                const store_view_vm_t *vm = store_view_snap_vm(snap, p->boots[i].vm);
                bool keep = false;
                for (size_t k = 0; vm && k < ns && !keep; k++)
                        keep = streq(svs[k].name, vm->service) &&
                               (streq(svs[k].state, "creating") || streq(svs[k].state, "ready"));
                if (!keep) {
                        p->boots[i] = p->boots[--p->n_boots];
                        continue;
                }
                i++;
        }
}

typedef struct svc_vm {
        size_t svc;
        const store_view_vm_t *vm;
} svc_vm_t;

static int svc_vm_cmp(const void *a, const void *b) {
        const svc_vm_t *x = a, *y = b;
        return x->svc != y->svc ? (x->svc < y->svc ? -1 : 1) : strcmp(x->vm->name, y->vm->name);
}

static int svc_name_cmp(const void *key, const void *sv) { return strcmp(key, ((const service_record_t *)sv)->name); }

static void pool_tick(oracle_t *o, oracle_pool_t *p) {
        service_record_t *svs = NULL;
        size_t ns = 0;
        if (store_service_list(o->store, &svs, &ns) < 0)
                return;
        store_view_snap_t *snap = store_view_snapshot(o->store);
        boots_prune(p, svs, ns, snap);
        /* every VM of a service, grouped by service (svs is by name) and by name within */
        size_t nv = store_view_snap_nvms(snap), n = 0;
        int booting = 0;
        svc_vm_t *list = xcalloc(nv + 1, sizeof *list);
        for (size_t v = 0; v < nv; v++) {
                const store_view_vm_t *vm = store_view_snap_vm_at(snap, v);
                booting += vm_is_prebooting(vm);
                const service_record_t *sv = *vm->service ? bsearch(vm->service, svs, ns, sizeof *svs, svc_name_cmp) : NULL;
                if (sv)
                        list[n++] = (svc_vm_t){ .svc = (size_t)(sv - svs), .vm = vm };
        }
        qsort(list, n, sizeof *list, svc_vm_cmp);
        const store_view_vm_t **vms = xcalloc(n + 1, sizeof *vms);
        for (size_t v = 0; v < n; v++)
                vms[v] = list[v].vm;
        for (size_t i = 0, at = 0; i < ns; i++) {
                size_t first = at;
                while (at < n && list[at].svc == i)
                        at++;
                const store_view_vm_t *const *mine = vms + first;
                size_t n_mine = at - first;
                service_record_t *sv = &svs[i];
                if (streq(sv->state, "creating") || streq(sv->state, "ready"))
                        pool_service(o, p, sv, mine, n_mine, &booting);
                if (streq(sv->state, "failed")) {
                        service_vms_delete(o, mine, n_mine);
                } else if (streq(sv->state, "deleting") && service_vms_delete(o, mine, n_mine)) {
                        if (store_service_delete(o->store, sv->name) >= 0) {
                                store_event_add(o->store, "service-deleted", NULL, sv->name, NULL, "its VMs are deleted");
                                oracle_metrics_service_forget(o->metrics, sv->name);
                                log_info("service %s: deleted", sv->name);
                                oracle_switch_wake(o);
                        }
                }
        }
        free(vms);
        free(list);
        store_view_release(snap);
        free(svs);
}

void *oracle_pool_thread(void *arg) {
        oracle_t *o = arg;
        oracle_pool_t *p = xcalloc(1, sizeof *p);
        const char *env = getenv("VMATRIX_SERVICE_BOOT_TIMEOUT_S");
        int64_t timeout_s = POOL_BOOT_TIMEOUT_S;
        if (env && parse_int64(env, 1, 86400, &timeout_s) < 0)
                timeout_s = POOL_BOOT_TIMEOUT_S;
        p->boot_timeout_ms = timeout_s * 1000;
        o->sw->pool = p;
        while (!o->stopping) {
                pool_tick(o, p);
                oracle_switch_sleep(o, &o->sw->wake_pool, POOL_TICK_MS);
        }
        return NULL;
}
