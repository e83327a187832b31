/* The node's identity and enrolment (node-tls.h). Enrolment, once:
 *   1. a key of its own (DATA/tls/key.pem, 0600) and a request naming --name;
 *   2. GET ORACLE/v1/join/ca without checking the server, then the CA's digest against the
 *      join token's: a wrong Oracle or a man in the middle stops here, before any secret goes;
 *   3. POST ORACLE/v1/join {token, name, csr} over a connection that must prove the Oracle's
 *      certificate (of that CA); the answer's certificate must be of that CA and of our key.
 * Every file is written whole (temporary file and rename), the key before the request and the
 * certificate last, so an interrupted enrolment starts again with a fresh token. */
#include "node/node-tls.h"

#include <jansson.h>
#include <sodium.h>
#include <string.h>

#include "auth/join-token.h"
#include "auth/roles.h"
#include "base/log.h"
#include "base/util.h"
#include "node/node-internal.h"
#include "tls/tls-identity.h"

typedef struct paths {
        char *dir, *key, *cert, *ca, *identity;
} paths_t;

static void paths_clear(paths_t *p) {
        free(p->dir);
        free(p->key);
        free(p->cert);
        free(p->ca);
        free(p->identity);
}

static paths_t paths_of(const node_t *n) {
        paths_t p = { .dir = xasprintf("%s/" NODE_TLS_DIR, n->data) };
        p.key = xasprintf("%s/key.pem", p.dir);
        p.cert = xasprintf("%s/cert.pem", p.dir);
        p.ca = xasprintf("%s/ca.pem", p.dir);
        p.identity = xasprintf("%s/identity.json", p.dir);
        return p;
}

/* "https://HOST:PORT" of --oracle without any "NAME@" and trailing "/". */
static char *oracle_base(const char *url) {
        const char *h = url + strlen("https://");
        const char *at = strchr(h, '@'), *slash = strchrnul(h, '/');
        if (at && at < slash)
                h = at + 1;
        return xasprintf("https://%.*s", (int)(slash - h), h);
}

static int enrol(node_t *n, const char *join, const paths_t *p) {
        join_token_t tok;
        if (join_token_parse(join, &tok) < 0) {
                fprintf(stderr, "vmatrix node: --join: not a join token (vmxj_...; make one with "
                                "`vmatrix rm join-token create`)\n");
                return -EINVAL;
        }
        _cleanup_free_ char *base = oracle_base(n->oracle), *csr = NULL;
        int r = file_exists(p->key) ? 0 : tls_key_generate(p->key);
        if (r >= 0)
                r = tls_csr_make(p->key, n->name, &csr);
        if (r < 0) {
                fprintf(stderr, "vmatrix node: cannot make a key and request in %s: %s\n", p->dir, strerror(-r));
                join_token_wipe(&tok);
                return r;
        }
        /* 2: the CA, trusted only for its digest */
        _cleanup_free_ char *ca_url = xasprintf("%s/v1/join/ca", base);
        http_call_t blind = { .unverified = true };
        http_response_t resp = { 0 };
        r = http_call_json(&blind, "GET", ca_url, NULL, 10000, &resp);
        uint8_t digest[TLS_DIGEST_BYTES];
        bool ca_ok = r >= 0 && resp.status == 200 && resp.body && tls_cert_digest(resp.body, digest) >= 0 &&
                     sodium_memcmp(digest, tok.ca_digest, sizeof digest) == 0;
        if (!ca_ok) {
                fprintf(stderr, "vmatrix node: %s: %s\n", ca_url,
                        r < 0 || resp.status != 200 ? http_error_message(&resp, r)
                                                    : "its CA is not the one the join token names (a wrong --oracle, "
                                                      "or someone in between)");
                http_response_clear(&resp);
                join_token_wipe(&tok);
                return -EACCES;
        }
        _cleanup_free_ char *ca_tmp = xasprintf("%s.join", p->ca);
        r = tls_file_write(ca_tmp, resp.body, 0644);
        http_response_clear(&resp);
        join_token_wipe(&tok);
        if (r < 0)
                return r;
        /* 3: the token, to the Oracle proven by that CA */
        http_tls_t *trust = NULL;
        r = http_tls_new(ca_tmp, NULL, NULL, &trust);
        if (r < 0)
                return r;
        _cleanup_free_ char *join_url = xasprintf("%s/v1/join", base);
        json_t *body = json_pack("{s:s,s:s,s:s}", "token", join, "name", n->name, "csr", csr);
        http_call_t call = { .tls = trust, .peer = TLS_ORACLE_CN };
        r = http_call_json(&call, "POST", join_url, body, 30000, &resp);
        json_decref(body);
        http_tls_free(trust);
        if (r < 0 || resp.status != 200) {
                fprintf(stderr, "vmatrix node: enrolment at %s refused: %s\n", join_url, http_error_message(&resp, r));
                http_response_clear(&resp);
                unlink(ca_tmp);
                return r < 0 ? r : -EACCES;
        }
        const char *cert = json_string_value(json_object_get(resp.json, "certificate"));
        const char *role = json_string_value(json_object_get(resp.json, "role"));
        const char *provider = json_string_value(json_object_get(resp.json, "provider"));
        _cleanup_free_ char *identity = NULL;
        if (role && (streq(role, "production") || streq(role, "chamber"))) {
                json_t *j = json_pack("{s:s,s:s,s:s}", "name", n->name, "role", role, "provider", provider ? provider : "");
                identity = json_dumps(j, JSON_INDENT(2));
                json_decref(j);
        }
        if (identity)
                log_info("enrolled as RM %s (%s) at %s", n->name, role, base);
        r = cert && identity ? 0 : -EBADMSG;
        if (r >= 0)
                r = tls_file_write(p->identity, identity, 0644);
        if (r >= 0)
                r = rename(ca_tmp, p->ca) < 0 ? negative_errno() : 0;
        if (r >= 0)
                r = tls_file_write(p->cert, cert, 0644);
        http_response_clear(&resp);
        if (r < 0) {
                fprintf(stderr, "vmatrix node: cannot keep the enrolment in %s: %s\n", p->dir, strerror(-r));
                unlink(ca_tmp);
                return r;
        }
        return 0;
}

int node_tls_setup(node_t *n, const char *join, const char *role_arg) {
        if (!str_startswith(n->oracle, "https://")) {
                fprintf(stderr, "vmatrix node: --oracle must be the Oracle's node channel, https://HOST:PORT\n");
                return -EINVAL;
        }
        paths_t p = paths_of(n);
        int r = mkdir_p(p.dir, 0700);
        if (r < 0) {
                fprintf(stderr, "vmatrix node: cannot create %s: %s\n", p.dir, strerror(-r));
                paths_clear(&p);
                return r;
        }
        _cleanup_free_ char *msg = NULL;
        tls_peer_t me = { 0 };
        r = tls_identity_check(p.cert, p.key, p.ca, &me, &msg);
        if (r == -ENOENT && !join) {
                fprintf(stderr,
                        "vmatrix node: this RM has no certificate in %s yet: enrol it once with --join TOKEN "
                        "(an operator makes one with `vmatrix rm join-token create`)\n",
                        p.dir);
                paths_clear(&p);
                return -ENOKEY;
        }
        if (r == -ENOENT) {
                r = enrol(n, join, &p);
                if (r >= 0)
                        r = tls_identity_check(p.cert, p.key, p.ca, &me, &msg);
        } else if (r >= 0 && join) {
                log_info("already enrolled as RM %s: --join ignored", me.cn);
        }
        if (r < 0) {
                if (msg)
                        fprintf(stderr, "vmatrix node: the identity in %s is not usable: %s\n", p.dir, msg);
                paths_clear(&p);
                return r;
        }
        if (!streq(me.cn, n->name) || !streq(me.ou, TLS_OU_NODE)) {
                fprintf(stderr, "vmatrix node: the certificate in %s is RM \"%s\"'s, not \"%s\"'s\n", p.dir, me.cn,
                        n->name);
                paths_clear(&p);
                return -EINVAL;
        }
        _cleanup_free_ char *text = NULL;
        json_t *id = file_read(p.identity, &text, NULL) >= 0 ? json_loads(text, 0, NULL) : NULL;
        const char *role = json_string_value(json_object_get(id, "role"));
        if (!role || (!streq(role, "production") && !streq(role, "chamber"))) {
                fprintf(stderr, "vmatrix node: %s is missing or damaged\n", p.identity);
                json_decref(id);
                paths_clear(&p);
                return -EBADMSG;
        }
        if (role_arg && !streq(role_arg, role)) {
                fprintf(stderr, "vmatrix node: RM %s enrolled as a %s RM, not %s (its join token said so)\n", n->name,
                        role, role_arg);
                json_decref(id);
                paths_clear(&p);
                return -EINVAL;
        }
        free(n->role);
        n->role = xstrdup(role);
        json_decref(id);
        _cleanup_free_ char *m2 = NULL;
        r = tls_pem_read(p.cert, false, &n->tls.cert_pem, &m2);
        if (r >= 0)
                r = tls_pem_read(p.key, true, &n->tls.key_pem, &m2);
        if (r >= 0)
                r = tls_pem_read(p.ca, false, &n->tls.ca_pem, &m2);
        if (r >= 0)
                r = http_tls_new(p.ca, p.cert, p.key, &n->tls.client);
        paths_clear(&p);
        if (r < 0) {
                fprintf(stderr, "vmatrix node: cannot load its identity: %s\n", m2 ? m2 : strerror(-r));
                return r;
        }
        http_client_tls_default(n->tls.client);
        /* every call to the Oracle must reach the Oracle's certificate */
        _cleanup_free_ char *base = oracle_base(n->oracle);
        free(n->oracle);
        n->oracle = xasprintf("https://" TLS_ORACLE_CN "@%s", base + strlen("https://"));
        return 0;
}

void node_tls_free(node_t *n) {
        http_client_tls_default(NULL);
        n->tls.client = http_tls_free(n->tls.client);
        free(n->tls.cert_pem);
        if (n->tls.key_pem)
                sodium_memzero(n->tls.key_pem, strlen(n->tls.key_pem));
        free(n->tls.key_pem);
        free(n->tls.ca_pem);
        n->tls = (node_tls_t){ 0 };
}

int node_authorize(http_request_t *req, const http_route_t *route, http_reply_t *reply) {
        tls_peer_t p = { 0 };
        int r = http_request_peer(req, &p);
        if (r < 0) {
                char ip[64] = "unknown";
                (void)http_request_client_ip(req, ip, sizeof ip);
                log_warn("refused %s %.200s from %s: %s", req->method, req->path, ip,
                         r == -ENOKEY ? "no client certificate" : "a certificate not of the Oracle's CA");
                http_reply_error(reply, 401, "unauthenticated",
                                 r == -ENOKEY ? "a node takes requests from the Oracle's and its RMs' certificates only"
                                              : "the client certificate is not of this cluster's CA, or it expired");
                return -EACCES;
        }
        bool oracle = streq(p.ou, TLS_OU_ORACLE) && streq(p.cn, TLS_ORACLE_CN);
        bool node = streq(p.ou, TLS_OU_NODE);
        bool ok = route->perm == PERM_ORACLE ? oracle
                  : route->perm == PERM_NODE || route->perm == PERM_PUBLIC ? oracle || node
                                                                            : false;
        if (!ok) {
                log_warn("refused %s %.200s to %s (%s): not its to ask", req->method, req->path, p.cn, p.ou);
                http_reply_error(reply, 403, "forbidden", "%s %s takes the Oracle's certificate, not %s's",
                                 route->method, route->pattern, p.cn);
                return -EPERM;
        }
        return 0;
}
