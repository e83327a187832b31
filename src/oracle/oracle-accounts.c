/* The account routes of the user API (DESIGN.md §10): login, logout, whoami, signup, users
 * and tokens. Checks of who may call them are in the route table below and oracle-auth.c;
 * the handlers only validate bodies and call the account service (auth/auth.h). */
#include <sodium.h>
#include <string.h>

#include "auth/roles.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"
#include "store/store-auth.h"

/* A token's lifetime may be at most ten years; 0 is never (only when asked for). */
#define TOKEN_TTL_MAX_S (10LL * 366 * 24 * 3600)
#define TOKEN_TTL_DEFAULT_S (30LL * 24 * 3600)

static const auth_principal_t *principal(const http_request_t *req) { return req->principal; }

/* body[key] as a string of at most max bytes, or NULL when absent or not a string. */
static const char *body_str(const json_t *body, const char *key, size_t max) {
        const char *s = json_string_value(json_object_get(body, key));
        return s && strnlen(s, max + 1) <= max ? s : NULL;
}

static void reply_msg(http_reply_t *reply, int r, const char *msg) {
        if (r == -EACCES)
                http_reply_error(reply, 401, "unauthenticated", "%s", msg ? msg : "wrong user name or password");
        else
                http_reply_errno(reply, r, "%s", msg ? msg : strerror(-r));
}

/* A secret leaves memory as soon as it is answered. */
static void secret_wipe(char *s) {
        if (s)
                sodium_memzero(s, strlen(s));
}

static void h_login(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *user = body_str(req->body, "user", 63), *password = body_str(req->body, "password", 1024);
        if (!user || !password) {
                http_reply_error(reply, 400, "invalid", "a login needs \"user\" and \"password\" (strings)");
                return;
        }
        char ip[64];
        bool have_ip = http_request_client_ip(req, ip, sizeof ip) == 0;
        _cleanup_free_ char *token = NULL, *msg = NULL;
        int r = auth_login(o->auth, user, password, have_ip ? ip : NULL, time_wall_ms(), &token, &msg);
        if (r == -EAGAIN) {
                http_reply_error(reply, 429, "too_many_attempts", "%s", msg);
                return;
        }
        if (r < 0) {
                reply_msg(reply, r, msg);
                return;
        }
        user_record_t u = { 0 };
        (void)store_user_get(o->store, user, &u);
        http_reply_json(reply, 200, json_pack("{s:s,s:s,s:s,s:I}", "token", token, "user", user, "role", u.role,
                                              "expires_s", (json_int_t)(AUTH_SESSION_TTL_MS / 1000)));
        secret_wipe(token);
}

/* Revokes the token the request came with (a session ends). */
static void h_logout(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        _cleanup_free_ char *msg = NULL;
        int r = auth_token_revoke(o->auth, principal(req)->token_id, time_wall_ms(), &msg);
        if (r < 0) {
                reply_msg(reply, r, msg);
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:s}", "revoked", principal(req)->token_id));
}

static void h_whoami(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const auth_principal_t *p = principal(req);
        token_record_t t = { 0 };
        (void)store_token_get(o->store, p->token_id, &t);
        http_reply_json(reply, 200, json_pack("{s:s,s:s,s:{s:s,s:s,s:I}}", "user", p->user, "role", role_name(p->role),
                                              "token", "id", p->token_id, "name", t.name, "expires_ms",
                                              (json_int_t)t.expires_ms));
}

static json_t *user_json(const user_record_t *u) {
        return json_pack("{s:s,s:s,s:I}", "name", u->name, "role", u->role, "created_ms", (json_int_t)u->created_ms);
}

static void h_users(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        user_record_t *users = NULL;
        size_t n = 0;
        if (store_user_list(o->store, &users, &n) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, user_json(&users[i]));
        free(users);
        http_reply_json(reply, 200, arr);
}

/* Creates a user: by an admin (POST /v1/users, any role) or by anyone on an Oracle with
 * --open-signup (POST /v1/signup, provider or buyer only). */
static void user_create(const http_request_t *req, http_reply_t *reply, bool signup) {
        oracle_t *o = req->userdata;
        const char *name = body_str(req->body, "name", 63), *role = body_str(req->body, "role", 15);
        const char *password = body_str(req->body, "password", 1024);
        if (!name || !role || !password) {
                http_reply_error(reply, 400, "invalid", "a user needs \"name\", \"role\" and \"password\" (strings; "
                                                        "a password of 8 to 1024 bytes)");
                return;
        }
        if (signup && !streq(role, "provider") && !streq(role, "buyer")) {
                http_reply_error(reply, 403, "forbidden", "a signup makes a provider or a buyer, not an account of role %s", role);
                return;
        }
        _cleanup_free_ char *msg = NULL;
        int r = auth_user_create(o->auth, name, role, password, time_wall_ms(), &msg);
        if (r < 0) {
                reply_msg(reply, r, msg);
                return;
        }
        store_event_add(o->store, signup ? "user-signup" : "user-created", NULL, NULL, NULL, name);
        user_record_t u = { 0 };
        (void)store_user_get(o->store, name, &u);
        http_reply_json(reply, 201, user_json(&u));
}

static void h_user_create(const http_request_t *req, http_reply_t *reply) { user_create(req, reply, false); }

static void h_signup(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        if (!o->open_signup) {
                http_reply_error(reply, 403, "signup_closed",
                                 "this Oracle does not take signups (it runs without --open-signup); ask an admin");
                return;
        }
        user_create(req, reply, true);
}

static void h_user_delete(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        _cleanup_free_ char *msg = NULL;
        int r = auth_user_delete(o->auth, req->params[0], &msg);
        if (r < 0) {
                reply_msg(reply, r, msg);
                return;
        }
        store_event_add(o->store, "user-deleted", NULL, NULL, NULL, req->params[0]);
        http_reply_json(reply, 200, json_pack("{s:s}", "deleted", req->params[0]));
}

static void h_user_passwd(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const char *password = body_str(req->body, "password", 1024);
        if (!password) {
                http_reply_error(reply, 400, "invalid", "a new \"password\" (a string of 8 to 1024 bytes) is needed");
                return;
        }
        _cleanup_free_ char *msg = NULL;
        int r = auth_user_passwd(o->auth, req->params[0], password, &msg);
        if (r < 0) {
                reply_msg(reply, r, msg);
                return;
        }
        store_event_add(o->store, "user-password", NULL, NULL, NULL, req->params[0]);
        http_reply_json(reply, 200, json_pack("{s:s}", "name", req->params[0]));
}

static json_t *token_json(const token_record_t *t) {
        return json_pack("{s:s,s:s,s:s,s:s?,s:I,s:I,s:I,s:I}", "id", t->id, "user", t->user, "name", t->name, "role",
                         *t->role ? t->role : NULL, "created_ms", (json_int_t)t->created_ms, "expires_ms",
                         (json_int_t)t->expires_ms, "revoked_ms", (json_int_t)t->revoked_ms, "last_used_ms",
                         (json_int_t)t->last_used_ms);
}

/* GET /v1/tokens: one's own; ?all=1 everyone's, for a role that may read users. */
static void h_tokens(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const auth_principal_t *p = principal(req);
        const char *all = http_request_query(req, "all");
        bool everyone = all && streq(all, "1");
        if (everyone && !role_allows(p->role, PERM_USER_READ)) {
                http_reply_error(reply, 403, "forbidden", "%s: role %s may list only its own tokens", p->user,
                                 role_name(p->role));
                return;
        }
        token_record_t *tokens = NULL;
        size_t n = 0;
        if (store_token_list(o->store, everyone ? NULL : p->user, &tokens, &n) < 0) {
                http_reply_errno(reply, -EIO, "the store is unavailable");
                return;
        }
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
                json_array_append_new(arr, token_json(&tokens[i]));
        free(tokens);
        http_reply_json(reply, 200, arr);
}

static void h_token_create(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        const auth_principal_t *p = principal(req);
        const json_t *jname = json_object_get(req->body, "name"), *jrole = json_object_get(req->body, "role");
        const char *name = jname && !json_is_null(jname) ? body_str(req->body, "name", 63) : "api";
        const char *role = jrole && !json_is_null(jrole) ? body_str(req->body, "role", 15) : NULL;
        if (!name || !*name || (jrole && !json_is_null(jrole) && !role)) {
                http_reply_error(reply, 400, "invalid", "name and role must be strings (a name of 1 to 63 characters)");
                return;
        }
        int64_t ttl_s = 0;
        if (oracle_body_int(req->body, "expires_s", TOKEN_TTL_DEFAULT_S, 0, TOKEN_TTL_MAX_S, &ttl_s) < 0) {
                http_reply_error(reply, 400, "out_of_range", "expires_s must be an integer from 0 (never) to %lld",
                                 (long long)TOKEN_TTL_MAX_S);
                return;
        }
        /* no wider than the token the request came with: a narrowed token cannot mint wider ones */
        if (!role)
                role = role_name(p->role);
        role_t asked;
        if (role_parse(role, &asked) == 0 && !role_within(asked, p->role)) {
                http_reply_error(reply, 403, "forbidden", "role %s is wider than this token's role %s", role,
                                 role_name(p->role));
                return;
        }
        int64_t now = time_wall_ms();
        _cleanup_free_ char *text = NULL, *msg = NULL;
        char id[TOKEN_ID_LEN + 1];
        int r = auth_token_create(o->auth, p->user, name, role, ttl_s ? now + ttl_s * 1000 : 0, now, &text, id, &msg);
        if (r < 0) {
                reply_msg(reply, r, msg);
                return;
        }
        token_record_t t = { 0 };
        (void)store_token_get(o->store, id, &t);
        json_t *j = token_json(&t);
        json_object_set_new(j, "token", json_string(text));
        secret_wipe(text);
        http_reply_json(reply, 201, j);
}

static void h_token_revoke(const http_request_t *req, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        _cleanup_free_ char *msg = NULL;
        int r = auth_token_revoke(o->auth, req->params[0], time_wall_ms(), &msg);
        if (r < 0) {
                reply_msg(reply, r, msg);
                return;
        }
        store_event_add(o->store, "token-revoked", NULL, NULL, NULL, req->params[0]);
        http_reply_json(reply, 200, json_pack("{s:s}", "revoked", req->params[0]));
}

const http_route_t oracle_account_routes[] = {
        { "POST", "/v1/login", h_login, PERM_PUBLIC, OWNER_NONE },
        { "POST", "/v1/signup", h_signup, PERM_PUBLIC, OWNER_NONE },
        { "POST", "/v1/logout", h_logout, PERM_TOKEN, OWNER_NONE },
        { "GET", "/v1/whoami", h_whoami, PERM_ACCOUNT, OWNER_NONE },
        { "GET", "/v1/users", h_users, PERM_USER_READ, OWNER_NONE },
        { "POST", "/v1/users", h_user_create, PERM_USER_ACT, OWNER_NONE },
        { "DELETE", "/v1/users/:name", h_user_delete, PERM_USER_ACT, OWNER_NONE },
        { "POST", "/v1/users/:name/password", h_user_passwd, PERM_ACCOUNT, OWNER_SELF },
        { "GET", "/v1/tokens", h_tokens, PERM_TOKEN, OWNER_NONE },
        { "POST", "/v1/tokens", h_token_create, PERM_TOKEN, OWNER_NONE },
        { "DELETE", "/v1/tokens/:id", h_token_revoke, PERM_TOKEN, OWNER_TOKEN },
        { NULL, NULL, NULL, 0, 0 },
};
