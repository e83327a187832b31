/* The switching round's picture of the cluster (oracle-switch.h, switch_agg_t): one pass over a
 * store view snapshot that sorts every VM into its service, counts the states the policy reads
 * and keeps the lists the round acts on. The round reads no store row per VM and scans the VMs
 * once: lookups are by the snapshot's hashes, and only the short lists whose order decides
 * something are sorted (a service's active VMs, its servers, its failed VMs; its activation
 * candidates, possibly the whole pool, only when an activation asks for them). Pure but for the
 * metrics it reads: the unit tests build it from synthetic snapshots. */
#include <string.h>

#include "base/util.h"
#include "oracle/oracle-switch.h"

static int svc_name_cmp(const void *key, const void *sv) { return strcmp(key, ((const service_record_t *)sv)->name); }

static int vm_ptr_cmp(const void *a, const void *b) {
        return strcmp((*(const store_view_vm_t *const *)a)->name, (*(const store_view_vm_t *const *)b)->name);
}

static void vm_ptr_sort(const store_view_vm_t **list, size_t n) {
        if (n > 1)
                qsort(list, n, sizeof *list, vm_ptr_cmp);
}

bool oracle_switch_fresh(const vm_metrics_t *m, int64_t now) {
        return m->updated_ms > 0 && now - m->updated_ms < SWITCH_FRESH_MS;
}

ssize_t oracle_switch_agg_find(const switch_agg_t *a, const char *service) {
        const service_record_t *sv =
                a->ns && service ? bsearch(service, a->svs, a->ns, sizeof *a->svs, svc_name_cmp) : NULL;
        return sv ? sv - a->svs : -1;
}

/* The list a VM of state goes to in s (NULL: none), and whether it needs an address. */
static const store_view_vm_t ***vm_list_of(switch_svc_agg_t *s, const store_view_vm_t *vm, size_t **ret_n) {
        if (streq(vm->state, "failed")) {
                *ret_n = &s->n_failed;
                return &s->failed;
        }
        if (streq(vm->state, "stored") && vm->prebooted && !*vm->op_id) {
                *ret_n = &s->n_candidates;
                return &s->candidates;
        }
        return NULL;
}

void oracle_switch_aggregate(const store_view_snap_t *snap, const service_record_t *svs, size_t ns,
                             oracle_metrics_t *metrics, int64_t now, switch_agg_t *ret) {
        switch_agg_t a = { .snap = snap, .svs = svs, .ns = ns, .svcs = xcalloc(ns + 1, sizeof *a.svcs) };
        size_t nv = store_view_snap_nvms(snap);
        /* two passes: count, then fill lists of the exact size (no realloc per VM) */
        ssize_t *svc_of = xcalloc(nv + 1, sizeof *svc_of);
        for (size_t i = 0; i < nv; i++) {
                const store_view_vm_t *vm = store_view_snap_vm_at(snap, i);
                ssize_t k = *vm->service ? oracle_switch_agg_find(&a, vm->service) : -1;
                svc_of[i] = k;
                if (k < 0)
                        continue; /* of no service, or of one that is gone */
                switch_svc_agg_t *s = &a.svcs[k];
                size_t *n;
                if (streq(vm->state, "active")) {
                        s->active++;
                        s->n_servers += *vm->address != 0;
                } else if (streq(vm->state, "deactivating")) {
                        s->draining++;
                        s->n_servers += *vm->address != 0;
                } else if (streq(vm->state, "activating")) {
                        s->activating++;
                } else if (vm_list_of(s, vm, &n)) {
                        (*n)++;
                }
        }
        for (size_t k = 0; k < ns; k++) {
                switch_svc_agg_t *s = &a.svcs[k];
                s->active_vms = xcalloc((size_t)s->active + 1, sizeof *s->active_vms);
                s->servers = xcalloc(s->n_servers + 1, sizeof *s->servers);
                s->failed = xcalloc(s->n_failed + 1, sizeof *s->failed);
                s->candidates = xcalloc(s->n_candidates + 1, sizeof *s->candidates);
                s->n_servers = s->n_failed = s->n_candidates = 0;
        }
        for (size_t i = 0; i < nv; i++) {
                if (svc_of[i] < 0)
                        continue;
                const store_view_vm_t *vm = store_view_snap_vm_at(snap, i);
                switch_svc_agg_t *s = &a.svcs[svc_of[i]];
                bool active = streq(vm->state, "active");
                if (active)
                        s->active_vms[s->n_active++] = vm;
                if ((active || streq(vm->state, "deactivating")) && *vm->address)
                        s->servers[s->n_servers++] = vm;
                size_t *n;
                const store_view_vm_t ***list = vm_list_of(s, vm, &n);
                if (list)
                        (*list)[(*n)++] = vm;
        }
        free(svc_of);
        for (size_t k = 0; k < ns; k++) {
                switch_svc_agg_t *s = &a.svcs[k];
                vm_ptr_sort(s->active_vms, s->n_active);
                vm_ptr_sort(s->servers, s->n_servers);
                vm_ptr_sort(s->failed, s->n_failed);
                /* summed in name order, as the loop over the sorted table did before */
                for (size_t i = 0; metrics && i < s->n_active; i++) {
                        vm_metrics_t m = { 0 };
                        if (oracle_metrics_vm_get(metrics, s->active_vms[i]->name, &m) >= 0 && oracle_switch_fresh(&m, now))
                                s->cpu += m.cpu;
                }
        }
        *ret = a;
}

const store_view_vm_t *const *oracle_switch_agg_candidates(switch_agg_t *a, size_t svc, size_t *ret_n) {
        switch_svc_agg_t *s = &a->svcs[svc];
        if (!s->candidates_sorted) {
                vm_ptr_sort(s->candidates, s->n_candidates);
                s->candidates_sorted = true;
        }
        *ret_n = s->n_candidates;
        return s->candidates;
}

void oracle_switch_agg_clear(switch_agg_t *a) {
        for (size_t k = 0; a->svcs && k < a->ns; k++) {
                free(a->svcs[k].active_vms);
                free(a->svcs[k].servers);
                free(a->svcs[k].failed);
                free(a->svcs[k].candidates);
        }
        free(a->svcs);
        *a = (switch_agg_t){ 0 };
}

int oracle_switch_free_rms(oracle_t *o, const store_view_snap_t *snap) {
        int n = 0;
        for (size_t i = 0; i < store_view_snap_nrms(snap); i++) {
                const rm_record_t *rm = store_view_snap_rm_at(snap, i);
                if (!streq(rm->role, "production") || !streq(rm->state, "up"))
                        continue;
                /* a fenced copy still runs where strays are */
                n += store_view_snap_count_on(snap, rm->name) == 0 && (!o || oracle_rm_strays(o, rm->name) == 0);
        }
        return n;
}

/* ---- round timing ---- */

void oracle_switch_round_note(oracle_switch_t *sw, double ms) {
        pthread_mutex_lock(&sw->lock);
        sw->round_ms[sw->n_rounds++ % SWITCH_ROUNDS_KEPT] = ms;
        pthread_mutex_unlock(&sw->lock);
}

static int double_cmp(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

json_t *oracle_switch_round_json(oracle_t *o) {
        oracle_switch_t *sw = o->sw;
        if (!sw)
                return json_null();
        double kept[SWITCH_ROUNDS_KEPT];
        pthread_mutex_lock(&sw->lock);
        uint64_t rounds = sw->n_rounds;
        size_t n = rounds < SWITCH_ROUNDS_KEPT ? (size_t)rounds : SWITCH_ROUNDS_KEPT;
        memcpy(kept, sw->round_ms, sizeof kept);
        double last = rounds ? sw->round_ms[(rounds - 1) % SWITCH_ROUNDS_KEPT] : 0;
        pthread_mutex_unlock(&sw->lock);
        if (n == 0)
                return json_pack("{s:I,s:n,s:n,s:n,s:n}", "rounds", (json_int_t)0, "last", "p50", "p99", "max");
        qsort(kept, n, sizeof *kept, double_cmp);
        return json_pack("{s:I,s:f,s:f,s:f,s:f}", "rounds", (json_int_t)rounds, "last", last, "p50", kept[(n - 1) / 2],
                         "p99", kept[(n - 1) * 99 / 100], "max", kept[n - 1]);
}
