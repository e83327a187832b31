/* Harness: enrolment, the one route a client reaches without any credential but a join token.
 * The input is the body of POST /v1/join {token, name, csr}, loaded as the HTTP server loads
 * it and read as the Oracle reads it (oracle-join.c, auth/enrol.c): the strings, the join
 * token's text (join_token_parse), the RM name, and the certificate request signed by a real CA
 * made once in a temporary directory, with the options enrol_join gives it (ca_sign_request).
 * The same object's "certificate" and "ca" are then read as the node reads the Oracle's answer
 * and its GET /v1/join/ca before it trusts anything (tls_cert_digest, tls_cert_verify).
 * Checked: a signed certificate verifies against the CA and says the RM's name and OU=node; a
 * refusal says why; every OpenSSL object and string is freed. The store part of enrol_join (the
 * token's row, spending it) is not here: it is the store's, and a spent token would refuse
 * every later input. */
#include <stdbool.h>
#include <sys/stat.h>

#include "auth/join-token.h"
#include "base/util.h"
#include "fuzz.h"
#include "tls/ca.h"
#include "tls/tls-identity.h"

static struct {
        ca_t *ca;
        char dir[64];
} fz;

static void ca_close(void) {
        fz.ca = ca_free(fz.ca);
        rm_rf(fz.dir);
}

static void ca_make(void) {
        snprintf(fz.dir, sizeof fz.dir, "/tmp/vmatrix-fuzz-join.XXXXXX");
        FUZZ_CHECK(mkdtemp(fz.dir));
        char *ca_dir = xasprintf("%s/ca", fz.dir), *msg = NULL;
        FUZZ_CHECK(ca_open(ca_dir, &fz.ca, &msg) >= 0);
        free(ca_dir);
        atexit(ca_close);
}

static void check_sign(const char *name, const char *csr) {
        char *dns = tls_peer_dns_name(name), *pem = NULL, *serial = NULL, *msg = NULL;
        FUZZ_CHECK(dns);
        ca_cert_opts_t o = { .cn = name, .ou = TLS_OU_NODE, .dns = dns, .client = true };
        int r = ca_sign_request(fz.ca, csr, &o, &pem, &serial, &msg);
        if (r < 0) {
                FUZZ_CHECK(r == -EBADMSG || r == -EIO);
                FUZZ_CHECK(msg && !pem);
        } else {
                FUZZ_CHECK(pem && !msg);
                tls_peer_t p = { 0 };
                char *why = NULL;
                FUZZ_CHECK(tls_cert_verify(pem, ca_cert_pem(fz.ca), 0, &p, &why) == 0);
                FUZZ_CHECK(streq(p.cn, name) && streq(p.ou, TLS_OU_NODE));
                FUZZ_CHECK(!serial || strspn(serial, "0123456789abcdef") == strlen(serial));
                free(why);
        }
        free(msg);
        free(pem);
        free(serial);
        free(dns);
}

/* The node's reading of the Oracle's answers, before it trusts the CA. */
static void check_answer(const char *cert, const char *ca) {
        uint8_t digest[TLS_DIGEST_BYTES];
        if (ca)
                (void)tls_cert_digest(ca, digest);
        if (cert && ca) {
                tls_peer_t p = { 0 };
                char *msg = NULL;
                int r = tls_cert_verify(cert, ca, 0, &p, &msg);
                FUZZ_CHECK(r == 0 || r == -EBADMSG || r == -EACCES);
                free(msg);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!fz.ca)
                ca_make();
        json_t *body = fuzz_json_body(data, size);
        if (!body)
                return 0;
        const char *token = json_string_value(json_object_get(body, "token"));
        const char *name = json_string_value(json_object_get(body, "name"));
        const char *csr = json_string_value(json_object_get(body, "csr"));
        if (token) {
                join_token_t j;
                if (join_token_parse(token, &j) == 0)
                        FUZZ_CHECK(strlen(token) == JOIN_TOKEN_TEXT_LEN);
        }
        /* enrol_join's order: the name, (the token's row,) then the request */
        if (name && name_is_valid(name) && !streq(name, TLS_ORACLE_CN) && csr)
                check_sign(name, csr);
        check_answer(json_string_value(json_object_get(body, "certificate")),
                     json_string_value(json_object_get(body, "ca")));
        json_decref(body);
        return 0;
}
