/* The node's migration identity (node-tls.c node_tls_migration) against a stand-in Oracle: a
 * mutual-TLS server of the CA that signs migration certificates as the Oracle's route does and
 * counts the requests. Made once and then reused; renewed with a new key past half its life;
 * a failed renewal keeps a certificate that is still valid and fails without one; a file that is
 * not a migration certificate of this RM (the node's own, another RM's) is never used. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/util.h"
#include "net/http-client.h"
#include "net/http-server.h"
#include "node/node-internal.h"
#include "tap.h"
#include "tls/ca.h"
#include "tls/tls-identity.h"

static char dir[256];
static ca_t *ca;
static int calls;
static bool refuse;

/* POST /v1/rms/:name/migration-cert, as oracle-join.c answers it (its authorizer aside). */
static void h_migration_cert(const http_request_t *req, http_reply_t *reply) {
        calls++;
        tls_peer_t p = { 0 };
        const char *csr = json_string_value(json_object_get(req->body, "csr"));
        if (refuse || http_request_peer(req, &p) < 0 || !streq(p.ou, TLS_OU_NODE) || !streq(p.cn, req->params[0]) ||
            !csr) {
                http_reply_error(reply, 403, "forbidden", "refused");
                return;
        }
        _cleanup_free_ char *pem = NULL, *msg = NULL;
        if (ca_sign_migration(ca, req->params[0], csr, &pem, &msg) < 0) {
                http_reply_error(reply, 400, "invalid", "%s", msg);
                return;
        }
        http_reply_json(reply, 200, json_pack("{s:s,s:s}", "certificate", pem, "ca", ca_cert_pem(ca)));
}

static const http_route_t routes[] = {
        { "POST", "/v1/rms/:name/migration-cert", h_migration_cert, 1, 0 },
        { NULL },
};


/* A certificate for the key at key_path saying o, written to cert_path. */
static void cert_for_key(const char *key_path, const ca_cert_opts_t *o, const char *cert_path) {
        _cleanup_free_ char *csr = NULL, *pem = NULL, *msg = NULL;
        CHECK(tls_csr_make(key_path, o->cn, &csr) == 0);
        CHECK(ca_sign_request(ca, csr, o, &pem, NULL, &msg) == 0);
        CHECK(pem && tls_file_write(cert_path, pem, 0644) == 0);
}

static void peer_of(const char *pem, tls_peer_t *ret) {
        _cleanup_free_ char *msg = NULL;
        *ret = (tls_peer_t){ 0 };
        CHECK(pem && tls_cert_verify(pem, ca_cert_pem(ca), 0, ret, &msg) == 0);
}

static void test_due(void) {
        CHECK(!node_tls_migration_due(1000, 1000 + 86400, 1000));
        CHECK(!node_tls_migration_due(1000, 1000 + 86400, 1000 + 43199));
        CHECK(node_tls_migration_due(1000, 1000 + 86400, 1000 + 43200));
        CHECK(node_tls_migration_due(1000, 1000 + 86400, 1000 + 90000)); /* expired */
        CHECK(node_tls_migration_due(0, 0, 5));
}

static void test_migration(node_t *n) {
        _cleanup_free_ char *tls = xasprintf("%s/" NODE_TLS_DIR, n->data);
        _cleanup_free_ char *key = xasprintf("%s/" NODE_MIGRATION_KEY, tls), *cert = xasprintf("%s/" NODE_MIGRATION_CERT, tls);
        node_migration_id_t m = { 0 };
        _cleanup_free_ char *msg = NULL;

        /* the first: a key made here, a certificate from the Oracle */
        CHECK(node_tls_migration(n, &m, &msg) == 0 && calls == 1);
        tls_peer_t p;
        peer_of(m.cert_pem, &p);
        CHECK_STREQ(p.cn, "rm1");
        CHECK_STREQ(p.ou, TLS_OU_MIGRATION);
        CHECK(m.key_pem && strstr(m.key_pem, "PRIVATE KEY") && m.ca_pem && streq(m.ca_pem, ca_cert_pem(ca)));
        struct stat st;
        CHECK(stat(key, &st) == 0 && (st.st_mode & 0777) == 0600);
        _cleanup_free_ char *node_key = NULL, *node_key_path = xasprintf("%s/key.pem", tls);
        CHECK(file_read(node_key_path, &node_key, NULL) == 0 && !streq(node_key, m.key_pem)); /* never the node's */
        _cleanup_free_ char *first_key = xstrdup(m.key_pem ? m.key_pem : ""), *first_cert = xstrdup(m.cert_pem ? m.cert_pem : "");
        node_migration_id_clear(&m);

        /* again: the same, without asking */
        CHECK(node_tls_migration(n, &m, &msg) == 0 && calls == 1);
        CHECK(m.cert_pem && streq(m.cert_pem, first_cert));
        node_migration_id_clear(&m);

        /* past half its life: a new key and certificate */
        ca_cert_opts_t aged = { .cn = "rm1", .ou = TLS_OU_MIGRATION, .client = true, .valid_from_s = -13 * 3600,
                                .valid_days = 1 };
        cert_for_key(key, &aged, cert);
        CHECK(node_tls_migration(n, &m, &msg) == 0 && calls == 2);
        CHECK(m.key_pem && !streq(m.key_pem, first_key));
        peer_of(m.cert_pem, &p);
        CHECK(p.not_before_s > time_wall_ms() / 1000 - 3600);
        node_migration_id_clear(&m);

        /* aged and the Oracle refuses: the old one, still valid, serves */
        cert_for_key(key, &aged, cert);
        _cleanup_free_ char *aged_pem = NULL;
        CHECK(file_read(cert, &aged_pem, NULL) == 0);
        refuse = true;
        CHECK(node_tls_migration(n, &m, &msg) == 0 && calls == 3);
        CHECK(m.cert_pem && aged_pem && streq(m.cert_pem, aged_pem));
        node_migration_id_clear(&m);
        /* ... expired, or none at all: no identity, and a message that says why */
        ca_cert_opts_t expired = aged;
        expired.valid_from_s = -2 * 86400;
        cert_for_key(key, &expired, cert);
        CHECK(node_tls_migration(n, &m, &msg) < 0 && msg && strstr(msg, "Oracle") && !m.cert_pem);
        free(msg);
        msg = NULL;
        unlink(cert);
        CHECK(node_tls_migration(n, &m, &msg) < 0 && msg && !m.key_pem);
        free(msg);
        msg = NULL;
        CHECK(access(cert, F_OK) != 0); /* nothing half written stays */
        refuse = false;

        /* the node's own certificate, or another RM's migration certificate, in its place: renewed */
        ca_cert_opts_t node_o = { .cn = "rm1", .ou = TLS_OU_NODE, .client = true };
        ca_cert_opts_t other = { .cn = "rm2", .ou = TLS_OU_MIGRATION, .client = true, .valid_days = 1 };
        const ca_cert_opts_t *wrong[] = { &node_o, &other };
        for (size_t i = 0; i < ELEMENTSOF(wrong); i++) {
                int before = calls;
                cert_for_key(key, wrong[i], cert);
                CHECK(node_tls_migration(n, &m, &msg) == 0 && calls == before + 1);
                peer_of(m.cert_pem, &p);
                CHECK_STREQ(p.ou, TLS_OU_MIGRATION);
                CHECK_STREQ(p.cn, "rm1");
                node_migration_id_clear(&m);
        }
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/vmx-node-tls-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
                return 1;
        test_due();
        _cleanup_free_ char *cadir = xasprintf("%s/ca", dir), *data = xasprintf("%s/data", dir), *msg = NULL;
        _cleanup_free_ char *tls = xasprintf("%s/" NODE_TLS_DIR, data);
        CHECK(ca_open(cadir, &ca, &msg) == 1 && mkdir_p(tls, 0700) == 0);
        /* the Oracle's server identity and the node's enrolled one */
        ca_cert_opts_t oo = { .cn = TLS_ORACLE_CN, .ou = TLS_OU_ORACLE, .dns = TLS_ORACLE_DNS, .client = true };
        CHECK(ca_identity_ensure(ca, cadir, "oracle", &oo, &msg) == 1);
        _cleanup_free_ char *ocert = NULL, *okey = NULL, *ocert_path = xasprintf("%s/oracle.pem", cadir);
        _cleanup_free_ char *okey_path = xasprintf("%s/oracle.key", cadir);
        CHECK(file_read(ocert_path, &ocert, NULL) == 0 && file_read(okey_path, &okey, NULL) == 0);
        _cleanup_free_ char *nkey = xasprintf("%s/key.pem", tls), *ncert = xasprintf("%s/cert.pem", tls);
        _cleanup_free_ char *nca = xasprintf("%s/ca.pem", tls), *dns = tls_peer_dns_name("rm1");
        CHECK(tls_key_generate(nkey) == 0 && tls_file_write(nca, ca_cert_pem(ca), 0644) == 0);
        ca_cert_opts_t no = { .cn = "rm1", .ou = TLS_OU_NODE, .dns = dns, .client = true };
        cert_for_key(nkey, &no, ncert);

        int port = tap_free_port();
        _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
        http_server_t *s = NULL;
        http_server_params_t sp = { .listen = listen, .routes = routes, .tls_cert = ocert, .tls_key = okey,
                                    .tls_trust = ca_cert_pem(ca), .first_request_timeout_s = 5 };
        CHECK(http_server_start(&sp, &s) == 0);
        http_tls_t *id = NULL;
        CHECK(http_tls_new(nca, ncert, nkey, &id) == 0);
        http_client_tls_default(id);
        node_t n = { .name = "rm1", .data = data };
        n.oracle = xasprintf("https://oracle@127.0.0.1:%d", port);
        pthread_mutex_init(&n.tls.migration_lock, NULL);
        test_migration(&n);
        pthread_mutex_destroy(&n.tls.migration_lock);
        free(n.oracle);
        http_client_tls_default(NULL);
        http_tls_free(id);
        http_server_stop(s);
        ca_free(ca);
        rm_rf(dir);
        return tap_finish();
}
