/* Enrolment over HTTP (docs/tls.md): an operator makes a join token on the user API; a new node
 * fetches the CA certificate (checked against the token's digest, on its side) and sends the
 * token with its certificate request on the node channel, without a certificate of its own.
 * The work is the enrolment service's (auth/enrol.c); here are parsing and answers. */
#include <string.h>

#include "auth/roles.h"
#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"
#include "store/store-auth.h"

/* GET /v1/join/ca: the CA certificate, which the node checks against its token's digest. */
static void h_join_ca(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        http_reply_text(reply, 200, ca_cert_pem(o->tls.ca));
}

/* May rm's name be taken by a new enrolment? Only when it is not up: an RM that heartbeats
 * keeps its name. */
static bool rm_replaceable(oracle_t *o, const char *rm) {
        rm_record_t r = { 0 };
        if (store_rm_get(o->store, rm, &r) < 0 || !streq(r.state, "up"))
                return true;
        return oracle_liveness_silent_ms(o->liveness, rm, time_now_ms()) >= LIVENESS_DOWN_AFTER_MS;
}

/* POST /v1/join {token, name, csr} -> {certificate, ca, name, role, provider} */
static void h_join(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *token = json_string_value(json_object_get(req->body, "token"));
        const char *name = json_string_value(json_object_get(req->body, "name"));
        const char *csr = json_string_value(json_object_get(req->body, "csr"));
        if (!token || !name || !csr) {
                http_reply_error(reply, 400, "invalid", "a join needs token, name and csr (strings)");
                return;
        }
        enrol_result_t res = { 0 };
        _cleanup_free_ char *msg = NULL;
        int r = enrol_join(o->tls.enrol, token, name, csr, name_is_valid(name) && rm_replaceable(o, name),
                           time_wall_ms(), &res, &msg);
        if (r < 0) {
                _cleanup_free_ char *what = xasprintf("join as RM \"%.64s\": %s", name, msg);
                oracle_tls_event(o, req, name, what);
                switch (r) {
                case -EACCES: http_reply_error(reply, 401, "unauthenticated", "%s", msg); break;
                case -EALREADY: http_reply_error(reply, 409, "token_used", "%s", msg); break;
                case -EBUSY: http_reply_error(reply, 409, "busy", "%s", msg); break;
                case -EBADMSG: http_reply_error(reply, 400, "invalid", "%s", msg); break;
                default: http_reply_errno(reply, r, "%s", msg); break;
                }
                return;
        }
        oracle_tls_cert_accept(o, &res.cert);
        /* the RM is its provider's from now on (a row of its own until its first heartbeat) */
        if (*res.cert.provider) {
                rm_record_t rm = { 0 };
                if (store_rm_get(o->store, name, &rm) < 0) {
                        SET(rm.name, name);
                        SET(rm.role, res.cert.role);
                        SET(rm.state, "down");
                        (void)store_rm_upsert(o->store, &rm);
                }
                if (store_rm_provider_set(o->store, name, res.cert.provider) < 0)
                        log_warn("RM %s: cannot record its provider %s", name, res.cert.provider);
        }
        log_info("RM %s enrolled (%s%s%s), certificate %s", name, res.cert.role, *res.cert.provider ? ", provider " : "",
                 res.cert.provider, res.cert.serial);
        _cleanup_free_ char *reason = xasprintf("enrolled as %s, certificate %s", res.cert.role, res.cert.serial);
        store_event_add(o->store, "rm-enrolled", NULL, NULL, name, reason);
        http_reply_json(reply, 200,
                        json_pack("{s:s,s:s,s:s,s:s,s:s}", "certificate", res.cert_pem, "ca", ca_cert_pem(o->tls.ca),
                                  "name", name, "role", res.cert.role, "provider", res.cert.provider));
        enrol_result_clear(&res);
}

/* POST /v1/rms/join-tokens {role?, provider?, ttl_s?} -> {token, id, role, provider, expires_ms} */
static void h_join_token_create(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *role = json_string_value(json_object_get(req->body, "role"));
        const char *provider = json_string_value(json_object_get(req->body, "provider"));
        int64_t ttl = JOIN_TOKEN_TTL_DEFAULT_S;
        if (oracle_body_int(req->body, "ttl_s", JOIN_TOKEN_TTL_DEFAULT_S, 1, JOIN_TOKEN_TTL_MAX_S, &ttl) < 0) {
                http_reply_error(reply, 400, "invalid", "ttl_s must be seconds from 1 to %d", JOIN_TOKEN_TTL_MAX_S);
                return;
        }
        /* a provider enrols machines of its own only; others may name any provider */
        const auth_principal_t *p = req->principal;
        if (p && !role_sees_all(p->role)) {
                if (provider && !streq(provider, p->user)) {
                        http_reply_error(reply, 403, "forbidden", "%s: a provider makes join tokens for its own RMs only",
                                         p->user);
                        return;
                }
                provider = p->user;
        } else if (provider) {
                user_record_t u = { 0 };
                if (store_user_get(o->store, provider, &u) < 0 || !streq(u.role, "provider")) {
                        http_reply_error(reply, 400, "invalid", "no provider named \"%.63s\"", provider);
                        return;
                }
        }
        char text[JOIN_TOKEN_TEXT_SIZE];
        join_token_record_t rec;
        _cleanup_free_ char *msg = NULL;
        int r = enrol_token_create(o->tls.enrol, role ? role : "chamber", provider, ttl, p ? p->user : "", time_wall_ms(),
                                   text, &rec, &msg);
        if (r < 0) {
                http_reply_errno(reply, r, "%s", msg ? msg : strerror(-r));
                return;
        }
        http_reply_json(reply, 201,
                        json_pack("{s:s,s:s,s:s,s:s,s:I}", "token", text, "id", rec.id, "role", rec.role, "provider",
                                  rec.provider, "expires_ms", (json_int_t)rec.expires_ms));
        explicit_bzero(text, sizeof text);
}

const http_route_t oracle_join_routes[] = {
        { "GET", "/v1/join/ca", h_join_ca, PERM_JOIN, OWNER_NONE },
        { "POST", "/v1/join", h_join, PERM_JOIN, OWNER_NONE },
        { "POST", "/v1/rms/join-tokens", h_join_token_create, PERM_RM_ACT, OWNER_NONE },
        { NULL },
};
