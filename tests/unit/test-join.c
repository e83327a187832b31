/* Unit tests for RM enrolment: join token text (round trip, every malformed kind, oversized,
 * non-canonical), the join over a real store and CA (single use, expiry, another CA's token, a
 * wrong secret, an unknown id, a bad request, a second RM of one name), and a token spent
 * exactly once by two joins at the same time. */
#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "auth/enrol.h"
#include "auth/join-token.h"
#include "base/util.h"
#include "store/store-join.h"
#include "tap.h"
#include "tls/ca.h"
#include "tls/tls-identity.h"

#define T0 1700000000000LL

static char dir[256];

static void test_text(void) {
        uint8_t digest[JOIN_TOKEN_DIGEST_BYTES];
        for (size_t i = 0; i < sizeof digest; i++)
                digest[i] = (uint8_t)(i * 7 + 1);
        join_token_t j, back;
        CHECK(join_token_generate(digest, &j) == 0);
        char text[JOIN_TOKEN_TEXT_SIZE];
        join_token_format(&j, text);
        CHECK(strlen(text) == JOIN_TOKEN_TEXT_LEN && str_startswith(text, JOIN_TOKEN_PREFIX));
        CHECK(join_token_parse(text, &back) == 0);
        CHECK(memcmp(&back, &j, sizeof j) == 0);
        /* every position, every bad kind */
        char bad[JOIN_TOKEN_TEXT_SIZE + 8];
        CHECK(join_token_parse(NULL, &back) == -EINVAL && join_token_parse("", &back) == -EINVAL);
        snprintf(bad, sizeof bad, "%s", text);
        bad[JOIN_TOKEN_TEXT_LEN - 1] = 0;
        CHECK(join_token_parse(bad, &back) == -EINVAL); /* truncated */
        snprintf(bad, sizeof bad, "%sA", text);
        CHECK(join_token_parse(bad, &back) == -EINVAL); /* one too many */
        snprintf(bad, sizeof bad, "%s", text);
        bad[3] = 'x';
        CHECK(join_token_parse(bad, &back) == -EINVAL); /* prefix */
        snprintf(bad, sizeof bad, "%s", text);
        bad[6] = 'G';
        CHECK(join_token_parse(bad, &back) == -EINVAL); /* id not hex */
        snprintf(bad, sizeof bad, "%s", text);
        bad[30] = '+';
        CHECK(join_token_parse(bad, &back) == -EINVAL); /* secret not base64url */
        snprintf(bad, sizeof bad, "%s", text);
        bad[JOIN_TOKEN_TEXT_LEN - 44] = '.';
        CHECK(join_token_parse(bad, &back) == -EINVAL); /* separator */
        snprintf(bad, sizeof bad, "%s", text);
        bad[JOIN_TOKEN_TEXT_LEN - 5] = '=';
        CHECK(join_token_parse(bad, &back) == -EINVAL); /* digest not base64url */
        /* the digest's last character with spare bits set: another text for the same token */
        snprintf(bad, sizeof bad, "%s", text);
        char *last = &bad[JOIN_TOKEN_TEXT_LEN - 1];
        const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        int idx = (int)(strchr(alphabet, *last) - alphabet);
        *last = alphabet[idx ^ 1];
        CHECK(join_token_parse(bad, &back) == -EINVAL);
        /* an API token is not a join token */
        char api[TOKEN_TEXT_SIZE];
        token_format(&j.t, api);
        CHECK(join_token_parse(api, &back) == -EINVAL);
        /* oversized: 10 KB, and the parser does not read past its length + 1 */
        char *big = xcalloc(1, 10240 + 1);
        memset(big, 'a', 10240);
        memcpy(big, text, JOIN_TOKEN_TEXT_LEN);
        CHECK(join_token_parse(big, &back) == -EINVAL);
        free(big);
        /* the hash is keyed and apart from the API token's */
        uint8_t key[AUTH_KEY_BYTES] = { 1 }, key2[AUTH_KEY_BYTES] = { 2 }, h1[32], h2[32], h3[32];
        join_token_hash(key, &j, h1);
        join_token_hash(key2, &j, h2);
        token_hash(key, &j.t, h3);
        CHECK(memcmp(h1, h2, 32) != 0 && memcmp(h1, h3, 32) != 0);
}

typedef struct fixture {
        store_t *store;
        ca_t *ca, *other;
        enrol_t *e;
        uint8_t key[AUTH_KEY_BYTES];
} fixture_t;

static char *request(const char *name) {
        _cleanup_free_ char *key = xasprintf("%s/%s.key", dir, name);
        char *csr = NULL;
        CHECK(tls_key_generate(key) == 0 && tls_csr_make(key, name, &csr) == 0);
        return csr;
}

static void token(fixture_t *f, const char *role, int64_t ttl_s, char text[JOIN_TOKEN_TEXT_SIZE]) {
        _cleanup_free_ char *msg = NULL;
        CHECK(enrol_token_create(f->e, role, "prov1", ttl_s, "admin", T0, text, NULL, &msg) == 0);
}

static void test_join(fixture_t *f) {
        _cleanup_free_ char *csr = request("rm1"), *msg = NULL;
        char text[JOIN_TOKEN_TEXT_SIZE];
        token(f, "chamber", 3600, text);
        /* the store keeps no secret */
        join_token_t j;
        CHECK(join_token_parse(text, &j) == 0);
        join_token_record_t rec;
        CHECK(store_join_token_get(f->store, j.t.id, &rec) == 0 && rec.used_ms == 0 && streq(rec.role, "chamber"));
        CHECK(strstr(text, "vmxj_") == text);

        enrol_result_t res = { 0 };
        CHECK(enrol_join(f->e, text, "rm1", csr, false, T0 + 1000, &res, &msg) == 0 && res.cert_pem);
        CHECK_STREQ(res.cert.role, "chamber");
        CHECK_STREQ(res.cert.provider, "prov1");
        tls_peer_t p = { 0 };
        CHECK(tls_cert_verify(res.cert_pem, ca_cert_pem(f->ca), 0, &p, &msg) == 0);
        CHECK_STREQ(p.cn, "rm1");
        CHECK_STREQ(p.ou, TLS_OU_NODE);
        CHECK_STREQ(p.serial, res.cert.serial);
        rm_cert_record_t c;
        CHECK(store_rm_cert_get(f->store, "rm1", &c) == 0 && streq(c.serial, p.serial));
        CHECK(store_join_token_get(f->store, j.t.id, &rec) == 0 && rec.used_ms == T0 + 1000 && streq(rec.used_by, "rm1"));
        enrol_result_clear(&res);

        /* used twice: refused, nothing changes (not even for another RM name) */
        free(msg);
        msg = NULL;
        _cleanup_free_ char *csr2 = request("rm2");
        CHECK(enrol_join(f->e, text, "rm2", csr2, false, T0 + 2000, &res, &msg) == -EALREADY && !res.cert_pem && msg &&
              strstr(msg, "used already"));
        CHECK(store_rm_cert_get(f->store, "rm2", &c) == -ENOENT);
        CHECK(store_join_token_get(f->store, j.t.id, &rec) == 0 && rec.used_ms == T0 + 1000);

        /* expired */
        char t2[JOIN_TOKEN_TEXT_SIZE];
        token(f, "production", 60, t2);
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, t2, "rm2", csr2, false, T0 + 60 * 1000, &res, &msg) == -EACCES && msg &&
              strstr(msg, "expired"));
        CHECK(store_rm_cert_get(f->store, "rm2", &c) == -ENOENT);
        /* a wrong secret, an unknown id: the same answer */
        char t3[JOIN_TOKEN_TEXT_SIZE];
        token(f, "production", 60, t3);
        join_token_t w;
        CHECK(join_token_parse(t3, &w) == 0);
        w.t.secret[0] ^= 1;
        char wrong[JOIN_TOKEN_TEXT_SIZE];
        join_token_format(&w, wrong);
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, wrong, "rm2", csr2, false, T0, &res, &msg) == -EACCES && streq(msg, "invalid join token"));
        w.t.id[0] = w.t.id[0] == 'a' ? 'b' : 'a';
        join_token_format(&w, wrong);
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, wrong, "rm2", csr2, false, T0, &res, &msg) == -EACCES && streq(msg, "invalid join token"));
        /* a token of another Oracle's CA */
        uint8_t od[TLS_DIGEST_BYTES];
        ca_cert_digest(f->other, od);
        CHECK(join_token_parse(t3, &w) == 0);
        memcpy(w.ca_digest, od, sizeof od);
        join_token_format(&w, wrong);
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, wrong, "rm2", csr2, false, T0, &res, &msg) == -EACCES && strstr(msg, "another Oracle"));
        /* malformed, bad name, bad request: the token stays unspent */
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, "vmxj_nope", "rm2", csr2, false, T0, &res, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, t3, "Bad Name", csr2, false, T0, &res, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, t3, "oracle", csr2, false, T0, &res, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, t3, "rm2", "not a csr", false, T0, &res, &msg) == -EBADMSG);
        /* the name of an RM that is enrolled (and up: replace_ok false) */
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, t3, "rm1", csr2, false, T0, &res, &msg) == -EBUSY);
        CHECK(join_token_parse(t3, &w) == 0 && store_join_token_get(f->store, w.t.id, &rec) == 0 && rec.used_ms == 0);
        /* ... and now allowed (down): the new certificate replaces the old one */
        free(msg);
        msg = NULL;
        CHECK(enrol_join(f->e, t3, "rm1", csr2, true, T0, &res, &msg) == 0);
        CHECK(store_rm_cert_get(f->store, "rm1", &c) == 0 && streq(c.serial, res.cert.serial) && streq(c.role, "production"));
        CHECK(strcmp(c.serial, p.serial) != 0);
        enrol_result_clear(&res);
        /* token options */
        char t4[JOIN_TOKEN_TEXT_SIZE];
        free(msg);
        msg = NULL;
        CHECK(enrol_token_create(f->e, "admin", NULL, 60, "admin", T0, t4, NULL, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(enrol_token_create(f->e, "chamber", "Bad User", 60, "admin", T0, t4, NULL, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(enrol_token_create(f->e, "chamber", NULL, 0, "admin", T0, t4, NULL, &msg) == -EINVAL);
        free(msg);
        msg = NULL;
        CHECK(enrol_token_create(f->e, "chamber", NULL, JOIN_TOKEN_TTL_MAX_S + 1, "admin", T0, t4, NULL, &msg) == -EINVAL);
        CHECK(store_join_token_prune(f->store, T0 + 2 * 3600 * 1000LL) >= 3);
}

typedef struct racer {
        fixture_t *f;
        const char *text, *name, *csr;
        int r;
} racer_t;

static void *race(void *arg) {
        racer_t *x = arg;
        enrol_result_t res = { 0 };
        _cleanup_free_ char *msg = NULL;
        x->r = enrol_join(x->f->e, x->text, x->name, x->csr, false, T0, &res, &msg);
        enrol_result_clear(&res);
        return NULL;
}

static void test_race(fixture_t *f) {
        char text[JOIN_TOKEN_TEXT_SIZE];
        token(f, "chamber", 3600, text);
        _cleanup_free_ char *a = request("ra"), *b = request("rb");
        for (int round = 0; round < 5; round++) {
                char ta[JOIN_TOKEN_TEXT_SIZE];
                token(f, "chamber", 3600, ta);
                _cleanup_free_ char *na = xasprintf("race-a%d", round), *nb = xasprintf("race-b%d", round);
                racer_t x = { f, ta, na, a, 1 }, y = { f, ta, nb, b, 1 };
                pthread_t t1, t2;
                pthread_create(&t1, NULL, race, &x);
                pthread_create(&t2, NULL, race, &y);
                pthread_join(t1, NULL);
                pthread_join(t2, NULL);
                CHECK((x.r == 0) != (y.r == 0));
                CHECK(x.r == -EALREADY || y.r == -EALREADY);
        }
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vmx-join-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
                return 1;
        test_text();
        fixture_t f = { 0 };
        randombytes_buf(f.key, sizeof f.key);
        _cleanup_free_ char *db = xasprintf("%s/state.db", dir), *cadir = xasprintf("%s/ca", dir),
                            *odir = xasprintf("%s/other", dir), *msg = NULL;
        CHECK(store_open(db, &f.store) == 0);
        CHECK(ca_open(cadir, &f.ca, &msg) == 1 && ca_open(odir, &f.other, &msg) == 1);
        CHECK(enrol_new(f.store, f.key, f.ca, &f.e) == 0);
        test_join(&f);
        test_race(&f);
        enrol_free(f.e);
        ca_free(f.ca);
        ca_free(f.other);
        store_close(f.store);
        rm_rf(dir);
        return tap_finish();
}
