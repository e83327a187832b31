/* The Oracle's HTTP API for the CLI (docs/api.md). Handlers validate, read the store and
 * start operations; none of them waits for a VM: long work runs in oracle-ops.c. */
#include <string.h>

#include "auth/roles.h"
#include "base/util.h"
#include "bundle/bundle.h"
#include "model/lifecycle.h"
#include "net/http-client.h"
#include "net/stream.h"
#include "oracle/oracle-internal.h"
#include "oracle/oracle-switch.h"

/* ok, and the Oracle's own view of its liveness: whether it holds fencing for an isolation and
 * the stalls it measured (oracle-liveness.h). */
static void h_health(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        int64_t stalls = 0, longest = 0;
        oracle_liveness_stalls(o->liveness, &stalls, &longest);
        http_reply_json(reply, 200, json_pack("{s:b,s:b,s:I,s:I,s:o,s:o}", "ok", 1, "isolated",
                                              oracle_liveness_isolated(o->liveness), "stalls", (json_int_t)stalls,
                                              "longest_stall_ms", (json_int_t)longest, "node_channel",
                                              oracle_tls_channel_json(o), "switch_round_ms",
                                              oracle_switch_round_json(o)));
}

static void h_rm_fence(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        _cleanup_free_ char *msg = NULL;
        int r = oracle_rm_fence(o, req->params[0], &msg);
        if (r < 0) {
                http_reply_errno(reply, r == -EALREADY ? -EPERM : r, "%s", msg);
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:s,s:s}", "name", req->params[0], "state", "down"));
}

static void h_rms(const http_request_t *req, http_reply_t *reply) {
        size_t limit = 0;
        const char *after = NULL;
        if (oracle_page_args(req, reply, &limit, &after) >= 0)
                oracle_rms_page(req, reply, limit, after ? after : "");
}

static void h_images(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        json_t *arr = NULL;
        if (store_image_list(o->store, &arr) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        http_reply_json(reply, 200, arr);
}

static void h_image_create(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = json_string_value(json_object_get(req->body, "name"));
        const char *builtin = json_string_value(json_object_get(req->body, "builtin"));
        if (!name || !name_is_valid(name)) {
                http_reply_error(reply, 400, "invalid", "an image needs a valid name (a-z, 0-9 and -)");
                return;
        }
        if (!builtin) {
                http_reply_error(reply, 400, "invalid",
                                 "POST /v1/images builds a built-in image (\"builtin\": \"tiny-http\"); "
                                 "import a disk with PUT /v1/images/NAME");
                return;
        }
        json_t *img = NULL;
        _cleanup_free_ char *msg = NULL;
        int r = oracle_image_register_builtin(o, name, builtin, &img, &msg);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg ? msg : strerror(-r));
                return;
        }
        store_event_add(o->store, "image-built", NULL, NULL, NULL, name);
        http_reply_json(reply, 201, img);
}

static void h_vms(const http_request_t *req, http_reply_t *reply) {
        size_t limit = 0;
        const char *after = NULL;
        if (oracle_page_args(req, reply, &limit, &after) >= 0)
                oracle_vms_page(req, reply, limit, after ? after : "");
}

static void h_vm_create(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *name = json_string_value(json_object_get(req->body, "name"));
        const char *image = json_string_value(json_object_get(req->body, "image"));
        if (!name || !name_is_valid(name)) {
                http_reply_error(reply, 400, "invalid", "a VM needs a valid name: 1-63 of a-z, 0-9 and -");
                return;
        }
        if (!image || !name_is_valid(image)) {
                http_reply_error(reply, 400, "invalid", "a VM needs the name of an image");
                return;
        }
        int64_t memory = 0, vcpus = 0;
        if (oracle_body_int(req->body, "memory_mib", 128, BUNDLE_MEMORY_MIB_MIN, BUNDLE_MEMORY_MIB_MAX, &memory) < 0) {
                http_reply_error(reply, 400, "out_of_range", "memory_mib must be an integer from %d to %d",
                                 BUNDLE_MEMORY_MIB_MIN, BUNDLE_MEMORY_MIB_MAX);
                return;
        }
        if (oracle_body_int(req->body, "vcpus", 1, 1, BUNDLE_VCPUS_MAX, &vcpus) < 0) {
                http_reply_error(reply, 400, "out_of_range", "vcpus must be an integer from 1 to %d", BUNDLE_VCPUS_MAX);
                return;
        }
        int64_t cpu_limit = 0; /* none: 100 per vCPU (docs/confinement.md) */
        if (oracle_body_int(req->body, "cpu_limit", 0, 1, BUNDLE_CPU_LIMIT_PER_VCPU * vcpus, &cpu_limit) < 0) {
                http_reply_error(reply, 400, "out_of_range", "cpu_limit must be an integer from 1 to %lld (percent of "
                                 "one CPU, at most %d per vCPU)", (long long)(BUNDLE_CPU_LIMIT_PER_VCPU * vcpus),
                                 BUNDLE_CPU_LIMIT_PER_VCPU);
                return;
        }
        image_record_t img = { 0 };
        if (store_image_get(o->store, image, &img) < 0) {
                http_reply_error(reply, 404, "not_found", "no image named \"%s\"", image);
                return;
        }
        vm_record_t v = { 0 };
        int r = oracle_vm_record_new(o, name, &img, memory, vcpus, NULL, &v);
        image_record_clear(&img);
        const auth_principal_t *p = req->principal;
        if (r >= 0 && p)
                snprintf(v.owner, sizeof v.owner, "%s", p->user);
        if (r >= 0 && cpu_limit)
                json_object_set_new(json_object_get(v.bundle, "config"), "cpu_limit", json_integer(cpu_limit));
        if (r < 0) {
                http_reply_errno(reply, r, "cannot allocate a MAC address and version for vm \"%s\"", name);
                return;
        }
        r = store_vm_insert(o->store, &v);
        if (r < 0) {
                vm_record_clear(&v);
                http_reply_errno(reply, r, r == -EEXIST ? "vm \"%s\" exists already" : "cannot create vm \"%s\"", name);
                return;
        }
        store_event_add(o->store, "created", name, NULL, NULL, image);
        http_reply_json(reply, 201, oracle_vm_json(&v));
        vm_record_clear(&v);
}

static void h_vm_show(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        vm_record_t v = { 0 };
        int r = store_vm_get(o->store, req->params[0], &v);
        if (r < 0) {
                http_reply_errno(reply, r, "no vm named \"%s\"", req->params[0]);
                return;
        }
        rm_record_t offer = { 0 };
        bool known = *v.market.offer && store_rm_get(o->store, v.market.offer, &offer) == 0;
        http_reply_json(reply, 200, oracle_vm_json_among(req->principal, &v, &offer, known ? 1 : 0));
        vm_record_clear(&v);
}

static void start_action(const http_request_t *req, http_reply_t *reply, const char *action) {
        oracle_t *o = req->userdata;
        const json_t *rm = json_object_get(req->body, "rm");
        if (rm && !json_is_null(rm) && (!json_is_string(rm) || !name_is_valid(json_string_value(rm)))) {
                http_reply_error(reply, 400, "invalid", "rm must be an RM name");
                return;
        }
        const json_t *method = json_object_get(req->body, "method");
        if (method && !json_is_null(method) && !json_is_string(method)) {
                http_reply_error(reply, 400, "invalid", "method must be chunks or full");
                return;
        }
        const json_t *live = json_object_get(req->body, "live");
        if (live && !json_is_boolean(live)) {
                http_reply_error(reply, 400, "invalid", "live must be true or false");
                return;
        }
        if (json_is_true(live) && !streq(action, "migrate")) {
                http_reply_error(reply, 400, "invalid", "live applies to migrate only");
                return;
        }
        if (json_is_true(live) && method && !json_is_null(method)) {
                http_reply_error(reply, 400, "invalid", "a live migration has no method (it copies RAM and disk live)");
                return;
        }
        op_request_t r = {
                .method = json_string_value(method),
                .action = json_is_true(live) ? "migrate-live" : action,
                .rm = json_string_value(rm),
                .force = json_is_true(json_object_get(req->body, "force")) ||
                         (http_request_query(req, "force") && streq(http_request_query(req, "force"), "1")),
        };
        json_t *op = NULL;
        _cleanup_free_ char *msg = NULL;
        int k = oracle_op_start(o, req->params[0], &r, &op, &msg);
        if (k < 0) {
                http_reply_errno(reply, k, "%s", msg ? msg : strerror(-k));
                return;
        }
        http_reply_json(reply, 202, json_pack("{s:o}", "op", op));
}

static void h_vm_clone(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const json_t *rm = json_object_get(req->body, "rm");
        if (rm && !json_is_null(rm) && (!json_is_string(rm) || !name_is_valid(json_string_value(rm)))) {
                http_reply_error(reply, 400, "invalid", "rm must be an RM name");
                return;
        }
        int64_t count = 0;
        if (oracle_body_int(req->body, "count", 1, 1, INT32_MAX, &count) < 0) {
                http_reply_error(reply, 400, "invalid", "count must be a positive integer");
                return;
        }
        json_t *res = NULL;
        _cleanup_free_ char *msg = NULL;
        int r = oracle_vm_clone(o, req->params[0], count, json_string_value(rm), &res, &msg);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg ? msg : strerror(-r));
                return;
        }
        http_reply_json(reply, 202, res);
}

/* The balloon of a running VM, relayed to its RM: {target_mib?} -> its balloon. */
static void h_vm_balloon(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const json_t *t = json_object_get(req->body, "target_mib");
        if (t && !json_is_null(t) && !json_is_integer(t)) {
                http_reply_error(reply, 400, "invalid", "target_mib must be an integer (MiB)");
                return;
        }
        vm_record_t v = { 0 };
        if (store_vm_get(o->store, req->params[0], &v) < 0) {
                http_reply_error(reply, 404, "not_found", "no vm named \"%s\"", req->params[0]);
                return;
        }
        if (!streq(v.state, "loading") && !streq(v.state, "active")) {
                http_reply_error(reply, 409, "conflict", "vm \"%s\" is %s: only a running VM has a balloon", v.name,
                                 v.state);
                vm_record_clear(&v);
                return;
        }
        json_t *body = t && !json_is_null(t) ? json_pack("{s:O}", "target_mib", t) : json_object();
        json_t *res = NULL;
        _cleanup_free_ char *msg = NULL;
        _cleanup_free_ char *path = xasprintf("/v1/vms/%s/balloon", v.name);
        int r = oracle_node_call(o, v.rm, "POST", path, body, 30000, &res, &msg);
        json_decref(body);
        vm_record_clear(&v);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg ? msg : strerror(-r));
                return;
        }
        http_reply_json(reply, 200, res);
}

static void h_vm_action(const http_request_t *req, http_reply_t *reply) {
        if (streq(req->params[1], "balloon"))
                h_vm_balloon(req, reply);
        else if (streq(req->params[1], "clone"))
                h_vm_clone(req, reply);
        else
                start_action(req, reply, req->params[1]);
}
static void h_vm_delete(const http_request_t *req, http_reply_t *reply) { start_action(req, reply, "delete"); }

static void console_relay(void *data, int fd, const char *extra, size_t extra_len) {
        int node_fd = (int)(intptr_t)data;
        if (extra_len > 0)
                stream_write_all(node_fd, extra, extra_len);
        stream_splice(fd, node_fd);
        close(node_fd);
}

static void h_vm_console(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        vm_record_t v = { 0 };
        int r = store_vm_get(o->store, req->params[0], &v);
        if (r < 0) {
                http_reply_errno(reply, r, "no vm named \"%s\"", req->params[0]);
                return;
        }
        if (!*v.rm) {
                http_reply_error(reply, 409, "illegal_transition", "vm \"%s\" is %s: it has no console", v.name, v.state);
                vm_record_clear(&v);
                return;
        }
        rm_record_t rm = { 0 };
        store_rm_get(o->store, v.rm, &rm);
        const char *upgrade = http_request_header(req, "Upgrade");
        if (upgrade && streq(upgrade, STREAM_CONSOLE_PROTOCOL)) {
                /* attach: relay the raw stream to the node, which joins it to QEMU's serial port */
                _cleanup_free_ char *path = xasprintf("/v1/vms/%s/console", v.name);
                _cleanup_free_ char *msg = NULL;
                int fd = -1;
                _cleanup_free_ char *node = xasprintf("https://%s@%s", v.rm, rm.address); /* mutual TLS */
                r = stream_upgrade_connect(node, path, STREAM_CONSOLE_PROTOCOL, NULL, &fd, &msg);
                if (r < 0) /* unreachable 502, full 503 (its consoles), else no console there (409) */
                        http_reply_errno(reply, r == -EHOSTUNREACH || r == -EAGAIN ? r : -EPERM, "RM \"%s\": %s",
                                         v.rm, msg);
                else
                        http_reply_upgrade(reply, STREAM_CONSOLE_PROTOCOL, console_relay, (void *)(intptr_t)fd);
                vm_record_clear(&v);
                return;
        }
        _cleanup_free_ char *url = xasprintf("https://%s@%s/v1/vms/%s/console", v.rm, rm.address, v.name);
        http_response_t resp = { 0 };
        r = http_request_json("GET", url, NULL, 10000, &resp);
        if (r < 0 || resp.status != 200)
                http_reply_error(reply, 502, "rm_unreachable", "RM \"%s\": %s", v.rm, http_error_message(&resp, r));
        else
                http_reply_text(reply, 200, resp.body);
        http_response_clear(&resp);
        vm_record_clear(&v);
}

/* GET /v1/ops/:id[?wait_ms=N]: with wait_ms, a long poll that answers as soon as the op ends
 * or its progress changes (so the CLI learns of the end at once without polling fast). */
static void h_op(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        op_record_t op = { 0 };
        int64_t wait_ms = 0;
        const char *w = http_request_query(req, "wait_ms");
        if (w && parse_int64(w, 0, 10000, &wait_ms) < 0) {
                http_reply_error(reply, 400, "invalid", "wait_ms must be an integer from 0 to 10000");
                return;
        }
        /* woken by the engine when the op progresses or ends, not by polling the store */
        int r = oracle_op_wait(o, req->params[0], wait_ms, &op);
        if (r < 0) {
                http_reply_errno(reply, r, "no operation %s", req->params[0]);
                return;
        }
        http_reply_json(reply, 200, op_record_to_json(&op));
        op_record_clear(&op);
}

/* A name filter of the query (key), checked: NULL when absent; false (and a 400) when bad. */
static bool query_name(const http_request_t *req, const char *key, const char **ret, http_reply_t *reply) {
        *ret = http_request_query(req, key);
        if (*ret && !name_is_valid(*ret)) {
                http_reply_error(reply, 400, "invalid", "%s must be a name", key);
                return false;
        }
        return true;
}

/* GET /v1/events[?after=ID|last=N][&limit=N][&vm=&service=&kind=] */
static void h_events(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        int64_t after = 0, limit = 1000, last = 0;
        const char *a = http_request_query(req, "after"), *l = http_request_query(req, "limit");
        const char *n = http_request_query(req, "last");
        if ((a && parse_int64(a, 0, INT64_MAX, &after) < 0) || (l && parse_int64(l, 1, 10000, &limit) < 0) ||
            (n && parse_int64(n, 1, 10000, &last) < 0) || (a && n)) {
                http_reply_error(reply, 400, "invalid", "after (an id) or last (1 to 10000), and limit (1 to 10000)");
                return;
        }
        store_event_filter_t f = { .after_id = after, .limit = (int)(n ? last : limit), .last = n != NULL };
        if (!query_name(req, "vm", &f.vm, reply) || !query_name(req, "service", &f.service, reply) ||
            !query_name(req, "kind", &f.kind, reply))
                return;
        json_t *arr = NULL;
        if (store_event_select(o->store, &f, &arr) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        http_reply_json(reply, 200, arr);
}

/* GET /v1/ops[?state=&kind=&vm=&limit=N]: newest first, those of the VMs the caller sees. */
static void h_ops(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        int64_t limit = 100;
        const char *l = http_request_query(req, "limit"), *state = http_request_query(req, "state");
        if ((l && parse_int64(l, 1, 1000, &limit) < 0) ||
            (state && !streq(state, "running") && !streq(state, "done") && !streq(state, "failed"))) {
                http_reply_error(reply, 400, "invalid", "state is running, done or failed; limit 1 to 1000");
                return;
        }
        const char *kind = NULL, *vm = NULL;
        if (!query_name(req, "kind", &kind, reply) || !query_name(req, "vm", &vm, reply))
                return;
        op_record_t *ops = NULL;
        size_t n = 0;
        if (store_op_select(o->store, state, kind, vm, (int)limit, &ops, &n) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        const auth_principal_t *p = oracle_principal(req);
        bool all = !p || role_sees_all(p->role);
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
                /* an op's VM as it was when the op began (it may be gone, or another's since) */
                vm_record_t prev = { 0 };
                bool visible = all || (vm_record_from_json(ops[i].prev, &prev) >= 0 &&
                                       oracle_vm_visible(o, p, &prev, false));
                vm_record_clear(&prev);
                if (visible)
                        json_array_append_new(arr, op_record_to_json(&ops[i]));
        }
        store_op_list_free(ops, n);
        http_reply_json(reply, 200, arr);
}

const http_route_t oracle_api_routes[] = {
        { "GET", "/v1/health", h_health, PERM_PUBLIC, OWNER_NONE },
        { "GET", "/v1/rms", h_rms, PERM_RM_READ, OWNER_NONE },
        { "POST", "/v1/rms/:name/heartbeat", oracle_heartbeat, PERM_NODE, OWNER_RM },
        { "POST", "/v1/rms/:name/fence", h_rm_fence, PERM_RM_ACT, OWNER_RM },
        { "GET", "/v1/images", h_images, PERM_IMAGE_READ, OWNER_NONE },
        { "POST", "/v1/images", h_image_create, PERM_IMAGE_ACT, OWNER_NONE },
        { "GET", "/v1/vms", h_vms, PERM_VM_READ, OWNER_NONE },
        { "POST", "/v1/vms", h_vm_create, PERM_VM_ACT, OWNER_NONE },
        { "GET", "/v1/vms/:name", h_vm_show, PERM_VM_READ, OWNER_VM },
        { "DELETE", "/v1/vms/:name", h_vm_delete, PERM_VM_ACT, OWNER_VM },
        { "GET", "/v1/vms/:name/console", h_vm_console, PERM_VM_CONSOLE, OWNER_VM },
        { "POST", "/v1/vms/:name/:action", h_vm_action, PERM_VM_ACT, OWNER_VM },
        { "GET", "/v1/ops", h_ops, PERM_VM_READ, OWNER_NONE },
        { "GET", "/v1/ops/:id", h_op, PERM_VM_READ, OWNER_OP },
        { "POST", "/v1/ops/:id/heartbeat", oracle_op_heartbeat, PERM_NODE, OWNER_NONE },
        { "GET", "/v1/events", h_events, PERM_EVENT_READ, OWNER_NONE },
        { NULL },
};
