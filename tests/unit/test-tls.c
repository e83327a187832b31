/* Unit tests for src/tls: the CA (made once, reopened, damaged), certificates signed from a
 * request (the names they carry, verified against their CA and refused against another, expired
 * and not yet valid), malformed and foreign requests, identities (key of the certificate, mode
 * 0600, wrong CA), and the Oracle's own identity files (kept while good, reissued otherwise). */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "tap.h"
#include "tls/ca.h"
#include "tls/tls-identity.h"

static char dir[256];

static ca_t *ca_at(const char *name, int *ret_created) {
        _cleanup_free_ char *path = xasprintf("%s/%s", dir, name);
        _cleanup_free_ char *msg = NULL;
        ca_t *ca = NULL;
        int r = ca_open(path, &ca, &msg);
        if (r < 0)
                fprintf(stderr, "ca_open %s: %s\n", path, msg ? msg : strerror(-r));
        if (ret_created)
                *ret_created = r;
        return ca;
}

/* A node's key and request, as `vmatrix node --join` makes them. */
static char *node_request(const char *name, char **ret_key_path) {
        char *key = xasprintf("%s/%s.key", dir, name);
        char *csr = NULL;
        CHECK(tls_key_generate(key) == 0);
        struct stat st;
        CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
        CHECK(tls_csr_make(key, name, &csr) == 0 && csr && strstr(csr, "BEGIN CERTIFICATE REQUEST"));
        *ret_key_path = key;
        return csr;
}

static void test_ca(void) {
        int created = -1;
        ca_t *ca = ca_at("ca", &created);
        CHECK(ca && created == 1);
        _cleanup_free_ char *key = xasprintf("%s/ca/" CA_KEY_FILE, dir);
        struct stat st;
        CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
        _cleanup_free_ char *cadir = xasprintf("%s/ca", dir);
        CHECK(stat(cadir, &st) == 0 && (st.st_mode & 0777) == 0700);
        uint8_t d1[TLS_DIGEST_BYTES], d2[TLS_DIGEST_BYTES];
        ca_cert_digest(ca, d1);
        ca = ca_free(ca);
        /* reopened: the same CA, not a new one */
        ca = ca_at("ca", &created);
        CHECK(ca && created == 0);
        ca_cert_digest(ca, d2);
        CHECK(memcmp(d1, d2, sizeof d1) == 0);
        uint8_t d3[TLS_DIGEST_BYTES];
        CHECK(tls_cert_digest(ca_cert_pem(ca), d3) == 0 && memcmp(d1, d3, sizeof d1) == 0);
        ca_free(ca);
        /* a key that others may read is refused, not used */
        chmod(key, 0644);
        _cleanup_free_ char *msg = NULL;
        ca_t *bad = NULL;
        CHECK(ca_open(cadir, &bad, &msg) == -EPERM && !bad && msg && strstr(msg, "0600"));
        chmod(key, 0600);
        /* a certificate that is not the key's */
        _cleanup_free_ char *other = xasprintf("%s/other-ca", dir);
        ca_t *o = ca_at("other-ca", NULL);
        ca_free(o);
        _cleanup_free_ char *src = xasprintf("%s/" CA_CERT_FILE, other), *dst = xasprintf("%s/" CA_CERT_FILE, cadir);
        _cleanup_free_ char *saved = NULL, *foreign = NULL;
        CHECK(file_read(dst, &saved, NULL) == 0 && file_read(src, &foreign, NULL) == 0);
        CHECK(file_write_atomic(dst, foreign, strlen(foreign)) == 0);
        free(msg);
        msg = NULL;
        CHECK(ca_open(cadir, &bad, &msg) == -EBADMSG && msg && strstr(msg, "damaged"));
        CHECK(file_write_atomic(dst, saved, strlen(saved)) == 0);
}

static void test_sign(void) {
        ca_t *ca = ca_at("ca", NULL), *other = ca_at("other-ca", NULL);
        _cleanup_free_ char *key = NULL;
        _cleanup_free_ char *csr = node_request("rm1", &key);
        _cleanup_free_ char *dns = tls_peer_dns_name("rm1");
        CHECK_STREQ(dns, "rm1.rm.vmatrix");
        ca_cert_opts_t o = { .cn = "rm1", .ou = TLS_OU_NODE, .dns = dns, .client = true };
        _cleanup_free_ char *cert = NULL, *serial = NULL, *msg = NULL;
        CHECK(ca_sign_request(ca, csr, &o, &cert, &serial, &msg) == 0 && cert && serial && strlen(serial) >= 30);
        tls_peer_t p = { 0 };
        CHECK(tls_cert_verify(cert, ca_cert_pem(ca), 0, &p, &msg) == 0);
        CHECK_STREQ(p.cn, "rm1");
        CHECK_STREQ(p.ou, TLS_OU_NODE);
        CHECK_STREQ(p.serial, serial);
        CHECK(p.not_after_s > time_wall_ms() / 1000 + 4 * 365 * 86400LL);
        /* the CN is what the CA was told, not what the request asked for */
        _cleanup_free_ char *key2 = NULL;
        _cleanup_free_ char *csr2 = node_request("oracle", &key2);
        ca_cert_opts_t o2 = { .cn = "rm2", .ou = TLS_OU_NODE, .client = true };
        _cleanup_free_ char *cert2 = NULL;
        CHECK(ca_sign_request(ca, csr2, &o2, &cert2, NULL, &msg) == 0);
        tls_peer_t p2 = { 0 };
        CHECK(tls_cert_verify(cert2, ca_cert_pem(ca), 0, &p2, &msg) == 0);
        CHECK_STREQ(p2.cn, "rm2");
        CHECK(strcmp(p2.serial, p.serial) != 0);

        /* another CA does not vouch for it */
        free(msg);
        msg = NULL;
        CHECK(tls_cert_verify(cert, ca_cert_pem(other), 0, &p, &msg) == -EACCES && msg && strstr(msg, "not signed"));
        /* expired, and not yet valid */
        ca_cert_opts_t old = { .cn = "rm1", .ou = TLS_OU_NODE, .valid_from_s = -3 * 86400, .valid_days = 1 };
        _cleanup_free_ char *expired = NULL;
        CHECK(ca_sign_request(ca, csr, &old, &expired, NULL, &msg) == 0);
        free(msg);
        msg = NULL;
        CHECK(tls_cert_verify(expired, ca_cert_pem(ca), 0, NULL, &msg) == -EACCES && msg && strstr(msg, "expired"));
        free(msg);
        msg = NULL;
        CHECK(tls_cert_verify(cert, ca_cert_pem(ca), time_wall_ms() / 1000 - 86400, NULL, &msg) == -EACCES && msg &&
              strstr(msg, "not valid yet"));
        free(msg);
        msg = NULL;
        CHECK(tls_cert_verify(cert, ca_cert_pem(ca), time_wall_ms() / 1000 + 6 * 365 * 86400LL, NULL, &msg) == -EACCES);

        /* malformed requests change nothing and say why */
        const char *bad[] = { NULL, "", "hello", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *c = NULL, *m = NULL;
                CHECK(ca_sign_request(ca, bad[i], &o, &c, NULL, &m) == -EBADMSG && !c && m);
        }
        /* oversized */
        char *big = xcalloc(1, TLS_PEM_MAX + 100);
        memset(big, 'A', TLS_PEM_MAX + 50);
        _cleanup_free_ char *c = NULL, *m = NULL;
        CHECK(ca_sign_request(ca, big, &o, &c, NULL, &m) == -EBADMSG && !c);
        free(big);
        /* a request whose signature does not hold (its body altered) */
        _cleanup_free_ char *tampered = xstrdup(csr);
        char *mid = tampered + strlen("-----BEGIN CERTIFICATE REQUEST-----\n") + 40;
        *mid = *mid == 'A' ? 'B' : 'A';
        _cleanup_free_ char *c2 = NULL, *m2 = NULL;
        CHECK(ca_sign_request(ca, tampered, &o, &c2, NULL, &m2) == -EBADMSG && !c2);
        /* text that is no certificate */
        CHECK(tls_cert_verify("junk", ca_cert_pem(ca), 0, NULL, &m2) == -EBADMSG);
        ca_free(ca);
        ca_free(other);
}

static void test_identity(void) {
        ca_t *ca = ca_at("ca", NULL), *other = ca_at("other-ca", NULL);
        _cleanup_free_ char *key = NULL;
        _cleanup_free_ char *csr = node_request("rm3", &key);
        ca_cert_opts_t o = { .cn = "rm3", .ou = TLS_OU_NODE, .client = true };
        _cleanup_free_ char *cert = NULL, *msg = NULL;
        CHECK(ca_sign_request(ca, csr, &o, &cert, NULL, &msg) == 0);
        _cleanup_free_ char *cert_path = xasprintf("%s/rm3.pem", dir), *ca_path = xasprintf("%s/ca.pem", dir);
        _cleanup_free_ char *other_path = xasprintf("%s/other.pem", dir);
        tls_peer_t p = { 0 };
        CHECK(tls_identity_check(cert_path, key, ca_path, &p, &msg) == -ENOENT);
        CHECK(tls_file_write(cert_path, cert, 0644) == 0 && tls_file_write(ca_path, ca_cert_pem(ca), 0644) == 0);
        CHECK(tls_file_write(other_path, ca_cert_pem(other), 0644) == 0);
        CHECK(tls_identity_check(cert_path, key, ca_path, &p, &msg) == 0);
        CHECK_STREQ(p.cn, "rm3");
        /* wrong CA */
        CHECK(tls_identity_check(cert_path, key, other_path, &p, &msg) == -EACCES && msg);
        free(msg);
        msg = NULL;
        /* a key that is not the certificate's */
        _cleanup_free_ char *key4 = NULL;
        _cleanup_free_ char *csr4 = node_request("rm4", &key4);
        CHECK(tls_identity_check(cert_path, key4, ca_path, &p, &msg) == -EBADMSG && msg && strstr(msg, "belong"));
        free(msg);
        msg = NULL;
        /* a key others may read */
        chmod(key, 0640);
        CHECK(tls_identity_check(cert_path, key, ca_path, &p, &msg) == -EPERM);
        chmod(key, 0600);

        /* the Oracle's own identity: issued once, kept while it says the same, reissued when not */
        ca_cert_opts_t oo = { .cn = TLS_ORACLE_CN, .ou = TLS_OU_ORACLE, .dns = TLS_ORACLE_DNS, .client = true };
        _cleanup_free_ char *cadir = xasprintf("%s/ca", dir);
        free(msg);
        msg = NULL;
        CHECK(ca_identity_ensure(ca, cadir, "oracle", &oo, &msg) == 1);
        CHECK(ca_identity_ensure(ca, cadir, "oracle", &oo, &msg) == 0);
        ca_cert_opts_t api = { .cn = TLS_ORACLE_CN, .ou = TLS_OU_API, .ip = "127.0.0.1" };
        CHECK(ca_identity_ensure(ca, cadir, "api", &api, &msg) == 1);
        CHECK(ca_identity_ensure(ca, cadir, "api", &api, &msg) == 0);
        api.ip = "10.1.2.3"; /* the listen address moved */
        CHECK(ca_identity_ensure(ca, cadir, "api", &api, &msg) == 1);
        _cleanup_free_ char *ocert = xasprintf("%s/oracle.pem", cadir), *okey = xasprintf("%s/oracle.key", cadir);
        _cleanup_free_ char *cacert = xasprintf("%s/" CA_CERT_FILE, cadir);
        CHECK(tls_identity_check(ocert, okey, cacert, &p, &msg) == 0);
        CHECK_STREQ(p.ou, TLS_OU_ORACLE);
        CHECK(tls_peer_dns_name("Bad Name") == NULL);
        _cleanup_free_ char *on = tls_peer_dns_name(TLS_ORACLE_CN);
        CHECK_STREQ(on, TLS_ORACLE_DNS);
        ca_free(ca);
        ca_free(other);
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vmx-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
                return 1;
        test_ca();
        test_sign();
        test_identity();
        rm_rf(dir);
        return tap_finish();
}
