/* Unit tests for the Oracle's service API (src/oracle/oracle-services.c, oracle-health.c), over
 * HTTP against a real store: a service's health check is refused with 400 and nothing made when
 * it is bad, stored and shown when it is good; the pool's probe says up exactly when HAProxy
 * would (2xx/3xx of the path, or an accepted connection); the switching round's aggregate of a
 * synthetic 100,000-VM snapshot has the right counts and candidate order (its time printed). */
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "net/http-client.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-switch.h"
#include "store/store-view.h"
#include "tap.h"

typedef struct api {
        char *url;
        http_response_t resp;
} api_t;

/* POST /v1/services with the body text; the answer's status (0 when none). */
static long create(api_t *a, const char *body_text) {
        http_response_clear(&a->resp);
        a->resp = (http_response_t){ 0 };
        json_t *body = json_loads(body_text, 0, NULL);
        if (!body) {
                fprintf(stderr, "  bad canned JSON: %s\n", body_text);
                return 0;
        }
        _cleanup_free_ char *url = xasprintf("%s/v1/services", a->url);
        int r = http_request_json("POST", url, body, 5000, &a->resp);
        json_decref(body);
        return r < 0 ? 0 : a->resp.status;
}

static const char *error_message(const api_t *a) {
        return json_string_value(json_object_get(json_object_get(a->resp.json, "error"), "message")) ?: "";
}

#define BASE "\"image\":\"tiny-http\",\"pool\":1,\"min\":0,\"max\":1"

static void test_create(api_t *a, store_t *s) {
        /* bad health checks: 400, a message that names the problem, nothing made */
        static const struct {
                const char *body, *message;
        } bad[] = {
                { "{\"name\":\"web\"," BASE ",\"health\":\"tcp\"}", "health must be an object" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"kind\":\"udp\"}}", "health.kind must be" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"kind\":7}}", "health.kind must be" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"kind\":\"tcp\",\"path\":\"/x\"}}", "tcp health check has no path" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"path\":\"health\"}}", "health.path must start with '/'" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"path\":\"/a b\"}}", "health.path" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"path\":\"/x\\n    server evil 10.0.0.1:80\"}}", "health.path" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"path\":\"/\\\"quoted\\\"\"}}", "health.path" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"path\":3}}", "health.path" },
                { "{\"name\":\"web\"," BASE ",\"health\":{\"paht\":\"/\"}}", "no field \"paht\"" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                long status = create(a, bad[i].body);
                bool ok = status == 400 && strstr(error_message(a), bad[i].message);
                CHECK(ok);
                if (!ok)
                        fprintf(stderr, "  %s: %ld \"%s\", wanted 400 \"%s\"\n", bad[i].body, status, error_message(a),
                                bad[i].message);
        }
        char longest[LB_HEALTH_PATH_MAX + 2];
        memset(longest, 'a', sizeof longest);
        longest[0] = '/';
        longest[LB_HEALTH_PATH_MAX + 1] = 0;
        _cleanup_free_ char *too_long = xasprintf("{\"name\":\"web\"," BASE ",\"health\":{\"path\":\"%s\"}}", longest);
        CHECK(create(a, too_long) == 400);
        service_record_t *svs = NULL;
        vm_record_t *vms = NULL;
        size_t ns = 1, nv = 1;
        CHECK(store_service_list(s, &svs, &ns) == 0 && ns == 0);
        CHECK(store_vm_list(s, &vms, &nv) == 0 && nv == 0);
        free(svs);
        store_vm_list_free(vms, nv);

        /* good ones: stored, and shown in the answer as "health" */
        CHECK(create(a, "{\"name\":\"tcp\"," BASE ",\"health\":{\"kind\":\"tcp\"}}") == 201);
        json_t *h = json_object_get(a->resp.json, "health");
        CHECK(json_object_size(h) == 1 && streq(json_string_value(json_object_get(h, "kind")) ?: "", "tcp"));
        CHECK(create(a, "{\"name\":\"dflt\"," BASE "}") == 201);
        h = json_object_get(a->resp.json, "health");
        CHECK_STREQ(json_string_value(json_object_get(h, "kind")), "http");
        CHECK_STREQ(json_string_value(json_object_get(h, "path")), "/health");
        /* the longest path there may be, with every kind of character allowed */
        longest[LB_HEALTH_PATH_MAX] = 0;
        memcpy(longest, "/-._~%!&()*+,;=:@/?", 19);
        _cleanup_free_ char *root = xasprintf("{\"name\":\"root\"," BASE ",\"health\":{\"kind\":\"http\",\"path\":\"%s\"}}", longest);
        CHECK(create(a, root) == 201);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(a->resp.json, "health"), "path")), longest);

        service_record_t sv = { 0 };
        CHECK(store_service_get(s, "tcp", &sv) == 0 && streq(sv.health_kind, "tcp") && !*sv.health_path);
        CHECK(oracle_service_health_kind(&sv) == LB_HEALTH_TCP);
        _cleanup_free_ char *text = oracle_service_health_text(&sv);
        CHECK_STREQ(text, "TCP connect");
        CHECK(store_service_get(s, "root", &sv) == 0 && streq(sv.health_kind, "http") && streq(sv.health_path, longest));
        CHECK(oracle_service_health_kind(&sv) == LB_HEALTH_HTTP);
        CHECK_STREQ(oracle_service_health_path(&sv), longest);

        /* GET shows the same */
        _cleanup_free_ char *url = xasprintf("%s/v1/services/tcp", a->url);
        http_response_clear(&a->resp);
        a->resp = (http_response_t){ 0 };
        CHECK(http_request_json("GET", url, NULL, 5000, &a->resp) == 0 && a->resp.status == 200);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(a->resp.json, "health"), "kind")), "tcp");
}

static void h_ok(const http_request_t *req, http_reply_t *reply) { http_reply_json(reply, 200, json_object()); }

/* The pool's probe against a server that answers /ok and nothing else. */
static void test_probe(void) {
        static const http_route_t routes[] = { { "GET", "/ok", h_ok }, { NULL } };
        http_server_t *srv = NULL;
        _cleanup_free_ char *addr = NULL;
        for (int port = 23700; port < 23800 && !srv; port++) {
                free(addr);
                addr = xasprintf("127.0.0.1:%d", port);
                if (http_server_start(&(http_server_params_t){ .listen = addr, .routes = routes, .upload_dir = NULL, .userdata = NULL }, &srv) < 0)
                        srv = NULL;
        }
        CHECK(srv != NULL);
        if (!srv)
                return;
        service_record_t sv = { 0 };
        SET(sv.health_kind, "http");
        SET(sv.health_path, "/ok");
        CHECK(oracle_service_health_probe(&sv, addr, 2000));
        SET(sv.health_path, "/missing");
        CHECK(!oracle_service_health_probe(&sv, addr, 2000)); /* 404 */
        SET(sv.health_kind, "tcp");
        SET(sv.health_path, "");
        CHECK(oracle_service_health_probe(&sv, addr, 2000));
        http_server_stop(srv);
        CHECK(!oracle_service_health_probe(&sv, addr, 2000)); /* refused */
        SET(sv.health_kind, "http");
        CHECK(!oracle_service_health_probe(&sv, addr, 2000));
}

#define AGG_SERVICES 10
#define AGG_PER_SERVICE 10000

static double ms_since(const struct timespec *t0) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* 100,000 VMs in 10 services, in a shuffled order: per service, by the last digit of its number,
 * 0 active on its own RM, 1 activating, 2 deactivating (with an address), 3 failed, 4..8
 * stored and pre-booted (the activation candidates), 9 stored and pre-booted with an op
 * running. 50 production RMs hold nothing, one more holds a VM. */
static void test_aggregate_100k(void) {
        size_t nv = AGG_SERVICES * AGG_PER_SERVICE;
        store_view_vm_t *vms = xcalloc(nv, sizeof *vms);
        size_t *order = xcalloc(nv, sizeof *order);
        for (size_t i = 0; i < nv; i++)
                order[i] = i;
        srand(7);
        for (size_t i = nv - 1; i > 0; i--) {
                size_t j = (size_t)rand() % (i + 1), t = order[i];
                order[i] = order[j];
                order[j] = t;
        }
        for (size_t i = 0; i < nv; i++) {
                size_t at = order[i], svc = at / AGG_PER_SERVICE, k = at % AGG_PER_SERVICE;
                store_view_vm_t *v = &vms[i];
                snprintf(v->name, sizeof v->name, "s%zu-%05zu", svc, k);
                snprintf(v->service, sizeof v->service, "svc%zu", svc);
                v->version = 1;
                v->prebooted = true;
                static const char *const states[] = { "active", "activating", "deactivating", "failed" };
                SET(v->state, k % 10 < 4 ? states[k % 10] : "stored");
                if (k % 10 == 0)
                        snprintf(v->rm, sizeof v->rm, "rm-%zu-%zu", svc, k);
                if (k % 10 <= 2)
                        snprintf(v->address, sizeof v->address, "10.0.%zu.%zu:80", svc, k % 250);
                if (k % 10 == 9)
                        snprintf(v->op_id, sizeof v->op_id, "op-%zu", at);
        }
        rm_record_t rms[52] = { 0 };
        for (size_t i = 0; i < ELEMENTSOF(rms); i++) {
                snprintf(rms[i].name, sizeof rms[i].name, i < 50 ? "free-%02zu" : "busy-%zu", i);
                SET(rms[i].role, "production");
                SET(rms[i].state, "up");
        }
        SET(rms[51].state, "down");
        SET(vms[0].rm, rms[50].name); /* busy-50 holds a VM */
        service_record_t svs[AGG_SERVICES] = { 0 };
        for (size_t k = 0; k < AGG_SERVICES; k++) {
                snprintf(svs[k].name, sizeof svs[k].name, "svc%zu", k);
                SET(svs[k].state, "ready");
        }
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        store_view_snap_t *snap = store_view_snap_build(vms, nv, rms, ELEMENTSOF(rms));
        double build_ms = ms_since(&t0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        switch_agg_t agg;
        oracle_switch_aggregate(snap, svs, AGG_SERVICES, NULL, 0, &agg);
        double agg_ms = ms_since(&t0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        size_t nc = 0;
        const store_view_vm_t *const *cand = oracle_switch_agg_candidates(&agg, 3, &nc);
        double cand_ms = ms_since(&t0);
        bool counts = true, sorted = true;
        for (size_t k = 0; k < AGG_SERVICES; k++) {
                const switch_svc_agg_t *s = &agg.svcs[k];
                counts &= s->active == AGG_PER_SERVICE / 10 && s->activating == AGG_PER_SERVICE / 10 &&
                          s->draining == AGG_PER_SERVICE / 10 && s->n_failed == AGG_PER_SERVICE / 10 &&
                          s->n_active == AGG_PER_SERVICE / 10 && s->n_servers == 2 * AGG_PER_SERVICE / 10 &&
                          s->n_candidates == 5 * AGG_PER_SERVICE / 10;
                for (size_t i = 1; i < s->n_active; i++)
                        sorted &= strcmp(s->active_vms[i - 1]->name, s->active_vms[i]->name) < 0;
                for (size_t i = 1; i < s->n_servers; i++)
                        sorted &= strcmp(s->servers[i - 1]->name, s->servers[i]->name) < 0;
                for (size_t i = 1; i < s->n_failed; i++)
                        sorted &= strcmp(s->failed[i - 1]->name, s->failed[i]->name) < 0;
        }
        CHECK(counts);
        CHECK(sorted);
        /* the lowest-named candidates first: s3-00004, s3-00005, ..., s3-00008, s3-00014 */
        CHECK(nc == 5 * AGG_PER_SERVICE / 10 && streq(cand[0]->name, "s3-00004") && streq(cand[4]->name, "s3-00008") &&
              streq(cand[5]->name, "s3-00014"));
        bool cand_sorted = true, cand_ok = true;
        for (size_t i = 0; i < nc; i++) {
                cand_sorted &= i == 0 || strcmp(cand[i - 1]->name, cand[i]->name) < 0;
                cand_ok &= streq(cand[i]->service, "svc3") && streq(cand[i]->state, "stored") && !*cand[i]->op_id;
        }
        CHECK(cand_sorted && cand_ok);
        CHECK(oracle_switch_free_rms(NULL, snap) == 50);
        CHECK(oracle_switch_agg_find(&agg, "svc9") == 9 && oracle_switch_agg_find(&agg, "nope") == -1);
        fprintf(stderr, "  100,000 VMs: snapshot built in %.1f ms, aggregated in %.1f ms, one service's 5,000 "
                        "candidates sorted in %.1f ms\n",
                build_ms, agg_ms, cand_ms);
        oracle_switch_agg_clear(&agg);
        store_view_release(snap);
        free(order);
        free(vms);
}

int main(void) {
        char dir[] = "/tmp/vmx-test-oracle-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = xasprintf("%s/state.db", dir);
        store_t *s = NULL;
        CHECK(store_open(path, &s) == 0);
        if (!s)
                return tap_finish();
        image_record_t img = { .created_ms = 1 };
        SET(img.name, "tiny-http");
        SET(img.kind, "kernel");
        img.meta = json_pack("{s:s,s:i}", "boot", "kernel", "disk_size_mib", 64);
        CHECK(store_image_put(s, &img) == 0);
        image_record_clear(&img);

        oracle_t o = { .store = s, .nest = dir };
        http_server_t *srv = NULL;
        for (int port = 23600; port < 23700 && !srv; port++) {
                free(o.listen);
                o.listen = xasprintf("127.0.0.1:%d", port);
                if (http_server_start(&(http_server_params_t){ .listen = o.listen, .routes = oracle_service_routes, .upload_dir = NULL, .userdata = &o }, &srv) < 0)
                        srv = NULL;
        }
        CHECK(srv != NULL);
        if (srv) {
                api_t a = { .url = xasprintf("http://%s", o.listen) };
                test_create(&a, s);
                http_response_clear(&a.resp);
                free(a.url);
                http_server_stop(srv);
        }
        test_probe();
        test_aggregate_100k();
        free(o.listen);
        store_close(s);
        rm_rf(dir);
        return tap_finish();
}
