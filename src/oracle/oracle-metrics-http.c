/* Load profiles over HTTP (oracle-metrics.h): the Prometheus page GET /metrics, the stored
 * series GET /v1/metrics and the per-service view GET /v1/services/NAME/top behind `vmatrix
 * service top`, and the measured figures GET /v1/figures (oracle-figures.c). Each answer is built by a function that takes plain arguments (the unit tests
 * call them); the handlers only fetch the query and map errors to HTTP. The latest figures
 * come from oracle-metrics.c, names and states from the store. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "auth/roles.h"
#include "base/util.h"
#include "oracle/oracle-figures.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-switch.h"
#include "store/store-metrics.h"

static const char *const vm_kinds[] = { "cpu", "rss_bytes", "disk_read_bps", "disk_write_bps", "net_rx_bps",
                                        "net_tx_bps" };
static const char *const service_kinds[] = { "request_rate", "queue", "response_ms", "sessions", "load", "active" };

static bool kind_in(const char *kind, const char *const *kinds, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (streq(kind, kinds[i]))
                        return true;
        return false;
}

bool oracle_metrics_series_is_valid(const char *series) {
        if (!series || strlen(series) >= STORE_SAMPLES_SERIES_MAX)
                return false;
        const char *a = strchr(series, ':'), *b = a ? strrchr(series, ':') : NULL;
        if (!a || a == b)
                return false;
        char name[64];
        if ((size_t)(b - a - 1) >= sizeof name)
                return false;
        snprintf(name, sizeof name, "%.*s", (int)(b - a - 1), a + 1);
        if (!name_is_valid(name))
                return false;
        if (str_startswith(series, "vm:") && a == series + 2)
                return kind_in(b + 1, vm_kinds, ELEMENTSOF(vm_kinds));
        if (str_startswith(series, "service:") && a == series + 7)
                return kind_in(b + 1, service_kinds, ELEMENTSOF(service_kinds));
        return false;
}

/* ---- GET /metrics ---- */

/* A label value as the text format wants it: \ " and newline escaped. */
static void prom_label(FILE *f, const char *key, const char *value, bool first) {
        fprintf(f, "%s%s=\"", first ? "" : ",", key);
        for (const char *p = value ? value : ""; *p; p++) {
                if (*p == '\\' || *p == '"')
                        fputc('\\', f), fputc(*p, f);
                else if (*p == '\n')
                        fputs("\\n", f);
                else
                        fputc(*p, f);
        }
        fputc('"', f);
}

static void prom_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void prom_value(FILE *f, double v) {
        if (isnan(v))
                fputs(" NaN\n", f);
        else if (isinf(v))
                fputs(v > 0 ? " +Inf\n" : " -Inf\n", f);
        else
                fprintf(f, " %.15g\n", v);
}

typedef struct prom_family_def {
        const char *name, *type, *help;
} prom_family_def_t;

/* keep in the order of vm_value */
static const prom_family_def_t vm_families[] = {
        { "vmatrix_vm_cpu_ratio", "gauge",
          "Share of the VM's vCPU capacity its QEMU used over the last heartbeat interval (1: all busy)." },
        { "vmatrix_vm_resident_bytes", "gauge", "Resident memory of the VM's QEMU process." },
        { "vmatrix_vm_disk_read_bytes_per_second", "gauge", "Bytes the VM read from its disks per second." },
        { "vmatrix_vm_disk_write_bytes_per_second", "gauge", "Bytes the VM wrote to its disks per second." },
        { "vmatrix_vm_network_receive_bytes_per_second", "gauge", "Bytes the VM received per second." },
        { "vmatrix_vm_network_transmit_bytes_per_second", "gauge", "Bytes the VM sent per second." },
};

static double vm_value(const vm_metrics_t *m, size_t k) {
        switch (k) {
        case 0: return m->cpu;
        case 1: return (double)m->rss_bytes;
        case 2: return m->disk_read_bps;
        case 3: return m->disk_write_bps;
        case 4: return m->net_rx_bps;
        default: return m->net_tx_bps;
        }
}

/* Where a service family's figure comes from: HAProxy's report, the switching loop's, or the
 * store (always there). A family from a report is left out while that report is not fresh. */
enum { FROM_LB, FROM_LOAD, FROM_STORE };

typedef struct service_family_def {
        const char *name, *type, *help;
        int from;
} service_family_def_t;

/* keep in the order of service_value */
static const service_family_def_t service_families[] = {
        { "vmatrix_service_requests_per_second", "gauge", "HTTP requests per second at the service's frontend.",
          FROM_LB },
        { "vmatrix_service_queue", "gauge", "Requests waiting in the load balancer for a VM of the service.", FROM_LB },
        { "vmatrix_service_response_seconds", "gauge", "Average response time of the service's VMs.", FROM_LB },
        { "vmatrix_service_queue_seconds", "gauge", "Average time requests of the service waited in the queue.",
          FROM_LB },
        { "vmatrix_service_sessions", "gauge", "Open sessions at the service's frontend.", FROM_LB },
        { "vmatrix_service_requests_total", "counter", "HTTP requests the service's frontend received.", FROM_LB },
        { "vmatrix_service_errors_total", "counter", "Failed requests of the service (5xx answers and aborts).",
          FROM_LB },
        { "vmatrix_service_load", "gauge",
          "Load of the service in VM-capacity units, as the switching loop computed it.", FROM_LOAD },
        { "vmatrix_service_active_vms", "gauge", "VMs of the service in rotation.", FROM_STORE },
        { "vmatrix_service_pool_vms", "gauge", "VMs in the service's pool.", FROM_STORE },
};

typedef struct service_row {
        service_metrics_t m;
        bool lb_fresh, load_fresh; /* the parts of m that are fresh reports */
        int64_t pool, active;      /* from the store */
} service_row_t;

static double service_value(const service_row_t *s, size_t k) {
        switch (k) {
        case 0: return s->m.request_rate;
        case 1: return s->m.queue;
        case 2: return s->m.response_ms / 1000.0;
        case 3: return s->m.queue_ms / 1000.0;
        case 4: return s->m.sessions;
        case 5: return (double)s->m.requests;
        case 6: return (double)s->m.errors;
        case 7: return s->m.load;
        /* the switching loop's count when it reported, else the VMs the store has active */
        case 8: return s->load_fresh ? (double)s->m.active : (double)s->active;
        default: return (double)s->pool;
        }
}

static bool is_fresh(int64_t updated_ms, int64_t now_ms) {
        return updated_ms != 0 && now_ms - updated_ms <= ORACLE_METRICS_STALE_MS;
}

static void prom_vms(FILE *f, oracle_metrics_t *m, const vm_record_t *vms, size_t nv, int64_t now_ms) {
        _cleanup_free_ vm_metrics_t *vm = xcalloc(nv + 1, sizeof *vm);
        _cleanup_free_ bool *fresh = xcalloc(nv + 1, sizeof *fresh);
        for (size_t i = 0; i < nv; i++)
                fresh[i] = oracle_metrics_vm_get(m, vms[i].name, &vm[i]) >= 0 && is_fresh(vm[i].updated_ms, now_ms);
        for (size_t k = 0; k < ELEMENTSOF(vm_families); k++) {
                prom_family(f, vm_families[k].name, vm_families[k].type, vm_families[k].help);
                for (size_t i = 0; i < nv; i++) {
                        if (!fresh[i])
                                continue;
                        fprintf(f, "%s{", vm_families[k].name);
                        prom_label(f, "vm", vms[i].name, true);
                        prom_label(f, "service", vms[i].service, false);
                        prom_label(f, "rm", vms[i].rm, false);
                        fputc('}', f);
                        prom_value(f, vm_value(&vm[i], k));
                }
        }
}

/* The latest figures of service and the count of its VMs (all, active) in vms. */
static void service_row_fill(service_row_t *row, oracle_metrics_t *m, const char *service, const vm_record_t *vms,
                             size_t nv, int64_t now_ms) {
        *row = (service_row_t){ 0 };
        if (oracle_metrics_service_get(m, service, &row->m) >= 0) {
                row->lb_fresh = is_fresh(row->m.lb_updated_ms, now_ms);
                row->load_fresh = is_fresh(row->m.load_updated_ms, now_ms);
        }
        for (size_t k = 0; k < nv; k++)
                if (streq(vms[k].service, service)) {
                        row->pool++;
                        row->active += streq(vms[k].state, "active");
                }
}

static void prom_services(FILE *f, oracle_metrics_t *m, const service_record_t *svs, size_t ns,
                          const vm_record_t *vms, size_t nv, int64_t now_ms) {
        _cleanup_free_ service_row_t *rows = xcalloc(ns + 1, sizeof *rows);
        for (size_t i = 0; i < ns; i++)
                service_row_fill(&rows[i], m, svs[i].name, vms, nv, now_ms);
        for (size_t k = 0; k < ELEMENTSOF(service_families); k++) {
                const service_family_def_t *fam = &service_families[k];
                prom_family(f, fam->name, fam->type, fam->help);
                for (size_t i = 0; i < ns; i++) {
                        if ((fam->from == FROM_LB && !rows[i].lb_fresh) ||
                            (fam->from == FROM_LOAD && !rows[i].load_fresh))
                                continue;
                        fprintf(f, "%s{", fam->name);
                        prom_label(f, "service", svs[i].name, true);
                        fputc('}', f);
                        prom_value(f, service_value(&rows[i], k));
                }
        }
}

static void prom_cluster(FILE *f, const rm_record_t *rms, size_t nr, const vm_record_t *vms, size_t nv) {
        prom_family(f, "vmatrix_rm_up", "gauge", "1 when the RM sends heartbeats, 0 when it is down.");
        for (size_t i = 0; i < nr; i++) {
                fputs("vmatrix_rm_up{", f);
                prom_label(f, "rm", rms[i].name, true);
                prom_label(f, "role", rms[i].role, false);
                fputc('}', f);
                prom_value(f, streq(rms[i].state, "up") ? 1 : 0);
        }
        prom_family(f, "vmatrix_vms", "gauge", "VMs in each lifecycle state.");
        for (size_t i = 0; i < nv; i++) {
                bool seen = false;
                for (size_t j = 0; j < i && !seen; j++)
                        seen = streq(vms[j].state, vms[i].state);
                if (seen)
                        continue;
                size_t count = 0;
                for (size_t j = i; j < nv; j++)
                        count += streq(vms[j].state, vms[i].state);
                fputs("vmatrix_vms{", f);
                prom_label(f, "state", vms[i].state, true);
                fputc('}', f);
                prom_value(f, (double)count);
        }
}

int oracle_metrics_prometheus(oracle_metrics_t *m, store_t *store, int64_t now_ms, char **ret) {
        vm_record_t *vms = NULL;
        rm_record_t *rms = NULL;
        service_record_t *svs = NULL;
        size_t nv = 0, nr = 0, ns = 0;
        int r = store_vm_list(store, &vms, &nv);
        if (r >= 0 && (r = store_rm_list(store, &rms, &nr)) < 0)
                rms = NULL;
        if (r >= 0 && (r = store_service_list(store, &svs, &ns)) < 0)
                svs = NULL;
        if (r < 0) {
                store_vm_list_free(vms, nv);
                free(rms);
                return r;
        }
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                abort(); /* only fails for want of memory */
        prom_vms(f, m, vms, nv, now_ms);
        prom_services(f, m, svs, ns, vms, nv, now_ms);
        prom_cluster(f, rms, nr, vms, nv);
        fclose(f);
        store_vm_list_free(vms, nv);
        free(rms);
        free(svs);
        *ret = text;
        return 0;
}

/* The switching rounds' durations (oracle_switch_round_json) as a gauge per figure; nothing
 * before the first round. */
static char *prom_switch_rounds(oracle_t *o, const char *text) {
        _cleanup_(json_decrefp) json_t *j = oracle_switch_round_json(o);
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        if (!f)
                abort();
        fputs(text, f);
        if (json_is_number(json_object_get(j, "last"))) {
                prom_family(f, "vmatrix_switch_round_ms", "gauge",
                            "Duration of the switching loop's rounds in milliseconds (the last 128): last, p50, p99, max.");
                static const char *const stats[] = { "last", "p50", "p99", "max" };
                for (size_t i = 0; i < ELEMENTSOF(stats); i++) {
                        fprintf(f, "vmatrix_switch_round_ms{stat=\"%s\"}", stats[i]);
                        prom_value(f, json_number_value(json_object_get(j, stats[i])));
                }
        }
        fclose(f);
        return out;
}

static void h_prometheus(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        _cleanup_free_ char *page = NULL;
        int r = oracle_metrics_prometheus(o->metrics, o->store, time_now_ms(), &page);
        if (r < 0) {
                http_reply_errno(reply, r, "the store is unavailable");
                return;
        }
        _cleanup_free_ char *text = prom_switch_rounds(o, page);
        /* "text/plain" without a version is read as the 0.0.4 text format by Prometheus */
        http_reply_text(reply, 200, text);
}

/* ---- GET /v1/metrics ---- */

int oracle_metrics_query(store_t *store, const char *series, const char *res, const char *since, const char *until,
                         int64_t now_s, json_t **ret, char **ret_msg) {
        int64_t res_s = 0, since_s = 0, until_s = now_s;
        if (!series || !*series) {
                *ret_msg = xstrdup("series is required: vm:NAME:KIND or service:NAME:KIND");
                return -EINVAL;
        }
        if (!oracle_metrics_series_is_valid(series)) {
                *ret_msg = xasprintf("unknown series \"%.80s\": expected vm:NAME:{cpu,rss_bytes,disk_read_bps,"
                                     "disk_write_bps,net_rx_bps,net_tx_bps} or service:NAME:{request_rate,queue,"
                                     "response_ms,sessions,load,active}",
                                     series);
                return -EINVAL;
        }
        if (!res || parse_int64(res, 1, 3600, &res_s) < 0 || !store_samples_res_is_valid(res_s)) {
                *ret_msg = xasprintf("res must be 1, 60 or 3600 (seconds), not \"%.40s\"", res ? res : "");
                return -EINVAL;
        }
        if (until && parse_int64(until, 0, INT64_MAX / 2, &until_s) < 0) {
                *ret_msg = xasprintf("until must be seconds since the epoch, not \"%.40s\"", until);
                return -EINVAL;
        }
        /* the default spans: an hour of seconds, a day of minutes, a week of hours */
        since_s = until_s - (res_s == 1 ? 3600 : res_s == 60 ? 86400 : 7 * 86400);
        if (since && parse_int64(since, 0, INT64_MAX / 2, &since_s) < 0) {
                *ret_msg = xasprintf("since must be seconds since the epoch, not \"%.40s\"", since);
                return -EINVAL;
        }
        if (since_s > until_s) {
                *ret_msg = xasprintf("since (%lld) is after until (%lld)", (long long)since_s, (long long)until_s);
                return -EINVAL;
        }
        json_t *points = NULL;
        int r = store_samples_get(store, series, res_s, since_s, until_s, &points);
        if (r < 0) {
                *ret_msg = xstrdup("the store is unavailable");
                return r == -EINVAL ? -EIO : r;
        }
        *ret = json_pack("{s:s,s:I,s:o}", "series", series, "res", (json_int_t)res_s, "points", points);
        return 0;
}

static void h_series(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        json_t *j = NULL;
        _cleanup_free_ char *msg = NULL;
        int r = oracle_metrics_query(o->store, http_request_query(req, "series"), http_request_query(req, "res"),
                                     http_request_query(req, "since"), http_request_query(req, "until"),
                                     time_wall_ms() / 1000, &j, &msg);
        if (r == -EINVAL)
                http_reply_error(reply, 400, "invalid", "%s", msg);
        else if (r < 0)
                http_reply_errno(reply, r, "%s", msg ? msg : "the store is unavailable");
        else
                http_reply_json(reply, 200, j);
}

/* GET /v1/vms/:name/metrics?series=cpu|rss_bytes|...: one VM's series, for whoever may read the
 * VM (its buyer included, who holds no metrics-read): the series of GET /v1/metrics named
 * vm:NAME:SERIES. */
static void h_vm_series(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        static const char *const names[] = { "cpu", "rss_bytes", "disk_read_bps", "disk_write_bps", "net_rx_bps",
                                             "net_tx_bps" };
        const char *series = http_request_query(req, "series");
        bool known = false;
        for (size_t i = 0; series && i < ELEMENTSOF(names); i++)
                known |= streq(series, names[i]);
        if (!known) {
                http_reply_error(reply, 400, "invalid", "series is one of cpu, rss_bytes, disk_read_bps, "
                                 "disk_write_bps, net_rx_bps, net_tx_bps");
                return;
        }
        _cleanup_free_ char *full = xasprintf("vm:%s:%s", req->params[0], series);
        json_t *j = NULL;
        _cleanup_free_ char *msg = NULL;
        int r = oracle_metrics_query(o->store, full, http_request_query(req, "res"), http_request_query(req, "since"),
                                     http_request_query(req, "until"), time_wall_ms() / 1000, &j, &msg);
        if (r == -EINVAL)
                http_reply_error(reply, 400, "invalid", "%s", msg);
        else if (r < 0)
                http_reply_errno(reply, r, "%s", msg ? msg : "the store is unavailable");
        else
                http_reply_json(reply, 200, j);
}

/* ---- GET /v1/services/:name/top ---- */

static json_t *top_service_json(const service_record_t *sv, const service_row_t *row, const char *listen) {
        json_t *j = json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "name", sv->name, "state", sv->state, "pool",
                              (json_int_t)row->pool, "pool_size", (json_int_t)sv->pool, "min", (json_int_t)sv->min,
                              "max", (json_int_t)sv->max);
        if (sv->port > 0) {
                _cleanup_free_ char *endpoint = oracle_service_endpoint(listen, sv->port);
                json_object_set_new(j, "endpoint", json_string(endpoint));
        }
        const service_metrics_t *sm = &row->m;
        json_object_set_new(j, "active", json_integer(row->load_fresh ? sm->active : row->active));
        json_object_set_new(j, "load", row->load_fresh ? json_real(sm->load) : json_null());
        struct {
                const char *key;
                double v;
        } lb[] = { { "request_rate", sm->request_rate }, { "queue", sm->queue },       { "sessions", sm->sessions },
                   { "response_ms", sm->response_ms },   { "queue_ms", sm->queue_ms } };
        for (size_t i = 0; i < ELEMENTSOF(lb); i++)
                json_object_set_new(j, lb[i].key, row->lb_fresh ? json_real(lb[i].v) : json_null());
        json_object_set_new(j, "requests", row->lb_fresh ? json_integer(sm->requests) : json_null());
        json_object_set_new(j, "errors", row->lb_fresh ? json_integer(sm->errors) : json_null());
        return j;
}

static json_t *top_vm_json(const vm_record_t *v, const vm_metrics_t *vm, bool fresh) {
        json_t *j = json_pack("{s:s,s:s,s:s?}", "name", v->name, "state", v->state, "rm", *v->rm ? v->rm : NULL);
        json_object_set_new(j, "cpu", fresh ? json_real(vm->cpu) : json_null());
        json_object_set_new(j, "rss_bytes", fresh ? json_integer((json_int_t)vm->rss_bytes) : json_null());
        json_object_set_new(j, "disk_read_bps", fresh ? json_real(vm->disk_read_bps) : json_null());
        json_object_set_new(j, "disk_write_bps", fresh ? json_real(vm->disk_write_bps) : json_null());
        json_object_set_new(j, "net_rx_bps", fresh ? json_real(vm->net_rx_bps) : json_null());
        json_object_set_new(j, "net_tx_bps", fresh ? json_real(vm->net_tx_bps) : json_null());
        return j;
}

int oracle_metrics_service_top(oracle_metrics_t *m, store_t *store, const char *listen, const char *service,
                               int64_t now_ms, json_t **ret) {
        service_record_t sv;
        int r = store_service_get(store, service, &sv);
        if (r < 0)
                return r;
        vm_record_t *vms = NULL;
        size_t nv = 0;
        r = store_vm_list(store, &vms, &nv);
        if (r < 0)
                return r;
        service_row_t row;
        service_row_fill(&row, m, sv.name, vms, nv, now_ms);
        json_t *list = json_array();
        for (size_t i = 0; i < nv; i++) {
                if (!streq(vms[i].service, sv.name))
                        continue;
                vm_metrics_t vm = { 0 };
                bool fresh = oracle_metrics_vm_get(m, vms[i].name, &vm) >= 0 && is_fresh(vm.updated_ms, now_ms);
                json_array_append_new(list, top_vm_json(&vms[i], &vm, fresh));
        }
        store_vm_list_free(vms, nv);
        *ret = json_pack("{s:o,s:o}", "service", top_service_json(&sv, &row, listen), "vms", list);
        return 0;
}

static void h_service_top(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = req->params[0];
        json_t *j = NULL;
        int r = name_is_valid(name) ? oracle_metrics_service_top(o->metrics, o->store, o->listen, name,
                                                                 time_now_ms(), &j)
                                    : -ENOENT;
        if (r == -ENOENT)
                http_reply_errno(reply, r, "no service \"%.64s\"", name);
        else if (r < 0)
                http_reply_errno(reply, r, "the store is unavailable");
        else
                http_reply_json(reply, 200, j);
}

/* GET /v1/figures: the medians the switching policy uses (oracle-figures.h). */
static void h_figures(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        if (!o->figures) {
                http_reply_error(reply, 503, "unavailable", "the figures are not loaded");
                return;
        }
        http_reply_json(reply, 200, oracle_figures_json(o->figures));
}

const http_route_t oracle_metrics_routes[] = {
        { "GET", "/metrics", h_prometheus, PERM_METRICS_READ, OWNER_NONE },
        { "GET", "/v1/metrics", h_series, PERM_METRICS_READ, OWNER_NONE },
        { "GET", "/v1/vms/:name/metrics", h_vm_series, PERM_VM_READ, OWNER_VM },
        { "GET", "/v1/services/:name/top", h_service_top, PERM_SERVICE_READ, OWNER_NONE },
        { "GET", "/v1/figures", h_figures, PERM_RM_READ, OWNER_NONE },
        { NULL },
};
