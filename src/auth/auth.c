/* The account service (auth.h): logins, token checks and tokens, users. The admin of the
 * first start is in auth-bootstrap.c. */
#include "auth/auth.h"
#include "auth/auth-internal.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <string.h>

#include "auth/ratelimit.h"
#include "base/log.h"
#include "base/util.h"
#include "store/store-auth.h"

/* Tokens checked lately, so that a request costs a hash and a compare, not two store reads.
 * An entry is used only while its text hashes to the same value (compared in constant time),
 * for at most AUTH_CACHE_TTL_MS, and never past the token's expiry; revoking a token or
 * deleting its user here drops it at once. A role changed behind this Oracle's back (a second
 * Oracle, later) is seen within AUTH_CACHE_TTL_MS. */
#define AUTH_CACHE_SLOTS 1024
#define AUTH_CACHE_TTL_MS 5000

typedef struct cached_token {
        char id[TOKEN_ID_LEN + 1];      /* "" when the slot is free */
        uint8_t hash[TOKEN_HASH_BYTES];
        auth_principal_t principal;
        int64_t expires_ms;             /* the token's (0: never) */
        int64_t until_ms;               /* when this entry must be checked against the store again */
} cached_token_t;

struct auth {
        store_t *store;
        pthread_mutex_t cache_lock;
        cached_token_t cache[AUTH_CACHE_SLOTS];
        uint8_t key[AUTH_KEY_BYTES];
        auth_params_t params;
        ratelimit_t *limit;
        /* a real hash of a random password: an unknown user's login verifies against it, so
         * it costs what a known user's does and the time does not tell names apart */
        char dummy_hash[PASSWORD_HASH_SIZE];
        /* a hash no token has, compared against when the id is unknown, for the same reason */
        uint8_t dummy_token_hash[TOKEN_HASH_BYTES];
        _Atomic uint64_t checks, compares, refused, login_failures, login_limited;
};

int auth_new(store_t *store, const uint8_t key[AUTH_KEY_BYTES], const auth_params_t *params, auth_t **ret) {
        if (sodium_init() < 0)
                return -EIO;
        auth_t *a = xcalloc(1, sizeof *a);
        a->store = store;
        memcpy(a->key, key, AUTH_KEY_BYTES);
        if (params)
                a->params = *params;
        if (a->params.session_ttl_ms <= 0)
                a->params.session_ttl_ms = AUTH_SESSION_TTL_MS;
        a->limit = ratelimit_new();
        pthread_mutex_init(&a->cache_lock, NULL);
        randombytes_buf(a->dummy_token_hash, sizeof a->dummy_token_hash);
        char pw[33];
        auth_random_password(pw);
        _cleanup_free_ char *msg = NULL;
        int r = password_hash(pw, a->params.cost, a->dummy_hash, &msg);
        sodium_memzero(pw, sizeof pw);
        if (r < 0) {
                auth_free(a);
                return r;
        }
        *ret = a;
        return 0;
}

auth_t *auth_free(auth_t *a) {
        if (!a)
                return NULL;
        ratelimit_free(a->limit);
        pthread_mutex_destroy(&a->cache_lock);
        sodium_memzero(a->cache, sizeof a->cache);
        sodium_memzero(a->key, sizeof a->key);
        free(a);
        return NULL;
}

void auth_stats_get(auth_t *a, auth_stats_t *ret) {
        *ret = (auth_stats_t){ .checks = a->checks, .compares = a->compares, .refused = a->refused,
                               .login_failures = a->login_failures, .login_limited = a->login_limited };
}

store_t *auth_store(auth_t *a) { return a->store; }
password_cost_t auth_cost(auth_t *a) { return a->params.cost; }

void auth_random_password(char ret[33]) {
        uint8_t raw[24];
        randombytes_buf(raw, sizeof raw);
        sodium_bin2base64(ret, 33, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        sodium_memzero(raw, sizeof raw);
}

/* ---- tokens ---- */

/* The cache slot of a token id (its hex digits are random). */
static cached_token_t *cache_slot(auth_t *a, const char *id) {
        unsigned long v = strtoul((char[9]){ id[0], id[1], id[2], id[3], id[4], id[5], id[6], id[7], 0 }, NULL, 16);
        return &a->cache[v % AUTH_CACHE_SLOTS];
}

static bool cache_get(auth_t *a, const char *id, const uint8_t hash[TOKEN_HASH_BYTES], int64_t now_ms,
                      auth_principal_t *ret) {
        pthread_mutex_lock(&a->cache_lock);
        cached_token_t *c = cache_slot(a, id);
        bool hit = streq(c->id, id) && token_hash_equal(hash, c->hash) && now_ms < c->until_ms &&
                   c->until_ms - now_ms <= AUTH_CACHE_TTL_MS && (c->expires_ms == 0 || now_ms < c->expires_ms);
        if (hit)
                *ret = c->principal;
        pthread_mutex_unlock(&a->cache_lock);
        return hit;
}

static void cache_put(auth_t *a, const token_record_t *t, const auth_principal_t *p, int64_t now_ms) {
        pthread_mutex_lock(&a->cache_lock);
        cached_token_t *c = cache_slot(a, t->id);
        *c = (cached_token_t){ .principal = *p, .expires_ms = t->expires_ms, .until_ms = now_ms + AUTH_CACHE_TTL_MS };
        SET(c->id, t->id);
        memcpy(c->hash, t->hash, sizeof c->hash);
        pthread_mutex_unlock(&a->cache_lock);
}

/* Drops the cached token id, or every cached token of user (either may be NULL). */
static void cache_drop(auth_t *a, const char *id, const char *user) {
        pthread_mutex_lock(&a->cache_lock);
        for (size_t i = 0; i < AUTH_CACHE_SLOTS; i++) {
                cached_token_t *c = &a->cache[i];
                if (*c->id && ((id && streq(c->id, id)) || (user && streq(c->principal.user, user))))
                        sodium_memzero(c, sizeof *c);
        }
        pthread_mutex_unlock(&a->cache_lock);
}


static bool token_label_is_valid(const char *name) {
        size_t len = name ? strnlen(name, 64) : 0;
        if (len == 0 || len > 63)
                return false;
        for (size_t i = 0; i < len; i++)
                if ((unsigned char)name[i] < 0x20 || (unsigned char)name[i] >= 0x7f)
                        return false;
        return true;
}

int auth_token_create(auth_t *a, const char *user, const char *name, const char *role, int64_t expires_ms,
                      int64_t now_ms, char **ret_text, char ret_id[TOKEN_ID_LEN + 1], char **ret_msg) {
        if (!token_label_is_valid(name)) {
                *ret_msg = xstrdup("a token name has 1 to 63 printable characters");
                return -EINVAL;
        }
        if (expires_ms != 0 && expires_ms <= now_ms) {
                *ret_msg = xstrdup("a token's expiry must lie in the future");
                return -EINVAL;
        }
        user_record_t u;
        int r = store_user_get(a->store, user, &u);
        if (r == -ENOENT)
                *ret_msg = xasprintf("no user \"%s\"", user);
        if (r < 0)
                return r;
        role_t user_role, token_role;
        if (role_parse(u.role, &user_role) < 0) {
                *ret_msg = xasprintf("user \"%s\" has an unknown role \"%s\"", user, u.role);
                return -EINVAL;
        }
        if (role && role_parse(role, &token_role) < 0) {
                *ret_msg = xasprintf("unknown role \"%s\" (admin, operator, provider, buyer)", role);
                return -EINVAL;
        }
        if (role && !role_within(token_role, user_role)) {
                *ret_msg = xasprintf("role %s is wider than user \"%s\"'s role %s", role, user, u.role);
                return -EPERM;
        }
        token_record_t t = { .created_ms = now_ms, .expires_ms = expires_ms };
        SET(t.user, user);
        SET(t.name, name);
        SET(t.role, role ? role_name(token_role) : "");
        token_parts_t parts;
        /* a second try only for the 2^-64 chance that the random id is taken */
        for (int attempt = 0; attempt < 2; attempt++) {
                r = token_generate(&parts);
                if (r < 0)
                        break;
                SET(t.id, parts.id);
                token_hash(a->key, &parts, t.hash);
                r = store_token_insert(a->store, &t);
                if (r != -EEXIST)
                        break;
                token_parts_wipe(&parts);
        }
        if (r < 0) {
                token_parts_wipe(&parts);
                *ret_msg = xasprintf("cannot store a token for \"%s\": %s", user, strerror(-r));
                return r;
        }
        char text[TOKEN_TEXT_SIZE];
        token_format(&parts, text);
        *ret_text = xstrdup(text);
        memcpy(ret_id, parts.id, TOKEN_ID_LEN + 1);
        sodium_memzero(text, sizeof text);
        token_parts_wipe(&parts);
        return 0;
}

int auth_token_revoke(auth_t *a, const char *id, int64_t now_ms, char **ret_msg) {
        int r = store_token_revoke(a->store, id, now_ms);
        if (id)
                cache_drop(a, id, NULL);
        if (r == -ENOENT)
                *ret_msg = xasprintf("no token \"%s\"", id);
        else if (r < 0)
                *ret_msg = xasprintf("cannot revoke token \"%s\": %s", id, strerror(-r));
        return r;
}

/* The checks after the hash matched; false refuses. */
static bool token_usable(auth_t *a, const token_record_t *t, int64_t now_ms, auth_principal_t *ret) {
        if (t->revoked_ms != 0 || (t->expires_ms != 0 && now_ms >= t->expires_ms))
                return false;
        user_record_t u;
        role_t user_role, role;
        if (store_user_get(a->store, t->user, &u) < 0 || role_parse(u.role, &user_role) < 0)
                return false;
        role = user_role;
        if (*t->role) {
                role_t token_role;
                if (role_parse(t->role, &token_role) < 0)
                        return false;
                /* narrower of the two: a user whose role was lowered cannot keep a wider token */
                role = role_narrowest(token_role, user_role);
        }
        *ret = (auth_principal_t){ .role = role };
        SET(ret->user, t->user);
        SET(ret->token_id, t->id);
        return true;
}

int auth_check(auth_t *a, const char *token_text, int64_t now_ms, auth_principal_t *ret) {
        a->checks++;
        token_parts_t parts;
        if (token_parse(token_text, &parts) < 0) {
                a->refused++;
                return -EACCES;
        }
        uint8_t hash[TOKEN_HASH_BYTES];
        char id[TOKEN_ID_LEN + 1];
        token_hash(a->key, &parts, hash);
        memcpy(id, parts.id, sizeof id);
        token_parts_wipe(&parts);
        a->compares++;
        if (cache_get(a, id, hash, now_ms, ret))
                return 0;
        token_record_t t;
        int r = store_token_get(a->store, id, &t);
        if (r < 0 && r != -ENOENT)
                return r;
        /* compared whether the id was found or not (see dummy_token_hash) */
        const uint8_t *stored = r >= 0 ? t.hash : a->dummy_token_hash;
        bool match = token_hash_equal(hash, stored) && r >= 0;
        auth_principal_t p;
        if (!match || !token_usable(a, &t, now_ms, &p)) {
                a->refused++;
                return -EACCES;
        }
        cache_put(a, &t, &p, now_ms);
        if (now_ms - t.last_used_ms >= AUTH_TOUCH_INTERVAL_MS)
                (void)store_token_touch(a->store, t.id, now_ms); /* best effort: a use is not lost work */
        *ret = p;
        return 0;
}

/* ---- logins ---- */

static void login_failed(auth_t *a, const char *user, const char *ip, int64_t now_ms, const char *why) {
        a->login_failures++;
        _cleanup_free_ char *ukey = xasprintf("user:%s", user);
        int locked = ratelimit_fail(a->limit, ukey, RATELIMIT_USER_FAILURES, now_ms);
        if (ip) {
                _cleanup_free_ char *akey = xasprintf("addr:%s", ip);
                locked |= ratelimit_fail(a->limit, akey, RATELIMIT_ADDR_FAILURES, now_ms);
        }
        _cleanup_free_ char *reason = xasprintf("login of \"%.63s\" from %.63s: %s%s", user, ip ? ip : "local", why,
                                                locked ? "; locked out" : "");
        utf8_sanitize(reason);
        (void)store_event_add(a->store, "auth-failed", NULL, NULL, NULL, reason);
}

static int login_limited(auth_t *a, const char *user, const char *ip, int64_t now_ms, char **ret_msg) {
        _cleanup_free_ char *ukey = xasprintf("user:%s", user);
        int64_t retry = 0;
        if (ratelimit_check(a->limit, ukey, now_ms, &retry) < 0) {
                *ret_msg = xasprintf("too many failed logins for user \"%.63s\"; try again in %lld s", user,
                                     (long long)(retry + 999) / 1000);
                return -EAGAIN;
        }
        if (ip) {
                _cleanup_free_ char *akey = xasprintf("addr:%s", ip);
                if (ratelimit_check(a->limit, akey, now_ms, &retry) < 0) {
                        *ret_msg = xasprintf("too many failed logins from %.63s; try again in %lld s", ip,
                                             (long long)(retry + 999) / 1000);
                        return -EAGAIN;
                }
        }
        return 0;
}

int auth_login(auth_t *a, const char *user, const char *password, const char *ip, int64_t now_ms, char **ret_token,
               char **ret_msg) {
        if (!user)
                user = "";
        int r = login_limited(a, user, ip, now_ms, ret_msg);
        if (r < 0) {
                a->login_limited++;
                _cleanup_free_ char *reason =
                        xasprintf("login of \"%.63s\" from %.63s: refused by the failed-login limit", user, ip ? ip : "local");
                utf8_sanitize(reason);
                (void)store_event_add(a->store, "auth-failed", NULL, NULL, NULL, reason);
                return r;
        }
        user_record_t u;
        r = name_is_valid(user) ? store_user_get(a->store, user, &u) : -ENOENT;
        if (r < 0 && r != -ENOENT)
                return r;
        bool known = r >= 0;
        r = password_verify(known ? u.password_hash : a->dummy_hash, password);
        if (!known || r < 0) {
                login_failed(a, user, ip, now_ms, known ? "wrong password" : "no such user");
                *ret_msg = xstrdup("wrong user name or password");
                return -EACCES;
        }
        _cleanup_free_ char *ukey = xasprintf("user:%s", user);
        ratelimit_reset(a->limit, ukey);
        char id[TOKEN_ID_LEN + 1];
        return auth_token_create(a, user, "session", NULL, now_ms + a->params.session_ttl_ms, now_ms, ret_token, id,
                                 ret_msg);
}

/* ---- users ---- */

int auth_user_create(auth_t *a, const char *name, const char *role, const char *password, int64_t now_ms,
                     char **ret_msg) {
        if (!name_is_valid(name)) {
                *ret_msg = xasprintf("bad user name \"%.63s\": 1 to 63 of a-z, 0-9 and -", name ? name : "");
                return -EINVAL;
        }
        role_t rl;
        if (role_parse(role, &rl) < 0) {
                *ret_msg = xasprintf("unknown role \"%.15s\" (admin, operator, provider, buyer)", role ? role : "");
                return -EINVAL;
        }
        user_record_t u = { .created_ms = now_ms };
        SET(u.name, name);
        SET(u.role, role_name(rl));
        int r = password_hash(password, a->params.cost, u.password_hash, ret_msg);
        if (r < 0)
                return r;
        r = store_user_insert(a->store, &u);
        if (r == -EEXIST)
                *ret_msg = xasprintf("user \"%s\" exists", name);
        else if (r < 0)
                *ret_msg = xasprintf("cannot store user \"%s\": %s", name, strerror(-r));
        return r;
}

int auth_user_passwd(auth_t *a, const char *name, const char *password, char **ret_msg) {
        char hash[PASSWORD_HASH_SIZE];
        int r = password_hash(password, a->params.cost, hash, ret_msg);
        if (r < 0)
                return r;
        r = store_user_set_password(a->store, name, hash);
        if (r == -ENOENT)
                *ret_msg = xasprintf("no user \"%s\"", name);
        else if (r < 0)
                *ret_msg = xasprintf("cannot store the password of \"%s\": %s", name, strerror(-r));
        return r;
}

int auth_user_delete(auth_t *a, const char *name, char **ret_msg) {
        int r = store_user_delete(a->store, name);
        if (r >= 0)
                cache_drop(a, NULL, name);
        if (r == -ENOENT)
                *ret_msg = xasprintf("no user \"%s\"", name);
        else if (r == -EBUSY)
                *ret_msg = xasprintf("user \"%s\" is the last admin; make another admin first", name);
        else if (r < 0)
                *ret_msg = xasprintf("cannot delete user \"%s\": %s", name, strerror(-r));
        return r;
}
