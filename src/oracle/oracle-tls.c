/* The Oracle's control channel (oracle-tls.h): what it opens at start and the node channel's
 * authorizer. Everything the node channel takes is decided here:
 *   GET /v1/health, PERM_JOIN routes          anyone (a node that is not enrolled yet)
 *   PERM_NODE, PERM_NEST_READ/WRITE routes    an RM's certificate (OU=node) of our CA, with the
 *                                             serial it enrolled with; a route naming an RM
 *                                             (owner rule rm) only for that RM's own
 *   anything else                             403: user routes are the user API's
 * No certificate, or one of another CA: 401. Each refusal is an auth-failed event. */
#include <arpa/inet.h>
#include <string.h>
#include <sys/resource.h>

#include "auth/auth-key.h"
#include "auth/roles.h"
#include "base/log.h"
#include "base/util.h"
#include "oracle/oracle-internal.h"
#include "store/store-join.h"

#define EVENTS_PER_SECOND 10
/* Every RM holds its heartbeat connection open (node-heartbeat.c), and a connection is a thread
 * (http-server.h): the node channel takes this many, each thread with NODE_STACK_KIB of stack
 * (room for SQLite and jansson; libmicrohttpd's connection itself is a 32 KiB pool). An RM whose
 * connection is refused misses heartbeats and is fenced as silent, so the figure is well above
 * the RMs a cluster has; what the process may open and run lowers it (node_channel_capacity). */
#define NODE_CONNECTIONS 16384
#define NODE_STACK_KIB 512
/* Connections in their handshake at once (http-server.h max_handshakes): about a second of
 * handshakes on 2 cores, well within ORACLE_NODE_FIRST_REQUEST_S, so a storm of reconnecting
 * nodes is let in in turns instead of timing out together. A client that connects and sends
 * nothing holds a place for ORACLE_NODE_FIRST_REQUEST_S: blocking new connections takes this
 * many such clients at once (nodes keep the connections they hold). */
#define NODE_HANDSHAKES 512
/* Files the Oracle needs besides the node channel: the user API's connections
 * (HTTP_MAX_CONNECTIONS), the store, logs, calls to nodes. One connection is one descriptor. */
#define NODE_FDS_RESERVE (HTTP_MAX_CONNECTIONS + 1024)

static json_t *cert_json(const rm_cert_record_t *c) {
        return json_pack("{s:s,s:s,s:s}", "serial", c->serial, "role", c->role, "provider", c->provider);
}

void oracle_tls_cert_accept(oracle_t *o, const rm_cert_record_t *c) {
        pthread_mutex_lock(&o->tls.lock);
        json_object_set_new(o->tls.certs, c->rm, cert_json(c));
        pthread_mutex_unlock(&o->tls.lock);
}

void oracle_tls_event(oracle_t *o, const http_request_t *req, const char *rm, const char *what) {
        int64_t sec = time_now_ms() / 1000;
        pthread_mutex_lock(&o->tls.lock);
        if (sec != o->tls.events_second) {
                o->tls.events_second = sec;
                o->tls.events_count = 0;
        }
        bool record = o->tls.events_count++ < EVENTS_PER_SECOND;
        pthread_mutex_unlock(&o->tls.lock);
        char ip[64] = "unknown";
        (void)http_request_client_ip(req, ip, sizeof ip);
        log_warn("node channel: %s %.200s from %s refused: %s", req->method, req->path, ip, what);
        if (!record)
                return;
        _cleanup_free_ char *reason = xasprintf("node channel: %s %.200s from %s: %s", req->method, req->path, ip, what);
        utf8_sanitize(reason);
        store_event_add(o->store, "auth-failed", NULL, NULL, rm && name_is_valid(rm) ? rm : NULL, reason);
}

/* The verified RM certificate of req: 0 and its subject, or -errno with the answer in reply. */
static int node_peer(oracle_t *o, http_request_t *req, tls_peer_t *ret, http_reply_t *reply) {
        tls_peer_t p = { 0 };
        int r = http_request_peer(req, &p);
        if (r == -ENOKEY) {
                oracle_tls_event(o, req, NULL, "no client certificate");
                http_reply_error(reply, 401, "unauthenticated",
                                 "the node channel takes an RM's certificate (enrol with `vmatrix node --join TOKEN`)");
                return -EACCES;
        }
        if (r < 0) {
                oracle_tls_event(o, req, NULL, "a certificate that is not of this Oracle's CA, or expired");
                http_reply_error(reply, 401, "unauthenticated",
                                 "the client certificate is not of this Oracle's CA, or it expired");
                return -EACCES;
        }
        if (!streq(p.ou, TLS_OU_NODE)) {
                _cleanup_free_ char *why = xasprintf("a certificate of OU \"%s\", not an RM's", p.ou);
                oracle_tls_event(o, req, NULL, why);
                http_reply_error(reply, 403, "forbidden", "the node channel takes RM certificates only");
                return -EPERM;
        }
        pthread_mutex_lock(&o->tls.lock);
        const char *serial = json_string_value(json_object_get(json_object_get(o->tls.certs, p.cn), "serial"));
        bool current = serial && streq(serial, p.serial);
        pthread_mutex_unlock(&o->tls.lock);
        if (!current) {
                _cleanup_free_ char *why = xasprintf("a certificate of RM \"%s\" that is not its current one", p.cn);
                oracle_tls_event(o, req, p.cn, why);
                http_reply_error(reply, 401, "unauthenticated",
                                 "the certificate of RM \"%s\" was replaced by a later enrolment", p.cn);
                return -EACCES;
        }
        *ret = p;
        return 0;
}

int oracle_node_authorize(http_request_t *req, const http_route_t *route, http_reply_t *reply) {
        oracle_t *o = req->userdata;
        if (route->perm == PERM_JOIN || route->perm == PERM_PUBLIC)
                return 0;
        if (route->perm != PERM_NODE && route->perm != PERM_NEST_READ && route->perm != PERM_NEST_WRITE) {
                oracle_tls_event(o, req, NULL, "a user route on the node channel");
                http_reply_error(reply, 403, "forbidden", "%s %s is not served on the node channel (use the user API)",
                                 route->method, route->pattern);
                return -EPERM;
        }
        tls_peer_t p;
        int r = node_peer(o, req, &p, reply);
        if (r < 0)
                return r;
        if (route->owner == OWNER_RM && (!req->params[0] || !streq(req->params[0], p.cn))) {
                _cleanup_free_ char *why = xasprintf("the certificate of RM \"%s\" used for RM \"%s\"", p.cn,
                                                     req->params[0] ? req->params[0] : "");
                oracle_tls_event(o, req, p.cn, why);
                http_reply_error(reply, 403, "forbidden", "RM \"%s\" may not speak for RM \"%s\"", p.cn,
                                 req->params[0] ? req->params[0] : "");
                return -EPERM;
        }
        /* a node route's handler finds the verified certificate here instead of verifying it
         * again (oracle_tls_peer_rm); no user reaches a PERM_NODE route (roles.c), so its
         * principal is always this one. Nest routes are users' too: they get none. */
        if (route->perm == PERM_NODE) {
                tls_peer_t *copy = xcalloc(1, sizeof *copy);
                *copy = p;
                req->principal = copy;
        }
        return 0;
}

int oracle_tls_peer_rm(oracle_t *o, const http_request_t *req, const char *rm, rm_cert_record_t *ret) {
        tls_peer_t p = { 0 };
        if (req->principal)
                p = *(const tls_peer_t *)req->principal; /* verified by oracle_node_authorize */
        else if (http_request_peer(req, &p) < 0)
                return -EACCES;
        if (!streq(p.ou, TLS_OU_NODE) || !streq(p.cn, rm))
                return -EACCES;
        pthread_mutex_lock(&o->tls.lock);
        json_t *c = json_object_get(o->tls.certs, rm);
        const char *serial = json_string_value(json_object_get(c, "serial"));
        int r = serial && streq(serial, p.serial) ? 0 : -EACCES;
        if (r == 0) {
                *ret = (rm_cert_record_t){ 0 };
                SET(ret->rm, rm);
                SET(ret->serial, serial);
                SET(ret->role, json_string_value(json_object_get(c, "role")));
                SET(ret->provider, json_string_value(json_object_get(c, "provider")));
        }
        pthread_mutex_unlock(&o->tls.lock);
        return r;
}

/* "ADDR:PORT+1" of the user API's address. */
static char *node_listen_default(const char *listen) {
        _cleanup_free_ char *host = NULL;
        int port = 0;
        if (http_split_hostport(listen, &host, &port) < 0 || port >= 65535)
                return NULL;
        return xasprintf("%s:%d", host, port + 1);
}

static int pem_pair_read(const char *cert_path, const char *key_path, char **ret_cert, char **ret_key) {
        _cleanup_free_ char *msg = NULL;
        int r = tls_pem_read(cert_path, false, ret_cert, &msg);
        if (r >= 0)
                r = tls_pem_read(key_path, true, ret_key, &msg);
        if (r < 0)
                log_error("cannot read %s: %s", r == -ENOENT ? cert_path : key_path, msg ? msg : strerror(-r));
        return r;
}

int oracle_tls_start(oracle_t *o, const oracle_tls_opts_t *opts) {
        oracle_tls_t *t = &o->tls;
        pthread_mutex_init(&t->lock, NULL);
        t->certs = json_object();
        t->node_listen = opts->node_listen ? xstrdup(opts->node_listen) : node_listen_default(o->listen);
        _cleanup_free_ char *host = NULL;
        int port = 0;
        if (!t->node_listen || http_split_hostport(t->node_listen, &host, &port) < 0) {
                log_error("--node-listen must be ADDR:PORT");
                return -EINVAL;
        }
        _cleanup_free_ char *dir = xasprintf("%s/" CA_DIR, o->data), *msg = NULL;
        int r = ca_open(dir, &t->ca, &msg);
        if (r < 0) {
                log_error("cannot open the CA: %s", msg ? msg : strerror(-r));
                return r;
        }
        if (r > 0)
                log_info("first start: made the CA in %s", dir);
        ca_cert_opts_t me = { .cn = TLS_ORACLE_CN, .ou = TLS_OU_ORACLE, .dns = TLS_ORACLE_DNS, .client = true };
        r = ca_identity_ensure(t->ca, dir, "oracle", &me, &msg);
        _cleanup_free_ char *cert = xasprintf("%s/oracle.pem", dir), *key = xasprintf("%s/oracle.key", dir);
        _cleanup_free_ char *ca_file = xasprintf("%s/" CA_CERT_FILE, dir);
        if (r < 0 || pem_pair_read(cert, key, &t->cert_pem, &t->key_pem) < 0) {
                log_error("cannot make the Oracle's certificate: %s", msg ? msg : strerror(-r));
                return r < 0 ? r : -EIO;
        }
        if (opts->api_cert || opts->api_key) {
                if (!opts->api_cert || !opts->api_key) {
                        log_error("--tls-cert and --tls-key go together");
                        return -EINVAL;
                }
                r = pem_pair_read(opts->api_cert, opts->api_key, &t->api_cert_pem, &t->api_key_pem);
                if (r < 0)
                        return r;
        } else if (opts->api_auto) {
                _cleanup_free_ char *api_host = NULL;
                int api_port = 0;
                struct in_addr a;
                if (http_split_hostport(o->listen, &api_host, &api_port) < 0 || inet_pton(AF_INET, api_host, &a) != 1)
                        return -EINVAL;
                ca_cert_opts_t api = { .cn = TLS_ORACLE_CN, .ou = TLS_OU_API,
                                       .ip = streq(api_host, "0.0.0.0") ? "127.0.0.1" : api_host };
                free(msg);
                msg = NULL;
                r = ca_identity_ensure(t->ca, dir, "api", &api, &msg);
                _cleanup_free_ char *ac = xasprintf("%s/api.pem", dir), *ak = xasprintf("%s/api.key", dir);
                if (r < 0 || pem_pair_read(ac, ak, &t->api_cert_pem, &t->api_key_pem) < 0) {
                        log_error("cannot make the user API's certificate: %s", msg ? msg : strerror(-r));
                        return r < 0 ? r : -EIO;
                }
        }
        r = http_tls_new(ca_file, cert, key, &t->client);
        if (r < 0)
                return r;
        http_client_tls_default(t->client);
        uint8_t server_key[AUTH_KEY_BYTES];
        free(msg);
        msg = NULL;
        r = auth_key_load_or_create(o->data, server_key, &msg);
        if (r < 0) {
                log_error("cannot load the server key: %s", msg ? msg : strerror(-r));
                return r;
        }
        r = enrol_new(o->store, server_key, t->ca, &t->enrol);
        explicit_bzero(server_key, sizeof server_key);
        if (r < 0)
                return r;
        rm_cert_record_t *certs = NULL;
        size_t n = 0;
        r = store_rm_cert_list(o->store, &certs, &n);
        if (r < 0) {
                log_error("cannot read the RMs' certificates from the store");
                return r;
        }
        for (size_t i = 0; i < n; i++)
                json_object_set_new(t->certs, certs[i].rm, cert_json(&certs[i]));
        free(certs);
        return 0;
}

/* A number from /proc/sys (0 when unreadable). */
static unsigned long long proc_sys_number(const char *path) {
        _cleanup_free_ char *text = NULL;
        if (file_read(path, &text, NULL) < 0)
                return 0;
        return strtoull(text, NULL, 10);
}

/* Raises the open-files limit to its hard limit and says how many RMs the node channel takes:
 * NODE_CONNECTIONS, or fewer when the descriptors do not allow them (logged as an error: the
 * RMs above it would be fenced). Too few threads for them is a warning: pid_max and threads-max
 * are the whole machine's, so they tell a risk, not a figure. */
static unsigned node_channel_capacity(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
                return NODE_CONNECTIONS;
        if (rl.rlim_cur < rl.rlim_max) {
                struct rlimit up = { .rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max };
                if (setrlimit(RLIMIT_NOFILE, &up) == 0)
                        rl = up;
        }
        unsigned max = NODE_CONNECTIONS;
        if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (rlim_t)NODE_CONNECTIONS + NODE_FDS_RESERVE) {
                max = rl.rlim_cur > (rlim_t)NODE_FDS_RESERVE + HTTP_MAX_CONNECTIONS
                              ? (unsigned)(rl.rlim_cur - NODE_FDS_RESERVE)
                              : HTTP_MAX_CONNECTIONS;
                log_error("the Oracle may open %llu files (RLIMIT_NOFILE, its hard limit): the node channel takes %u "
                          "RMs, not %d, and an RM above that is fenced as silent; raise the limit (ulimit -Hn, "
                          "LimitNOFILE=) to %d or more",
                          (unsigned long long)rl.rlim_cur, max, NODE_CONNECTIONS, NODE_CONNECTIONS + NODE_FDS_RESERVE);
        }
        unsigned long long threads = proc_sys_number("/proc/sys/kernel/pid_max");
        unsigned long long tmax = proc_sys_number("/proc/sys/kernel/threads-max");
        struct rlimit np;
        if (tmax && (!threads || tmax < threads))
                threads = tmax;
        if (getrlimit(RLIMIT_NPROC, &np) == 0 && np.rlim_cur != RLIM_INFINITY && (!threads || np.rlim_cur < threads))
                threads = np.rlim_cur;
        if (threads && threads < (unsigned long long)max + NODE_FDS_RESERVE)
                log_warn("this machine runs at most %llu threads (pid_max, threads-max, RLIMIT_NPROC), and each RM's "
                         "connection to the node channel is one: fewer than %u RMs may be served",
                         threads, max);
        return max;
}

int oracle_tls_listen(oracle_t *o, const http_route_t *routes, const char *upload_dir) {
        oracle_tls_t *t = &o->tls;
        http_server_params_t p = {
                .listen = t->node_listen, .routes = routes, .upload_dir = upload_dir, .userdata = o,
                .authorize = oracle_node_authorize, .tls_cert = t->cert_pem, .tls_key = t->key_pem,
                .tls_trust = ca_cert_pem(t->ca), .first_request_timeout_s = ORACLE_NODE_FIRST_REQUEST_S,
                .max_connections = node_channel_capacity(), .thread_stack_kib = NODE_STACK_KIB,
                .max_handshakes = NODE_HANDSHAKES,
        };
        http_server_t *http = NULL;
        int r = http_server_start(&p, &http);
        /* the user API already serves /v1/health, which reads it (oracle_tls_channel_json) */
        __atomic_store_n(&t->http, http, __ATOMIC_RELEASE);
        if (r < 0)
                log_error("cannot listen on %s (node channel): %s", t->node_listen, strerror(-r));
        else
                log_info("node channel (mutual TLS) on %s, for %u RMs", t->node_listen, p.max_connections);
        return r;
}

json_t *oracle_tls_channel_json(oracle_t *o) {
        http_server_t *http = __atomic_load_n(&o->tls.http, __ATOMIC_ACQUIRE);
        if (!http)
                return json_null();
        http_server_stats_t st;
        http_server_stats(http, &st);
        return json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "open", (json_int_t)st.open, "total", (json_int_t)st.total,
                         "at_limit", (json_int_t)st.at_limit, "max", (json_int_t)st.max_connections, "handshaking",
                         (json_int_t)st.handshaking, "busy", (json_int_t)st.busy);
}

void oracle_tls_stop(oracle_t *o) {
        oracle_tls_t *t = &o->tls;
        t->http = http_server_stop(t->http);
        http_client_tls_default(NULL);
        t->client = http_tls_free(t->client);
        t->enrol = enrol_free(t->enrol);
        t->ca = ca_free(t->ca);
        json_decref(t->certs);
        t->certs = NULL;
        free(t->node_listen);
        free(t->cert_pem);
        if (t->key_pem)
                explicit_bzero(t->key_pem, strlen(t->key_pem));
        free(t->key_pem);
        free(t->api_cert_pem);
        if (t->api_key_pem)
                explicit_bzero(t->api_key_pem, strlen(t->api_key_pem));
        free(t->api_key_pem);
}
