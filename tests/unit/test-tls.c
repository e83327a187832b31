/* Unit tests for src/tls: the CA (made once, reopened, damaged), certificates signed from a
 * request (the names they carry, verified against their CA and refused against another, expired
 * and not yet valid), malformed and foreign requests, identities (key of the certificate, mode
 * 0600, wrong CA), the Oracle's own identity files (kept while good, reissued otherwise), and an
 * RM's migration identity (the subject QEMU's tls-authz compares, as GnuTLS prints it; a name
 * no client of the control channel takes for the RM); an upgraded TLS connection whose client
 * leaves ends for the function that only reads it. */
#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/util.h"
#include "net/http-client.h"
#include "net/http-server.h"
#include "net/stream.h"
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
        free(m2);
        m2 = NULL;
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

/* Answers who the client certificate says the caller is. */
static void h_who(const http_request_t *req, http_reply_t *reply) {
        tls_peer_t p = { 0 };
        int r = http_request_peer(req, &p);
        tls_peer_t again = { 0 };
        if (r == 0 && (http_request_peer(req, &again) != 0 || !streq(again.cn, p.cn)))
                r = -EIO;
        http_reply_json(reply, 200, json_pack("{s:i,s:s,s:s}", "r", r, "cn", p.cn, "ou", p.ou));
}

static const http_route_t who_routes[] = {
        { "GET", "/v1/who", h_who, 1, 0 },
        { NULL },
};


/* A node's identity files under dir/NAME.{key,pem}, signed by ca. */
static void node_identity(ca_t *ca, const char *name, char **ret_cert, char **ret_key) {
        _cleanup_free_ char *csr = node_request(name, ret_key);
        _cleanup_free_ char *dns = tls_peer_dns_name(name), *cert = NULL, *msg = NULL;
        ca_cert_opts_t o = { .cn = name, .ou = TLS_OU_NODE, .dns = dns, .client = true };
        CHECK(ca_sign_request(ca, csr, &o, &cert, NULL, &msg) == 0);
        *ret_cert = xasprintf("%s/%s.pem", dir, name);
        CHECK(tls_file_write(*ret_cert, cert, 0644) == 0);
}

/* A TLS server of the CA's Oracle identity, asking for client certificates of the CA: who is
 * seen for each kind of client, a wrong peer name refused by the client, a stalled client
 * dropped after the first-request timeout while others are served. */
static void test_channel(void) {
        ca_t *ca = ca_at("ca", NULL), *other = ca_at("other-ca", NULL);
        _cleanup_free_ char *cadir = xasprintf("%s/ca", dir), *msg = NULL;
        ca_cert_opts_t oo = { .cn = TLS_ORACLE_CN, .ou = TLS_OU_ORACLE, .dns = TLS_ORACLE_DNS, .client = true };
        CHECK(ca_identity_ensure(ca, cadir, "oracle", &oo, &msg) >= 0);
        _cleanup_free_ char *cert_path = xasprintf("%s/oracle.pem", cadir), *key_path = xasprintf("%s/oracle.key", cadir);
        _cleanup_free_ char *cert = NULL, *key = NULL, *ca_path = xasprintf("%s/" CA_CERT_FILE, cadir);
        CHECK(file_read(cert_path, &cert, NULL) == 0 && file_read(key_path, &key, NULL) == 0);
        int port = tap_free_port();
        _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
        http_server_t *s = NULL;
        http_server_params_t sp = { .listen = listen, .routes = who_routes, .tls_cert = cert, .tls_key = key,
                                    .tls_trust = ca_cert_pem(ca), .first_request_timeout_s = 1 };
        CHECK(http_server_start(&sp, &s) == 0);
        _cleanup_free_ char *url = xasprintf("https://127.0.0.1:%d/v1/who", port);

        _cleanup_free_ char *rm_cert = NULL, *rm_key = NULL, *x_cert = NULL, *x_key = NULL;
        node_identity(ca, "rm1", &rm_cert, &rm_key);
        node_identity(other, "rmx", &x_cert, &x_key);

        http_tls_t *as_rm = NULL, *anon = NULL, *foreign = NULL;
        CHECK(http_tls_new(ca_path, rm_cert, rm_key, &as_rm) == 0);
        CHECK(http_tls_new(ca_path, NULL, NULL, &anon) == 0);
        CHECK(http_tls_new(ca_path, x_cert, x_key, &foreign) == 0);
        CHECK(http_tls_new(ca_path, rm_cert, NULL, &foreign) == -EINVAL);

        /* a node's certificate, the Oracle expected: seen as rm1, kept alive over calls; its
         * chain verified once for the connection, though every call asks twice (as the
         * Oracle's authorizer and heartbeat do) */
        http_server_stats_t st0, st1;
        http_server_stats(s, &st0);
        http_handle_t *h = http_handle_new();
        for (int i = 0; i < 20; i++) {
                http_call_t call = { .tls = as_rm, .peer = TLS_ORACLE_CN, .handle = h };
                http_response_t resp = { 0 };
                CHECK(http_call_json(&call, "GET", url, NULL, 5000, &resp) == 0 && resp.status == 200);
                CHECK(json_integer_value(json_object_get(resp.json, "r")) == 0);
                CHECK_STREQ(json_string_value(json_object_get(resp.json, "cn")), "rm1");
                CHECK_STREQ(json_string_value(json_object_get(resp.json, "ou")), TLS_OU_NODE);
                http_response_clear(&resp);
        }
        http_server_stats(s, &st1);
        CHECK(st1.total - st0.total == 1);
        CHECK(st1.peer_verifications - st0.peer_verifications == 1);
        h = http_handle_free(h);
        /* the server is not the peer asked for (an RM expected): the client refuses it */
        http_call_t wrong = { .tls = as_rm, .peer = "rm2" };
        http_response_t resp = { 0 };
        CHECK(http_call_json(&wrong, "GET", url, NULL, 5000, &resp) == -EKEYREJECTED);
        /* no peer name: the URL's address is checked, and the certificate does not name it */
        http_call_t by_address = { .tls = as_rm };
        CHECK(http_call_json(&by_address, "GET", url, NULL, 5000, &resp) == -EKEYREJECTED);
        /* the peer named in the URL, with the process's default identity */
        http_client_tls_default(as_rm);
        _cleanup_free_ char *named = xasprintf("https://oracle@127.0.0.1:%d/v1/who", port);
        _cleanup_free_ char *misnamed = xasprintf("https://rm2@127.0.0.1:%d/v1/who", port);
        CHECK(http_request_json("GET", named, NULL, 5000, &resp) == 0 && resp.status == 200);
        CHECK_STREQ(json_string_value(json_object_get(resp.json, "cn")), "rm1");
        http_response_clear(&resp);
        CHECK(http_request_json("GET", misnamed, NULL, 5000, &resp) == -EKEYREJECTED);
        http_client_tls_default(NULL);
        /* a peer name needs https */
        _cleanup_free_ char *plain = xasprintf("http://127.0.0.1:%d/v1/who", port);
        http_call_t on_plain = { .tls = as_rm, .peer = TLS_ORACLE_CN };
        CHECK(http_call_json(&on_plain, "GET", plain, NULL, 5000, &resp) == -EINVAL);
        /* without a client certificate, and with one of another CA: no peer */
        http_call_t a = { .tls = anon, .peer = TLS_ORACLE_CN };
        CHECK(http_call_json(&a, "GET", url, NULL, 5000, &resp) == 0 && resp.status == 200);
        CHECK(json_integer_value(json_object_get(resp.json, "r")) == -ENOKEY);
        http_response_clear(&resp);
        http_call_t f = { .tls = foreign, .peer = TLS_ORACLE_CN };
        int r = http_call_json(&f, "GET", url, NULL, 5000, &resp);
        /* GnuTLS may end the handshake at once or let the request through unverified */
        CHECK(r == -EKEYREJECTED || (r == 0 && json_integer_value(json_object_get(resp.json, "r")) == -EACCES));
        http_response_clear(&resp);
        /* a client of another CA's trust does not take the server */
        http_tls_t *distrust = NULL;
        _cleanup_free_ char *other_ca = xasprintf("%s/other-ca/" CA_CERT_FILE, dir);
        CHECK(http_tls_new(other_ca, rm_cert, rm_key, &distrust) == 0);
        http_call_t d = { .tls = distrust, .peer = TLS_ORACLE_CN };
        CHECK(http_call_json(&d, "GET", url, NULL, 5000, &resp) == -EKEYREJECTED);

        /* a client that connects and sends nothing: others are served meanwhile, and the
         * server drops it once the first-request timeout passed */
        int stall = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        CHECK(connect(stall, (struct sockaddr *)&sa, sizeof sa) == 0);
        int64_t t0 = time_now_ms();
        http_call_t ok = { .tls = as_rm, .peer = TLS_ORACLE_CN };
        CHECK(http_call_json(&ok, "GET", url, NULL, 5000, &resp) == 0 && resp.status == 200);
        http_response_clear(&resp);
        CHECK(time_now_ms() - t0 < 900);
        /* (it may say goodbye with a TLS alert before it closes) */
        char b[256];
        ssize_t n = 1;
        struct pollfd pfd = { .fd = stall, .events = POLLIN };
        while (n > 0 && poll(&pfd, 1, 4000) == 1)
                n = read(stall, b, sizeof b);
        CHECK(n <= 0);
        int64_t held = time_now_ms() - t0;
        CHECK(held >= 800 && held < 4000);
        close(stall);

        http_tls_free(as_rm);
        http_tls_free(anon);
        http_tls_free(foreign);
        http_tls_free(distrust);
        http_server_stop(s);
        ca_free(ca);
        ca_free(other);
}

/* The subject of pem as QEMU's tls-authz sees it: gnutls_x509_crt_get_dn, the call QEMU 7.2
 * makes in crypto/tlssession.c (malloc'd, NULL on failure). ret_host_ok: whether GnuTLS takes
 * the certificate for host, as QEMU's tls-hostname check does. */
static char *gnutls_dn(const char *pem, const char *host, bool *ret_host_ok) {
        gnutls_x509_crt_t x;
        if (gnutls_x509_crt_init(&x) < 0)
                return NULL;
        gnutls_datum_t d = { .data = (unsigned char *)pem, .size = (unsigned)strlen(pem) };
        char buf[1024];
        size_t size = sizeof buf;
        char *dn = NULL;
        if (gnutls_x509_crt_import(x, &d, GNUTLS_X509_FMT_PEM) >= 0 && gnutls_x509_crt_get_dn(x, buf, &size) >= 0)
                dn = xstrdup(buf);
        *ret_host_ok = dn && gnutls_x509_crt_check_hostname(x, host) != 0;
        gnutls_x509_crt_deinit(x);
        return dn;
}

/* Answers 200 to anyone: a server whose own certificate is the point. */
static void h_any(const http_request_t *req, http_reply_t *reply) { http_reply_json(reply, 200, json_object()); }

static const http_route_t any_routes[] = {
        { "GET", "/v1/any", h_any, 1, 0 },
        { NULL },
};

static void test_migration(void) {
        ca_t *ca = ca_at("ca", NULL);
        _cleanup_free_ char *key = NULL, *cert = NULL, *msg = NULL;
        _cleanup_free_ char *csr = node_request("rm1", &key);
        CHECK(ca_sign_migration(ca, "rm1", csr, &cert, &msg) == 0 && cert);
        tls_peer_t p = { 0 };
        CHECK(tls_cert_verify(cert, ca_cert_pem(ca), 0, &p, &msg) == 0);
        CHECK_STREQ(p.cn, "rm1");
        CHECK_STREQ(p.ou, TLS_OU_MIGRATION);
        CHECK(p.not_after_s - p.not_before_s == CA_MIGRATION_VALID_DAYS * 86400);
        CHECK(p.not_before_s <= time_wall_ms() / 1000);

        /* the names: what QEMU's tls-authz compares and what its tls-hostname checks */
        _cleanup_free_ char *id = tls_migration_authz_id("rm1"), *dns = tls_migration_dns_name("rm1");
        CHECK_STREQ(id, "OU=migration,CN=rm1");
        CHECK_STREQ(dns, "rm1.migration.vmatrix");
        bool host_ok = false, rm_host_ok = true;
        _cleanup_free_ char *dn = gnutls_dn(cert, dns, &host_ok), *dn2 = gnutls_dn(cert, "rm1.rm.vmatrix", &rm_host_ok);
        CHECK_STREQ(dn, id);
        CHECK(host_ok);
        CHECK(!rm_host_ok); /* never the RM's own name */
        CHECK(tls_migration_authz_id("Bad Name") == NULL && tls_migration_dns_name("a.b") == NULL);
        CHECK(tls_migration_authz_id(TLS_ORACLE_CN) == NULL && tls_migration_dns_name(NULL) == NULL);
        _cleanup_free_ char *bad = NULL;
        CHECK(ca_sign_migration(ca, "Bad Name", csr, &bad, &msg) == -EINVAL && !bad);
        free(msg);
        msg = NULL;
        CHECK(ca_sign_migration(ca, "rm1", "junk", &bad, &msg) == -EBADMSG && !bad);

        /* a server showing the migration certificate is not RM rm1 to a client of the channel */
        _cleanup_free_ char *key_pem = NULL, *ca_path = xasprintf("%s/ca/" CA_CERT_FILE, dir);
        CHECK(file_read(key, &key_pem, NULL) == 0);
        int port = tap_free_port();
        _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
        http_server_t *s = NULL;
        http_server_params_t sp = { .listen = listen, .routes = any_routes, .tls_cert = cert, .tls_key = key_pem,
                                    .tls_trust = ca_cert_pem(ca), .first_request_timeout_s = 1 };
        CHECK(http_server_start(&sp, &s) == 0);
        http_tls_t *anon = NULL;
        CHECK(http_tls_new(ca_path, NULL, NULL, &anon) == 0);
        _cleanup_free_ char *url = xasprintf("https://127.0.0.1:%d/v1/any", port);
        http_call_t as_rm = { .tls = anon, .peer = "rm1" };
        http_response_t resp = { 0 };
        CHECK(http_call_json(&as_rm, "GET", url, NULL, 5000, &resp) == -EKEYREJECTED);
        http_response_clear(&resp);
        http_tls_free(anon);
        http_server_stop(s);
        ca_free(ca);
}

/* An upgraded connection that only reads (as a console nobody types in): what it read and
 * whether it saw the end, for test_upgrade_end. */
static struct {
        pthread_mutex_t lock;
        char got[64];
        size_t len;
        int ended; /* functions that saw the end */
} reader = { .lock = PTHREAD_MUTEX_INITIALIZER };

static void read_to_end(void *data, int fd, const char *extra, size_t extra_len) {
        char buf[64];
        for (;;) {
                /* with TLS, fd is libmicrohttpd's socketpair end, which does not block */
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (poll(&p, 1, -1) < 0 && errno == EINTR)
                        continue;
                ssize_t k = read(fd, buf, sizeof buf);
                if (k < 0 && (errno == EAGAIN || errno == EINTR))
                        continue;
                if (k <= 0)
                        break;
                pthread_mutex_lock(&reader.lock);
                size_t n = MIN((size_t)k, sizeof reader.got - 1 - reader.len);
                memcpy(reader.got + reader.len, buf, n);
                reader.len += n;
                pthread_mutex_unlock(&reader.lock);
        }
        pthread_mutex_lock(&reader.lock);
        reader.ended++;
        pthread_mutex_unlock(&reader.lock);
}

static void h_read(const http_request_t *req, http_reply_t *reply) {
        http_reply_upgrade(reply, "test-read", read_to_end, NULL);
}

static const http_route_t read_routes[] = {
        { "GET", "/v1/read", h_read, 1, 0 },
        { NULL },
};

static int reader_ended(int want, int ms) {
        int n = 0;
        for (int i = 0; i <= ms / 10; i++) {
                pthread_mutex_lock(&reader.lock);
                n = reader.ended;
                pthread_mutex_unlock(&reader.lock);
                if (n >= want)
                        break;
                time_sleep_ms(10);
        }
        return n;
}

/* libmicrohttpd does not pass a TLS client's end on to an upgraded connection's function by
 * itself (http-server.c, upgrade_watch): a function that only reads sees the end of a client
 * that left, after every byte the client sent; a client that stays is not cut. */
static void test_upgrade_end(void) {
        ca_t *ca = ca_at("ca", NULL);
        _cleanup_free_ char *cadir = xasprintf("%s/ca", dir), *msg = NULL;
        _cleanup_free_ char *cert_path = xasprintf("%s/oracle.pem", cadir), *key_path = xasprintf("%s/oracle.key", cadir);
        _cleanup_free_ char *cert = NULL, *key = NULL, *ca_path = xasprintf("%s/" CA_CERT_FILE, cadir);
        CHECK(file_read(cert_path, &cert, NULL) == 0 && file_read(key_path, &key, NULL) == 0);
        int port = tap_free_port();
        _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
        http_server_t *s = NULL;
        http_server_params_t sp = { .listen = listen, .routes = read_routes, .tls_cert = cert, .tls_key = key,
                                    .tls_trust = ca_cert_pem(ca) };
        CHECK(http_server_start(&sp, &s) == 0);
        _cleanup_free_ char *rm_cert = NULL, *rm_key = NULL;
        node_identity(ca, "rm3", &rm_cert, &rm_key);
        http_tls_t *as_rm = NULL;
        CHECK(http_tls_new(ca_path, rm_cert, rm_key, &as_rm) == 0);
        http_client_tls_default(as_rm);
        _cleanup_free_ char *target = xasprintf("https://oracle@127.0.0.1:%d", port);

        /* one stays, one leaves after a few bytes */
        int stays = -1, leaves = -1;
        CHECK(stream_upgrade_connect(target, "/v1/read", "test-read", NULL, &stays, &msg) == 0);
        CHECK(stream_upgrade_connect(target, "/v1/read", "test-read", NULL, &leaves, &msg) == 0);
        CHECK(stream_write_all(leaves, "bye", 3) == 0);
        if (leaves >= 0)
                close(leaves);
        CHECK(reader_ended(1, 5000) == 1);
        pthread_mutex_lock(&reader.lock);
        reader.got[reader.len] = 0;
        CHECK_STREQ(reader.got, "bye");
        pthread_mutex_unlock(&reader.lock);
        /* the other is still there */
        CHECK(reader_ended(2, 300) == 1);
        if (stays >= 0)
                close(stays);
        CHECK(reader_ended(2, 5000) == 2);

        http_client_tls_default(NULL);
        http_tls_free(as_rm);
        http_server_stop(s);
        ca_free(ca);
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vmx-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
                return 1;
        test_ca();
        test_sign();
        test_identity();
        test_channel();
        test_migration();
        test_upgrade_end();
        rm_rf(dir);
        return tap_finish();
}
