/* bench/heartbeat-handler.c: what one heartbeat costs the Oracle in process, with N VMs stored,
 * side by side (issue 14's soft state):
 *   now     oracle_heartbeat() on an unchanged heartbeat of rm1 that reports 10 running VMs with
 *           their stats, the node channel's verified certificate in req->principal as the
 *           authorizer leaves it (no TLS, no HTTP, no JSON parse: the handler alone);
 *   before  the store work the handler did per heartbeat until the store view: one RM upsert
 *           (an autocommit, WAL with synchronous=FULL), two full VM lists and the running ops;
 *   and the cost of one store view snapshot (what a switching round copies).
 * Usage: bench-heartbeat-handler [VMS (1000)] [ITERATIONS (1000)]; the store goes under TMPDIR
 * (/tmp): on tmpfs its fsyncs cost nothing. Prints p50 and p99; never passes or fails on time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-liveness.h"
#include "store/store-view.h"
#include "tls/tls-identity.h"

static double now_ms(void) {
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int double_cmp(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

static void report(const char *what, double *t, int n) {
        qsort(t, (size_t)n, sizeof *t, double_cmp);
        printf("%-52s p50 %9.3f ms   p99 %9.3f ms\n", what, t[n / 2], t[(n - 1) * 99 / 100]);
}

/* nvms VMs, the first 10 active on rm1; the heartbeat that reports those 10 into *ret_body. */
static void fill(store_t *s, int nvms, json_t **ret_body) {
        json_t *reported = json_array();
        store_tx_begin(s);
        for (int i = 0; i < nvms; i++) {
                vm_record_t v = { .version = 1, .memory_mib = 128, .vcpus = 1 };
                snprintf(v.name, sizeof v.name, "vm%06d", i);
                SET(v.state, i < 10 ? "active" : "stored");
                SET(v.image, "tiny-http");
                if (i < 10) {
                        SET(v.rm, "rm1");
                        json_array_append_new(reported, json_pack("{s:s,s:i,s:s,s:{s:I,s:I}}", "name", v.name, "version",
                                                                  1, "state", "running", "stats", "cpu_ns",
                                                                  (json_int_t)1000 * i, "rss_bytes", (json_int_t)1 << 20));
                }
                v.bundle = json_pack("{s:{s:{s:s,s:i}}}", "files", "memory", "digest", "00", "size", 1000);
                store_vm_insert(s, &v);
                vm_record_clear(&v);
        }
        store_tx_commit(s);
        *ret_body = json_pack("{s:s,s:s,s:o,s:[]}", "role", "production", "address", "127.0.0.1:7001", "vms", reported,
                              "snapshots");
}

int main(int argc, char **argv) {
        int nvms = argc > 1 ? atoi(argv[1]) : 1000, iters = argc > 2 ? atoi(argv[2]) : 1000;
        if (nvms < 10 || iters < 1) {
                fprintf(stderr, "usage: bench-heartbeat-handler [VMS >= 10] [ITERATIONS >= 1]\n");
                return 2;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        const char *tmp = getenv("TMPDIR");
        _cleanup_free_ char *dir = xasprintf("%s/vmx-bench-heartbeat-XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
                return 1;
        _cleanup_free_ char *path = xasprintf("%s/state.db", dir);
        oracle_t o = { 0 };
        if (store_open(path, &o.store) < 0)
                return 1;
        pthread_mutex_init(&o.strays_lock, NULL);
        pthread_mutex_init(&o.tls.lock, NULL);
        o.liveness = oracle_liveness_new(time_now_ms());
        o.metrics = oracle_metrics_new(o.store);
        o.tls.certs = json_pack("{s:{s:s,s:s,s:s}}", "rm1", "serial", "ab", "role", "production", "provider", "");
        rm_record_t rm = { .name = "rm1", .role = "production", .address = "127.0.0.1:7001", .state = "up" };
        store_rm_upsert(o.store, &rm);
        json_t *body = NULL;
        fill(o.store, nvms, &body);
        tls_peer_t peer = { .cn = "rm1", .ou = "node", .serial = "ab" };
        double *t = xcalloc((size_t)iters, sizeof *t);
        size_t leases = 0;
        for (int i = 0; i < iters; i++) {
                http_request_t req = { .method = "POST", .path = "/v1/rms/rm1/heartbeat", .params = { "rm1" },
                                       .body = body, .userdata = &o, .principal = &peer };
                http_reply_t reply = { 0 };
                double t0 = now_ms();
                oracle_heartbeat(&req, &reply);
                t[i] = now_ms() - t0;
                if (reply.status != 200) {
                        fprintf(stderr, "the heartbeat was answered %d\n", reply.status);
                        return 1;
                }
                leases = json_object_size(json_object_get(reply.json, "leases"));
                json_decref(reply.json);
        }
        printf("%d VMs stored, 10 of them on the RM (%zu leases in the answer), %d heartbeats\n", nvms, leases, iters);
        report("now: oracle_heartbeat, unchanged heartbeat", t, iters);
        for (int i = 0; i < iters; i++) {
                double t0 = now_ms();
                rm.last_seen_ms = time_wall_ms();
                store_rm_upsert(o.store, &rm);
                vm_record_t *l = NULL;
                size_t n = 0;
                for (int k = 0; k < 2; k++) {
                        if (store_vm_list(o.store, &l, &n) >= 0)
                                store_vm_list_free(l, n);
                }
                op_record_t *ops = NULL;
                if (store_op_list_running(o.store, &ops, &n) >= 0)
                        store_op_list_free(ops, n);
                t[i] = now_ms() - t0;
        }
        report("before: its store work (upsert, 2 VM lists, ops)", t, iters);
        int snaps = iters < 50 ? iters : 50;
        for (int i = 0; i < snaps; i++) {
                store_rm_upsert(o.store, &rm); /* a change: the next snapshot is a new copy */
                double t0 = now_ms();
                store_view_release(store_view_snapshot(o.store));
                t[i] = now_ms() - t0;
        }
        report("a store view snapshot (a switching round's copy)", t, snaps);
        free(t);
        json_decref(body);
        json_decref(o.tls.certs);
        json_decref(o.strays);
        json_decref(o.missing);
        json_decref(o.snapshots);
        json_decref(o.rm_view);
        o.metrics = oracle_metrics_free(o.metrics);
        o.liveness = oracle_liveness_free(o.liveness);
        store_close(o.store);
        rm_rf(dir);
        return 0;
}
