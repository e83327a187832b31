/* The load balancer's logic (see lb.h): lb_sync's diff between the wanted servers and what
 * HAProxy serves, and the stats. Validation and the configuration text are in lb-config.c, the
 * processes in lb-process.c, the admin-socket protocol in lb-runtime.c.
 *
 * Servers are HAProxy 2.6 dynamic servers; they proved workable, within limits that shape this
 * file (each checked against /usr/sbin/haproxy 2.6.12):
 *   - "add server B/S ADDR OPTIONS" accepts check, inter, fall, rise, maxconn, but a dynamic
 *     server does not inherit "default-server": every server, dynamic or in the configuration,
 *     gets the same options spelled out (lb_config_server_options);
 *   - it is created in maintenance with its checks off ("option httpchk" of the backend does
 *     apply): "enable health B/S", then "set server B/S state ready|drain";
 *   - "del server" refuses a server not in maintenance ("Only servers in maintenance mode can
 *     be deleted.") or with a connection left ("Server still has connections attached to it,
 *     cannot remove it."); entering maintenance drops idle pooled connections, a request in
 *     flight completes. Such a server stays in maintenance in lb->svcs and its deletion is tried
 *     again on every sync; after LB_CUT_AFTER_MS its sessions are shut down;
 *   - servers written in the configuration can be deleted too.
 *
 * lb_sync costs nothing but a waitpid when nothing changed: lb->svcs holds what HAProxy serves.
 * It is read back from HAProxy ("show servers state") after every start, after any refused
 * command, and every LB_VERIFY_MS, rather than trusted. */
#include "lb/lb.h"

#include <signal.h>
#include <string.h>
#include <sys/un.h>

#include "base/util.h"
#include "lb/lb-internal.h"
#include "lb/lb-runtime.h"

#define LB_CUT_AFTER_MS 30000 /* a removed server holding sessions this long has them shut down */
#define LB_VERIFY_MS 30000

int lb_new(const char *dir, const lb_options_t *opts, lb_t **ret) {
        static const lb_options_t defaults = { 0 };
        if (!dir || !*dir || !ret)
                return -EINVAL;
        if (!opts)
                opts = &defaults;
        const char *haproxy = opts->haproxy ? opts->haproxy : "/usr/sbin/haproxy";
        if (access(haproxy, X_OK) < 0)
                return -ENOENT;
        if (opts->server_maxconn < 0 || opts->check_inter_ms < 0 || opts->check_fall < 0)
                return -EINVAL;
        int r = mkdir_p(dir, 0755);
        if (r < 0)
                return r;
        _cleanup_free_ char *abs = realpath(dir, NULL);
        if (!abs)
                return negative_errno();
        /* the directory goes into the configuration as a bare word */
        if (strpbrk(abs, " \t\n\"'\\#$"))
                return -EINVAL;
        /* room for DIR/haproxy-4294967295.sock in a sockaddr_un */
        if (strlen(abs) + 32 > sizeof(((struct sockaddr_un *)NULL)->sun_path))
                return -ENAMETOOLONG;

        lb_t *lb = xcalloc(1, sizeof *lb);
        lb->haproxy = xstrdup(haproxy);
        lb->cfg_path = xasprintf("%s/haproxy.cfg", abs);
        lb->pid_path = xasprintf("%s/haproxy.pid", abs);
        lb->log_path = xasprintf("%s/haproxy.log", abs);
        lb->dir = TAKE_PTR(abs);
        lb->maxconn = opts->server_maxconn ? opts->server_maxconn : 16;
        lb->inter_ms = opts->check_inter_ms ? opts->check_inter_ms : 1000;
        lb->fall = opts->check_fall ? opts->check_fall : 3;
        lb_process_adopt(lb);
        *ret = lb;
        return 0;
}

lb_t *lb_free(lb_t *lb) {
        if (!lb)
                return NULL;
        lb_process_free(lb);
        lb_svcs_free(lb->svcs, lb->n_svcs);
        free(lb->dir);
        free(lb->haproxy);
        free(lb->cfg_path);
        free(lb->pid_path);
        free(lb->log_path);
        free(lb->start_error);
        free(lb);
        return NULL;
}

int lb_pid(const lb_t *lb) {
        return lb ? (int)lb->cur.pid : 0;
}

unsigned lb_restarts(const lb_t *lb) {
        return lb ? lb->restarts : 0;
}

/* Records a refused runtime command; the next sync reads the real state back first. */
static void server_failed(lb_t *lb, lb_errs_t *e, int r, const char *svc, const char *srv, const char *what,
                          char *error) {
        lb_errs_add(e, r, "server %s/%s: %s: %s", svc, srv, what, error ? error : strerror(-r));
        free(error);
        lb->resync = true;
}

/* Reads the servers' real state into lb->svcs (keeping when each removal began). */
static int state_read(lb_t *lb, lb_errs_t *e) {
        _cleanup_free_ lb_state_row_t *rows = NULL;
        size_t n = 0;
        int r = lb_runtime_state(lb->cur.sock, &rows, &n);
        if (r < 0) {
                lb_errs_add(e, r, "haproxy %d: reading the servers' state from %s: %s", (int)lb->cur.pid,
                            lb->cur.sock, strerror(-r));
                lb->resync = true;
                return r;
        }
        for (size_t i = 0; i < lb->n_svcs; i++) {
                lb_svc_t *s = &lb->svcs[i], fresh = *s;
                fresh.servers = NULL;
                fresh.n_servers = 0;
                for (size_t k = 0; k < n; k++) {
                        if (!streq(rows[k].backend, s->name))
                                continue;
                        lb_srv_t *o = lb_srv_push(&fresh), *known = lb_srv_find(s, rows[k].name);
                        memcpy(o->name, rows[k].name, sizeof o->name);
                        memcpy(o->address, rows[k].address, sizeof o->address);
                        o->admin = rows[k].admin & LB_RUNTIME_ADMIN_MAINT   ? LB_ADMIN_MAINT
                                   : rows[k].admin & LB_RUNTIME_ADMIN_DRAIN ? LB_ADMIN_DRAIN
                                                                            : LB_ADMIN_READY;
                        if (known && o->admin == LB_ADMIN_MAINT) {
                                o->removing_since = known->removing_since;
                                o->sessions_cut = known->sessions_cut;
                        }
                }
                free(s->servers);
                *s = fresh;
        }
        lb->resync = false;
        lb->verify_at = time_now_ms() + LB_VERIFY_MS;
        return 0;
}

/* Puts a server that is no longer wanted in maintenance and deletes it, or leaves it for a later
 * sync while it holds connections. Returns whether it is gone from have. */
static bool server_remove(lb_t *lb, lb_svc_t *have, lb_srv_t *s, lb_errs_t *e) {
        const char *sock = lb->cur.sock, *b = have->name;
        int64_t now = time_now_ms();
        char *error = NULL;
        int r;
        if (s->admin != LB_ADMIN_MAINT) {
                if ((r = lb_runtime_server_state(sock, b, s->name, "maint", &error)) < 0) {
                        server_failed(lb, e, r, b, s->name, "set state maint", error);
                        return false;
                }
                s->admin = LB_ADMIN_MAINT;
        }
        if (!s->removing_since)
                s->removing_since = now;
        r = lb_runtime_server_del(sock, b, s->name, &error);
        if (r >= 0 || r == -ENOENT) {
                free(error);
                *s = have->servers[--have->n_servers];
                return true;
        }
        if (r != -EBUSY)
                server_failed(lb, e, r, b, s->name, "del server", error);
        else {
                free(error);
                /* longer than the timeouts allow a request: idle keep-alive clients; cut them */
                if (!s->sessions_cut && now - s->removing_since >= LB_CUT_AFTER_MS) {
                        if ((r = lb_runtime_server_shutdown(sock, b, s->name, &error)) < 0)
                                server_failed(lb, e, r, b, s->name, "shutdown sessions", error);
                        s->sessions_cut = true;
                }
        }
        return false;
}

/* Brings the server w of have to its wanted address and state, adding it if needed. */
static void server_apply(lb_t *lb, lb_svc_t *have, const lb_srv_t *w, const char *options, lb_errs_t *e) {
        const char *sock = lb->cur.sock, *b = have->name, *what;
        char *error = NULL;
        int r;
        lb_srv_t *s = lb_srv_find(have, w->name);
        if (!s) {
                what = "add server";
                if ((r = lb_runtime_server_add(sock, b, w->name, w->address, options, &error)) < 0)
                        goto fail;
                s = lb_srv_push(have);
                *s = (lb_srv_t){ .admin = LB_ADMIN_MAINT };
                memcpy(s->name, w->name, sizeof s->name);
                memcpy(s->address, w->address, sizeof s->address);
                what = "enable health";
                if ((r = lb_runtime_server_health(sock, b, w->name, &error)) < 0)
                        goto fail;
        }
        if (!streq(s->address, w->address)) {
                /* in maintenance meanwhile: no request goes to a half-changed server */
                what = "set state maint";
                if (s->admin != LB_ADMIN_MAINT && (r = lb_runtime_server_state(sock, b, w->name, "maint", &error)) < 0)
                        goto fail;
                s->admin = LB_ADMIN_MAINT;
                what = "set addr";
                if ((r = lb_runtime_server_addr(sock, b, w->name, w->address, &error)) < 0)
                        goto fail;
                memcpy(s->address, w->address, sizeof s->address);
                lb->verify_at = 0; /* read back what HAProxy made of it */
        }
        if (s->admin != w->admin) {
                what = "set state";
                if ((r = lb_runtime_server_state(sock, b, w->name, w->admin == LB_ADMIN_READY ? "ready" : "drain",
                                                 &error)) < 0)
                        goto fail;
                s->admin = w->admin;
        }
        s->removing_since = 0;
        s->sessions_cut = false;
        return;
fail:
        server_failed(lb, e, r, b, w->name, what, error);
}

/* Brings have's servers to want's: removals first, so a name is free before it comes back. A
 * refused command stops the diff (lb->resync): the next sync starts from the real state. */
static void svc_reconcile(lb_t *lb, lb_svc_t *have, const lb_svc_t *want, lb_errs_t *e) {
        for (size_t i = 0; i < have->n_servers && !lb->resync;)
                if (lb_srv_find(want, have->servers[i].name) || !server_remove(lb, have, &have->servers[i], e))
                        i++;
        _cleanup_free_ char *options = lb_config_server_options(lb);
        for (size_t j = 0; j < want->n_servers && !lb->resync; j++)
                server_apply(lb, have, &want->servers[j], options, e);
}

int lb_sync(lb_t *lb, const lb_service_t *services, size_t n, char **ret_msg) {
        if (ret_msg)
                *ret_msg = NULL;
        if (!lb || (n > 0 && !services))
                return -EINVAL;
        lb_errs_t e = { 0 };
        lb_process_reap(lb);
        lb_svc_t *want;
        size_t n_want;
        lb_config_want(lb, services, n, &e, &want, &n_want);

        if (n_want == 0) {
                lb_process_stop(lb);
                lb_svcs_free(lb->svcs, lb->n_svcs);
                lb->svcs = NULL;
                lb->n_svcs = 0;
        } else if (!lb->cur.pid || !lb_config_same(want, n_want, lb->svcs, lb->n_svcs))
                lb_process_start(lb, want, n_want, &e);

        if (lb->cur.pid && lb->n_svcs > 0) {
                if (lb->resync || time_now_ms() >= lb->verify_at)
                        (void)state_read(lb, &e);
                for (size_t i = 0; i < lb->n_svcs && !lb->resync; i++) {
                        const lb_svc_t *w = lb_svc_find(want, n_want, lb->svcs[i].name);
                        if (w) /* else a deleted service whose reload failed: it stays */
                                svc_reconcile(lb, &lb->svcs[i], w, &e);
                }
        }
        lb_svcs_free(want, n_want);
        if (e.msg)
                utf8_sanitize(e.msg);
        if (ret_msg)
                *ret_msg = e.msg;
        else
                free(e.msg);
        return e.r;
}

int lb_stats(lb_t *lb, lb_stats_t *ret) {
        if (!lb || !ret)
                return -EINVAL;
        if (!lb->cur.pid)
                return -ENOTCONN;
        _cleanup_free_ lb_stat_row_t *rows = NULL;
        size_t n = 0, n_servers = 0;
        int r = lb_runtime_stat(lb->cur.sock, &rows, &n);
        if (r < 0)
                return r;
        for (size_t k = 0; k < n; k++)
                if (rows[k].type == LB_ROW_SERVER && lb_svc_find(lb->svcs, lb->n_svcs, rows[k].proxy))
                        n_servers++;

        lb_stats_t s = { .services = xcalloc(MAX(lb->n_svcs, 1), sizeof *s.services),
                         .servers = xcalloc(MAX(n_servers, 1), sizeof *s.servers) };
        for (size_t i = 0; i < lb->n_svcs; i++) {
                lb_service_stats_t *v = &s.services[s.n_services++];
                memcpy(v->name, lb->svcs[i].name, sizeof v->name);
                v->first_server = s.n_servers;
                for (size_t k = 0; k < n; k++) {
                        const lb_stat_row_t *row = &rows[k];
                        if (!streq(row->proxy, v->name))
                                continue;
                        if (row->type == LB_ROW_FRONTEND) {
                                v->sessions = row->scur;
                                v->request_rate = row->req_rate;
                                v->requests = row->req_tot;
                                v->errors += row->hrsp_5xx;
                        } else if (row->type == LB_ROW_BACKEND) {
                                v->queue = row->qcur;
                                v->response_ms = row->rtime;
                                v->queue_ms = row->qtime;
                                /* aborted: clients that gave up (also while queued), servers that broke off */
                                v->errors += row->cli_abrt + row->srv_abrt;
                        } else if (row->type == LB_ROW_SERVER) {
                                lb_server_stats_t *o = &s.servers[s.n_servers++];
                                memcpy(o->service, v->name, sizeof o->service);
                                memcpy(o->name, row->name, sizeof o->name);
                                snprintf(o->status, sizeof o->status, "%s", row->status);
                                o->down = str_startswith(row->status, "DOWN");
                                o->sessions = row->scur;
                                o->queue = row->qcur;
                                o->requests = row->req_tot;
                                o->errors = row->econ + row->eresp + row->hrsp_5xx;
                                o->response_ms = row->rtime;
                        }
                }
                v->n_servers = s.n_servers - v->first_server;
        }
        *ret = s;
        return 0;
}

void lb_stats_clear(lb_stats_t *s) {
        if (!s)
                return;
        free(s->services);
        free(s->servers);
        *s = (lb_stats_t){ 0 };
}
