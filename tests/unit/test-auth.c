/* Unit tests for src/auth: roles and permissions, passwords, token text, the account service
 * over a real store (expiry, narrower roles, revocation, deleted users, the last admin, the
 * failed-login limit on an injected clock), the server key and the first start's admin. */
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/auth-key.h"
#include "auth/auth.h"
#include "auth/password.h"
#include "auth/ratelimit.h"
#include "auth/roles.h"
#include "auth/token.h"
#include "base/util.h"
#include "store/store-auth.h"
#include "tap.h"

#define T0 1700000000000LL

static void test_roles(void) {
        role_t r;
        CHECK(role_parse("operator", &r) == 0 && r == ROLE_OPERATOR);
        CHECK(role_parse("root", &r) == -EINVAL && role_parse(NULL, &r) == -EINVAL);
        for (int i = 0; i < _ROLE_MAX; i++)
                CHECK(role_parse(role_name((role_t)i), &r) == 0 && r == (role_t)i);
        CHECK(role_within(ROLE_BUYER, ROLE_ADMIN) && !role_within(ROLE_OPERATOR, ROLE_PROVIDER));
        CHECK(role_narrowest(ROLE_ADMIN, ROLE_PROVIDER) == ROLE_PROVIDER);
        /* §10 sentence by sentence */
        for (int p = 0; p < _PERM_MAX; p++)
                CHECK(role_allows(ROLE_ADMIN, (perm_t)p) == (p != PERM_NODE && p != PERM_ORACLE && p != PERM_JOIN && p != PERM_NONE));
        CHECK(role_allows(ROLE_OPERATOR, PERM_VM_ACT) && role_allows(ROLE_OPERATOR, PERM_RM_ACT));
        CHECK(role_allows(ROLE_OPERATOR, PERM_SERVICE_ACT) && role_allows(ROLE_OPERATOR, PERM_IMAGE_ACT));
        CHECK(!role_allows(ROLE_OPERATOR, PERM_USER_READ) && !role_allows(ROLE_OPERATOR, PERM_USER_ACT));
        CHECK(role_allows(ROLE_PROVIDER, PERM_RM_ACT) && role_allows(ROLE_PROVIDER, PERM_OFFER_ACT));
        CHECK(role_allows(ROLE_PROVIDER, PERM_VM_READ));
        CHECK(!role_allows(ROLE_PROVIDER, PERM_VM_ACT) && !role_allows(ROLE_PROVIDER, PERM_VM_CONSOLE));
        CHECK(!role_allows(ROLE_PROVIDER, PERM_IMAGE_ACT) && !role_allows(ROLE_PROVIDER, PERM_USER_READ));
        CHECK(role_allows(ROLE_BUYER, PERM_VM_ACT) && role_allows(ROLE_BUYER, PERM_ACCOUNT));
        CHECK(!role_allows(ROLE_BUYER, PERM_RM_READ) && !role_allows(ROLE_BUYER, PERM_SERVICE_READ));
        CHECK(!role_allows(ROLE_BUYER, PERM_EVENT_READ) && !role_allows(ROLE_BUYER, PERM_NEST_READ));
        for (int i = 0; i < _ROLE_MAX; i++)
                CHECK(!role_allows((role_t)i, PERM_NODE) && role_allows((role_t)i, PERM_TOKEN) &&
                      !role_allows((role_t)i, PERM_NONE) && role_allows((role_t)i, PERM_PUBLIC));
        CHECK(!role_allows((role_t)_ROLE_MAX, PERM_VM_READ) && !role_allows(ROLE_ADMIN, (perm_t)_PERM_MAX));
        CHECK(role_sees_all(ROLE_OPERATOR) && !role_sees_all(ROLE_PROVIDER) && !role_sees_all(ROLE_BUYER));
        perm_t p;
        CHECK(perm_parse("vm-console", &p) == 0 && p == PERM_VM_CONSOLE && perm_parse("x", &p) == -EINVAL);
        for (int i = 0; i < _PERM_MAX; i++)
                CHECK(perm_parse(perm_name((perm_t)i), &p) == 0 && p == (perm_t)i);
        CHECK_STREQ(owner_rule_name(OWNER_RM), "rm");
        CHECK(owner_rule_name((owner_rule_t)_OWNER_MAX) == NULL);
}

static void test_password(void) {
        char hash[PASSWORD_HASH_SIZE];
        char *msg = NULL;
        CHECK(password_hash("correct horse", PASSWORD_COST_MIN, hash, &msg) == 0);
        CHECK(str_startswith(hash, "$argon2id$"));
        CHECK(password_verify(hash, "correct horse") == 0);
        CHECK(password_verify(hash, "correct horsf") == -EACCES);
        CHECK(password_verify(hash, "") == -EACCES && password_verify(hash, NULL) == -EACCES);
        CHECK(password_verify("plain", "correct horse") == -EINVAL);
        CHECK(password_hash("short", PASSWORD_COST_MIN, hash, &msg) == -EINVAL && msg && strstr(msg, "at least 8"));
        free(msg);
        msg = NULL;
        CHECK(password_hash("", PASSWORD_COST_MIN, hash, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        char *big = malloc(PASSWORD_MAX + 2);
        memset(big, 'p', PASSWORD_MAX + 1);
        big[PASSWORD_MAX + 1] = 0;
        CHECK(password_hash(big, PASSWORD_COST_MIN, hash, &msg) == -EINVAL && msg && strstr(msg, "at most 1024"));
        free(msg);
        msg = NULL;
        CHECK(password_verify(hash, big) == -EACCES);
        big[PASSWORD_MAX] = 0; /* exactly the maximum is fine */
        CHECK(password_hash(big, PASSWORD_COST_MIN, hash, &msg) == 0 && password_verify(hash, big) == 0);
        free(big);
}

static void test_token_text(void) {
        token_parts_t t, back;
        char text[TOKEN_TEXT_SIZE];
        CHECK(token_generate(&t) == 0);
        token_format(&t, text);
        CHECK(strlen(text) == TOKEN_TEXT_LEN && str_startswith(text, "vmx_") && text[4 + TOKEN_ID_LEN] == '_');
        CHECK(token_parse(text, &back) == 0 && streq(back.id, t.id) && memcmp(back.secret, t.secret, 32) == 0);
        char bad[TOKEN_TEXT_SIZE + 8];
        strcpy(bad, text);
        bad[0] = 'w';
        CHECK(token_parse(bad, &back) == -EINVAL);                              /* prefix */
        strcpy(bad, text);
        bad[5] = 'G';
        CHECK(token_parse(bad, &back) == -EINVAL);                              /* id not hex */
        strcpy(bad, text);
        bad[TOKEN_TEXT_LEN - 3] = '+';
        CHECK(token_parse(bad, &back) == -EINVAL);                              /* not base64url */
        strcpy(bad, text);
        bad[4 + TOKEN_ID_LEN] = '.';
        CHECK(token_parse(bad, &back) == -EINVAL);                              /* separator */
        strcpy(bad, text);
        bad[TOKEN_TEXT_LEN - 1] = 0;
        CHECK(token_parse(bad, &back) == -EINVAL);                              /* truncated */
        strcpy(bad, text);
        strcat(bad, "A");
        CHECK(token_parse(bad, &back) == -EINVAL);                              /* one too many */
        CHECK(token_parse("", &back) == -EINVAL && token_parse(NULL, &back) == -EINVAL);
        char *huge = malloc(10 * 1024 + 1);
        memcpy(huge, text, TOKEN_TEXT_LEN);
        memset(huge + TOKEN_TEXT_LEN, 'A', 10 * 1024 - TOKEN_TEXT_LEN);
        huge[10 * 1024] = 0;
        CHECK(token_parse(huge, &back) == -EINVAL);                             /* 10 KB */
        free(huge);
        /* non-canonical: the last character's 2 spare bits set names the same bytes */
        strcpy(bad, text);
        const char *b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        char last = bad[TOKEN_TEXT_LEN - 1];
        bad[TOKEN_TEXT_LEN - 1] = b64[(strchr(b64, last) - b64) ^ 1];
        CHECK(token_parse(bad, &back) == -EINVAL);

        uint8_t key[AUTH_KEY_BYTES] = { 1 }, other[AUTH_KEY_BYTES] = { 2 }, h1[32], h2[32], h3[32];
        token_hash(key, &t, h1);
        token_hash(key, &t, h2);
        token_hash(other, &t, h3);
        CHECK(token_hash_equal(h1, h2) && !token_hash_equal(h1, h3));
        h2[31] ^= 1;
        CHECK(!token_hash_equal(h1, h2));
}

static void test_ratelimit(void) {
        ratelimit_t *rl = ratelimit_new();
        int64_t retry = 0, now = T0;
        for (int i = 0; i < RATELIMIT_USER_FAILURES - 1; i++)
                CHECK(ratelimit_fail(rl, "k", RATELIMIT_USER_FAILURES, now + i) == 0);
        CHECK(ratelimit_check(rl, "k", now + 10, &retry) == 0);
        CHECK(ratelimit_fail(rl, "k", RATELIMIT_USER_FAILURES, now + 10) == 1);
        CHECK(ratelimit_check(rl, "k", now + 11, &retry) == -EAGAIN && retry == RATELIMIT_DELAY_MS - 1);
        CHECK(ratelimit_check(rl, "other", now + 11, &retry) == 0);
        now += 10 + RATELIMIT_DELAY_MS;
        CHECK(ratelimit_check(rl, "k", now, &retry) == 0);
        for (int i = 0; i < RATELIMIT_USER_FAILURES; i++)
                ratelimit_fail(rl, "k", RATELIMIT_USER_FAILURES, now);
        CHECK(ratelimit_check(rl, "k", now, &retry) == -EAGAIN && retry == 2 * RATELIMIT_DELAY_MS); /* doubled */
        /* failures spread wider than the window never lock */
        for (int i = 0; i < 3 * RATELIMIT_USER_FAILURES; i++)
                CHECK(ratelimit_fail(rl, "slow", RATELIMIT_USER_FAILURES, T0 + (int64_t)i * (RATELIMIT_WINDOW_MS / 2 + 1)) ==
                      0);
        ratelimit_reset(rl, "k");
        CHECK(ratelimit_check(rl, "k", now, &retry) == 0);
        ratelimit_free(rl);
}

typedef struct fixture {
        char dir[64];
        store_t *s;
        auth_t *a;
        uint8_t key[AUTH_KEY_BYTES];
} fixture_t;

static void fixture_open(fixture_t *f) {
        snprintf(f->dir, sizeof f->dir, "/tmp/vmx-test-auth-XXXXXX");
        CHECK(mkdtemp(f->dir) != NULL);
        _cleanup_free_ char *path = xasprintf("%s/state.db", f->dir);
        CHECK(store_open(path, &f->s) == 0);
        char *msg = NULL;
        CHECK(auth_key_load_or_create(f->dir, f->key, &msg) == 1);
        free(msg);
        auth_params_t params = { .cost = PASSWORD_COST_MIN };
        CHECK(auth_new(f->s, f->key, &params, &f->a) == 0);
}

static void fixture_close(fixture_t *f) {
        f->a = auth_free(f->a);
        f->s = store_close(f->s);
        rm_rf(f->dir);
}

static void user(fixture_t *f, const char *name, const char *role) {
        char *msg = NULL;
        CHECK(auth_user_create(f->a, name, role, "password-of-" "user", T0, &msg) == 0);
        if (msg)
                fprintf(stderr, "  %s\n", msg);
        free(msg);
}

static char *token(fixture_t *f, const char *u, const char *role, int64_t expires_ms) {
        char *text = NULL, *msg = NULL, id[TOKEN_ID_LEN + 1];
        int r = auth_token_create(f->a, u, "t", role, expires_ms, T0, &text, id, &msg);
        CHECK(r == 0);
        if (msg)
                fprintf(stderr, "  %s\n", msg);
        free(msg);
        return text;
}

static void test_check(void) {
        fixture_t f = { 0 };
        fixture_open(&f);
        user(&f, "ann", "admin");
        user(&f, "bob", "buyer");
        user(&f, "olga", "operator");
        auth_principal_t p;
        auth_stats_t st0, st1;

        _cleanup_free_ char *t = token(&f, "olga", NULL, 0);
        CHECK(auth_check(f.a, t, T0 + 1, &p) == 0 && streq(p.user, "olga") && p.role == ROLE_OPERATOR);
        CHECK(strlen(p.token_id) == TOKEN_ID_LEN && str_startswith(t + 4, p.token_id));
        token_record_t row;
        CHECK(store_token_get(f.s, p.token_id, &row) == 0 && row.last_used_ms == T0 + 1);

        /* a wrong secret for an existing id goes through the constant-time comparison */
        char wrong[TOKEN_TEXT_SIZE];
        strcpy(wrong, t);
        wrong[TOKEN_TEXT_LEN - 2] = wrong[TOKEN_TEXT_LEN - 2] == 'A' ? 'B' : 'A';
        auth_stats_get(f.a, &st0);
        CHECK(auth_check(f.a, wrong, T0, &p) == -EACCES);
        auth_stats_get(f.a, &st1);
        CHECK(st1.compares == st0.compares + 1 && st1.refused == st0.refused + 1);
        /* so does an unknown id; a malformed text is refused before any lookup */
        memcpy(wrong + 4, "0123456789abcdef", TOKEN_ID_LEN);
        CHECK(auth_check(f.a, wrong, T0, &p) == -EACCES);
        CHECK(auth_check(f.a, "vmx_nope", T0, &p) == -EACCES);
        auth_stats_get(f.a, &st0);
        CHECK(st0.compares == st1.compares + 1 && st0.refused == st1.refused + 2);

        /* expiry: good before, refused at and after */
        _cleanup_free_ char *te = token(&f, "bob", NULL, T0 + 1000);
        CHECK(auth_check(f.a, te, T0 + 999, &p) == 0 && p.role == ROLE_BUYER);
        CHECK(auth_check(f.a, te, T0 + 1000, &p) == -EACCES);
        char *text = NULL, *msg = NULL, id[TOKEN_ID_LEN + 1];
        CHECK(auth_token_create(f.a, "bob", "t", NULL, T0 - 1, T0, &text, id, &msg) == -EINVAL && msg);
        free(msg);
        msg = NULL;

        /* a narrower role is the effective one; a wider one is refused at creation */
        _cleanup_free_ char *tn = token(&f, "ann", "buyer", 0);
        CHECK(auth_check(f.a, tn, T0, &p) == 0 && streq(p.user, "ann") && p.role == ROLE_BUYER);
        CHECK(auth_token_create(f.a, "bob", "t", "operator", 0, T0, &text, id, &msg) == -EPERM);
        CHECK(msg && strstr(msg, "wider"));
        free(msg);
        msg = NULL;
        CHECK(auth_token_create(f.a, "bob", "t", "king", 0, T0, &text, id, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(auth_token_create(f.a, "nobody", "t", NULL, 0, T0, &text, id, &msg) == -ENOENT);
        free(msg);
        msg = NULL;
        CHECK(auth_token_create(f.a, "bob", "", NULL, 0, T0, &text, id, &msg) == -EINVAL);
        free(msg);
        msg = NULL;

        /* revocation takes effect on the very next check */
        CHECK(auth_check(f.a, t, T0 + 2, &p) == 0);
        CHECK(auth_token_revoke(f.a, p.token_id, T0 + 3, &msg) == 0);
        CHECK(auth_check(f.a, t, T0 + 4, &p) == -EACCES);
        CHECK(auth_token_revoke(f.a, "ffffffffffffffff", T0, &msg) == -ENOENT && msg);
        free(msg);
        msg = NULL;

        /* a deleted user's tokens are refused (and gone) */
        _cleanup_free_ char *tb = token(&f, "bob", NULL, 0);
        CHECK(auth_check(f.a, tb, T0, &p) == 0);
        char bob_id[TOKEN_ID_LEN + 1];
        memcpy(bob_id, p.token_id, sizeof bob_id);
        CHECK(auth_user_delete(f.a, "bob", &msg) == 0);
        CHECK(auth_check(f.a, tb, T0, &p) == -EACCES);
        CHECK(store_token_get(f.s, bob_id, &row) == -ENOENT);

        /* the last admin cannot be deleted, also not by itself; with a second admin it can */
        CHECK(auth_user_delete(f.a, "ann", &msg) == -EBUSY && msg && strstr(msg, "last admin"));
        free(msg);
        msg = NULL;
        CHECK(auth_check(f.a, tn, T0, &p) == 0);
        user(&f, "adam", "admin");
        CHECK(auth_user_delete(f.a, "ann", &msg) == 0);
        CHECK(auth_user_delete(f.a, "adam", &msg) == -EBUSY);
        free(msg);
        msg = NULL;
        CHECK(auth_user_delete(f.a, "ann", &msg) == -ENOENT);
        free(msg);
        msg = NULL;

        /* a token made under another server key is refused */
        uint8_t key2[AUTH_KEY_BYTES];
        randombytes_buf(key2, sizeof key2);
        auth_t *a2 = NULL;
        auth_params_t params = { .cost = PASSWORD_COST_MIN };
        CHECK(auth_new(f.s, key2, &params, &a2) == 0);
        _cleanup_free_ char *to = token(&f, "olga", NULL, 0);
        CHECK(auth_check(a2, to, T0, &p) == -EACCES && auth_check(f.a, to, T0, &p) == 0);
        auth_free(a2);

        /* users: bad names, roles, passwords, duplicates; passwd */
        CHECK(auth_user_create(f.a, "Bad Name", "buyer", "long enough", T0, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(auth_user_create(f.a, "carl", "god", "long enough", T0, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(auth_user_create(f.a, "carl", "buyer", "short", T0, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(auth_user_create(f.a, "olga", "buyer", "long enough", T0, &msg) == -EEXIST && msg);
        free(msg);
        msg = NULL;
        CHECK(auth_user_passwd(f.a, "olga", "a new password", &msg) == 0);
        CHECK(auth_login(f.a, "olga", "a new password", NULL, T0, &text, &msg) == 0);
        free(text);
        CHECK(auth_user_passwd(f.a, "nobody", "a new password", &msg) == -ENOENT);
        free(msg);
        fixture_close(&f);
}

static int login(fixture_t *f, const char *u, const char *pw, const char *ip, int64_t now) {
        char *text = NULL, *msg = NULL;
        int r = auth_login(f->a, u, pw, ip, now, &text, &msg);
        if (r == 0) {
                auth_principal_t p;
                CHECK(auth_check(f->a, text, now, &p) == 0 && streq(p.user, u));
                CHECK(auth_check(f->a, text, now + AUTH_SESSION_TTL_MS, &p) == -EACCES); /* a session ends */
        } else {
                CHECK(msg != NULL);
                CHECK(r != -EAGAIN || strstr(msg, "try again in"));
        }
        free(text);
        free(msg);
        return r;
}

static void test_login(void) {
        fixture_t f = { 0 };
        fixture_open(&f);
        user(&f, "bob", "buyer");
        user(&f, "eve", "buyer");
        const char *good = "password-of-user";
        CHECK(login(&f, "bob", good, "10.0.0.1", T0) == 0);
        CHECK(login(&f, "bob", "wrong password", "10.0.0.1", T0) == -EACCES);
        CHECK(login(&f, "nobody", good, "10.0.0.1", T0) == -EACCES); /* same answer as a wrong password */

        /* per user: 5 failures from 5 addresses lock bob, even with the right password */
        int64_t now = T0 + 100000;
        for (int i = 0; i < RATELIMIT_USER_FAILURES; i++) {
                char ip[32];
                snprintf(ip, sizeof ip, "10.1.0.%d", i);
                CHECK(login(&f, "bob", "wrong password", ip, now + i) == -EACCES);
        }
        CHECK(login(&f, "bob", good, "10.2.0.1", now + 10) == -EAGAIN);
        CHECK(login(&f, "eve", good, "10.2.0.1", now + 10) == 0); /* others are not */
        CHECK(login(&f, "bob", good, "10.2.0.1", now + RATELIMIT_DELAY_MS + 10) == 0);

        /* per address: 20 failures against 20 names lock 10.3.0.1 for everyone */
        now += 10 * RATELIMIT_DELAY_MS;
        for (int i = 0; i < RATELIMIT_ADDR_FAILURES; i++) {
                char name[16];
                snprintf(name, sizeof name, "u%d", i);
                CHECK(login(&f, name, "wrong password", "10.3.0.1", now + i) == -EACCES);
        }
        CHECK(login(&f, "eve", good, "10.3.0.1", now + 10) == -EAGAIN);
        CHECK(login(&f, "eve", good, "10.3.0.2", now + 10) == 0);
        auth_stats_t st;
        auth_stats_get(f.a, &st);
        CHECK(st.login_limited == 2 && st.login_failures == 2 + RATELIMIT_USER_FAILURES + RATELIMIT_ADDR_FAILURES);
        json_t *ev = NULL;
        CHECK(store_event_list(f.s, 0, 1000, &ev) == 0 &&
              json_array_size(ev) == 4 + RATELIMIT_USER_FAILURES + RATELIMIT_ADDR_FAILURES);
        CHECK_STREQ(json_string_value(json_object_get(json_array_get(ev, 0), "kind")), "auth-failed");
        json_decref(ev);
        fixture_close(&f);
}

static mode_t file_mode(const char *path) {
        struct stat sb;
        return stat(path, &sb) == 0 ? sb.st_mode & 07777 : 0;
}

static void test_key_and_bootstrap(void) {
        fixture_t f = { 0 };
        fixture_open(&f);
        _cleanup_free_ char *key_path = xasprintf("%s/auth.key", f.dir);
        CHECK(file_mode(key_path) == 0600 && file_size(key_path) == AUTH_KEY_BYTES);
        uint8_t again[AUTH_KEY_BYTES];
        char *msg = NULL;
        CHECK(auth_key_load_or_create(f.dir, again, &msg) == 0 && memcmp(again, f.key, sizeof again) == 0);
        chmod(key_path, 0644);
        CHECK(auth_key_load_or_create(f.dir, again, &msg) == -EPERM && msg && strstr(msg, "0600"));
        free(msg);
        msg = NULL;
        chmod(key_path, 0600);
        CHECK(truncate(key_path, 5) == 0);
        CHECK(auth_key_load_or_create(f.dir, again, &msg) == -EINVAL && msg);
        free(msg);
        msg = NULL;

        _cleanup_free_ char *tok_path = xasprintf("%s/admin.token", f.dir);
        CHECK(auth_bootstrap_admin(f.a, f.dir, T0, &msg) == 1);
        CHECK(file_mode(tok_path) == 0600);
        char *text = NULL;
        size_t len = 0;
        CHECK(file_read(tok_path, &text, &len) == 0 && len == TOKEN_TEXT_LEN + 1 && text[TOKEN_TEXT_LEN] == '\n');
        text[TOKEN_TEXT_LEN] = 0;
        auth_principal_t p;
        CHECK(auth_check(f.a, text, T0 + 365LL * 86400000, &p) == 0 && streq(p.user, "admin") && p.role == ROLE_ADMIN);
        /* a second start changes nothing: same file, one admin, one token */
        CHECK(auth_bootstrap_admin(f.a, f.dir, T0 + 1, &msg) == 0);
        char *text2 = NULL;
        CHECK(file_read(tok_path, &text2, &len) == 0 && strncmp(text, text2, TOKEN_TEXT_LEN) == 0);
        free(text2);
        token_record_t *list = NULL;
        size_t n = 0;
        CHECK(store_token_list(f.s, "admin", &list, &n) == 0 && n == 1);
        free(list);
        /* file gone, admin there: nothing is made again */
        unlink(tok_path);
        CHECK(auth_bootstrap_admin(f.a, f.dir, T0 + 2, &msg) == 0 && !file_exists(tok_path));
        CHECK(auth_check(f.a, text, T0, &p) == 0);
        /* the admin cannot log in with a guess: its password was random */
        CHECK(login(&f, "admin", "password-of-user", NULL, T0) == -EACCES);
        free(text);
        fixture_close(&f);

        /* no users but a stale admin.token: refused, the file kept */
        fixture_open(&f);
        _cleanup_free_ char *stale = xasprintf("%s/admin.token", f.dir);
        CHECK(file_write_atomic(stale, "old\n", 4) == 0);
        CHECK(auth_bootstrap_admin(f.a, f.dir, T0, &msg) == -EEXIST && msg);
        free(msg);
        size_t users = 9;
        CHECK(store_user_count(f.s, &users) == 0 && users == 0);
        CHECK(file_read(stale, &text, &len) == 0 && streq(text, "old\n"));
        free(text);
        fixture_close(&f);
}

/* Checked tokens are cached, but a revocation or a user's deletion is seen at once, an expiry on
 * time, and a cached entry never answers for another secret of the same id. */
static void test_cache(void) {
        fixture_t f = { 0 };
        fixture_open(&f);
        user(&f, "cara", "buyer");
        user(&f, "dan", "buyer");
        char *msg = NULL;
        auth_principal_t p;
        _cleanup_free_ char *t1 = token(&f, "cara", NULL, 0);
        CHECK(auth_check(f.a, t1, T0, &p) == 0 && auth_check(f.a, t1, T0 + 1, &p) == 0 && streq(p.user, "cara"));
        /* the same id with another secret: refused though the id is cached */
        char forged[TOKEN_TEXT_SIZE];
        snprintf(forged, sizeof forged, "%s", t1);
        forged[TOKEN_TEXT_LEN - 2] = forged[TOKEN_TEXT_LEN - 2] == 'A' ? 'B' : 'A';
        CHECK(auth_check(f.a, forged, T0 + 2, &p) == -EACCES);
        CHECK(auth_check(f.a, t1, T0 + 3, &p) == 0);
        CHECK(auth_token_revoke(f.a, p.token_id, T0 + 4, &msg) == 0);
        CHECK(auth_check(f.a, t1, T0 + 5, &p) == -EACCES);
        /* expiry: cached before, refused after */
        _cleanup_free_ char *t2 = token(&f, "dan", NULL, T0 + 1000);
        CHECK(auth_check(f.a, t2, T0 + 10, &p) == 0 && auth_check(f.a, t2, T0 + 999, &p) == 0);
        CHECK(auth_check(f.a, t2, T0 + 1000, &p) == -EACCES);
        /* deleting a user drops their cached tokens */
        _cleanup_free_ char *t3 = token(&f, "dan", NULL, 0);
        CHECK(auth_check(f.a, t3, T0 + 20, &p) == 0);
        CHECK(auth_user_delete(f.a, "dan", &msg) == 0);
        CHECK(auth_check(f.a, t3, T0 + 21, &p) == -EACCES);
        free(msg);
        fixture_close(&f);
}

int main(void) {
        test_roles();
        test_password();
        test_token_text();
        test_ratelimit();
        test_check();
        test_login();
        test_cache();
        test_key_and_bootstrap();
        return tap_finish();
}
