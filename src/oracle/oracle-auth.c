/* The user API's gate (DESIGN.md §10): the authorizer the HTTP layer runs before every handler
 * of the Oracle's user-facing listener, and the account service's start (the server key, the
 * first start's admin). Each route names a permission and an owner rule in its table
 * (oracle-api.c and the others); this file is the only place they are enforced:
 *   no token or a bad one          401
 *   a role without the permission  403
 *   another owner's resource       404, worded as for a resource that does not exist
 * Node-only routes (PERM_NODE) are refused here to everyone: no token speaks for an RM; nodes
 * reach them on the node channel, under mutual TLS (oracle-tls.c). */
#include <sodium.h>
#include <string.h>

#include "auth/auth-key.h"
#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"
#include "store/store-view.h"
#include "store/store-auth.h"

/* Failed token checks store an event each, but an unauthenticated client could fill the store
 * with them: at most this many a second; those over it are counted into the next one. */
#define AUTH_EVENTS_PER_SECOND 20
/* The largest Authorization header looked at (a token is TOKEN_TEXT_LEN characters). */
#define AUTH_HEADER_MAX 256

int oracle_auth_start(oracle_t *o, const password_cost_t *cost) {
        uint8_t key[AUTH_KEY_BYTES];
        _cleanup_free_ char *msg = NULL;
        int r = auth_key_load_or_create(o->data, key, &msg);
        if (r < 0) {
                log_error("cannot load the server key %s/%s: %s", o->data, AUTH_KEY_FILE, msg ? msg : strerror(-r));
                return r;
        }
        auth_params_t params = { .cost = cost ? *cost : PASSWORD_COST_INTERACTIVE };
        r = auth_new(o->store, key, &params, &o->auth);
        sodium_memzero(key, sizeof key);
        if (r < 0) {
                log_error("cannot start the account service: %s", strerror(-r));
                return r;
        }
        free(msg);
        msg = NULL;
        r = auth_bootstrap_admin(o->auth, o->data, time_wall_ms(), &msg);
        if (r < 0) {
                log_error("cannot create the first admin: %s", msg ? msg : strerror(-r));
                return r;
        }
        if (r > 0)
                log_info("first start: user \"%s\" created, its token is in %s/%s", AUTH_ADMIN_USER, o->data,
                         AUTH_ADMIN_TOKEN_FILE);
        pthread_mutex_init(&o->auth_events_lock, NULL);
        return 0;
}

void oracle_auth_stop(oracle_t *o) { o->auth = auth_free(o->auth); }

/* An "auth-failed" event for what a client was refused, within AUTH_EVENTS_PER_SECOND. */
void oracle_auth_event(oracle_t *o, const http_request_t *req, const char *what) {
        char ip[64] = "unknown";
        (void)http_request_client_ip(req, ip, sizeof ip);
        int64_t sec = time_now_ms() / 1000, dropped = 0;
        bool record;
        pthread_mutex_lock(&o->auth_events_lock);
        if (sec != o->auth_events_second) {
                o->auth_events_second = sec;
                o->auth_events_count = 0;
        }
        record = o->auth_events_count < AUTH_EVENTS_PER_SECOND;
        if (record) {
                o->auth_events_count++;
                dropped = o->auth_events_dropped;
                o->auth_events_dropped = 0;
        } else {
                o->auth_events_dropped++;
        }
        pthread_mutex_unlock(&o->auth_events_lock);
        if (!record)
                return;
        _cleanup_free_ char *reason =
                dropped ? xasprintf("%s %.200s from %s: %s (and %lld earlier failures not recorded)", req->method,
                                    req->path, ip, what, (long long)dropped)
                        : xasprintf("%s %.200s from %s: %s", req->method, req->path, ip, what);
        utf8_sanitize(reason);
        store_event_add(o->store, "auth-failed", NULL, NULL, NULL, reason);
}

/* The token of "Authorization: Bearer TOKEN", or NULL (no header, another scheme, too long). */
static const char *bearer_token(const http_request_t *req) {
        const char *h = http_request_header(req, "Authorization");
        if (!h || strnlen(h, AUTH_HEADER_MAX + 1) > AUTH_HEADER_MAX || strncasecmp(h, "Bearer ", 7) != 0)
                return NULL;
        h += 7;
        while (*h == ' ')
                h++;
        return h;
}

bool oracle_vm_visible_among(const auth_principal_t *p, const vm_record_t *v, const rm_record_t *rms, size_t n,
                             bool act) {
        if (!p || role_sees_all(p->role))
                return true;
        if (*v->owner && streq(v->owner, p->user))
                return true;
        /* a provider reads, never acts on, the buyers' machines on its RMs and at its offers */
        if (act || p->role != ROLE_PROVIDER)
                return false;
        if (*v->market.provider && streq(v->market.provider, p->user))
                return true;
        if (!*v->rm)
                return false;
        for (size_t i = 0; i < n; i++)
                if (streq(rms[i].name, v->rm))
                        return streq(rms[i].provider, p->user);
        return false;
}

bool oracle_vm_visible(oracle_t *o, const auth_principal_t *p, const vm_record_t *v, bool act) {
        rm_record_t rm = { 0 };
        bool known = p && p->role == ROLE_PROVIDER && *v->rm && store_view_rm_get(o->store, v->rm, &rm) == 0;
        return oracle_vm_visible_among(p, v, &rm, known ? 1 : 0, act);
}

bool oracle_rm_visible(const auth_principal_t *p, const rm_record_t *rm) {
        return !p || role_sees_all(p->role) || (*rm->provider && streq(rm->provider, p->user));
}

/* The owner rule of route for principal p on the path's resource: 0, or -ENOENT with the
 * not-found answer in reply (the same words whether the resource is missing or another's). */
static int owner_check(oracle_t *o, const http_request_t *req, const http_route_t *route, const auth_principal_t *p,
                       http_reply_t *reply) {
        const char *name = req->params[0];
        bool act = route->perm != PERM_VM_READ;
        switch ((owner_rule_t)route->owner) {
        case OWNER_NONE:
                return 0;
        case OWNER_SELF:
                if (streq(name, p->user) || role_allows(p->role, PERM_USER_ACT))
                        return 0;
                http_reply_error(reply, 404, "not_found", "no user \"%s\"", name);
                return -ENOENT;
        case OWNER_TOKEN: {
                if (role_allows(p->role, PERM_USER_ACT))
                        return 0;
                token_record_t t = { 0 };
                if (store_token_get(o->store, name, &t) == 0 && streq(t.user, p->user))
                        return 0;
                http_reply_error(reply, 404, "not_found", "no token \"%s\"", name);
                return -ENOENT;
        }
        default:
                break;
        }
        if (role_sees_all(p->role))
                return 0;
        if (route->owner == OWNER_RM) {
                rm_record_t rm = { 0 };
                if (store_rm_get(o->store, name, &rm) == 0 && oracle_rm_visible(p, &rm))
                        return 0;
                http_reply_error(reply, 404, "not_found", "no RM named \"%s\"", name);
                return -ENOENT;
        }
        char vm_name[64];
        vm_record_t then = { 0 }, now = { 0 };
        bool have_then = false;
        if (route->owner == OWNER_OP) {
                op_record_t op = { 0 };
                int r = store_op_get(o->store, name, &op);
                snprintf(vm_name, sizeof vm_name, "%s", r == 0 ? op.vm : "");
                /* the VM as the operation found it: its owner follows a delete to the end, when
                 * the VM is gone (and a later VM of the same name gets no say over it) */
                have_then = r == 0 && op.prev && vm_record_from_json(op.prev, &then) == 0;
                op_record_clear(&op);
                act = false;
                if (r < 0) {
                        http_reply_error(reply, 404, "not_found", "no operation %s", name);
                        return -ENOENT;
                }
        } else {
                snprintf(vm_name, sizeof vm_name, "%s", name);
        }
        bool have_now = store_vm_get(o->store, vm_name, &now) == 0 && (!have_then || now.created_ms == then.created_ms);
        bool ok = (have_then && oracle_vm_visible(o, p, &then, act)) || (have_now && oracle_vm_visible(o, p, &now, act));
        vm_record_clear(&then);
        vm_record_clear(&now);
        if (ok)
                return 0;
        if (route->owner == OWNER_OP)
                http_reply_error(reply, 404, "not_found", "no operation %s", name);
        else
                http_reply_error(reply, 404, "not_found", "no vm named \"%s\"", name);
        return -ENOENT;
}

int oracle_authorize(http_request_t *req, const http_route_t *route, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        if (route->perm == PERM_PUBLIC)
                return 0;
        if (route->perm <= PERM_NONE || route->perm >= _PERM_MAX) {
                /* our bug: a route added without a permission is closed, loudly */
                log_error("route %s %s has no permission in the route table: refused", route->method, route->pattern);
                http_reply_error(reply, 403, "forbidden", "%s %s is not open to anyone", route->method, route->pattern);
                return -EPERM;
        }
        const char *token = bearer_token(req);
        if (!token) {
                oracle_auth_event(o, req, "no token");
                http_reply_error(reply, 401, "unauthenticated",
                                 "authentication required: log in (vmatrix login) or pass a token "
                                 "(Authorization: Bearer TOKEN)");
                return -EACCES;
        }
        auth_principal_t p = { 0 };
        int r = auth_check(o->auth, token, time_wall_ms(), &p);
        if (r == -EIO) {
                http_reply_error(reply, 503, "unavailable", "the store is unavailable; try again");
                return r;
        }
        if (r < 0) {
                oracle_auth_event(o, req, "invalid, expired or revoked token");
                http_reply_error(reply, 401, "unauthenticated", "invalid, expired or revoked token");
                return -EACCES;
        }
        if (!role_allows(p.role, (perm_t)route->perm)) {
                _cleanup_free_ char *why = xasprintf("user \"%s\" (%s) lacks %s", p.user, role_name(p.role),
                                                     perm_name((perm_t)route->perm));
                oracle_auth_event(o, req, why);
                http_reply_error(reply, 403, "forbidden", "%s: role %s may not do this (needs %s)", p.user,
                                 role_name(p.role), perm_name((perm_t)route->perm));
                return -EPERM;
        }
        r = owner_check(o, req, route, &p, reply);
        if (r < 0)
                return r;
        auth_principal_t *copy = xcalloc(1, sizeof *copy);
        *copy = p;
        req->principal = copy;
        return 0;
}
