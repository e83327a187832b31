/* Pre-staging (oracle-prestage.h): the pure planner, the thread that feeds it from a store view
 * snapshot and the heartbeats' snapshot lists, and its setting. The thread runs one job at a
 * time (a node call that stages one VM, paced by the node at the budget's rate), so at most one staging moves data
 * at a time; it pauses while an activation runs, whose transfer comes first. What it keeps is
 * soft: after a restart it plans again from the heartbeats (the nodes' side is idempotent). */
#include "oracle/oracle-prestage.h"

#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-proto.h"
#include "oracle/oracle-switch.h"
#include "store/store-market.h"
#include "store/store-view.h"

#define PRESTAGE_TICK_MS 1000
#define PRESTAGE_SETTING "prestage_bps"
#define PRESTAGE_BUCKET_S 10.0      /* the bucket holds this many seconds of the rate */
#define PRESTAGE_RECENT_MS 15000    /* a VM staged this recently counts as held (heartbeats lag) */
#define PRESTAGE_CALL_MS (600L * 1000)
#define PRESTAGE_BPS_MAX 10000000000ll
#define PRESTAGE_BACKOFF_MS 60000   /* an RM that refused or failed a job gets none for this long */

/* ---- the planner ---- */

static bool rm_taken(const prestage_job_t *out, size_t n, size_t rm) {
        for (size_t i = 0; i < n; i++)
                if (out[i].rm == rm)
                        return true;
        return false;
}

/* The free RM for a VM of bytes holding the fewest snapshots (then the first), or SIZE_MAX. */
static size_t rm_for(const prestage_in_t *in, const prestage_job_t *out, size_t n, uint64_t bytes) {
        size_t best = SIZE_MAX;
        for (size_t r = 0; r < in->nr; r++) {
                const prestage_rm_t *rm = &in->rms[r];
                if (rm->busy || rm->free_bytes < bytes || rm_taken(out, n, r))
                        continue;
                if (best == SIZE_MAX || rm->staged < in->rms[best].staged)
                        best = r;
        }
        return best;
}

int oracle_prestage_plan(const prestage_in_t *in, prestage_job_t *out, size_t max, size_t *ret_n) {
        size_t n = 0;
        double spent = 0;
        max = MIN(max, in->max_jobs);
        /* services by priority, then index: a stable selection sort over a small list */
        bool *done = xcalloc(in->ns ? in->ns : 1, sizeof *done);
        for (size_t round = 0; round < in->ns && n < max; round++) {
                size_t s = SIZE_MAX;
                for (size_t k = 0; k < in->ns; k++)
                        if (!done[k] && (s == SIZE_MAX || in->svcs[k].priority > in->svcs[s].priority))
                                s = k;
                done[s] = true;
                int counted = 0;
                for (size_t v = 0; v < in->nv && n < max && counted < in->svcs[s].want; v++) {
                        const prestage_vm_t *vm = &in->vms[v];
                        if (vm->service != s)
                                continue;
                        counted++; /* held or not, it is one of the service's next ones */
                        if (vm->held)
                                continue;
                        bool alone = n == 0 && in->bucket_full;
                        if (spent + (double)vm->bytes > in->budget_bytes && !alone)
                                continue;
                        size_t rm = rm_for(in, out, n, vm->bytes);
                        if (rm == SIZE_MAX)
                                continue;
                        out[n++] = (prestage_job_t){ .vm = v, .rm = rm };
                        spent += (double)vm->bytes;
                }
        }
        free(done);
        *ret_n = n;
        return 0;
}

/* ---- the thread ---- */

typedef struct recent {
        char vm[64];
        int64_t at_ms;
} recent_t;

struct oracle_prestage {
        pthread_t thread;
        bool started;
        double bucket;
        int64_t last_ms;
        recent_t recent[64];
        recent_t backoff[64]; /* RMs (in .vm) that refused or failed a job, and when */
        pthread_mutex_t lock; /* guards the counters */
        uint64_t staged, failed, bytes;
};

static int64_t setting_bps(oracle_t *o) {
        /* a quarter of the activations' budget unless VMATRIX_PRESTAGE_BPS says (the daemon tests
         * start with 0: pre-staging's calls would change what their fault counters count) */
        const char *env = getenv("VMATRIX_PRESTAGE_BPS");
        int64_t def = env ? (int64_t)atoll(env) : (int64_t)(o->sw ? o->sw->network_bps / 4 : 0);
        int64_t v = def;
        if (store_setting_get(o->store, PRESTAGE_SETTING, def, &v) < 0)
                return 0;
        return v;
}

static uint64_t bundle_bytes(const vm_record_t *vm) {
        uint64_t t = 0;
        const char *k;
        const json_t *f;
        json_object_foreach(json_object_get(vm->bundle, "files"), k, f)
                t += (uint64_t)MAX(json_integer_value(json_object_get(f, "size")), (json_int_t)0);
        return t;
}

static bool recently_staged(struct oracle_prestage *p, const char *vm, int64_t now) {
        for (size_t i = 0; i < ELEMENTSOF(p->recent); i++)
                if (streq(p->recent[i].vm, vm) && now - p->recent[i].at_ms < PRESTAGE_RECENT_MS)
                        return true;
        return false;
}

static void recent_note(recent_t *list, size_t n, const char *name, int64_t now) {
        size_t oldest = 0;
        for (size_t i = 0; i < n; i++)
                if (list[i].at_ms < list[oldest].at_ms)
                        oldest = i;
        snprintf(list[oldest].vm, sizeof list[oldest].vm, "%s", name);
        list[oldest].at_ms = now;
}

/* Whether rm refused or failed a job less than PRESTAGE_BACKOFF_MS ago (a full cache, a node
 * that fails): it is not asked again every tick. */
static bool backing_off(struct oracle_prestage *p, const char *rm, int64_t now) {
        for (size_t i = 0; i < ELEMENTSOF(p->backoff); i++)
                if (streq(p->backoff[i].vm, rm) && now - p->backoff[i].at_ms < PRESTAGE_BACKOFF_MS)
                        return true;
        return false;
}

/* Whether an activation runs now: its transfer comes first. */
static bool activation_running(const store_view_snap_t *snap) {
        for (size_t i = 0; i < store_view_snap_nops(snap); i++) {
                const store_view_op_t *op = store_view_snap_op_at(snap, i);
                if (streq(op->kind, "activate") || streq(op->kind, "boot"))
                        return true;
        }
        return false;
}

static int view_vm_by_name(const void *a, const void *b) {
        return strcmp((*(const store_view_vm_t *const *)a)->name, (*(const store_view_vm_t *const *)b)->name);
}

/* Stages vm on rm: one node call. */
static void job_run(oracle_t *o, struct oracle_prestage *p, vm_record_t *vm, const char *rm, int64_t bps) {
        json_t *image = oracle_image_for_node(o, vm->image);
        if (!image)
                return;
        json_t *body = oracle_proto_run(vm, image, "prestage");
        json_object_set_new(body, "max_bps", json_integer(bps));
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/prestage", vm->name);
        _cleanup_free_ char *msg = NULL;
        json_t *res = NULL;
        uint64_t bytes = bundle_bytes(vm);
        p->bucket -= (double)bytes;
        int64_t t0 = time_now_ms();
        int r = oracle_node_call(o, rm, "POST", path, body, PRESTAGE_CALL_MS, &res, &msg);
        json_decref(body);
        uint64_t moved = (uint64_t)MAX(json_integer_value(json_object_get(res, "bytes_transferred")), (json_int_t)0);
        p->bucket += (double)(bytes > moved ? bytes - moved : 0); /* refund what was not moved */
        pthread_mutex_lock(&p->lock);
        if (r < 0) {
                p->failed++;
        } else {
                p->staged++;
                p->bytes += moved;
        }
        pthread_mutex_unlock(&p->lock);
        if (r < 0) {
                log_warn("pre-staging vm %s on RM %s failed: %s; none there for %d s", vm->name, rm,
                         msg ? msg : strerror(-r), PRESTAGE_BACKOFF_MS / 1000);
                recent_note(p->backoff, ELEMENTSOF(p->backoff), rm, time_now_ms());
        } else {
                log_info("vm %s staged on RM %s in %lld ms (%llu bytes moved)", vm->name, rm,
                         (long long)(time_now_ms() - t0), (unsigned long long)moved);
                recent_note(p->recent, ELEMENTSOF(p->recent), vm->name, time_now_ms());
        }
        json_decref(res);
}

/* One tick on one store view snapshot (the switching loop's, when nothing changed since): no
 * store read per VM or RM, so its cost at 100,000 VMs is one pass over the snapshot. Only the
 * VM it stages is read from the store, for its bundle. */
static void prestage_tick(oracle_t *o, struct oracle_prestage *p) {
        int64_t now = time_now_ms(), bps = setting_bps(o);
        double cap = (double)bps * PRESTAGE_BUCKET_S;
        p->bucket = MIN(cap, p->bucket + (double)bps * (double)(now - p->last_ms) / 1000.0);
        p->last_ms = now;
        if (bps <= 0)
                return;
        store_view_snap_t *snap = store_view_snapshot(o->store);
        if (!snap)
                return;
        size_t nr = store_view_snap_nrms(snap), nv = store_view_snap_nvms(snap);
        service_record_t *svcs = NULL;
        size_t ns = 0;
        if (activation_running(snap) || store_service_list(o->store, &svcs, &ns) < 0) {
                store_view_release(snap);
                return;
        }
        /* idle production RMs: up, not a provider's, running nothing; and the digests they hold */
        prestage_rm_t *in_rms = xcalloc(nr ? nr : 1, sizeof *in_rms);
        _cleanup_(json_decrefp) json_t *held_digests = json_object();
        size_t k = 0;
        for (size_t i = 0; i < nr; i++) {
                const rm_record_t *rm = store_view_snap_rm_at(snap, i);
                if (!streq(rm->role, "production") || !streq(rm->state, "up") || *rm->provider ||
                    store_view_snap_count_on(snap, rm->name) > 0 || oracle_rm_strays(o, rm->name) > 0)
                        continue;
                pthread_mutex_lock(&o->strays_lock);
                const json_t *on = json_object_get(o->snapshots, rm->name);
                const char *digest;
                const json_t *unused;
                json_object_foreach((json_t *)on, digest, unused)
                        json_object_set_new(held_digests, digest, json_true());
                size_t staged = json_object_size(on);
                pthread_mutex_unlock(&o->strays_lock);
                /* the cache room is the node's to judge (507 when it does not fit: then backing_off) */
                in_rms[k++] = (prestage_rm_t){ .name = rm->name, .free_bytes = UINT64_MAX, .staged = staged,
                                               .busy = backing_off(p, rm->name, now) };
        }
        size_t n_idle = k;
        /* the candidates in activation order (lowest names first), as the switching loop takes them */
        const store_view_vm_t **cand = xcalloc(nv ? nv : 1, sizeof *cand);
        size_t nc = 0;
        for (size_t v = 0; v < nv && n_idle > 0; v++) {
                const store_view_vm_t *vm = store_view_snap_vm_at(snap, v);
                if (streq(vm->state, "stored") && vm->prebooted && !*vm->op_id && !vm->market &&
                    bundle_sha256_is_valid(vm->mem_digest))
                        cand[nc++] = vm;
        }
        qsort(cand, nc, sizeof *cand, view_vm_by_name);
        /* the idle RMs shared among the services; VMs of no service last, as many as fit */
        prestage_service_t *in_svcs = xcalloc(ns + 1, sizeof *in_svcs);
        for (size_t s = 0; s < ns; s++)
                in_svcs[s] = (prestage_service_t){ .priority = svcs[s].priority,
                                                   .want = (int)MAX(n_idle / MAX(ns, (size_t)1), (size_t)1) };
        in_svcs[ns] = (prestage_service_t){ .priority = INT64_MIN, .want = (int)n_idle };
        prestage_vm_t *in_vms = xcalloc(nc ? nc : 1, sizeof *in_vms);
        int *taken = xcalloc(ns + 1, sizeof *taken);
        size_t m = 0;
        for (size_t c = 0; c < nc; c++) {
                size_t s = 0;
                while (s < ns && !streq(svcs[s].name, cand[c]->service))
                        s++;
                if (s == ns && *cand[c]->service)
                        continue; /* a service being made or gone */
                /* the planner looks at each service's next `want` only: the rest need no entry */
                if (taken[s] >= in_svcs[s].want)
                        continue;
                taken[s]++;
                bool held = recently_staged(p, cand[c]->name, now) ||
                            json_object_get(held_digests, cand[c]->mem_digest) != NULL;
                in_vms[m++] = (prestage_vm_t){ .name = cand[c]->name, .service = s, .bytes = cand[c]->bundle_bytes,
                                               .held = held };
        }
        prestage_in_t in = { .svcs = in_svcs, .ns = ns + 1, .vms = in_vms, .nv = m, .rms = in_rms, .nr = n_idle,
                             .budget_bytes = p->bucket, .bucket_full = p->bucket >= cap, .max_jobs = 1 };
        prestage_job_t job;
        size_t nj = 0;
        oracle_prestage_plan(&in, &job, 1, &nj);
        _cleanup_free_ char *vm_name = nj == 1 ? xstrdup(in_vms[job.vm].name) : NULL;
        _cleanup_free_ char *rm_name = nj == 1 ? xstrdup(in_rms[job.rm].name) : NULL;
        free(in_rms);
        free(in_svcs);
        free(in_vms);
        free(taken);
        free(cand);
        free(svcs);
        store_view_release(snap);
        vm_record_t vm = { 0 };
        if (vm_name && store_vm_get(o->store, vm_name, &vm) == 0) {
                /* still what the snapshot saw: stored, pre-booted, no operation */
                if (streq(vm.state, "stored") && vm.prebooted && !*vm.op_id)
                        job_run(o, p, &vm, rm_name, bps);
                vm_record_clear(&vm);
        }
}

static void *prestage_thread(void *arg) {
        oracle_t *o = arg;
        struct oracle_prestage *p = o->prestage;
        p->last_ms = time_now_ms();
        while (!o->stopping) {
                prestage_tick(o, p);
                for (int i = 0; i < PRESTAGE_TICK_MS / 100 && !o->stopping; i++)
                        time_sleep_ms(100);
        }
        return NULL;
}

int oracle_prestage_start(oracle_t *o) {
        struct oracle_prestage *p = xcalloc(1, sizeof *p);
        pthread_mutex_init(&p->lock, NULL);
        o->prestage = p;
        if (pthread_create(&p->thread, NULL, prestage_thread, o) != 0)
                return -EAGAIN;
        p->started = true;
        return 0;
}

void oracle_prestage_stop(oracle_t *o) {
        struct oracle_prestage *p = o->prestage;
        if (!p)
                return;
        if (p->started)
                pthread_join(p->thread, NULL);
        pthread_mutex_destroy(&p->lock);
        free(p);
        o->prestage = NULL;
}

/* ---- the setting ---- */

static void h_get(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        struct oracle_prestage *p = o->prestage;
        uint64_t staged = 0, failed = 0, bytes = 0;
        if (p) {
                pthread_mutex_lock(&p->lock);
                staged = p->staged, failed = p->failed, bytes = p->bytes;
                pthread_mutex_unlock(&p->lock);
        }
        http_reply_json(reply, 200,
                        json_pack("{s:I,s:I,s:I,s:I}", "prestage_bps", (json_int_t)setting_bps(o), "staged",
                                  (json_int_t)staged, "failed", (json_int_t)failed, "bytes", (json_int_t)bytes));
}

static void h_set(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const json_t *v = json_object_get(req->body, "prestage_bps");
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > PRESTAGE_BPS_MAX) {
                http_reply_error(reply, 400, "invalid", "prestage_bps is bytes per second, from 0 (off) to %lld",
                                 (long long)PRESTAGE_BPS_MAX);
                return;
        }
        if (store_setting_set(o->store, PRESTAGE_SETTING, json_integer_value(v)) < 0) {
                http_reply_errno(reply, -EIO, "cannot record prestage_bps");
                return;
        }
        h_get(req, reply);
}

const http_route_t oracle_prestage_routes[] = {
        /* a setting of the whole cluster's switching: operators', not providers' (whose rm-act
         * is over their own RMs) */
        { "GET", "/v1/settings/prestage", h_get, PERM_SERVICE_READ, OWNER_NONE },
        { "PUT", "/v1/settings/prestage", h_set, PERM_SERVICE_ACT, OWNER_NONE },
        { NULL },
};
