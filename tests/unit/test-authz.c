/* The authorization matrix (issue 11), generated from the Oracle's route table: every route x
 * {no token, a malformed token, an unknown token, an expired token, a revoked token, each role,
 * the own and another owner's resource} over HTTP, against the real authorizer
 * (oracle_authorize), the real account service and a real store. Each route's handler is
 * replaced by a probe that answers 200 and who asked, so the matrix sees exactly what the gate
 * lets through, and nothing is changed by the routes it reaches.
 *
 * Expected: public routes 200 for anyone; otherwise 401 without a valid token; 403 when the
 * role lacks the route's permission (role_allows, itself checked against DESIGN.md §10's
 * sentences in test-auth.c); 404 for another owner's resource (for roles that do not see
 * everything); 200 else. Node-only routes are refused to every user (no user holds PERM_NODE):
 * nodes reach them on the node channel with their certificates (test-channel.c). */
#include <string.h>

#include "auth/auth.h"
#include "base/util.h"
#include "net/http-client.h"
#include "oracle/oracle-internal.h"
#include "store/store-auth.h"
#include "tap.h"

static void h_probe(const http_request_t *req, http_reply_t *reply) {
        const auth_principal_t *p = req->principal;
        http_reply_json(reply, 200, json_pack("{s:s?}", "user", p ? p->user : NULL));
}

typedef struct who {
        const char *label;
        const char *user;  /* NULL: no user (anonymous or a bad token) */
        role_t role;
        char token[TOKEN_TEXT_SIZE + 8];
} who_t;

/* A user with a password, logged in: its session token into w->token. */
static void user_login(oracle_t *o, who_t *w, const char *role) {
        _cleanup_free_ char *msg = NULL, *token = NULL;
        int64_t now = time_wall_ms();
        CHECK(auth_user_create(o->auth, w->user, role, "password-123", now, &msg) == 0);
        CHECK(auth_login(o->auth, w->user, "password-123", NULL, now, &token, &msg) == 0);
        snprintf(w->token, sizeof w->token, "%s", token ? token : "");
        CHECK(role_parse(role, &w->role) == 0);
}

/* The value of the path's parameters for a resource of owner "mine" (true) or another's. */
static char *path_for(const http_route_t *r, const who_t *w, bool mine, const char *op_mine, const char *op_other,
                      const char *tok_mine, const char *tok_other) {
        const char *seg[HTTP_MAX_PARAMS] = { 0 };
        unsigned n = 0;
        const char *user = w->user ? w->user : "buy1";
        for (const char *p = r->pattern; (p = strchr(p, ':')); p++) {
                const char *v = "x";
                if (strncmp(r->pattern, "/v1/vms/", 8) == 0 && n == 0)
                        v = mine ? (streq(user, "buy2") ? "vm-b2" : "vm-b1") : (streq(user, "buy2") ? "vm-b1" : "vm-b2");
                else if (strncmp(r->pattern, "/v1/rms/", 8) == 0 || strncmp(r->pattern, "/v1/offers/", 11) == 0)
                        v = mine ? "rm1" : "rm2";
                else if (strncmp(r->pattern, "/v1/ops/", 8) == 0)
                        v = mine ? op_mine : op_other;
                else if (strncmp(r->pattern, "/v1/users/", 10) == 0 || strncmp(r->pattern, "/v1/accounts/", 13) == 0)
                        v = mine ? user : "buy2-other";
                else if (strncmp(r->pattern, "/v1/tokens/", 11) == 0)
                        v = mine ? tok_mine : tok_other;
                else if (strncmp(r->pattern, "/v1/vms/", 8) == 0)
                        v = "probe";
                else if (strncmp(r->pattern, "/v1/manifests/", 14) == 0)
                        v = n == 1 ? "1" : "vm-b1";
                else
                        v = "tiny-http";
                seg[n++] = v;
        }
        char *out = xstrdup("");
        unsigned k = 0;
        for (const char *p = r->pattern; *p;) {
                char *next;
                if (*p == ':') {
                        next = xasprintf("%s%s", out, seg[k++]);
                        p += strcspn(p, "/");
                } else {
                        size_t len = strcspn(p + 1, "/:") + 1;
                        next = xasprintf("%s%.*s", out, (int)len, p);
                        p += len;
                }
                free(out);
                out = next;
        }
        return out;
}

/* Whether w owns what path_for(mine) names, as the route's owner rule reads it. */
static bool owns(const http_route_t *r, const who_t *w, bool mine) {
        if (!mine)
                return false;
        switch ((owner_rule_t)r->owner) {
        case OWNER_VM:
        case OWNER_OP:
                /* vm-b1 is buy1's and runs on prov1's rm1: the provider reads it, never acts */
                return w->role == ROLE_BUYER || (w->role == ROLE_PROVIDER && (r->perm == PERM_VM_READ));
        default:
                return true;
        }
}

static long call(const char *base, const http_route_t *r, const char *path, const char *token, json_t **ret) {
        _cleanup_free_ char *url = xasprintf("%s%s", base, path);
        http_response_t resp = { 0 };
        _cleanup_(json_decrefp) json_t *body =
                streq(r->method, "GET") || streq(r->method, "DELETE") ? NULL : json_object();
        int t = http_call_json(&(http_call_t){ .token = token }, r->method, url, body, 5000, &resp);
        long status = t < 0 ? 0 : resp.status;
        if (ret) {
                *ret = resp.json;
                resp.json = NULL;
        }
        http_response_clear(&resp);
        return status;
}

int main(void) {
        char dir[] = "/tmp/vmx-test-authz-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        oracle_t o = { .data = dir, .liveness = oracle_liveness_new(time_now_ms()) };
        _cleanup_free_ char *db = xasprintf("%s/state.db", dir);
        CHECK(store_open(db, &o.store) == 0);
        password_cost_t cost = PASSWORD_COST_MIN;
        CHECK(oracle_auth_start(&o, &cost) == 0);

        /* the principals */
        who_t whos[] = {
                { "admin", "admin", ROLE_ADMIN }, { "operator", "op1", 0 }, { "provider", "prov1", 0 },
                { "buyer", "buy1", 0 },           { "buyer2", "buy2", 0 },
        };
        _cleanup_free_ char *admin_path = xasprintf("%s/admin.token", dir);
        _cleanup_free_ char *admin_text = NULL;
        CHECK(file_read(admin_path, &admin_text, NULL) == 0);
        snprintf(whos[0].token, sizeof whos[0].token, "%.*s", (int)strcspn(admin_text ? admin_text : "", "\n"),
                 admin_text ? admin_text : "");
        user_login(&o, &whos[1], "operator");
        user_login(&o, &whos[2], "provider");
        user_login(&o, &whos[3], "buyer");
        user_login(&o, &whos[4], "buyer");

        /* the resources: buy1's VM on prov1's RM, buy2's VM in the Nest, an op on each */
        rm_record_t rm1 = { .name = "rm1", .role = "production", .address = "127.0.0.1:1", .state = "up" };
        rm_record_t rm2 = { .name = "rm2", .role = "chamber", .address = "127.0.0.1:2", .state = "up" };
        CHECK(store_rm_upsert(o.store, &rm1) == 0 && store_rm_upsert(o.store, &rm2) == 0);
        CHECK(store_rm_provider_set(o.store, "rm1", "prov1") == 0);
        vm_record_t v1 = { .name = "vm-b1", .state = "active", .version = 1, .rm = "rm1", .image = "tiny-http",
                           .memory_mib = 128, .vcpus = 1, .mac = "52:54:00:00:00:01", .owner = "buy1" };
        vm_record_t v2 = { .name = "vm-b2", .state = "stored", .version = 1, .image = "tiny-http", .memory_mib = 128,
                           .vcpus = 1, .mac = "52:54:00:00:00:02", .owner = "buy2" };
        v1.bundle = json_object();
        v2.bundle = json_object();
        CHECK(store_vm_insert(o.store, &v1) == 0 && store_vm_insert(o.store, &v2) == 0);
        op_record_t op1 = { .vm = "vm-b1", .kind = "activate", .state = "done" }, op2 = op1;
        snprintf(op2.vm, sizeof op2.vm, "vm-b2");
        op1.args = json_object(), op1.prev = json_object(), op1.progress = json_object(), op1.result = json_object();
        op2.args = json_object(), op2.prev = json_object(), op2.progress = json_object(), op2.result = json_object();
        CHECK(store_op_insert(o.store, &op1) == 0 && store_op_insert(o.store, &op2) == 0);
        /* tokens: an expired and a revoked one of buy1, and an API token of each buyer */
        char id[TOKEN_ID_LEN + 1], id_b1[TOKEN_ID_LEN + 1], id_b2[TOKEN_ID_LEN + 1];
        _cleanup_free_ char *expired = NULL, *revoked = NULL, *t1 = NULL, *t2 = NULL, *msg = NULL;
        int64_t now = time_wall_ms();
        CHECK(auth_token_create(o.auth, "buy1", "soon", NULL, now + 1, now, &expired, id, &msg) == 0);
        CHECK(auth_token_create(o.auth, "buy1", "gone", NULL, 0, now, &revoked, id, &msg) == 0);
        CHECK(auth_token_revoke(o.auth, id, now, &msg) == 0);
        CHECK(auth_token_create(o.auth, "buy1", "api", NULL, 0, now, &t1, id_b1, &msg) == 0);
        CHECK(auth_token_create(o.auth, "buy2", "api", NULL, 0, now, &t2, id_b2, &msg) == 0);
        time_sleep_ms(5); /* the expired one is now past its expiry */

        /* the whole route table, each handler a probe */
        const http_route_t *const *tables = oracle_route_tables;
        size_t total = 0;
        for (size_t t = 0; tables[t]; t++)
                for (size_t i = 0; tables[t][i].method; i++)
                        total++;
        http_route_t *routes = xcalloc(total + 1, sizeof *routes);
        size_t nr = 0;
        for (size_t t = 0; tables[t]; t++)
                for (size_t i = 0; tables[t][i].method; i++) {
                        routes[nr] = tables[t][i];
                        routes[nr].handler = h_probe;
                        /* every route names a permission: one without would be refused to all */
                        if (routes[nr].perm == PERM_NONE)
                                fprintf(stderr, "  route %s %s has no permission\n", routes[nr].method,
                                        routes[nr].pattern);
                        CHECK(routes[nr].perm != PERM_NONE);
                        nr++;
                }
        http_server_t *srv = NULL;
        char listen[32], base[64];
        for (int port = 17850; port < 17950 && !srv; port++) {
                snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
                if (http_server_start(&(http_server_params_t){ .listen = listen, .routes = routes, .userdata = &o,
                                                                .authorize = oracle_authorize },
                                      &srv) < 0)
                        srv = NULL;
        }
        CHECK(srv != NULL);
        snprintf(base, sizeof base, "http://%s", listen);

        const char *bad_tokens[] = { NULL, "vmx_nonsense", "vmx_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                                     expired, revoked };
        size_t cases = 0, wrong = 0;
        char *ops_mine[] = { op1.id, op2.id };
        for (size_t i = 0; srv && i < nr; i++) {
                const http_route_t *r = &routes[i];
                /* no valid token: 401, except public routes and (for now) node routes */
                for (size_t b = 0; b < ELEMENTSOF(bad_tokens); b++) {
                        _cleanup_free_ char *path = path_for(r, &whos[3], true, op1.id, op2.id, id_b1, id_b2);
                        long want = r->perm == PERM_PUBLIC ? 200 : 401;
                        long got = call(base, r, path, bad_tokens[b], NULL);
                        cases++;
                        if (got != want) {
                                wrong++;
                                fprintf(stderr, "  %s %s with %s token: %ld, wanted %ld\n", r->method, path,
                                        b == 0 ? "no" : "a bad", got, want);
                        }
                }
                for (size_t k = 0; k < ELEMENTSOF(whos); k++) {
                        const who_t *w = &whos[k];
                        bool b2 = streq(w->user, "buy2");
                        for (int mine = 1; mine >= 0; mine--) {
                                if (r->owner == OWNER_NONE && !mine)
                                        continue;
                                /* own token: the one this principal speaks with (its id follows "vmx_") */
                                char own_id[TOKEN_ID_LEN + 1];
                                snprintf(own_id, sizeof own_id, "%.16s", w->token + 4);
                                _cleanup_free_ char *path =
                                        path_for(r, w, mine, ops_mine[b2 ? 1 : 0], ops_mine[b2 ? 0 : 1], own_id,
                                                 b2 ? id_b1 : id_b2);
                                long want;
                                if (r->perm == PERM_PUBLIC)
                                        want = 200;
                                else if (!role_allows(w->role, (perm_t)r->perm))
                                        want = 403;
                                else if (r->owner == OWNER_SELF || r->owner == OWNER_TOKEN)
                                        want = mine || role_allows(w->role, PERM_USER_ACT) ? 200 : 404;
                                else if (role_sees_all(w->role) || r->owner == OWNER_NONE)
                                        want = 200;
                                else if (r->owner == OWNER_RM)
                                        want = mine && w->role == ROLE_PROVIDER ? 200 : 404;
                                else
                                        want = owns(r, w, mine) ? 200 : 404;
                                json_t *j = NULL;
                                long got = call(base, r, path, w->token, &j);
                                cases++;
                                /* the handler learns who asked */
                                bool who_ok = got != 200 || r->perm == PERM_PUBLIC ||
                                              streq(json_string_value(json_object_get(j, "user")) ?: "", w->user);
                                json_decref(j);
                                if (got != want || !who_ok) {
                                        wrong++;
                                        fprintf(stderr, "  %s %s as %s (%s resource): %ld, wanted %ld%s\n", r->method,
                                                path, w->label, mine ? "own" : "another's", got, want,
                                                who_ok ? "" : " (principal lost)");
                                }
                        }
                }
        }
        fprintf(stderr, "  authorization matrix: %zu routes, %zu cases, %zu wrong\n", nr, cases, wrong);
        CHECK(nr > 40 && cases > 400);
        CHECK(wrong == 0);

        /* what the route table declares, against §10's sentences, case by case (the matrix above
         * checks that the declarations are enforced; these that they are right) */
        static const struct {
                const char *who, *method, *path;
                long want;
        } spot[] = {
                { "buyer", "GET", "/v1/rms", 403 },             /* their own VMs and account only */
                { "buyer", "GET", "/v1/vms/vm-b1", 200 },
                { "buyer", "GET", "/v1/vms/vm-b2", 404 },       /* another's: not revealed */
                { "buyer", "POST", "/v1/vms/vm-b1/activate", 200 },
                { "buyer", "GET", "/v1/vms/vm-b1/console", 200 },
                { "buyer", "GET", "/v1/events", 403 },
                { "buyer", "GET", "/v1/images", 200 },          /* what a machine can be made of */
                { "buyer", "POST", "/v1/images", 403 },
                { "buyer", "GET", "/v1/vms/vm-b1/metrics", 200 }, /* its own VM's figures */
                { "buyer", "GET", "/v1/vms/vm-b2/metrics", 404 },
                { "buyer", "GET", "/v1/metrics", 403 },
                { "buyer", "GET", "/v1/market/offers", 200 },
                { "buyer", "GET", "/v1/offers", 403 },          /* a provider's own view */
                { "buyer", "GET", "/v1/chunks/abc", 403 },      /* the Nest: operators and nodes */
                { "operator", "GET", "/v1/chunks/abc", 200 },
                { "provider", "GET", "/v1/vms/vm-b1", 200 },    /* a machine on its RM: metadata */
                { "provider", "GET", "/v1/vms/vm-b2", 404 },
                { "provider", "POST", "/v1/vms/vm-b1/hibernate", 403 }, /* no actions */
                { "provider", "GET", "/v1/vms/vm-b1/console", 403 },    /* no consoles */
                { "provider", "GET", "/v1/vms/vm-b1/export", 403 },     /* no disks */
                { "provider", "GET", "/v1/rms", 200 },
                { "provider", "GET", "/v1/figures", 200 },      /* the cluster's measured times */
                { "operator", "GET", "/v1/figures", 200 },
                { "buyer", "GET", "/v1/figures", 403 },
                { "provider", "PUT", "/v1/settings/prestage", 403 }, /* the cluster's, not an RM's */
                { "provider", "GET", "/v1/settings/prestage", 403 },
                { "operator", "PUT", "/v1/settings/prestage", 200 },
                { "buyer", "PUT", "/v1/settings/prestage", 403 },
                { "provider", "POST", "/v1/rms/rm1/fence", 200 },
                { "provider", "POST", "/v1/rms/rm2/fence", 404 },
                { "operator", "GET", "/v1/users", 403 },        /* no users */
                { "operator", "POST", "/v1/users", 403 },
                { "operator", "DELETE", "/v1/vms/vm-b2", 200 },
                { "operator", "POST", "/v1/services", 200 },
                { "admin", "POST", "/v1/users", 200 },
                { "admin", "POST", "/v1/rms/rm1/heartbeat", 403 }, /* no token speaks for an RM */
                { "admin", "POST", "/v1/ops/x/heartbeat", 403 },
        };
        for (size_t k = 0; srv && k < ELEMENTSOF(spot); k++) {
                const who_t *w = NULL;
                for (size_t j = 0; j < ELEMENTSOF(whos); j++)
                        if (streq(whos[j].label, spot[k].who))
                                w = &whos[j];
                const http_route_t r = { .method = spot[k].method };
                long got = call(base, &r, spot[k].path, w ? w->token : NULL, NULL);
                if (got != spot[k].want)
                        fprintf(stderr, "  %s %s as %s: %ld, wanted %ld\n", spot[k].method, spot[k].path, spot[k].who,
                                got, spot[k].want);
                CHECK(got == spot[k].want);
        }

        /* every refusal is an event, and a flood of them is bounded */
        json_t *events = NULL;
        CHECK(store_event_list(o.store, 0, 10000, &events) == 0);
        size_t failed = 0, i;
        json_t *e;
        json_array_foreach(events, i, e)
                failed += streq(json_string_value(json_object_get(e, "kind")) ?: "", "auth-failed");
        json_decref(events);
        CHECK(failed > 0);

        srv = http_server_stop(srv);
        free(routes);
        vm_record_clear(&v1);
        vm_record_clear(&v2);
        op_record_clear(&op1);
        op_record_clear(&op2);
        oracle_auth_stop(&o);
        o.liveness = oracle_liveness_free(o.liveness);
        store_close(o.store);
        _cleanup_free_ char *rm = xasprintf("rm -rf %s", dir);
        CHECK(system(rm) == 0);
        return tap_finish();
}
