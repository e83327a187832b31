/* Implementation of cluster-stub.h with libmicrohttpd. Test code: small over complete. */
#include "cluster/cluster-stub.h"

#include <arpa/inet.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/util.h"
#include "cluster/process.h"
#include "net/http-client.h"

#define STUB_HEARTBEAT_MS 1000
#define STUB_DOWN_AFTER_MS 3000

/* Per-request buffer for an uploaded body. */
typedef struct body {
        char *data;
        size_t len;
} body_t;

typedef enum MHD_Result (*route_fn)(struct MHD_Connection *c, const char *method, const char *url,
                                    const body_t *body);

static enum MHD_Result reply_json(struct MHD_Connection *c, unsigned status, json_t *j) {
        _cleanup_free_ char *text = json_dumps(j, JSON_COMPACT);
        json_decref(j);
        if (!text)
                text = xstrdup("{}");
        struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_COPY);
        MHD_add_response_header(r, "Content-Type", "application/json");
        enum MHD_Result ret = MHD_queue_response(c, status, r);
        MHD_destroy_response(r);
        return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *msg) {
        return reply_json(c, status, json_pack("{s:{s:i, s:s}}", "error", "code", (json_int_t)status, "message", msg));
}

static enum MHD_Result dispatch(void *cls, struct MHD_Connection *c, const char *url, const char *method,
                                const char *version, const char *upload, size_t *upload_size, void **con_cls) {
        body_t *b = *con_cls;
        if (!b) {
                *con_cls = xcalloc(1, sizeof *b);
                return MHD_YES;
        }
        if (*upload_size > 0) {
                char *d = realloc(b->data, b->len + *upload_size + 1);
                if (!d)
                        return MHD_NO;
                memcpy(d + b->len, upload, *upload_size);
                b->data = d;
                b->len += *upload_size;
                b->data[b->len] = 0;
                *upload_size = 0;
                return MHD_YES;
        }
        return ((route_fn)cls)(c, method, url, b);
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls, enum MHD_RequestTerminationCode t) {
        body_t *b = *con_cls;
        if (b)
                free(b->data);
        free(b);
        *con_cls = NULL;
}

/* "A:P" -> sockaddr; -EINVAL if malformed. */
static int listen_parse(const char *s, struct sockaddr_in *ret) {
        const char *colon = s ? strrchr(s, ':') : NULL;
        if (!colon)
                return -EINVAL;
        _cleanup_free_ char *host = strndup(s, (size_t)(colon - s));
        int64_t port;
        struct sockaddr_in sa = { .sin_family = AF_INET };
        if (!host || inet_pton(AF_INET, host, &sa.sin_addr) != 1 || parse_int64(colon + 1, 1, 65535, &port) < 0)
                return -EINVAL;
        sa.sin_port = htons((uint16_t)port);
        *ret = sa;
        return 0;
}

static struct MHD_Daemon *serve(const char *listen, route_fn routes) {
        struct sockaddr_in sa;
        if (listen_parse(listen, &sa) < 0) {
                log_error("bad --listen %s", listen ? listen : "(none)");
                return NULL;
        }
        struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                                                dispatch, (void *)routes, MHD_OPTION_SOCK_ADDR, &sa,
                                                MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL, MHD_OPTION_END);
        if (!d)
                log_error("cannot listen on %s", listen);
        return d;
}

static void maybe_ignore_term(const char *name) {
        const char *who = getenv("VMATRIX_STUB_IGNORE_TERM");
        if (who && streq(who, name)) {
                log_info("ignoring SIGTERM (VMATRIX_STUB_IGNORE_TERM)");
                signal(SIGTERM, SIG_IGN);
        }
}

/* ---- oracle ---- */

typedef struct stub_rm {
        char *name, *role, *address;
        int64_t last_ms;
} stub_rm_t;

static struct {
        pthread_mutex_t lock;
        stub_rm_t rms[64];
        size_t n;
} oracle = { .lock = PTHREAD_MUTEX_INITIALIZER };

static enum MHD_Result oracle_ping(struct MHD_Connection *c, const char *name) {
        _cleanup_free_ char *address = NULL;
        pthread_mutex_lock(&oracle.lock);
        for (size_t i = 0; i < oracle.n; i++)
                if (streq(oracle.rms[i].name, name))
                        address = xstrdup(oracle.rms[i].address);
        pthread_mutex_unlock(&oracle.lock);
        if (!address)
                return reply_error(c, 404, "no such rm");
        _cleanup_free_ char *url = xasprintf("http://%s/v1/ping", address);
        http_response_t resp = { 0 };
        int r = http_request_json("GET", url, NULL, 3000, &resp);
        if (r < 0 || resp.status != 200 || !resp.json) {
                http_response_clear(&resp);
                return reply_error(c, 502, "node did not answer");
        }
        json_t *j = json_pack("{s:s, s:O}", "via", "oracle", "node", resp.json);
        http_response_clear(&resp);
        return reply_json(c, 200, j);
}

static enum MHD_Result oracle_routes(struct MHD_Connection *c, const char *method, const char *url,
                                     const body_t *body) {
        if (streq(method, "GET") && streq(url, "/v1/health"))
                return reply_json(c, 200, json_pack("{s:s}", "status", "ok"));
        if (streq(method, "GET") && streq(url, "/v1/rms")) {
                json_t *a = json_array();
                int64_t now = time_now_ms();
                pthread_mutex_lock(&oracle.lock);
                for (size_t i = 0; i < oracle.n; i++) {
                        const stub_rm_t *rm = &oracle.rms[i];
                        json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:i}", "name", rm->name, "role",
                                                           rm->role, "state",
                                                           now - rm->last_ms < STUB_DOWN_AFTER_MS ? "up" : "down",
                                                           "address", rm->address, "vms", (json_int_t)0));
                }
                pthread_mutex_unlock(&oracle.lock);
                return reply_json(c, 200, a);
        }
        if (!str_startswith(url, "/v1/rms/"))
                return reply_error(c, 404, "not found");
        _cleanup_free_ char *name = xstrdup(url + strlen("/v1/rms/"));
        char *slash = strchr(name, '/');
        if (!slash)
                return reply_error(c, 404, "not found");
        *slash = 0;
        const char *action = slash + 1;
        if (streq(method, "GET") && streq(action, "ping"))
                return oracle_ping(c, name);
        if (!streq(method, "POST") || !streq(action, "heartbeat"))
                return reply_error(c, 404, "not found");

        _cleanup_(json_decrefp) json_t *j = body->data ? json_loads(body->data, 0, NULL) : NULL;
        const char *role = NULL, *address = NULL;
        if (!name_is_valid(name) || json_unpack(j, "{s:s, s:s}", "role", &role, "address", &address) < 0)
                return reply_error(c, 400, "bad heartbeat");
        pthread_mutex_lock(&oracle.lock);
        stub_rm_t *rm = NULL;
        for (size_t i = 0; i < oracle.n; i++)
                if (streq(oracle.rms[i].name, name))
                        rm = &oracle.rms[i];
        if (!rm && oracle.n < ELEMENTSOF(oracle.rms)) {
                rm = &oracle.rms[oracle.n++];
                rm->name = xstrdup(name);
                log_info("rm %s registered (%s, %s)", name, role, address);
        }
        if (rm) {
                free(rm->role);
                free(rm->address);
                rm->role = xstrdup(role);
                rm->address = xstrdup(address);
                rm->last_ms = time_now_ms();
        }
        pthread_mutex_unlock(&oracle.lock);
        return rm ? reply_json(c, 200, json_object()) : reply_error(c, 507, "too many rms");
}

int stub_oracle_main(int argc, char **argv) {
        static const struct option opts[] = { { "data", required_argument, NULL, 'd' },
                                              { "listen", required_argument, NULL, 'l' },
                                              {} };
        const char *data = NULL, *listen = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                if (c == 'd')
                        data = optarg;
                else if (c == 'l')
                        listen = optarg;
                else
                        return 2;
        }
        log_setup("stub-oracle");
        if (!data || mkdir_p(data, 0755) < 0) {
                log_error("bad --data");
                return 2;
        }
        maybe_ignore_term("oracle");
        struct MHD_Daemon *d = serve(listen, oracle_routes);
        if (!d)
                return 1;
        log_info("listening on %s, data in %s", listen, data);
        for (;;)
                pause();
}

/* ---- node ---- */

static struct {
        const char *name, *role;
} node;

static enum MHD_Result node_routes(struct MHD_Connection *c, const char *method, const char *url,
                                   const body_t *body) {
        if (streq(method, "GET") && streq(url, "/v1/ping"))
                return reply_json(c, 200, json_pack("{s:s, s:s, s:i}", "name", node.name, "role", node.role, "pid",
                                                    (json_int_t)getpid()));
        return reply_error(c, 404, "not found");
}

/* Starts a detached fake QEMU (double fork, own session, like `qemu -daemonize`) unless the one
 * named by its pid file still runs. Not proc_spawn_daemon: what is tested here is a QEMU that is
 * not the node's child (init reaps it, a restarted node finds it by its pid file), and only the
 * intermediate process exiting gives that. Between fork and exec the children call only setsid,
 * fork and execv, which take no lock the HTTP thread could hold. */
static void node_start_qemu(const char *data) {
        _cleanup_free_ char *run = xasprintf("%s/run/vm-%s", data, node.name);
        _cleanup_free_ char *pidfile = xasprintf("%s/qemu.pid", run);
        pid_t old;
        if (process_pidfile_read(pidfile, &old) >= 0 && process_alive(old)) {
                log_info("fake qemu still runs as pid %d", (int)old);
                return;
        }
        if (mkdir_p(run, 0755) < 0)
                return;
        _cleanup_free_ char *self = exe_path();
        pid_t pid = fork();
        if (pid == 0) {
                setsid();
                if (fork() == 0) {
                        char *args[] = { "qemu-system-x86_64", "-pidfile", pidfile, NULL };
                        execv(self, args);
                        _exit(127);
                }
                _exit(0);
        }
        if (pid > 0)
                waitpid(pid, NULL, 0);
}

int stub_node_main(int argc, char **argv) {
        static const struct option opts[] = { { "oracle", required_argument, NULL, 'o' },
                                              { "name", required_argument, NULL, 'n' },
                                              { "role", required_argument, NULL, 'r' },
                                              { "data", required_argument, NULL, 'd' },
                                              { "listen", required_argument, NULL, 'l' },
                                              { "accel", required_argument, NULL, 'a' },
                                              {} };
        const char *oracle_url = NULL, *data = NULL, *listen = NULL, *accel = NULL;
        int c;
        while ((c = getopt_long(argc, argv, "", opts, NULL)) >= 0) {
                switch (c) {
                case 'o': oracle_url = optarg; break;
                case 'n': node.name = optarg; break;
                case 'r': node.role = optarg; break;
                case 'd': data = optarg; break;
                case 'l': listen = optarg; break;
                case 'a': accel = optarg; break;
                default: return 2;
                }
        }
        log_setup("stub-node");
        if (!oracle_url || !node.name || !node.role || !data || !listen || mkdir_p(data, 0755) < 0) {
                log_error("usage: node --oracle URL --name NAME --role ROLE --data DIR --listen ADDR:PORT");
                return 2;
        }
        const char *fail = getenv("VMATRIX_STUB_FAIL_NODE");
        if (fail && streq(fail, node.name)) {
                log_error("%s failing on purpose (VMATRIX_STUB_FAIL_NODE)", node.name);
                return 3;
        }
        maybe_ignore_term(node.name);
        struct MHD_Daemon *d = serve(listen, node_routes);
        if (!d)
                return 1;
        log_info("%s (%s) listening on %s, oracle %s, accel %s", node.name, node.role, listen, oracle_url,
                 accel ? accel : "-");
        node_start_qemu(data);

        const char *hang = getenv("VMATRIX_STUB_HANG_NODE");
        bool beat = !(hang && streq(hang, node.name));
        _cleanup_free_ char *url = xasprintf("%s/v1/rms/%s/heartbeat", oracle_url, node.name);
        _cleanup_(json_decrefp) json_t *body = json_pack("{s:s, s:s}", "role", node.role, "address", listen);
        for (;;) {
                if (beat) {
                        http_response_t resp = { 0 };
                        int r = http_request_json("POST", url, body, 2000, &resp);
                        if (r < 0 || resp.status != 200)
                                log_warn("heartbeat to %s failed: %s", url, http_error_message(&resp, r));
                        http_response_clear(&resp);
                }
                time_sleep_ms(STUB_HEARTBEAT_MS);
        }
}

/* ---- qemu ---- */

int stub_qemu_main(int argc, char **argv) {
        for (int i = 1; i + 1 < argc; i++)
                if (streq(argv[i], "-pidfile") && process_pidfile_write(argv[i + 1], getpid()) < 0)
                        return 1;
        for (;;)
                pause();
}
