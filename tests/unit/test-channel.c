/* The control channel against clients that must be refused (issue 11, "Channel tests"): a real
 * Oracle and two enrolled nodes (fake VMM), probed with curl and openssl s_client as an outsider
 * would: no client certificate at a node port or on the Oracle's node channel; a certificate of
 * another CA; a node's certificate for another RM's heartbeat, against another node's command
 * routes, and on the Oracle's user routes; a join token used twice; a node with neither a token
 * nor a certificate; a client that opens a connection and sends nothing, while others are served;
 * an RM's migration certificate, which only that RM's own certificate may ask for and which is
 * refused on the node channel and at node ports. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "daemons.h"
#include "node/node-internal.h"
#include "oracle/oracle-internal.h"
#include "tap.h"
#include "tls/ca.h"

/* Runs a shell command; its output into ret (size bytes), its exit status returned. */
static int run(const char *cmd, char *ret, size_t size) {
        FILE *p = popen(cmd, "r");
        if (!p)
                return -1;
        size_t n = fread(ret, 1, size - 1, p);
        ret[n] = 0;
        int st = pclose(p);
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* curl's HTTP status for a request with the given TLS arguments ("000": no HTTP answer); the
 * answer's body into the file out (NULL: dropped). body "@FILE" sends FILE. */
static int curl_status_out(const char *tls_args, const char *method, const char *url, const char *body,
                           const char *out_path) {
        char cmd[2048], out[64];
        snprintf(cmd, sizeof cmd, "curl -s -o '%s' -w '%%{http_code}' --max-time 10 %s -X %s %s%s%s '%s' 2>/dev/null",
                 out_path ? out_path : "/dev/null", tls_args, method, body ? "-d '" : "", body ? body : "",
                 body ? "'" : "", url);
        run(cmd, out, sizeof out);
        return atoi(out);
}

static int curl_status(const char *tls_args, const char *method, const char *url, const char *body) {
        return curl_status_out(tls_args, method, url, body, NULL);
}

/* "--cacert CA --cert C --key K --connect-to NAME:PORT:127.0.0.1:PORT" for a peer named dns. */
static void tls_args(char *buf, size_t size, const char *ca, const char *cert, const char *key, const char *dns,
                     int port) {
        int n = snprintf(buf, size, "--cacert '%s' --connect-to %s:%d:127.0.0.1:%d", ca, dns, port, port);
        if (cert)
                snprintf(buf + n, size - (size_t)n, " --cert '%s' --key '%s'", cert, key);
}

/* A new key at key_path and a request for it (CN=cn) into csr, as openssl makes them. */
static int request_make(const char *key_path, const char *cn, char *csr, size_t size) {
        char cmd[2048];
        snprintf(cmd, sizeof cmd,
                 "openssl ecparam -name prime256v1 -genkey -noout -out '%s' 2>/dev/null && openssl req -new -key '%s' "
                 "-subj /CN=%s 2>/dev/null",
                 key_path, key_path, cn);
        return run(cmd, csr, size) == 0 && strstr(csr, "CERTIFICATE REQUEST") ? 0 : -1;
}

static int events_count(daemons_t *d, const char *kind, const char *needle) {
        char url[160];
        snprintf(url, sizeof url, "%s/v1/events?limit=10000", d->oracle.url);
        json_t *j = NULL;
        int n = 0;
        if (daemons_call("GET", url, NULL, &j) == 200) {
                size_t i;
                json_t *e;
                json_array_foreach(j, i, e) {
                        const char *k = json_string_value(json_object_get(e, "kind"));
                        const char *r = json_string_value(json_object_get(e, "reason"));
                        n += k && streq(k, kind) && (!needle || (r && strstr(r, needle)));
                }
        }
        json_decref(j);
        return n;
}

/* path with each ":x" segment made "matrix-none" (":version" 1): a resource nobody has. */
static void path_fill(const char *pattern, char *buf, size_t size) {
        size_t n = 0;
        for (const char *p = pattern; *p && n + 16 < size;) {
                if (*p == ':') {
                        bool version = strncmp(p, ":version", 8) == 0;
                        n += (size_t)snprintf(buf + n, size - n, "%s", version ? "1" : "matrix-none");
                        p += strcspn(p, "/");
                } else {
                        buf[n++] = *p++;
                }
        }
        buf[n] = 0;
}

/* One route of a route table asked with the TLS arguments a: its status, and whether it is
 * what the gate should answer (allowed: anything but 401/403 and no answer; else want). */
static bool matrix_case(const http_route_t *r, const char *base, const char *a, bool allowed, int want,
                        const char *who) {
        char path[256], url[512];
        path_fill(r->pattern, path, sizeof path);
        snprintf(url, sizeof url, "%s%s", base, path);
        bool body = streq(r->method, "POST") || streq(r->method, "PUT");
        char out[512];
        snprintf(out, sizeof out, "/tmp/vmx-channel-matrix.%d", (int)getpid());
        int st = curl_status_out(a, r->method, url, body ? "{}" : NULL, out);
        json_t *j = json_load_file(out, 0, NULL);
        unlink(out);
        /* the gate's refusals are 401 and 403 "forbidden"; a handler's own 403 (a closed signup)
         * means the gate let it through */
        const char *code = json_string_value(json_object_get(json_object_get(j, "error"), "code"));
        bool gate_refused = st == 401 || (st == 403 && code && streq(code, "forbidden"));
        json_decref(j);
        bool ok = allowed ? st != 0 && !gate_refused : st == want && gate_refused;
        if (!ok)
                fprintf(stderr, "  %s %s as %s: %d, wanted %s%d\n", r->method, path, who, st, allowed ? "not 401/403, " : "",
                        allowed ? 0 : want);
        return ok;
}

int main(void) {
        daemons_t d;
        daemons_init(&d, NULL);
        if (daemons_oracle_start(&d, NULL) < 0 || daemons_node_start(&d, 0, "rm1", "production", NULL) < 0 ||
            daemons_node_start(&d, 1, "ch1", "chamber", NULL) < 0) {
                fprintf(stderr, "cannot start the daemons\n");
                daemons_done(&d, true);
                return 1;
        }
        char ca[600], rm1_cert[600], rm1_key[600], o_cert[600], o_key[600];
        snprintf(ca, sizeof ca, "%s/ca/ca.pem", d.oracle.data);
        snprintf(o_cert, sizeof o_cert, "%s/ca/oracle.pem", d.oracle.data);
        snprintf(o_key, sizeof o_key, "%s/ca/oracle.key", d.oracle.data);
        snprintf(rm1_cert, sizeof rm1_cert, "%s/tls/cert.pem", d.nodes[0].data);
        snprintf(rm1_key, sizeof rm1_key, "%s/tls/key.pem", d.nodes[0].data);
        int np = d.oracle.node_port, ch1 = d.nodes[1].port;
        char a[2048], url[256];

        /* a node port: no certificate (401), the Oracle's (200), a node's on commands (403) */
        snprintf(url, sizeof url, "https://ch1.rm.vmatrix:%d/v1/vms", ch1);
        tls_args(a, sizeof a, ca, NULL, NULL, "ch1.rm.vmatrix", ch1);
        CHECK(curl_status(a, "GET", url, NULL) == 401);
        tls_args(a, sizeof a, ca, o_cert, o_key, "ch1.rm.vmatrix", ch1);
        CHECK(curl_status(a, "GET", url, NULL) == 200);
        tls_args(a, sizeof a, ca, rm1_cert, rm1_key, "ch1.rm.vmatrix", ch1);
        CHECK(curl_status(a, "GET", url, NULL) == 403);
        snprintf(url, sizeof url, "https://ch1.rm.vmatrix:%d/v1/vms/x/delete", ch1);
        CHECK(curl_status(a, "POST", url, "{\"version\":1}") == 403);
        /* ... but its chunks, to another RM */
        snprintf(url, sizeof url, "https://ch1.rm.vmatrix:%d/v1/chunks/missing", ch1);
        CHECK(curl_status(a, "POST", url, "{\"ids\":[]}") != 401 && curl_status(a, "POST", url, "{\"ids\":[]}") != 403);

        /* openssl s_client without a certificate: the handshake goes, the request is refused */
        char cmd[2048], out[8192];
        snprintf(cmd, sizeof cmd,
                 "printf 'GET /v1/vms HTTP/1.0\\r\\n\\r\\n' | timeout 10 openssl s_client -quiet -connect 127.0.0.1:%d "
                 "-CAfile '%s' -verify_hostname ch1.rm.vmatrix 2>&1",
                 ch1, ca);
        run(cmd, out, sizeof out);
        CHECK(strstr(out, "401") && strstr(out, "unauthenticated"));
        snprintf(cmd, sizeof cmd,
                 "printf 'POST /v1/rms/rm1/heartbeat HTTP/1.0\\r\\nContent-Length: 2\\r\\n\\r\\n{}' | timeout 10 "
                 "openssl s_client -quiet -connect 127.0.0.1:%d -CAfile '%s' 2>&1",
                 np, ca);
        run(cmd, out, sizeof out);
        CHECK(strstr(out, "401") != NULL);

        /* a certificate of another CA, at a node and at the Oracle */
        char other[400], x_key[600], x_cert[600];
        snprintf(other, sizeof other, "%s/other-ca", d.dir);
        ca_t *oca = NULL;
        char *msg = NULL;
        CHECK(ca_open(other, &oca, &msg) == 1);
        ca_cert_opts_t xo = { .cn = "rm1", .ou = TLS_OU_ORACLE, .dns = "rm1.rm.vmatrix", .client = true };
        CHECK(oca && ca_identity_ensure(oca, other, "x", &xo, &msg) == 1);
        ca_free(oca);
        free(msg);
        snprintf(x_cert, sizeof x_cert, "%s/x.pem", other);
        snprintf(x_key, sizeof x_key, "%s/x.key", other);
        snprintf(url, sizeof url, "https://ch1.rm.vmatrix:%d/v1/vms", ch1);
        tls_args(a, sizeof a, ca, x_cert, x_key, "ch1.rm.vmatrix", ch1);
        int st = curl_status(a, "GET", url, NULL);
        CHECK(st == 401 || st == 0);
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/rms/rm1/heartbeat", np);
        tls_args(a, sizeof a, ca, x_cert, x_key, "oracle.vmatrix", np);
        st = curl_status(a, "POST", url, "{}");
        CHECK(st == 401 || st == 0);

        /* rm1's certificate for ch1's heartbeat: refused, an auth-failed event, ch1 still up */
        int before = events_count(&d, "auth-failed", "RM \"rm1\" used for RM \"ch1\"");
        tls_args(a, sizeof a, ca, rm1_cert, rm1_key, "oracle.vmatrix", np);
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/rms/ch1/heartbeat", np);
        CHECK(curl_status(a, "POST", url, "{\"role\":\"chamber\",\"address\":\"127.0.0.1:1\",\"vms\":[]}") == 403);
        CHECK(events_count(&d, "auth-failed", "RM \"rm1\" used for RM \"ch1\"") == before + 1);
        char rst[16];
        daemons_rm_state(&d, "ch1", rst);
        CHECK_STREQ(rst, "up");
        /* its own heartbeat in another role than it joined with: refused */
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/rms/rm1/heartbeat", np);
        CHECK(curl_status(a, "POST", url, "{\"role\":\"chamber\",\"address\":\"127.0.0.1:1\",\"vms\":[]}") == 409);
        /* a migration certificate: rm1 asks for its own with its certificate ... */
        char mkey[600], mreq[600], mans[600], mcert[600], csr[4096];
        snprintf(mkey, sizeof mkey, "%s/m.key", d.dir);
        snprintf(mreq, sizeof mreq, "%s/m.json", d.dir);
        snprintf(mans, sizeof mans, "%s/m-answer.json", d.dir);
        snprintf(mcert, sizeof mcert, "%s/m.pem", d.dir);
        CHECK(request_make(mkey, "rm1", csr, sizeof csr) == 0);
        json_t *mj = json_pack("{s:s}", "csr", csr);
        CHECK(json_dump_file(mj, mreq, 0) == 0);
        json_decref(mj);
        char at_req[620];
        snprintf(at_req, sizeof at_req, "@%s", mreq);
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/rms/rm1/migration-cert", np);
        CHECK(curl_status_out(a, "POST", url, at_req, mans) == 200);
        json_t *got = json_load_file(mans, 0, NULL);
        const char *mpem = json_string_value(json_object_get(got, "certificate"));
        CHECK(mpem && strstr(mpem, "BEGIN CERTIFICATE"));
        tls_peer_t mp = { 0 };
        char *why = NULL;
        CHECK(mpem && tls_file_write(mcert, mpem, 0644) == 0);
        CHECK(mpem && tls_cert_verify(mpem, json_string_value(json_object_get(got, "ca")), 0, &mp, &why) == 0);
        CHECK_STREQ(mp.cn, "rm1");
        CHECK_STREQ(mp.ou, TLS_OU_MIGRATION);
        free(why);
        json_decref(got);
        /* ... but not for ch1's, nor without a certificate, nor on the user API */
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/rms/ch1/migration-cert", np);
        CHECK(curl_status(a, "POST", url, at_req) == 403);
        char anon[2048];
        tls_args(anon, sizeof anon, ca, NULL, NULL, "oracle.vmatrix", np);
        CHECK(curl_status(anon, "POST", url, at_req) == 401);
        snprintf(url, sizeof url, "%s/v1/rms/rm1/migration-cert", d.oracle.url);
        json_t *mbody = json_pack("{s:s}", "csr", csr);
        CHECK(daemons_call("POST", url, mbody, NULL) == 403);
        json_decref(mbody);
        /* the migration certificate is not rm1: not for its heartbeat, not for the next one */
        char am[2048];
        tls_args(am, sizeof am, ca, mcert, mkey, "oracle.vmatrix", np);
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/rms/rm1/heartbeat", np);
        CHECK(curl_status(am, "POST", url, "{\"role\":\"production\",\"address\":\"127.0.0.1:1\",\"vms\":[]}") == 403);
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/rms/rm1/migration-cert", np);
        CHECK(curl_status(am, "POST", url, at_req) == 403);
        CHECK(events_count(&d, "auth-failed", "OU \"migration\"") >= 2);
        /* ... nor at a node's port: not a command, not a chunk route, not health */
        tls_args(am, sizeof am, ca, mcert, mkey, "ch1.rm.vmatrix", ch1);
        snprintf(url, sizeof url, "https://ch1.rm.vmatrix:%d/v1/vms", ch1);
        CHECK(curl_status(am, "GET", url, NULL) == 403);
        snprintf(url, sizeof url, "https://ch1.rm.vmatrix:%d/v1/vms/x/delete", ch1);
        CHECK(curl_status(am, "POST", url, "{\"version\":1}") == 403);
        snprintf(url, sizeof url, "https://ch1.rm.vmatrix:%d/v1/chunks/missing", ch1);
        CHECK(curl_status(am, "POST", url, "{\"ids\":[]}") == 403);
        /* a server showing it is not rm1 to a client that expects rm1 (its name is not rm1's) */
        snprintf(cmd, sizeof cmd,
                 "openssl x509 -in '%s' -noout -ext subjectAltName 2>/dev/null | grep -c 'rm1.rm.vmatrix'", mcert);
        run(cmd, out, sizeof out);
        CHECK(atoi(out) == 0);

        /* the user routes are not served on the node channel, to a node nor to anyone */
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/vms", np);
        CHECK(curl_status(a, "GET", url, NULL) == 403);
        snprintf(url, sizeof url, "https://oracle.vmatrix:%d/v1/rms/join-tokens", np);
        CHECK(curl_status(a, "POST", url, "{}") == 403);
        /* node routes on the user API: no certificate there speaks for an RM */
        snprintf(url, sizeof url, "%s/v1/rms/rm1/heartbeat", d.oracle.url);
        json_t *hb = json_pack("{s:s,s:s,s:[]}", "role", "production", "address", "127.0.0.1:1", "vms");
        CHECK(daemons_call("POST", url, hb, NULL) == 403);
        json_decref(hb);

        /* a join token, used twice: the second is refused and changes nothing */
        snprintf(url, sizeof url, "%s/v1/rms/join-tokens", d.oracle.url);
        json_t *tok = NULL, *req = json_pack("{s:s}", "role", "chamber");
        CHECK(daemons_call("POST", url, req, &tok) == 201);
        json_decref(req);
        const char *token = json_string_value(json_object_get(tok, "token"));
        char key[600];
        snprintf(key, sizeof key, "%s/j.key", d.dir);
        CHECK(request_make(key, "x", csr, sizeof csr) == 0);
        snprintf(url, sizeof url, "%s/v1/join", d.oracle.node_url);
        json_t *join = json_pack("{s:s,s:s,s:s}", "token", token ? token : "", "name", "new1", "csr", csr);
        json_t *ans = NULL;
        CHECK(daemons_call("POST", url, join, &ans) == 200 && json_string_value(json_object_get(ans, "certificate")));
        json_decref(ans);
        ans = NULL;
        json_object_set_new(join, "name", json_string("new2"));
        CHECK(daemons_call("POST", url, join, &ans) == 409);
        CHECK_STREQ(json_string_value(json_object_get(json_object_get(ans, "error"), "code")), "token_used");
        json_decref(ans);
        /* a malformed and an oversized token */
        json_object_set_new(join, "token", json_string("vmxj_garbage"));
        CHECK(daemons_call("POST", url, join, NULL) == 400);
        char *big = xcalloc(1, 10001);
        memset(big, 'a', 10000);
        json_object_set_new(join, "token", json_string(big));
        free(big);
        CHECK(daemons_call("POST", url, join, NULL) == 400);
        json_decref(join);
        json_decref(tok);

        /* a node with neither token nor certificate says so and exits non-zero */
        snprintf(cmd, sizeof cmd, "'%s' node --oracle https://127.0.0.1:%d --name lone --data '%s/lone' --driver fake 2>&1",
                 d.exe, np, d.dir);
        int rc = run(cmd, out, sizeof out);
        CHECK(rc != 0 && strstr(out, "--join TOKEN"));

        /* a client that connects to the node channel and sends nothing: heartbeats go on, and it
         * is dropped within the first-request timeout (5 s) */
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)np),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        CHECK(connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0);
        int64_t t0 = daemons_now_ms();
        snprintf(url, sizeof url, "%s/v1/health", d.oracle.node_url);
        json_t *health = NULL;
        CHECK(daemons_call("GET", url, NULL, &health) == 200);
        CHECK(daemons_now_ms() - t0 < 2000);
        /* the nodes' kept connections, this call's and the silent one are open; none refused */
        json_t *nc = json_object_get(health, "node_channel");
        CHECK(json_integer_value(json_object_get(nc, "open")) >= 3);
        CHECK(json_integer_value(json_object_get(nc, "total")) >= json_integer_value(json_object_get(nc, "open")));
        CHECK(json_integer_value(json_object_get(nc, "at_limit")) == 0);
        CHECK(json_integer_value(json_object_get(nc, "max")) >= 1024);
        json_decref(health);
        char b[256];
        ssize_t n = 1;
        struct pollfd pfd = { .fd = fd, .events = POLLIN };
        while (n > 0 && poll(&pfd, 1, 10000) == 1)
                n = read(fd, b, sizeof b);
        int64_t held = daemons_now_ms() - t0;
        CHECK(n <= 0 && held < 9000);
        close(fd);
        daemons_rm_state(&d, "rm1", rst);
        CHECK_STREQ(rst, "up");

        /* the node's whole route table (generated from it): no certificate 401; commands
         * (oracle) for the Oracle only, 403 to an RM; chunk, manifest and file routes (node) and
         * health for both. Every resource is one nobody has, so nothing changes. */
        char base[128];
        snprintf(base, sizeof base, "https://ch1.rm.vmatrix:%d", ch1);
        char a_none[2048], a_oracle[2048], a_rm[2048];
        tls_args(a_none, sizeof a_none, ca, NULL, NULL, "ch1.rm.vmatrix", ch1);
        tls_args(a_oracle, sizeof a_oracle, ca, o_cert, o_key, "ch1.rm.vmatrix", ch1);
        tls_args(a_rm, sizeof a_rm, ca, rm1_cert, rm1_key, "ch1.rm.vmatrix", ch1);
        size_t routes = 0, wrong = 0;
        for (const http_route_t *r = node_api_routes; r->method; r++, routes++) {
                CHECK(r->perm == PERM_ORACLE || r->perm == PERM_NODE || r->perm == PERM_PUBLIC);
                wrong += !matrix_case(r, base, a_none, false, 401, "no certificate");
                wrong += !matrix_case(r, base, a_oracle, true, 0, "the Oracle");
                wrong += !matrix_case(r, base, a_rm, r->perm != PERM_ORACLE, 403, "rm1");
        }
        fprintf(stderr, "  node route matrix: %zu routes, %zu wrong\n", routes, wrong);
        CHECK(routes > 15 && wrong == 0);

        /* the Oracle's route table on its node channel: public routes and enrolment for anyone;
         * node and Nest routes for an RM's certificate (its own RM's path only: another's 403),
         * 401 without one; the user API's routes 403 to everyone, the Oracle's own certificate
         * included */
        snprintf(base, sizeof base, "https://oracle.vmatrix:%d", np);
        tls_args(a_none, sizeof a_none, ca, NULL, NULL, "oracle.vmatrix", np);
        tls_args(a_oracle, sizeof a_oracle, ca, o_cert, o_key, "oracle.vmatrix", np);
        tls_args(a_rm, sizeof a_rm, ca, rm1_cert, rm1_key, "oracle.vmatrix", np);
        const http_route_t *const *tables = oracle_route_tables;
        routes = wrong = 0;
        for (size_t t = 0; tables[t]; t++)
                for (const http_route_t *r = tables[t]; r->method; r++, routes++) {
                        bool open = r->perm == PERM_PUBLIC || r->perm == PERM_JOIN;
                        bool rm_route = r->perm == PERM_NODE || r->perm == PERM_NEST_READ || r->perm == PERM_NEST_WRITE;
                        /* owner rule rm: "matrix-none" is not rm1 */
                        bool rm_ok = rm_route && r->owner != OWNER_RM;
                        /* user routes belong to the user API: 403 here whoever asks */
                        wrong += !matrix_case(r, base, a_none, open, rm_route ? 401 : 403, "no certificate");
                        wrong += !matrix_case(r, base, a_rm, open || rm_ok, 403, "rm1");
                        wrong += !matrix_case(r, base, a_oracle, open, 403, "the Oracle's certificate");
                }
        fprintf(stderr, "  node channel matrix: %zu routes, %zu wrong\n", routes, wrong);
        CHECK(routes > 40 && wrong == 0);

        bool failed = tap_failed > 0;
        daemons_done(&d, failed);
        return tap_finish();
}
