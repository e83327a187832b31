/* Unit tests for load profiles: the stored series (buckets, averages and peaks per resolution,
 * the point limit, retention), the rates oracle-metrics.c computes from canned heartbeat stats
 * (vCPU share, counters going backwards, bad fields), the flush to the store, the Prometheus
 * page of a small store, the /v1/metrics argument checks and the service top answer, and the
 * routes and `service top` end to end over HTTP. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli/cmd-service-top.h"
#include "net/http-client.h"
#include "oracle/oracle-internal.h"
#include "store/store-metrics.h"
#include "tap.h"

static bool near(double a, double b) { return fabs(a - b) < 1e-9 * MAX(1.0, fabs(b)); }

/* points[i] is [t, avg, max] */
static bool point_is(const json_t *points, size_t i, int64_t t, double avg, double max) {
        const json_t *p = json_array_get(points, i);
        return json_array_size(p) == 3 && json_integer_value(json_array_get(p, 0)) == t &&
               near(json_number_value(json_array_get(p, 1)), avg) && near(json_number_value(json_array_get(p, 2)), max);
}

static size_t points_of(store_t *s, const char *series, int64_t res, int64_t since, int64_t until) {
        json_t *p = NULL;
        if (store_samples_get(s, series, res, since, until, &p) < 0)
                return (size_t)-1;
        size_t n = json_array_size(p);
        json_decref(p);
        return n;
}

static void test_samples(store_t *s) {
        const store_sample_t in[] = {
                { "vm:a:cpu", 1000, 1 }, { "vm:a:cpu", 1000, 3 },  { "vm:a:cpu", 1001, 5 },
                { "vm:a:cpu", 1059, 7 }, { "vm:a:cpu", 1060, 10 }, { "vm:a:cpu", 3600, 2 },
        };
        CHECK(store_samples_add(s, in, ELEMENTSOF(in)) == 0);
        CHECK(store_samples_add(s, in, 0) == 0);

        /* res 1: one bucket per second; two samples in second 1000 */
        json_t *p = NULL;
        CHECK(store_samples_get(s, "vm:a:cpu", 1, 1000, 1060, &p) == 0);
        CHECK(json_array_size(p) == 4);
        CHECK(point_is(p, 0, 1000, 2, 3));
        CHECK(point_is(p, 1, 1001, 5, 5));
        CHECK(point_is(p, 2, 1059, 7, 7));
        CHECK(point_is(p, 3, 1060, 10, 10));
        json_decref(p);

        /* res 60: buckets 960 (1000, 1000, 1001), 1020 (1059, 1060), 3600; since 1000 takes the
         * bucket that holds it */
        CHECK(store_samples_get(s, "vm:a:cpu", 60, 1000, 4000, &p) == 0);
        CHECK(json_array_size(p) == 3);
        CHECK(point_is(p, 0, 960, 3, 5));
        CHECK(point_is(p, 1, 1020, 8.5, 10));
        CHECK(point_is(p, 2, 3600, 2, 2));
        json_decref(p);

        /* res 3600: hour 0 holds the first five, hour 1 the last */
        CHECK(store_samples_get(s, "vm:a:cpu", 3600, 0, 10000, &p) == 0);
        CHECK(json_array_size(p) == 2);
        CHECK(point_is(p, 0, 0, 26.0 / 5, 10));
        CHECK(point_is(p, 1, 3600, 2, 2));
        json_decref(p);

        /* until is inclusive, and bounds what comes */
        CHECK(points_of(s, "vm:a:cpu", 1, 1001, 1059) == 2);
        CHECK(points_of(s, "vm:nope:cpu", 1, 0, 10000) == 0);
        CHECK(store_samples_get(s, "vm:a:cpu", 5, 0, 10, &p) == -EINVAL);
        CHECK(store_samples_get(s, "vm:a:cpu", 1, 10, 5, &p) == -EINVAL);

        /* a bad sample refuses the whole batch */
        const store_sample_t bad[] = { { "vm:c:cpu", 5, 1 }, { "vm:c:cpu", 6, NAN } };
        CHECK(store_samples_add(s, bad, 2) == -EINVAL);
        const store_sample_t neg[] = { { "vm:c:cpu", -1, 1 } };
        CHECK(store_samples_add(s, neg, 1) == -EINVAL);
        const store_sample_t unnamed[] = { { NULL, 1, 1 } };
        CHECK(store_samples_add(s, unnamed, 1) == -EINVAL);
        CHECK(points_of(s, "vm:c:cpu", 1, 0, 100) == 0);

        /* more than STORE_SAMPLES_POINTS_MAX buckets: the newest that many, oldest first */
        size_t nb = STORE_SAMPLES_POINTS_MAX + 100;
        store_sample_t *many = xcalloc(nb, sizeof *many);
        for (size_t i = 0; i < nb; i++)
                many[i] = (store_sample_t){ "vm:b:cpu", (int64_t)i, (double)i };
        CHECK(store_samples_add(s, many, nb) == 0);
        free(many);
        CHECK(store_samples_get(s, "vm:b:cpu", 1, 0, 100000, &p) == 0);
        CHECK(json_array_size(p) == STORE_SAMPLES_POINTS_MAX);
        CHECK(point_is(p, 0, 100, 100, 100));
        CHECK(point_is(p, STORE_SAMPLES_POINTS_MAX - 1, (int64_t)nb - 1, (double)nb - 1, (double)nb - 1));
        json_decref(p);

        /* retention: res 1 keeps an hour, the boundary bucket (now - 3600) stays */
        CHECK(store_samples_prune(s, 1000 + 3600) == 1000); /* vm:b 0..999 */
        CHECK(points_of(s, "vm:a:cpu", 1, 0, 2000) == 4);
        CHECK(store_samples_prune(s, 1001 + 3600) == 2);    /* vm:a 1000, vm:b 1000 */
        CHECK(store_samples_get(s, "vm:a:cpu", 1, 0, 2000, &p) == 0 && point_is(p, 0, 1001, 5, 5));
        json_decref(p);
        CHECK(points_of(s, "vm:a:cpu", 60, 0, 10000) == 3);
        /* res 60 keeps a week: bucket 960 goes, 1020 stays */
        CHECK(store_samples_prune(s, 961 + 7 * 86400) > 0);
        CHECK(store_samples_get(s, "vm:a:cpu", 60, 0, 10000, &p) == 0 && json_array_size(p) == 2 &&
              point_is(p, 0, 1020, 8.5, 10));
        json_decref(p);
        CHECK(points_of(s, "vm:a:cpu", 3600, 0, 10000) == 2);
        /* res 3600 keeps a year */
        CHECK(store_samples_prune(s, 1 + 365 * 86400) > 0);
        CHECK(store_samples_get(s, "vm:a:cpu", 3600, 0, 10000, &p) == 0 && json_array_size(p) == 1 &&
              point_is(p, 0, 3600, 2, 2));
        json_decref(p);
        CHECK(points_of(s, "vm:a:cpu", 1, 0, 100000) == 0);
}

static void report(oracle_metrics_t *m, const char *vm, int64_t vcpus, const char *stats, int64_t now_ms) {
        json_t *j = json_loads(stats, 0, NULL);
        CHECK(j != NULL);
        oracle_metrics_vm_report(m, vm, true, vcpus, j, now_ms);
        json_decref(j);
}

#define STATS(cpu, rss, rd, wr, rx, tx)                                                                   \
        "{\"cpu_ns\":" #cpu ",\"rss_bytes\":" #rss ",\"block_rd_bytes\":" #rd ",\"block_wr_bytes\":" #wr \
        ",\"net_rx_bytes\":" #rx ",\"net_tx_bytes\":" #tx "}"

/* Heartbeats of web-1 (2 vCPUs) at T0 .. T0+5s; returns the time of the last. */
static int64_t test_rates(oracle_metrics_t *m, int64_t t0) {
        vm_metrics_t v = { 0 };
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == -ENOENT);
        report(m, "web-1", 2, STATS(0, 100, 0, 0, 0, 0), t0);
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == 0);
        CHECK(v.cpu == 0 && v.rss_bytes == 100 && v.updated_ms == t0);

        /* 1 s of CPU in 1 s on 2 vCPUs: half the capacity */
        report(m, "web-1", 2, STATS(1000000000, 200, 2048, 0, 1000, 500), t0 + 1000);
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == 0);
        CHECK(near(v.cpu, 0.5));
        CHECK(v.rss_bytes == 200);
        CHECK(near(v.disk_read_bps, 2048) && near(v.disk_write_bps, 0));
        CHECK(near(v.net_rx_bps, 1000) && near(v.net_tx_bps, 500));

        /* 100 ms later: too close for a rate; the baseline stays at t0+1000 */
        report(m, "web-1", 2, STATS(1900000000, 200, 2048, 0, 1000, 500), t0 + 1100);
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == 0 && near(v.cpu, 0.5) && v.updated_ms == t0 + 1100);
        report(m, "web-1", 2, STATS(1500000000, 300, 4096, 1024, 1000, 500), t0 + 2000);
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == 0);
        CHECK(near(v.cpu, 0.25)); /* 0.5 s over 1 s on 2 vCPUs, measured from t0+1000 */
        CHECK(near(v.disk_read_bps, 2048) && near(v.disk_write_bps, 1024) && near(v.net_rx_bps, 0));

        /* a new QEMU: its counters start low; no negative or huge rate, then rates from there */
        report(m, "web-1", 2, STATS(100000000, 50, 0, 0, 0, 0), t0 + 3000);
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == 0);
        CHECK(v.cpu >= 0 && v.cpu <= 1 && v.disk_read_bps >= 0 && v.disk_read_bps <= 4096);
        CHECK(v.rss_bytes == 50);
        report(m, "web-1", 2, STATS(2100000000, 60, 512, 0, 0, 0), t0 + 4000);
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == 0 && near(v.cpu, 1.0) && near(v.disk_read_bps, 512));

        /* bad fields are ignored, the others still count */
        report(m, "web-1", 2, "{\"cpu_ns\":\"lots\",\"rss_bytes\":-3,\"block_rd_bytes\":1536,\"net_rx_bytes\":null}",
               t0 + 5000);
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == 0);
        CHECK(near(v.cpu, 1.0) && v.rss_bytes == 60 && near(v.disk_read_bps, 1024) && v.updated_ms == t0 + 5000);
        /* a report that is not an object, or for a bad name, changes nothing */
        report(m, "web-1", 2, "[1,2]", t0 + 6000);
        CHECK(oracle_metrics_vm_get(m, "web-1", &v) == 0 && v.updated_ms == t0 + 5000);
        report(m, "Bad Name", 2, STATS(0, 1, 0, 0, 0, 0), t0 + 6000);
        CHECK(oracle_metrics_vm_get(m, "Bad Name", &v) == -ENOENT);

        /* vcpus 0 counts as one */
        report(m, "web-2", 0, STATS(0, 1, 0, 0, 0, 0), t0);
        report(m, "web-2", 0, STATS(250000000, 1, 0, 0, 0, 0), t0 + 1000);
        CHECK(oracle_metrics_vm_get(m, "web-2", &v) == 0 && near(v.cpu, 0.25));
        oracle_metrics_vm_forget(m, "web-2");
        CHECK(oracle_metrics_vm_get(m, "web-2", &v) == -ENOENT);

        /* HAProxy's and the switching loop's figures for service web */
        lb_service_stats_t lbs = { .name = "web", .sessions = 7, .queue = 3, .request_rate = 120, .requests = 1000,
                                   .errors = 5, .response_ms = 12, .queue_ms = 4 };
        lb_service_stats_t junk = { .name = "No Good" };
        lb_service_stats_t both[] = { lbs, junk };
        lb_stats_t st = { .services = both, .n_services = 2 };
        oracle_metrics_lb_report(m, &st, t0 + 5000);
        oracle_metrics_service_load(m, "web", 1.5, 2, t0 + 5000);
        service_metrics_t sm = { 0 };
        CHECK(oracle_metrics_service_get(m, "web", &sm) == 0);
        CHECK(near(sm.request_rate, 120) && near(sm.queue, 3) && near(sm.sessions, 7) && near(sm.response_ms, 12));
        CHECK(near(sm.queue_ms, 4) && sm.requests == 1000 && sm.errors == 5);
        CHECK(near(sm.load, 1.5) && sm.active == 2 && sm.updated_ms == t0 + 5000);
        CHECK(oracle_metrics_service_get(m, "No Good", &sm) == -ENOENT);
        oracle_metrics_service_load(m, "old", 1, 1, t0);
        CHECK(oracle_metrics_service_get(m, "old", &sm) == 0);
        oracle_metrics_service_forget(m, "old");
        CHECK(oracle_metrics_service_get(m, "old", &sm) == -ENOENT);
        CHECK(oracle_metrics_service_get(m, "web", &sm) == 0);
        return t0 + 5000;
}

/* The samples of the reports above reach the store, at the wall-clock second of each. */
static void test_flush(oracle_metrics_t *m, store_t *s, int64_t t0, int64_t wall_t0_ms) {
        /* the reports' monotonic times were taken as if t0 was wall_t0_ms */
        int64_t wall_ms = wall_t0_ms + (time_now_ms() - t0);
        CHECK(oracle_metrics_flush(m, wall_ms) == 0);
        int64_t base = wall_t0_ms / 1000;
        json_t *p = NULL;
        CHECK(store_samples_get(s, "vm:web-1:cpu", 1, base - 10, base + 20, &p) == 0);
        /* rates at t0+1000 (0.5), t0+2000 (0.25), t0+4000 (1.0) */
        CHECK(json_array_size(p) == 3);
        CHECK(near(json_number_value(json_array_get(json_array_get(p, 0), 1)), 0.5));
        CHECK(near(json_number_value(json_array_get(json_array_get(p, 1), 1)), 0.25));
        CHECK(near(json_number_value(json_array_get(json_array_get(p, 2), 1)), 1.0));
        json_decref(p);
        CHECK(store_samples_get(s, "service:web:request_rate", 3600, base - 7200, base + 7200, &p) == 0);
        CHECK(json_array_size(p) == 1 && near(json_number_value(json_array_get(json_array_get(p, 0), 2)), 120));
        json_decref(p);
        /* flushed once: a second flush writes nothing more */
        CHECK(oracle_metrics_flush(m, wall_ms) == 0);
        CHECK(points_of(s, "vm:web-1:cpu", 1, base - 10, base + 20) == 3);
        CHECK(oracle_metrics_dropped(m) == 0);
}

/* A VM that serves nothing (in a chamber) keeps its latest figures at every report, but its
 * samples only once every ORACLE_METRICS_IDLE_SAMPLE_MS: 3 reports a second apart give one
 * sample of each series, one a period later a second; a serving VM samples every report. */
static void test_idle_samples(store_t *s, int64_t wall_t0_ms) {
        oracle_metrics_t *m = oracle_metrics_new(s);
        int64_t t0 = time_now_ms(), base = wall_t0_ms / 1000;
        const int64_t idle = ORACLE_METRICS_IDLE_SAMPLE_MS;
        const int64_t at[] = { 0, 1000, 2000, 3000, idle + 1000, idle + 2000 };
        for (size_t i = 0; i < ELEMENTSOF(at); i++) {
                char stats[256];
                snprintf(stats, sizeof stats, STATS(%lld, %lld, 0, 0, 0, 0), (long long)(i * 100000000),
                         (long long)(100 + i));
                json_t *j = json_loads(stats, 0, NULL);
                oracle_metrics_vm_report(m, "idle-1", false, 1, j, t0 + at[i]);
                oracle_metrics_vm_report(m, "busy-1", true, 1, j, t0 + at[i]);
                json_decref(j);
        }
        vm_metrics_t v = { 0 };
        CHECK(oracle_metrics_vm_get(m, "idle-1", &v) == 0 && v.rss_bytes == 105 && v.updated_ms == t0 + idle + 2000);
        CHECK(oracle_metrics_flush(m, wall_t0_ms + (time_now_ms() - t0)) == 0);
        int64_t to = base + idle / 1000 + 10;
        /* rss at the first report and at the first one a period later; busy-1 at every report */
        CHECK(points_of(s, "vm:idle-1:rss_bytes", 1, base - 10, to) == 2);
        CHECK(points_of(s, "vm:busy-1:rss_bytes", 1, base - 10, to) == 6);
        /* a rate needs two reports: idle-1's first sample has none, its second has one */
        CHECK(points_of(s, "vm:idle-1:cpu", 1, base - 10, to) == 1);
        CHECK(points_of(s, "vm:busy-1:cpu", 1, base - 10, to) == 5);
        oracle_metrics_free(m);
}

static void vm_put(store_t *s, const char *name, const char *state, const char *rm, const char *service) {
        vm_record_t v = { .version = 1, .memory_mib = 128, .vcpus = 2 };
        snprintf(v.name, sizeof v.name, "%s", name);
        snprintf(v.state, sizeof v.state, "%s", state);
        snprintf(v.rm, sizeof v.rm, "%s", rm);
        snprintf(v.service, sizeof v.service, "%s", service);
        snprintf(v.image, sizeof v.image, "tiny-http");
        snprintf(v.mac, sizeof v.mac, "52:54:00:00:00:01");
        v.bundle = json_pack("{s:{}}", "files");
        CHECK(store_vm_insert(s, &v) == 0);
        vm_record_clear(&v);
}

/* The value of the sample line that starts with prefix ("name{labels}"), NAN when none. */
static double prom_find(const char *text, const char *prefix) {
        size_t n = strlen(prefix);
        for (const char *line = text; line && *line;) {
                const char *end = strchr(line, '\n');
                if (strncmp(line, prefix, n) == 0 && line[n] == ' ') {
                        char *e = NULL;
                        double v = strtod(line + n + 1, &e);
                        return e && (*e == '\n' || !*e) ? v : NAN;
                }
                line = end ? end + 1 : NULL;
        }
        return NAN;
}

/* Every line is a comment or "name{...} number", and each sample's family had its TYPE first. */
static bool prom_well_formed(const char *text) {
        _cleanup_free_ char *copy = xstrdup(text);
        char types[64][64];
        size_t nt = 0;
        char *save = NULL;
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                if (str_startswith(line, "# TYPE ")) {
                        if (nt == ELEMENTSOF(types) || sscanf(line, "# TYPE %63s", types[nt]) != 1)
                                return false;
                        nt++;
                        continue;
                }
                if (line[0] == '#')
                        continue;
                char *space = strrchr(line, ' ');
                char *e = NULL;
                if (!space || (strtod(space + 1, &e), *e))
                        return false;
                size_t name_len = strcspn(line, "{ ");
                if (nt == 0 || strlen(types[nt - 1]) != name_len || strncmp(types[nt - 1], line, name_len) != 0)
                        return false;
        }
        return nt > 0;
}

static void test_prometheus(oracle_metrics_t *m, store_t *s, int64_t now_ms) {
        vm_put(s, "web-1", "active", "prod1", "web");
        vm_put(s, "web-2", "stored", "", "web");
        vm_put(s, "lone", "active", "prod2", "");
        rm_record_t rm = { .last_seen_ms = 1 };
        snprintf(rm.name, sizeof rm.name, "prod1");
        snprintf(rm.role, sizeof rm.role, "a\"b\\c"); /* to see the escaping */
        snprintf(rm.address, sizeof rm.address, "10.0.0.1:7001");
        snprintf(rm.state, sizeof rm.state, "up");
        CHECK(store_rm_upsert(s, &rm) == 0);
        snprintf(rm.name, sizeof rm.name, "prod2");
        snprintf(rm.role, sizeof rm.role, "production");
        snprintf(rm.state, sizeof rm.state, "down");
        CHECK(store_rm_upsert(s, &rm) == 0);
        service_record_t sv = { .pool = 2, .min = 1, .max = 2, .window_s = 5, .high = 70, .memory_mib = 128,
                                .vcpus = 2, .port = 8100, .created_ms = 1 };
        snprintf(sv.name, sizeof sv.name, "web");
        snprintf(sv.image, sizeof sv.image, "tiny-http");
        snprintf(sv.state, sizeof sv.state, "ready");
        CHECK(store_service_insert(s, &sv) == 0);
        snprintf(sv.name, sizeof sv.name, "idle");
        sv.port = 8101;
        CHECK(store_service_insert(s, &sv) == 0);

        _cleanup_free_ char *text = NULL;
        CHECK(oracle_metrics_prometheus(m, s, now_ms, &text) == 0 && text);
        if (!text)
                return;
        CHECK(prom_well_formed(text));
        CHECK(strstr(text, "# TYPE vmatrix_vm_cpu_ratio gauge\n") != NULL);
        CHECK(strstr(text, "# TYPE vmatrix_service_requests_total counter\n") != NULL);
        CHECK(near(prom_find(text, "vmatrix_vm_cpu_ratio{vm=\"web-1\",service=\"web\",rm=\"prod1\"}"), 1.0));
        CHECK(near(prom_find(text, "vmatrix_vm_resident_bytes{vm=\"web-1\",service=\"web\",rm=\"prod1\"}"), 60));
        CHECK(near(prom_find(text, "vmatrix_vm_disk_read_bytes_per_second{vm=\"web-1\",service=\"web\",rm=\"prod1\"}"),
                   1024));
        CHECK(isnan(prom_find(text, "vmatrix_vm_cpu_ratio{vm=\"web-2\",service=\"web\",rm=\"\"}"))); /* no report */
        CHECK(near(prom_find(text, "vmatrix_service_requests_per_second{service=\"web\"}"), 120));
        CHECK(near(prom_find(text, "vmatrix_service_response_seconds{service=\"web\"}"), 0.012));
        CHECK(near(prom_find(text, "vmatrix_service_requests_total{service=\"web\"}"), 1000));
        CHECK(near(prom_find(text, "vmatrix_service_errors_total{service=\"web\"}"), 5));
        CHECK(near(prom_find(text, "vmatrix_service_load{service=\"web\"}"), 1.5));
        CHECK(near(prom_find(text, "vmatrix_service_active_vms{service=\"web\"}"), 2));
        CHECK(near(prom_find(text, "vmatrix_service_pool_vms{service=\"web\"}"), 2));
        /* a service without reports: only what the store knows */
        CHECK(isnan(prom_find(text, "vmatrix_service_load{service=\"idle\"}")));
        CHECK(near(prom_find(text, "vmatrix_service_pool_vms{service=\"idle\"}"), 0));
        CHECK(near(prom_find(text, "vmatrix_rm_up{rm=\"prod1\",role=\"a\\\"b\\\\c\"}"), 1));
        CHECK(near(prom_find(text, "vmatrix_rm_up{rm=\"prod2\",role=\"production\"}"), 0));
        CHECK(near(prom_find(text, "vmatrix_vms{state=\"active\"}"), 2));
        CHECK(near(prom_find(text, "vmatrix_vms{state=\"stored\"}"), 1));

        /* reports older than ORACLE_METRICS_STALE_MS are left out */
        free(text);
        text = NULL;
        CHECK(oracle_metrics_prometheus(m, s, now_ms + ORACLE_METRICS_STALE_MS + 1, &text) == 0 && text);
        CHECK(text && prom_well_formed(text));
        CHECK(text && strstr(text, "vmatrix_vm_cpu_ratio{") == NULL);
        CHECK(text && isnan(prom_find(text, "vmatrix_service_requests_per_second{service=\"web\"}")));
        CHECK(text && near(prom_find(text, "vmatrix_service_active_vms{service=\"web\"}"), 1)); /* from the store */

        /* no metrics object yet: the store's part still comes */
        free(text);
        text = NULL;
        CHECK(oracle_metrics_prometheus(NULL, s, now_ms, &text) == 0 && text && prom_well_formed(text));
}

static void test_query(store_t *s, int64_t now_s) {
        const store_sample_t in[] = { { "service:api:queue", now_s - 30, 4 }, { "service:api:queue", now_s - 7200, 9 } };
        CHECK(store_samples_add(s, in, 2) == 0);
        json_t *j = NULL;
        char *msg = NULL;
#define BAD(series, res, since, until)                                                                   \
        do {                                                                                             \
                CHECK(oracle_metrics_query(s, series, res, since, until, now_s, &j, &msg) == -EINVAL); \
                CHECK(msg && *msg);                                                                      \
                free(msg);                                                                               \
                msg = NULL;                                                                              \
        } while (0)
        BAD(NULL, "1", NULL, NULL);
        BAD("", "1", NULL, NULL);
        BAD("vm:web-1:bogus", "1", NULL, NULL);
        BAD("vm:Web:cpu", "1", NULL, NULL);
        BAD("disk:web:cpu", "1", NULL, NULL);
        BAD("vm:web-1", "1", NULL, NULL);
        BAD("service:api:queue", NULL, NULL, NULL);
        BAD("service:api:queue", "5", NULL, NULL);
        BAD("service:api:queue", "1x", NULL, NULL);
        BAD("service:api:queue", "60", "yesterday", NULL);
        BAD("service:api:queue", "60", "-5", NULL);
        BAD("service:api:queue", "60", "100", "50");
        BAD("service:api:queue", "60", NULL, "soon");
#undef BAD
        CHECK(oracle_metrics_series_is_valid("vm:web-1:net_tx_bps"));
        CHECK(oracle_metrics_series_is_valid("service:web:active"));
        CHECK(!oracle_metrics_series_is_valid("service:web:cpu"));
        CHECK(!oracle_metrics_series_is_valid("vm::cpu"));

        /* the default span of res 1 is the last hour: the sample of two hours ago is not in it */
        CHECK(oracle_metrics_query(s, "service:api:queue", "1", NULL, NULL, now_s, &j, &msg) == 0 && j);
        CHECK_STREQ(json_string_value(json_object_get(j, "series")), "service:api:queue");
        CHECK(json_integer_value(json_object_get(j, "res")) == 1);
        CHECK(json_array_size(json_object_get(j, "points")) == 1);
        CHECK(point_is(json_object_get(j, "points"), 0, now_s - 30, 4, 4));
        json_decref(j);
        j = NULL;
        /* res 60 looks back a day */
        CHECK(oracle_metrics_query(s, "service:api:queue", "60", NULL, NULL, now_s, &j, &msg) == 0 && j);
        CHECK(json_array_size(json_object_get(j, "points")) == 2);
        json_decref(j);
        j = NULL;
        /* an explicit window */
        _cleanup_free_ char *since = xasprintf("%lld", (long long)(now_s - 7300));
        _cleanup_free_ char *until = xasprintf("%lld", (long long)(now_s - 7000));
        CHECK(oracle_metrics_query(s, "service:api:queue", "1", since, until, now_s, &j, &msg) == 0 && j);
        CHECK(point_is(json_object_get(j, "points"), 0, now_s - 7200, 9, 9));
        json_decref(j);
        CHECK(msg == NULL);
}

static void test_top(oracle_metrics_t *m, store_t *s, int64_t now_ms) {
        json_t *j = NULL;
        CHECK(oracle_metrics_service_top(m, s, "0.0.0.0:7000", "nope", now_ms, &j) == -ENOENT);
        CHECK(oracle_metrics_service_top(m, s, "0.0.0.0:7000", "web", now_ms, &j) == 0 && j);
        if (!j)
                return;
        const json_t *sv = json_object_get(j, "service");
        CHECK_STREQ(json_string_value(json_object_get(sv, "name")), "web");
        CHECK_STREQ(json_string_value(json_object_get(sv, "endpoint")), "127.0.0.1:8100");
        CHECK_STREQ(json_string_value(json_object_get(sv, "state")), "ready");
        CHECK(json_integer_value(json_object_get(sv, "pool")) == 2);
        CHECK(json_integer_value(json_object_get(sv, "min")) == 1 && json_integer_value(json_object_get(sv, "max")) == 2);
        CHECK(json_integer_value(json_object_get(sv, "active")) == 2);
        CHECK(near(json_number_value(json_object_get(sv, "load")), 1.5));
        CHECK(near(json_number_value(json_object_get(sv, "request_rate")), 120));
        CHECK(json_integer_value(json_object_get(sv, "requests")) == 1000);
        const json_t *vms = json_object_get(j, "vms");
        CHECK(json_array_size(vms) == 2); /* "lone" has no service */
        const json_t *w1 = json_array_get(vms, 0), *w2 = json_array_get(vms, 1);
        CHECK_STREQ(json_string_value(json_object_get(w1, "name")), "web-1");
        CHECK_STREQ(json_string_value(json_object_get(w1, "rm")), "prod1");
        CHECK(near(json_number_value(json_object_get(w1, "cpu")), 1.0));
        CHECK(json_integer_value(json_object_get(w1, "rss_bytes")) == 60);
        CHECK_STREQ(json_string_value(json_object_get(w2, "name")), "web-2");
        CHECK(json_is_null(json_object_get(w2, "rm")) && json_is_null(json_object_get(w2, "cpu")));
        json_decref(j);

        /* no fresh reports: nulls for the figures, the store's active count */
        CHECK(oracle_metrics_service_top(m, s, "10.1.2.3:7000", "web", now_ms + ORACLE_METRICS_STALE_MS + 1, &j) == 0);
        sv = json_object_get(j, "service");
        CHECK_STREQ(json_string_value(json_object_get(sv, "endpoint")), "10.1.2.3:8100");
        CHECK(json_is_null(json_object_get(sv, "load")) && json_is_null(json_object_get(sv, "request_rate")));
        CHECK(json_integer_value(json_object_get(sv, "active")) == 1);
        CHECK(json_is_null(json_object_get(json_array_get(json_object_get(j, "vms"), 0), "cpu")));
        json_decref(j);
}

/* GET /v1/services as the services API may answer it: an object with a list, one of whose
 * services is gone by the time its top is asked. */
static void h_fake_services(const http_request_t *req, http_reply_t *reply) {
        http_reply_json(reply, 200,
                        json_pack("{s:[{s:s},{s:s},{s:s}]}", "services", "name", "gone", "name", "idle", "name", "web"));
}

/* Runs `service top ARGS...` (options as given, no parsing) on the Oracle at url; out and err
 * are malloc'd. */
static int run_top(const char *url, const char *name, bool json, char **out, char **err) {
        size_t no = 0, ne = 0;
        cli_t c = { .json = json };
        c.out = open_memstream(out, &no);
        c.err = open_memstream(err, &ne);
        c.oracle = xstrdup(url);
        if (name)
                c.args.positional[c.args.n_positional++] = name;
        c.args.given[c.args.n_given].option = &service_top_options[0]; /* --once */
        c.args.given[c.args.n_given++].value = "";
        int r = cmd_service_top(&c);
        fclose(c.out);
        fclose(c.err);
        free(c.oracle);
        return r;
}

static void test_http(oracle_metrics_t *m, store_t *s) {
        http_route_t routes[8] = { { "GET", "/v1/services", h_fake_services } };
        size_t n = 1;
        for (const http_route_t *r = oracle_metrics_routes; r->method && n < ELEMENTSOF(routes) - 1; r++)
                routes[n++] = *r;
        oracle_t o = { .store = s, .metrics = m };
        http_server_t *srv = NULL;
        int port;
        for (port = 23500; port < 23600 && !srv; port++) {
                free(o.listen);
                o.listen = xasprintf("127.0.0.1:%d", port);
                if (http_server_start(&(http_server_params_t){ .listen = o.listen, .routes = routes, .upload_dir = NULL, .userdata = &o }, &srv) < 0)
                        srv = NULL;
        }
        CHECK(srv != NULL);
        if (!srv) {
                free(o.listen);
                return;
        }
        _cleanup_free_ char *url = xasprintf("http://%s", o.listen);

        http_response_t resp = { 0 };
        _cleanup_free_ char *prom = xasprintf("%s/metrics", url);
        CHECK(http_request_json("GET", prom, NULL, 5000, &resp) == 0 && resp.status == 200);
        CHECK(resp.body && str_startswith(resp.body, "# HELP vmatrix_vm_cpu_ratio "));
        http_response_clear(&resp);
        _cleanup_free_ char *bad = xasprintf("%s/v1/metrics?series=vm:web-1:bogus&res=1", url);
        CHECK(http_request_json("GET", bad, NULL, 5000, &resp) == 0 && resp.status == 400);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(resp.json, "error"), "code")), "invalid");
        http_response_clear(&resp);
        _cleanup_free_ char *good = xasprintf("%s/v1/metrics?series=service:api:queue&res=3600&since=0", url);
        CHECK(http_request_json("GET", good, NULL, 5000, &resp) == 0 && resp.status == 200);
        CHECK(json_array_size(json_object_get(resp.json, "points")) == 2); /* the two of test_query, two hours apart */
        http_response_clear(&resp);
        _cleanup_free_ char *nope = xasprintf("%s/v1/services/nope/top", url);
        CHECK(http_request_json("GET", nope, NULL, 5000, &resp) == 0 && resp.status == 404);
        http_response_clear(&resp);

        /* service top web --once: the service line and a row per VM, "-" without figures */
        char *out = NULL, *err = NULL;
        CHECK(run_top(url, "web", false, &out, &err) == CLI_OK);
        _cleanup_free_ char *line = xasprintf("web (ready)  active 2/2  load 1.50  120.0 req/s  queue 3  response 12 ms  "
                                              "127.0.0.1:8100\n");
        CHECK(out && str_startswith(out, line));
        CHECK(out && strstr(out, "VM ") && strstr(out, "CPU%"));
        CHECK(out && strstr(out, "web-1  active  prod1  100.0"));
        CHECK(out && strstr(out, "web-2  stored  -      -"));
        CHECK_STREQ(err, "");
        free(out);
        free(err);

        /* every service, as JSON: the one that is gone is left out */
        CHECK(run_top(url, NULL, true, &out, &err) == CLI_OK);
        json_t *j = out ? json_loads(out, 0, NULL) : NULL;
        CHECK(json_array_size(j) == 2);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(json_array_get(j, 0), "service"), "name")), "idle");
        CHECK(json_array_size(json_object_get(json_array_get(j, 1), "vms")) == 2);
        json_decref(j);
        free(out);
        free(err);

        /* an unknown service: the API's message, exit 1 */
        CHECK(run_top(url, "nope", false, &out, &err) == CLI_FAIL);
        CHECK_STREQ(err, "vmatrix: no service \"nope\"\n");
        free(out);
        free(err);

        http_server_stop(srv);
        free(o.listen);
}

int main(void) {
        char dir[] = "/tmp/vmx-test-metrics-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = xasprintf("%s/state.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0);
        if (!s)
                return tap_finish();
        test_samples(s);

        oracle_metrics_t *m = oracle_metrics_new(s);
        int64_t t0 = time_now_ms();
        int64_t wall_t0_ms = 1700000000500; /* mid-second, so clock jitter cannot move a sample */
        int64_t last = test_rates(m, t0);
        test_flush(m, s, t0, wall_t0_ms);
        test_prometheus(m, s, last);
        test_query(s, 1700000000);
        test_top(m, s, last);
        test_http(m, s);
        oracle_metrics_free(m);
        test_idle_samples(s, 1800000000500);
        CHECK(oracle_metrics_free(NULL) == NULL);

        store_close(s);
        rm_rf(dir);
        return tap_finish();
}
