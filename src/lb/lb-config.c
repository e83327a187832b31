/* What the load balancer should serve: validation of the caller's services into lb_svc_t
 * (names, addresses, duplicates, binds we can listen on) and the HAProxy configuration text
 * written for them. Pure but for one test socket per new bind. */
#include "lb/lb-internal.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"

#define LB_HARD_STOP_S 60 /* an old process ends by then, whatever its sessions (> the 30 s timeouts) */

void lb_errs_add(lb_errs_t *e, int r, const char *fmt, ...) {
        char buf[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(buf, sizeof buf, fmt, ap);
        va_end(ap);
        char *msg = e->msg ? xasprintf("%s; %s", e->msg, buf) : xstrdup(buf);
        free(e->msg);
        e->msg = msg;
        if (e->r >= 0)
                e->r = r < 0 ? r : -EIO;
}

void lb_svcs_free(lb_svc_t *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i].servers);
        free(v);
}

lb_svc_t *lb_svc_find(lb_svc_t *v, size_t n, const char *name) {
        for (size_t i = 0; name && i < n; i++)
                if (streq(v[i].name, name))
                        return &v[i];
        return NULL;
}

lb_srv_t *lb_srv_find(const lb_svc_t *s, const char *name) {
        for (size_t i = 0; i < s->n_servers; i++)
                if (streq(s->servers[i].name, name))
                        return &s->servers[i];
        return NULL;
}

lb_srv_t *lb_srv_push(lb_svc_t *s) {
        lb_srv_t *v = realloc(s->servers, (s->n_servers + 1) * sizeof *v);
        if (!v)
                abort();
        s->servers = v;
        v[s->n_servers] = (lb_srv_t){ 0 };
        return &v[s->n_servers++];
}

static int address_parse(const char *s, char ret[24], struct sockaddr_in *ret_sa) {
        const char *colon = s ? strrchr(s, ':') : NULL;
        if (!colon || colon == s || colon - s > 15)
                return -EINVAL;
        char ip[16];
        memcpy(ip, s, (size_t)(colon - s));
        ip[colon - s] = 0;
        size_t digits = strlen(colon + 1);
        struct in_addr a;
        if (inet_pton(AF_INET, ip, &a) != 1 || digits == 0 || digits > 5 || strspn(colon + 1, "0123456789") != digits)
                return -EINVAL;
        int port = atoi(colon + 1);
        if (port < 1 || port > 65535)
                return -EINVAL;
        inet_ntop(AF_INET, &a, ip, sizeof ip);
        snprintf(ret, 24, "%s:%d", ip, port);
        if (ret_sa)
                *ret_sa = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr = a };
        return 0;
}

/* Two binds collide on the same port when their addresses are equal or one is the wildcard. */
static bool binds_collide(const char *a, const char *b) {
        struct sockaddr_in x, y;
        char tmp[24];
        if (address_parse(a, tmp, &x) < 0 || address_parse(b, tmp, &y) < 0)
                return false;
        return x.sin_port == y.sin_port && (x.sin_addr.s_addr == y.sin_addr.s_addr ||
                                            x.sin_addr.s_addr == INADDR_ANY || y.sin_addr.s_addr == INADDR_ANY);
}

/* Whether we can listen on bind: told here, by name, rather than by an HAProxy that exits. */
static int bind_probe(const char *address) {
        struct sockaddr_in sa;
        char tmp[24];
        if (address_parse(address, tmp, &sa) < 0)
                return -EINVAL;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int one = 1;
        if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
                return negative_errno();
        return bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ? negative_errno() : 0;
}

static const char *str_or_null(const char *s) {
        return s ? s : "(null)";
}

/* Copies and checks one service; on error records it and returns -EINVAL, ret untouched. */
static int svc_parse(const lb_service_t *in, size_t index, lb_svc_t *ret, lb_errs_t *e) {
        lb_svc_t v = { 0 };
        if (!name_is_valid(in->name)) {
                lb_errs_add(e, -EINVAL, "service #%zu: invalid name \"%.64s\" (1..63 of [a-z0-9-])", index,
                            str_or_null(in->name));
                return -EINVAL;
        }
        snprintf(v.name, sizeof v.name, "%s", in->name);
        if (address_parse(in->bind, v.bind, NULL) < 0) {
                lb_errs_add(e, -EINVAL, "service \"%s\": invalid bind \"%.64s\" (IPv4:PORT)", v.name, str_or_null(in->bind));
                return -EINVAL;
        }
        const char *path = in->health_path ? in->health_path : LB_HEALTH_PATH_DEFAULT;
        if (!lb_health_kind_name(in->health)) {
                lb_errs_add(e, -EINVAL, "service \"%s\": invalid health check kind %d", v.name, (int)in->health);
                return -EINVAL;
        }
        if (in->health == LB_HEALTH_HTTP && !lb_health_path_valid(path)) {
                lb_errs_add(e, -EINVAL, "service \"%s\": invalid health check path \"%.64s\"", v.name, path);
                return -EINVAL;
        }
        v.health = in->health;
        if (in->health == LB_HEALTH_HTTP)
                snprintf(v.health_path, sizeof v.health_path, "%s", path);
        if (in->n_servers > 0 && !in->servers) {
                lb_errs_add(e, -EINVAL, "service \"%s\": servers missing", v.name);
                return -EINVAL;
        }
        v.servers = xcalloc(MAX(in->n_servers, 1), sizeof *v.servers);
        for (size_t j = 0; j < in->n_servers; j++) {
                const lb_server_t *s = &in->servers[j];
                lb_srv_t *o = &v.servers[j];
                bool bad = true;
                if (!name_is_valid(s->name))
                        lb_errs_add(e, -EINVAL, "service \"%s\": invalid server name \"%.64s\" (1..63 of [a-z0-9-])",
                                    v.name, str_or_null(s->name));
                else if (lb_srv_find(&v, s->name))
                        lb_errs_add(e, -EINVAL, "service \"%s\": server \"%s\" named twice", v.name, s->name);
                else if (address_parse(s->address, o->address, NULL) < 0)
                        lb_errs_add(e, -EINVAL, "service \"%s\": server \"%s\": invalid address \"%.64s\" (IPv4:PORT)",
                                    v.name, s->name, str_or_null(s->address));
                else if (s->state != LB_SERVER_READY && s->state != LB_SERVER_DRAIN)
                        lb_errs_add(e, -EINVAL, "service \"%s\": server \"%s\": invalid state %d", v.name, s->name,
                                    (int)s->state);
                else
                        bad = false;
                if (bad) {
                        free(v.servers);
                        return -EINVAL;
                }
                snprintf(o->name, sizeof o->name, "%s", s->name);
                o->admin = s->state == LB_SERVER_READY ? LB_ADMIN_READY : LB_ADMIN_DRAIN;
                v.n_servers++;
        }
        *ret = v;
        return 0;
}

/* Whether lb's HAProxy already listens on bind, so that trying it would fail. The binds of one
 * adopted from an earlier run are unknown: HAProxy itself will tell ("cannot bind"). */
static bool bind_held(const lb_t *lb, const char *bind) {
        if (lb->cur.pid && !lb->cur.child && lb->n_svcs == 0)
                return true;
        for (size_t i = 0; lb->cur.pid && i < lb->n_svcs; i++)
                if (streq(lb->svcs[i].bind, bind))
                        return true;
        return false;
}

static bool svc_collides(const lb_svc_t *v, size_t n, const lb_svc_t *s) {
        for (size_t i = 0; i < n; i++)
                if (streq(v[i].name, s->name) || binds_collide(v[i].bind, s->bind))
                        return true;
        return false;
}

void lb_config_want(const lb_t *lb, const lb_service_t *in, size_t n, lb_errs_t *e, lb_svc_t **ret, size_t *ret_n) {
        lb_svc_t *want = xcalloc(MAX(n, 1), sizeof *want);
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                lb_svc_t v;
                int r = svc_parse(&in[i], i, &v, e);
                if (r >= 0 && svc_collides(want, k, &v)) {
                        lb_errs_add(e, r = -EINVAL, "service \"%s\": name or bind %s already used by another service",
                                    v.name, v.bind);
                        free(v.servers);
                } else if (r >= 0 && !bind_held(lb, v.bind) && (r = bind_probe(v.bind)) < 0) {
                        lb_errs_add(e, r, "service \"%s\": cannot listen on %s: %s", v.name, v.bind, strerror(-r));
                        free(v.servers);
                }
                if (r >= 0) {
                        want[k++] = v;
                        continue;
                }
                /* keep what this service had */
                const lb_svc_t *old = lb_svc_find(lb->svcs, lb->n_svcs, in[i].name);
                if (!old || svc_collides(want, k, old))
                        continue;
                v = (lb_svc_t){ .n_servers = 0 };
                memcpy(v.name, old->name, sizeof v.name);
                memcpy(v.bind, old->bind, sizeof v.bind);
                v.health = old->health;
                memcpy(v.health_path, old->health_path, sizeof v.health_path);
                v.servers = xcalloc(MAX(old->n_servers, 1), sizeof *v.servers);
                for (size_t j = 0; j < old->n_servers; j++)
                        if (old->servers[j].admin != LB_ADMIN_MAINT)
                                v.servers[v.n_servers++] = old->servers[j];
                want[k++] = v;
        }
        *ret = want;
        *ret_n = k;
}

bool lb_config_same(const lb_svc_t *a, size_t na, lb_svc_t *b, size_t nb) {
        if (na != nb)
                return false;
        for (size_t i = 0; i < na; i++) {
                const lb_svc_t *o = lb_svc_find(b, nb, a[i].name);
                if (!o || !streq(o->bind, a[i].bind) || o->health != a[i].health ||
                    !streq(o->health_path, a[i].health_path))
                        return false;
        }
        return true;
}

char *lb_config_server_options(const lb_t *lb) {
        return xasprintf("check inter %d fall %d rise 1 maxconn %d", lb->inter_ms, lb->fall, lb->maxconn);
}

char *lb_config_build(const lb_t *lb, const char *sock, const lb_svc_t *want, size_t n) {
        char *text = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&text, &len);
        if (!f)
                abort();
        _cleanup_free_ char *options = lb_config_server_options(lb);
        /* fd-hard-limit: HAProxy sizes maxconn from "ulimit -n", huge in some containers;
         * retry-on: 2.6 replays a request after a failed connect, an empty answer or a server
         * timeout (redispatched to another server), so a server leaving loses no request;
         * dontlog-normal: the log holds errors only */
        fprintf(f, "# Generated by vmatrix (src/lb/lb-config.c) on every change of the services; do not edit.\n"
                   "global\n"
                   "    stats socket %s mode 600 level admin expose-fd listeners\n"
                   "    hard-stop-after %ds\n"
                   "    fd-hard-limit 65536\n"
                   "    log stderr format iso local0 info\n"
                   "\n"
                   "defaults\n"
                   "    mode http\n"
                   "    log global\n"
                   "    option httplog\n"
                   "    option dontlog-normal\n"
                   "    option log-separate-errors\n"
                   "    option redispatch\n"
                   "    retries 3\n"
                   "    retry-on conn-failure empty-response response-timeout\n"
                   "    http-reuse safe\n"
                   "    timeout connect 2s\n"
                   "    timeout client 30s\n"
                   "    timeout server 30s\n"
                   "    timeout queue 30s\n"
                   "    timeout http-request 10s\n",
                sock, LB_HARD_STOP_S);
        for (size_t i = 0; i < n; i++) {
                const lb_svc_t *s = &want[i];
                fprintf(f, "\nfrontend %s\n    bind %s\n    default_backend %s\n", s->name, s->bind, s->name);
                /* leastconn: allowed with dynamic servers, and spreads by load rather than by turn */
                fprintf(f, "\nbackend %s\n    balance leastconn\n", s->name);
                /* the servers' "check": an HTTP GET of the service's path (its servers up on 2xx
                 * and 3xx, lb_health_status_ok), or, without httpchk, a TCP connection */
                if (s->health == LB_HEALTH_HTTP)
                        fprintf(f, "    option httpchk GET %s\n    http-check expect status 200-399\n", s->health_path);
                /* a DRAIN server starts in maintenance ("disabled"), so a restarted HAProxy sends it
                 * nothing new; lb_sync sets it to drain right after */
                for (size_t j = 0; j < s->n_servers; j++)
                        fprintf(f, "    server %s %s %s%s\n", s->servers[j].name, s->servers[j].address, options,
                                s->servers[j].admin == LB_ADMIN_READY ? "" : " disabled");
        }
        if (fclose(f) != 0 || !text)
                abort();
        return text;
}
