/* RM enrolment (enrol.h). */
#include "auth/enrol.h"

#include <sodium.h>
#include <string.h>

#include "base/util.h"

struct enrol {
        store_t *store;
        uint8_t key[AUTH_KEY_BYTES];
        ca_t *ca;
};

int enrol_new(store_t *store, const uint8_t key[AUTH_KEY_BYTES], ca_t *ca, enrol_t **ret) {
        if (sodium_init() < 0)
                return -EIO;
        enrol_t *e = xcalloc(1, sizeof *e);
        e->store = store;
        e->ca = ca;
        memcpy(e->key, key, sizeof e->key);
        *ret = e;
        return 0;
}

enrol_t *enrol_free(enrol_t *e) {
        if (!e)
                return NULL;
        sodium_memzero(e->key, sizeof e->key);
        free(e);
        return NULL;
}

void enrol_result_clear(enrol_result_t *r) {
        free(r->cert_pem);
        *r = (enrol_result_t){ 0 };
}

int enrol_token_create(enrol_t *e, const char *role, const char *provider, int64_t ttl_s, const char *created_by,
                       int64_t now_ms, char ret_text[JOIN_TOKEN_TEXT_SIZE], join_token_record_t *ret,
                       char **ret_msg) {
        if (!role || (!streq(role, "production") && !streq(role, "chamber"))) {
                *ret_msg = xasprintf("role must be production or chamber, not \"%s\"", role ? role : "");
                return -EINVAL;
        }
        if (provider && *provider && !name_is_valid(provider)) {
                *ret_msg = xasprintf("invalid provider name \"%s\"", provider);
                return -EINVAL;
        }
        if (ttl_s < 1 || ttl_s > JOIN_TOKEN_TTL_MAX_S) {
                *ret_msg = xasprintf("a join token lives 1 s to %d s (7 days)", JOIN_TOKEN_TTL_MAX_S);
                return -EINVAL;
        }
        uint8_t digest[TLS_DIGEST_BYTES];
        ca_cert_digest(e->ca, digest);
        join_token_t j;
        int r = join_token_generate(digest, &j);
        if (r < 0)
                return r;
        join_token_record_t rec = { .created_ms = now_ms, .expires_ms = now_ms + ttl_s * 1000 };
        SET(rec.id, j.t.id);
        SET(rec.role, role);
        SET(rec.provider, provider);
        SET(rec.created_by, created_by);
        join_token_hash(e->key, &j, rec.hash);
        r = store_join_token_insert(e->store, &rec);
        if (r >= 0)
                join_token_format(&j, ret_text);
        join_token_wipe(&j);
        if (r < 0) {
                *ret_msg = xasprintf("cannot record the join token: %s", strerror(-r));
                return r == -EEXIST ? -EIO : r;
        }
        if (ret)
                *ret = rec;
        return 0;
}

/* The token's row, when text is a join token of this CA whose secret is right. */
static int token_check(enrol_t *e, const char *text, join_token_record_t *ret, char **ret_msg) {
        join_token_t j;
        if (join_token_parse(text, &j) < 0) {
                *ret_msg = xstrdup("malformed join token (vmxj_...: make one with `vmatrix rm join-token create`)");
                return -EINVAL;
        }
        uint8_t digest[TLS_DIGEST_BYTES];
        ca_cert_digest(e->ca, digest);
        if (sodium_memcmp(digest, j.ca_digest, sizeof digest) != 0) {
                join_token_wipe(&j);
                *ret_msg = xstrdup("the join token is for another Oracle (its CA digest is not this CA's)");
                return -EACCES;
        }
        uint8_t hash[TOKEN_HASH_BYTES];
        join_token_hash(e->key, &j, hash);
        join_token_record_t rec;
        int r = store_join_token_get(e->store, j.t.id, &rec);
        join_token_wipe(&j);
        if (r == -ENOENT) {
                /* an unknown id costs what a known one does */
                randombytes_buf(rec.hash, sizeof rec.hash);
        } else if (r < 0) {
                *ret_msg = xstrdup("the store is unavailable");
                return -EIO;
        }
        bool match = token_hash_equal(hash, rec.hash);
        if (r < 0 || !match) {
                *ret_msg = xstrdup("invalid join token");
                return -EACCES;
        }
        *ret = rec;
        return 0;
}

int enrol_join(enrol_t *e, const char *token_text, const char *rm, const char *csr_pem, bool replace_ok,
               int64_t now_ms, enrol_result_t *ret, char **ret_msg) {
        if (!rm || !name_is_valid(rm) || streq(rm, TLS_ORACLE_CN)) {
                *ret_msg = xasprintf("invalid RM name \"%s\" (use a-z, 0-9 and -, not \"oracle\")", rm ? rm : "");
                return -EINVAL;
        }
        join_token_record_t tok;
        int r = token_check(e, token_text, &tok, ret_msg);
        if (r < 0)
                return r;
        if (tok.used_ms) {
                *ret_msg = xasprintf("the join token was used already (by RM \"%s\"); make a new one", tok.used_by);
                return -EALREADY;
        }
        if (now_ms >= tok.expires_ms) {
                *ret_msg = xasprintf("the join token expired %lld s ago; make a new one",
                                     (long long)(now_ms - tok.expires_ms) / 1000);
                return -EACCES;
        }
        rm_cert_record_t old;
        r = store_rm_cert_get(e->store, rm, &old);
        if (r >= 0 && !replace_ok) {
                *ret_msg = xasprintf("RM \"%s\" is enrolled and up; a new node cannot take its name", rm);
                return -EBUSY;
        }
        if (r < 0 && r != -ENOENT) {
                *ret_msg = xstrdup("the store is unavailable");
                return -EIO;
        }
        _cleanup_free_ char *dns = tls_peer_dns_name(rm), *pem = NULL, *serial = NULL;
        ca_cert_opts_t o = { .cn = rm, .ou = TLS_OU_NODE, .dns = dns, .client = true };
        r = ca_sign_request(e->ca, csr_pem, &o, &pem, &serial, ret_msg);
        if (r < 0)
                return r;
        tls_peer_t p = { 0 };
        _cleanup_free_ char *why = NULL;
        (void)tls_cert_verify(pem, ca_cert_pem(e->ca), 0, &p, &why);
        rm_cert_record_t c = { .not_after_s = p.not_after_s, .issued_ms = now_ms };
        SET(c.rm, rm);
        SET(c.role, tok.role);
        SET(c.provider, tok.provider);
        SET(c.serial, serial);
        SET(c.token, tok.id);
        /* spent exactly when the certificate is recorded */
        r = store_tx_begin(e->store);
        if (r >= 0) {
                r = store_join_token_use(e->store, tok.id, rm, now_ms);
                if (r >= 0)
                        r = store_rm_cert_put(e->store, &c);
                if (r >= 0)
                        r = store_tx_commit(e->store);
                else
                        store_tx_rollback(e->store);
        }
        if (r == -EALREADY) {
                *ret_msg = xstrdup("the join token was used already; make a new one");
                return r;
        }
        if (r < 0) {
                *ret_msg = xasprintf("cannot record the certificate: %s", strerror(-r));
                return -EIO;
        }
        ret->cert_pem = TAKE_PTR(pem);
        ret->cert = c;
        return 0;
}
