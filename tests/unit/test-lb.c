/* Unit tests of the load balancer. Part 1: the runtime protocol with canned HAProxy replies, good
 * and malformed, parsed directly and served by a fake admin socket. Part 2: a real HAProxy
 * (/usr/sbin/haproxy; skipped when missing) in front of tiny in-process HTTP servers: balancing,
 * drain, removal, reload under load, restart after kill -9, health checks, bad input. Waits are
 * bounded polls (up to 10 s), never timed assertions. */
#include "lb/lb.h"
#include "lb/lb-runtime.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "base/util.h"

#define HAPROXY "/usr/sbin/haproxy"
#define POLL_MS 10000

/* ---- part 1: the protocol ---- */

static const char STAT_CSV[] =
        "# pxname,svname,qcur,scur,stot,econ,eresp,status,type,req_rate,hrsp_5xx,req_tot,cli_abrt,srv_abrt,"
        "qtime,rtime,check_desc,addr,\n"
        "web,FRONTEND,,3,12,,,OPEN,0,4,1,12,,,,,,,\n"
        "web,vm-a,0,1,6,0,0,UP,2,,0,6,0,0,0,2,\"Layer7 check passed, \"\"ok\"\"\",127.0.0.1:8081,\n"
        "web,vm-b,2,0,6,1,2,DRAIN 1/2,2,,3,6,0,0,0,5,,127.0.0.1:8082,\n"
        "web,BACKEND,5,1,12,1,2,UP,1,,3,12,2,1,7,4,,,\n"
        "\n";

static void test_stat_parse(void) {
        lb_stat_row_t *rows = NULL;
        size_t n = 0;
        CHECK(lb_runtime_stat_parse(STAT_CSV, &rows, &n) == 0);
        CHECK(n == 4);
        if (n == 4) {
                CHECK(rows[0].type == LB_ROW_FRONTEND && rows[0].scur == 3 && rows[0].req_rate == 4);
                CHECK(rows[0].req_tot == 12 && rows[0].hrsp_5xx == 1 && rows[0].qcur == 0);
                CHECK_STREQ(rows[1].name, "vm-a");
                CHECK_STREQ(rows[1].status, "UP");
                CHECK(rows[1].type == LB_ROW_SERVER && rows[1].rtime == 2);
                CHECK_STREQ(rows[2].status, "DRAIN 1/2");
                CHECK(rows[2].qcur == 2 && rows[2].econ == 1 && rows[2].eresp == 2 && rows[2].hrsp_5xx == 3);
                CHECK(rows[3].type == LB_ROW_BACKEND && rows[3].qcur == 5 && rows[3].qtime == 7);
                CHECK(rows[3].cli_abrt == 2 && rows[3].srv_abrt == 1);
        }
        free(rows);

        /* header only; columns in another order, and some missing, still work */
        rows = NULL;
        CHECK(lb_runtime_stat_parse("# pxname,svname,type,\n\n", &rows, &n) == 0 && n == 0);
        free(rows);
        rows = NULL;
        CHECK(lb_runtime_stat_parse("# type,svname,pxname\n2,s1,b1\r\n", &rows, &n) == 0 && n == 1);
        CHECK(n == 1 && rows && streq(rows[0].proxy, "b1") && rows[0].scur == 0 && !*rows[0].status);
        free(rows);
        /* a name too long to be ours: skipped */
        char long_row[400];
        snprintf(long_row, sizeof long_row, "# pxname,svname,type\n%070d,x,2\nok,y,2\n", 7);
        rows = NULL;
        CHECK(lb_runtime_stat_parse(long_row, &rows, &n) == 0 && n == 1);
        free(rows);

        static const char *const bad[] = {
                "",
                "\n\n",
                "Unknown command. Please enter one of the following commands only :\n  help\n",
                "pxname,svname,type\nweb,FRONTEND,0\n",     /* no "# " */
                "# pxname,svname\nweb,FRONTEND\n",          /* no type column */
                "# pxname,svname,type,scur\nweb,a,2\n",     /* a field short (truncated reply) */
                "# pxname,svname,type,scur\nweb,a,2,1,9\n", /* a field too many */
                "# pxname,svname,type,scur\nweb,a,2,12x\n", /* not a number */
                "# pxname,svname,type,scur\nweb,a,7,1\n",   /* unknown type */
                "# pxname,svname,type,scur\nweb,a,,1\n",    /* no type */
                "# pxname,svname,type,scur\n,a,2,1\n",      /* no proxy name */
                "# pxname,svname,type,check_desc\nweb,a,2,\"unterminated\n",
                "# pxname,svname,type,check_desc\nweb,a,2,\"x\"y\n",
                "# pxname,svname,type,scur\nweb,a,2,99999999999999999999\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                rows = NULL;
                int r = lb_runtime_stat_parse(bad[i], &rows, &n);
                CHECK(r == -EBADMSG && rows == NULL);
                if (r != -EBADMSG)
                        fprintf(stderr, "  (bad stat #%zu gave %d)\n", i, r);
        }
        CHECK(lb_runtime_stat_parse(NULL, &rows, &n) == -EBADMSG);
        /* more columns than the parser takes */
        _cleanup_free_ char *wide = xcalloc(1, 8192);
        strcpy(wide, "# pxname,svname,type");
        for (int i = 0; i < 600; i++)
                strcat(wide, ",x");
        CHECK(lb_runtime_stat_parse(wide, &rows, &n) == -EBADMSG);
}

static const char STATE_TEXT[] =
        "1\n"
        "# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight "
        "srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state "
        "srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port "
        "srv_check_addr srv_agent_addr srv_agent_port\n"
        "3 web 1 vm-a 127.0.0.1 2 0 1 1 1 15 3 2 6 0 0 0 - 18081 - 0 0 - - 0\n"
        "3 web 2 vm-b 127.0.0.1 2 12 1 1 0 1 0 1 6 0 0 0 - 18082 - 0 0 - - 0\n"
        "3 web 3 vm-c 10.0.0.3 0 1 1 1 0 1 0 0 2 0 0 0 - 80 - 0 0 - - 0\n"
        "\n";

static void test_state_parse(void) {
        lb_state_row_t *rows = NULL;
        size_t n = 0;
        CHECK(lb_runtime_state_parse(STATE_TEXT, &rows, &n) == 0 && n == 3);
        if (n == 3) {
                CHECK_STREQ(rows[0].backend, "web");
                CHECK_STREQ(rows[0].address, "127.0.0.1:18081");
                CHECK(rows[0].admin == 0 && rows[0].op == 2);
                /* "disabled" in the config, then "state drain": CMAINT stays, but it is not maintenance */
                CHECK(rows[1].admin == 12 && !(rows[1].admin & LB_RUNTIME_ADMIN_MAINT) &&
                      (rows[1].admin & LB_RUNTIME_ADMIN_DRAIN));
                CHECK((rows[2].admin & LB_RUNTIME_ADMIN_MAINT) && streq(rows[2].address, "10.0.0.3:80"));
        }
        free(rows);
        rows = NULL;
        CHECK(lb_runtime_state_parse("1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_port\n", &rows,
                                     &n) == 0 && n == 0);
        free(rows);
        static const char *const bad[] = {
                "",
                "No such backend.\n",
                "2\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_port\n",
                "1\n",
                "1\nbe_name srv_name\n",
                "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state\n",   /* no srv_port */
                "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_port\nweb a 1.2.3.4 2 0\n",
                "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_port\nweb a 1.2.3.4 2 zz 80\n",
                "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_port\nweb a 1.2.3.4 2 0 99999\n",
                "1\n# be_name srv_name srv_addr srv_op_state srv_admin_state srv_port\nweb a 1.2.3.4 2 0 80 x\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                rows = NULL;
                CHECK(lb_runtime_state_parse(bad[i], &rows, &n) == -EBADMSG && rows == NULL);
        }
}

/* A fake admin socket: answers every connection with the next canned reply, then closes. */
typedef struct fake {
        int fd;
        char path[108];
        const char *const *replies;
        size_t n_replies;
        char last[256];         /* the last command received */
        pthread_t thread;
} fake_t;

static void *fake_run(void *arg) {
        fake_t *f = arg;
        for (size_t i = 0; i < f->n_replies; i++) {
                int c = accept(f->fd, NULL, NULL);
                if (c < 0)
                        break;
                ssize_t n = read(c, f->last, sizeof f->last - 1);
                f->last[MAX(n, 0)] = 0;
                (void)fd_write_all(c, f->replies[i], strlen(f->replies[i]));
                close(c);
        }
        return NULL;
}

static void fake_start(fake_t *f, const char *dir, const char *const *replies, size_t n) {
        *f = (fake_t){ .replies = replies, .n_replies = n };
        snprintf(f->path, sizeof f->path, "%s/fake.sock", dir);
        unlink(f->path);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        strcpy(sa.sun_path, f->path);
        f->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        CHECK(f->fd >= 0 && bind(f->fd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(f->fd, 16) == 0);
        pthread_create(&f->thread, NULL, fake_run, f);
}

static void fake_stop(fake_t *f) {
        pthread_join(f->thread, NULL);
        close(f->fd);
        unlink(f->path);
}

static void test_runtime_socket(const char *dir) {
        static const char *const replies[] = {
                "\x01\xff garbage \x80\n,,,\n",
                "",
                "New server registered.\n\n",
                "Already exists a server with the same name in backend.\n",
                "\n",
                "Server still has connections attached to it, cannot remove it.\n",
                "No such server.\n",
                "Server deleted.\n",
                "Require 'backend/server'.\n",
                "no need to change the addr, port changed from '80' to '81' by 'stats socket command'\n",
                "Invalid addr '1.2.3' by 'stats socket command'\n",
                STATE_TEXT,
        };
        fake_t f;
        fake_start(&f, dir, replies, ELEMENTSOF(replies));
        lb_stat_row_t *rows = NULL;
        lb_state_row_t *srows = NULL;
        size_t n;
        char *err = NULL;
        CHECK(lb_runtime_stat(f.path, &rows, &n) == -EBADMSG && !rows);
        CHECK(lb_runtime_stat(f.path, &rows, &n) == -EBADMSG && !rows); /* closed without a word */
        CHECK(lb_runtime_server_add(f.path, "web", "vm-a", "127.0.0.1:80", "check", &err) == 0 && !err);
        CHECK_STREQ(f.last, "add server web/vm-a 127.0.0.1:80 check\n");
        CHECK(lb_runtime_server_add(f.path, "web", "vm-a", "127.0.0.1:80", NULL, &err) == -EEXIST && err);
        free(err);
        err = NULL;
        CHECK(lb_runtime_server_state(f.path, "web", "vm-a", "drain", &err) == 0);
        CHECK_STREQ(f.last, "set server web/vm-a state drain\n");
        CHECK(lb_runtime_server_del(f.path, "web", "vm-a", NULL) == -EBUSY);
        CHECK(lb_runtime_server_del(f.path, "web", "vm-a", NULL) == -ENOENT);
        CHECK(lb_runtime_server_del(f.path, "web", "vm-a", NULL) == 0);
        CHECK(lb_runtime_server_health(f.path, "web", "vm-a", &err) == -EPROTO);
        CHECK_STREQ(err, "Require 'backend/server'.");
        free(err);
        err = NULL;
        CHECK(lb_runtime_server_addr(f.path, "web", "vm-a", "127.0.0.1:81", NULL) == 0);
        CHECK_STREQ(f.last, "set server web/vm-a addr 127.0.0.1 port 81\n");
        CHECK(lb_runtime_server_addr(f.path, "web", "vm-a", "1.2.3:81", NULL) == -EPROTO);
        CHECK(lb_runtime_state(f.path, &srows, &n) == 0 && n == 3);
        free(srows);
        fake_stop(&f);
        /* refused before anything is sent */
        CHECK(lb_runtime_server_state(f.path, "web", "vm-a", "up", NULL) == -EINVAL);
        CHECK(lb_runtime_server_del(f.path, "web;shutdown", "vm-a", NULL) == -EINVAL);
        CHECK(lb_runtime_command(f.path, "show stat\nshow info", &err) == -EINVAL);
        CHECK(lb_runtime_command(f.path, "show stat", &err) == -ENOENT); /* no socket any more */
}

/* ---- part 2: a real HAProxy ---- */

/* A tiny HTTP server: GET /health answers "ok", GET /missing 404, anything else the server's
 * name. A mute one closes every connection without a word (TCP up, HTTP not). */
typedef struct httpd {
        int fd;
        uint16_t port;
        char name[16];
        bool mute;
        atomic_bool stop;
        atomic_int hits;
        pthread_t thread;
} httpd_t;

static void *httpd_run(void *arg) {
        httpd_t *h = arg;
        while (!atomic_load(&h->stop)) {
                struct pollfd p = { .fd = h->fd, .events = POLLIN };
                if (poll(&p, 1, 50) <= 0)
                        continue;
                int c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
                if (c < 0)
                        continue;
                if (h->mute) {
                        close(c);
                        continue;
                }
                struct timeval tv = { .tv_sec = 2 };
                setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
                char req[2048];
                size_t len = 0;
                while (len < sizeof req - 1) {
                        ssize_t n = read(c, req + len, sizeof req - 1 - len);
                        if (n <= 0)
                                break;
                        len += (size_t)n;
                        req[len] = 0;
                        if (strstr(req, "\r\n\r\n"))
                                break;
                }
                req[len] = 0;
                bool health = str_startswith(req, "GET /health ");
                if (str_startswith(req, "GET /slow "))
                        time_sleep_ms(1500);
                if (!health && str_startswith(req, "GET "))
                        atomic_fetch_add(&h->hits, 1);
                bool missing = str_startswith(req, "GET /missing ");
                const char *body = health ? "ok" : missing ? "no" : h->name;
                _cleanup_free_ char *resp = xasprintf("HTTP/1.1 %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                                      missing ? "404 Not Found" : "200 OK", strlen(body), body);
                (void)fd_write_all(c, resp, strlen(resp));
                close(c);
        }
        return NULL;
}

static int listen_any(uint16_t *ret_port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 64) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                abort();
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

static void httpd_start(httpd_t *h, const char *name) {
        h->fd = listen_any(&h->port);
        h->mute = streq(name, "mute");
        snprintf(h->name, sizeof h->name, "%s", name);
        atomic_store(&h->stop, false);
        atomic_store(&h->hits, 0);
        pthread_create(&h->thread, NULL, httpd_run, h);
}

static void httpd_stop(httpd_t *h) {
        if (h->fd < 0)
                return;
        atomic_store(&h->stop, true);
        pthread_join(h->thread, NULL);
        close(h->fd);
        h->fd = -1;
}

static uint16_t free_port(void) {
        uint16_t port;
        close(listen_any(&port));
        return port;
}

/* GET path on 127.0.0.1:port: the status (or -errno) and the body's first bytes in ret_body. */
static int http_get_path(uint16_t port, const char *path, char ret_body[32]) {
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct timeval tv = { .tv_sec = 10 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
                return negative_errno();
        _cleanup_free_ char *req = xasprintf("GET %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n", path);
        if (fd_write_all(fd, req, strlen(req)) < 0)
                return -EIO;
        char buf[4096];
        size_t len = 0;
        for (;;) {
                ssize_t n = read(fd, buf + len, sizeof buf - 1 - len);
                if (n < 0)
                        return negative_errno();
                if (n == 0 || (len += (size_t)n) == sizeof buf - 1)
                        break;
        }
        buf[len] = 0;
        int status = 0;
        if (sscanf(buf, "HTTP/1.%*d %d", &status) != 1)
                return -EBADMSG;
        const char *body = strstr(buf, "\r\n\r\n");
        snprintf(ret_body, 32, "%s", body ? body + 4 : "");
        return status;
}

static int http_get(uint16_t port, char ret_body[32]) {
        return http_get_path(port, "/", ret_body);
}

/* A request in flight on its own thread. */
typedef struct slow {
        uint16_t port;
        int status;
        char body[32];
        pthread_t thread;
} slow_t;

static void *slow_run(void *arg) {
        slow_t *r = arg;
        r->status = http_get_path(r->port, "/slow", r->body);
        return NULL;
}

/* Sends n requests; counts how many reached each name (a, b), returns how many failed. */
static int spread(uint16_t port, int n, const char *a, int *ret_a, const char *b, int *ret_b) {
        int failed = 0;
        *ret_a = *ret_b = 0;
        for (int i = 0; i < n; i++) {
                char body[32];
                if (http_get(port, body) != 200)
                        failed++;
                else if (streq(body, a))
                        (*ret_a)++;
                else if (b && streq(body, b))
                        (*ret_b)++;
        }
        return failed;
}

/* Finds the stats of server name in service; false when absent. */
static bool server_stats(lb_t *lb, const char *service, const char *name, lb_server_stats_t *ret) {
        lb_stats_t s;
        if (lb_stats(lb, &s) < 0)
                return false;
        bool found = false;
        for (size_t i = 0; i < s.n_servers && !found; i++)
                if (streq(s.servers[i].service, service) && streq(s.servers[i].name, name)) {
                        *ret = s.servers[i];
                        found = true;
                }
        lb_stats_clear(&s);
        return found;
}

static size_t service_servers(lb_t *lb, const char *service) {
        lb_stats_t s;
        size_t n = 0;
        if (lb_stats(lb, &s) < 0)
                return 0;
        for (size_t i = 0; i < s.n_services; i++)
                if (streq(s.services[i].name, service))
                        n = s.services[i].n_servers;
        lb_stats_clear(&s);
        return n;
}

/* A client hammering a port until told to stop. */
typedef struct hammer {
        uint16_t port;
        atomic_bool stop;
        atomic_int ok, failed;
        pthread_t thread;
} hammer_t;

static void *hammer_run(void *arg) {
        hammer_t *h = arg;
        while (!atomic_load(&h->stop)) {
                char body[32];
                int status = http_get(h->port, body);
                if (status == 200)
                        atomic_fetch_add(&h->ok, 1);
                else {
                        atomic_fetch_add(&h->failed, 1);
                        fprintf(stderr, "  hammer: request failed: %d\n", status);
                }
        }
        return NULL;
}

/* Starts hammering port, and returns once 20 requests went through. */
static void hammer_start(hammer_t *h, uint16_t port) {
        *h = (hammer_t){ .port = port };
        pthread_create(&h->thread, NULL, hammer_run, h);
        while (atomic_load(&h->ok) + atomic_load(&h->failed) < 20)
                time_sleep_ms(5);
}

/* Lets 50 more requests through (or one fail), stops, and returns how many failed. */
static int hammer_stop(hammer_t *h) {
        int before = atomic_load(&h->ok);
        while (atomic_load(&h->ok) < before + 50 && atomic_load(&h->failed) == 0)
                time_sleep_ms(5);
        atomic_store(&h->stop, true);
        pthread_join(h->thread, NULL);
        printf("# hammered through a hand-over: %d requests, %d failed\n", atomic_load(&h->ok), atomic_load(&h->failed));
        return atomic_load(&h->failed);
}

static bool pid_gone(int pid) {
        return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Syncs and reports the error message (for the failure output). */
static int sync_services(lb_t *lb, const lb_service_t *svc, size_t n, char **ret_msg) {
        char *msg = NULL;
        int r = lb_sync(lb, svc, n, &msg);
        if (ret_msg)
                *ret_msg = msg;
        else {
                if (msg)
                        fprintf(stderr, "  lb_sync: %d %s\n", r, msg);
                free(msg);
        }
        return r;
}

/* Polls lb_sync with svc until cond holds, for up to POLL_MS. */
#define SYNC_UNTIL(lb, svc, n, cond)                                              \
        ({                                                                        \
                bool _ok = false;                                                 \
                for (int64_t _end = time_now_ms() + POLL_MS; time_now_ms() < _end;) { \
                        sync_services(lb, svc, n, NULL);                          \
                        if ((_ok = (cond)))                                       \
                                break;                                            \
                        time_sleep_ms(50);                                        \
                }                                                                 \
                _ok;                                                              \
        })

/* Bad input changes nothing: same process, same servers in each service. */
static void check_bad(lb_t *lb, const lb_service_t *svc, size_t n, int want_r, const char *want_text, int pid) {
        char *msg = NULL;
        int r = sync_services(lb, svc, n, &msg);
        CHECK(r == want_r);
        CHECK(msg && strstr(msg, want_text));
        if (r != want_r || !msg || !strstr(msg, want_text))
                fprintf(stderr, "  bad input gave %d \"%s\", wanted %d \"%s\"\n", r, msg ? msg : "", want_r, want_text);
        free(msg);
        CHECK(lb_pid(lb) == pid);
        CHECK(service_servers(lb, "web") == 2 && service_servers(lb, "api") == 1);
}

/* An "haproxy" that exits at once: -EIO with a message, then attempts are backed off. */
static void test_start_failure(const char *parent) {
        _cleanup_free_ char *dir = xasprintf("%s/false", parent);
        lb_options_t opts = { .haproxy = "/bin/false" };
        lb_t *lb = NULL;
        CHECK(lb_new(dir, &opts, &lb) == 0);
        uint16_t port = free_port();
        char bind[32], *msg = NULL;
        snprintf(bind, sizeof bind, "127.0.0.1:%u", port);
        lb_service_t svc = { "web", bind, NULL, 0 };
        CHECK(lb_sync(lb, &svc, 1, &msg) == -EIO && msg && strstr(msg, "exited at start"));
        free(msg);
        CHECK(lb_sync(lb, &svc, 1, &msg) == -EIO && msg && strstr(msg, "next attempt in"));
        free(msg);
        CHECK(lb_pid(lb) == 0 && lb_restarts(lb) == 0);
        lb_free(lb);
}

static void test_real(const char *parent) {
        _cleanup_free_ char *dir = xasprintf("%s/lb", parent);
        lb_t *lb = NULL;
        lb_options_t missing = { .haproxy = "/nonexistent/haproxy" };
        CHECK(lb_new(dir, &missing, &lb) == -ENOENT && !lb);
        lb_options_t opts = { .check_inter_ms = 200, .check_fall = 2, .server_maxconn = 8 };
        CHECK(lb_new(dir, &opts, &lb) == 0 && lb);
        CHECK(lb_pid(lb) == 0 && lb_restarts(lb) == 0);
        lb_stats_t st;
        CHECK(lb_stats(lb, &st) == -ENOTCONN);
        test_start_failure(parent);
        CHECK(sync_services(lb, NULL, 0, NULL) == 0 && lb_pid(lb) == 0); /* nothing to serve: not run */

        httpd_t a, b, c;
        httpd_start(&a, "vm-a");
        httpd_start(&b, "vm-b");
        httpd_start(&c, "vm-c");
        char addr_a[32], addr_b[32], addr_c[32], bind_web[32], bind_api[32];
        snprintf(addr_a, sizeof addr_a, "127.0.0.1:%u", a.port);
        snprintf(addr_b, sizeof addr_b, "127.0.0.1:%u", b.port);
        snprintf(addr_c, sizeof addr_c, "127.0.0.1:%u", c.port);
        uint16_t web_port = free_port(), api_port = free_port();
        snprintf(bind_web, sizeof bind_web, "127.0.0.1:%u", web_port);
        snprintf(bind_api, sizeof bind_api, "127.0.0.1:%u", api_port);

        /* one service, two servers: both get requests */
        lb_server_t web[2] = { { "vm-a", addr_a, LB_SERVER_READY }, { "vm-b", addr_b, LB_SERVER_READY } };
        lb_server_t api[2] = { { "vm-c", addr_c, LB_SERVER_READY }, { "vm-c2", addr_a, LB_SERVER_READY } };
        lb_service_t svc[3] = { { "web", bind_web, web, 2 }, { "api", bind_api, api, 1 } };
        CHECK(sync_services(lb, svc, 1, NULL) == 0);
        int pid = lb_pid(lb);
        CHECK(pid > 0);
        int na, nb;
        CHECK(spread(web_port, 20, "vm-a", &na, "vm-b", &nb) == 0);
        CHECK(na > 0 && nb > 0 && na + nb == 20);
        CHECK(sync_services(lb, svc, 1, NULL) == 0 && lb_pid(lb) == pid); /* idempotent */

        /* drain vm-b: new requests only to vm-a, and the stats say DRAIN */
        web[1].state = LB_SERVER_DRAIN;
        CHECK(sync_services(lb, svc, 1, NULL) == 0 && lb_pid(lb) == pid);
        CHECK(spread(web_port, 10, "vm-a", &na, "vm-b", &nb) == 0 && na == 10 && nb == 0);
        lb_server_stats_t ss;
        CHECK(server_stats(lb, "web", "vm-b", &ss) && str_startswith(ss.status, "DRAIN"));
        CHECK(server_stats(lb, "web", "vm-a", &ss) && ss.requests >= 10 && !ss.down);

        /* remove it, then add it back (a dynamic server) */
        svc[0].n_servers = 1;
        CHECK(SYNC_UNTIL(lb, svc, 1, service_servers(lb, "web") == 1));
        CHECK(!server_stats(lb, "web", "vm-b", &ss));
        svc[0].n_servers = 2;
        web[1].state = LB_SERVER_READY;
        CHECK(sync_services(lb, svc, 1, NULL) == 0 && service_servers(lb, "web") == 2);
        CHECK(spread(web_port, 20, "vm-a", &na, "vm-b", &nb) == 0 && na > 0 && nb > 0);
        CHECK(lb_pid(lb) == pid);

        /* a second service: a new process takes the listeners over while a client hammers web */
        hammer_t h;
        hammer_start(&h, web_port);
        CHECK(sync_services(lb, svc, 2, NULL) == 0);
        int pid2 = lb_pid(lb);
        CHECK(pid2 > 0 && pid2 != pid);
        char body[32] = "";
        CHECK(http_get(api_port, body) == 200 && streq(body, "vm-c"));
        CHECK(hammer_stop(&h) == 0);
        CHECK(SYNC_UNTIL(lb, svc, 2, pid_gone(pid))); /* the old one exited and was reaped */
        CHECK(lb_restarts(lb) == 0);

        /* removing a server with a request in flight: it completes; the server is deleted after */
        slow_t sl = { .port = api_port };
        pthread_create(&sl.thread, NULL, slow_run, &sl);
        CHECK(SYNC_UNTIL(lb, svc, 2, server_stats(lb, "api", "vm-c", &ss) && ss.sessions == 1));
        svc[1].n_servers = 0;
        CHECK(sync_services(lb, svc, 2, NULL) == 0);
        CHECK(server_stats(lb, "api", "vm-c", &ss) && streq(ss.status, "MAINT")); /* del refused: busy */
        pthread_join(sl.thread, NULL);
        CHECK(sl.status == 200 && streq(sl.body, "vm-c"));
        CHECK(SYNC_UNTIL(lb, svc, 2, service_servers(lb, "api") == 0));
        svc[1].n_servers = 1;
        CHECK(SYNC_UNTIL(lb, svc, 2, http_get(api_port, body) == 200 && streq(body, "vm-c")));

        /* kill -9: the next sync starts it again with every service and server, drain included */
        web[1].state = LB_SERVER_DRAIN;
        CHECK(sync_services(lb, svc, 2, NULL) == 0);
        CHECK(kill(pid2, SIGKILL) == 0);
        siginfo_t info;
        CHECK(waitid(P_PID, (id_t)pid2, &info, WEXITED | WNOWAIT) == 0); /* dead, not reaped */
        CHECK(sync_services(lb, svc, 2, NULL) == 0);
        CHECK(lb_restarts(lb) == 1);
        int pid3 = lb_pid(lb);
        CHECK(pid3 > 0 && pid3 != pid2 && pid_gone(pid2));
        CHECK(spread(web_port, 10, "vm-a", &na, "vm-b", &nb) == 0 && na == 10);
        CHECK(server_stats(lb, "web", "vm-b", &ss) && str_startswith(ss.status, "DRAIN"));
        CHECK(http_get(api_port, body) == 200 && streq(body, "vm-c"));
        web[1].state = LB_SERVER_READY;
        CHECK(sync_services(lb, svc, 2, NULL) == 0 && lb_pid(lb) == pid3);
        CHECK(spread(web_port, 20, "vm-a", &na, "vm-b", &nb) == 0 && na > 0 && nb > 0);
        CHECK(service_servers(lb, "web") == 2 && service_servers(lb, "api") == 1);

        /* a server whose listener closes goes down after check_fall x check_inter */
        httpd_stop(&c);
        CHECK(SYNC_UNTIL(lb, svc, 2, server_stats(lb, "api", "vm-c", &ss) && ss.down));
        CHECK(str_startswith(ss.status, "DOWN"));

        /* bad input: -EINVAL, a message naming it, nothing changed */
        lb_server_t twice[2] = { { "vm-a", addr_a, LB_SERVER_READY }, { "vm-a", addr_b, LB_SERVER_READY } };
        lb_service_t bad[2] = { { "web", bind_web, twice, 2 }, svc[1] };
        check_bad(lb, bad, 2, -EINVAL, "\"vm-a\" named twice", pid3);
        lb_server_t bad_addr[1] = { { "vm-a", "127.0.0.1:99999", LB_SERVER_READY } };
        bad[0] = (lb_service_t){ "web", bind_web, bad_addr, 1 };
        check_bad(lb, bad, 2, -EINVAL, "127.0.0.1:99999", pid3);
        lb_server_t bad_name[1] = { { "VM_A", addr_a, LB_SERVER_READY } };
        bad[0] = (lb_service_t){ "web", bind_web, bad_name, 1 };
        check_bad(lb, bad, 2, -EINVAL, "VM_A", pid3);
        lb_server_t no_name[1] = { { NULL, NULL, 7 } };
        bad[0] = (lb_service_t){ "web", bind_web, no_name, 1 };
        check_bad(lb, bad, 2, -EINVAL, "(null)", pid3);
        bad[0] = (lb_service_t){ "web", "localhost:80", web, 2 };
        check_bad(lb, bad, 2, -EINVAL, "localhost:80", pid3);
        bad[0] = (lb_service_t){ "web", bind_web, NULL, 3 };
        check_bad(lb, bad, 2, -EINVAL, "servers missing", pid3);
        lb_service_t dup[3] = { svc[0], svc[1], { "api", "127.0.0.1:1", api, 1 } };
        check_bad(lb, dup, 3, -EINVAL, "\"api\": name or bind", pid3);
        dup[2] = (lb_service_t){ "other", bind_web, api, 1 };
        check_bad(lb, dup, 3, -EINVAL, "\"other\": name or bind", pid3);
        dup[2] = (lb_service_t){ "Bad Name", "127.0.0.1:1", api, 1 };
        check_bad(lb, dup, 3, -EINVAL, "\"Bad Name\"", pid3);
        /* a bind in use: -EADDRINUSE, and the other services still apply */
        uint16_t busy_port;
        int busy_fd = listen_any(&busy_port);
        char bind_busy[32];
        snprintf(bind_busy, sizeof bind_busy, "127.0.0.1:%u", busy_port);
        dup[2] = (lb_service_t){ "busy", bind_busy, api, 1 };
        check_bad(lb, dup, 3, -EADDRINUSE, "\"busy\": cannot listen", pid3);
        dup[1].n_servers = 2; /* api gains vm-c2 while web is bad: api applied, web left alone */
        dup[0] = (lb_service_t){ "web", bind_web, twice, 2 };
        char *msg = NULL;
        CHECK(sync_services(lb, dup, 2, &msg) == -EINVAL);
        free(msg);
        CHECK(service_servers(lb, "api") == 2 && service_servers(lb, "web") == 2 && lb_pid(lb) == pid3);
        close(busy_fd);
        CHECK(lb_sync(NULL, svc, 2, NULL) == -EINVAL && lb_sync(lb, NULL, 2, NULL) == -EINVAL);

        svc[1].n_servers = 2;
        /* a new address for a server: vm-c2 moves from vm-a's listener to vm-b's */
        api[1].address = addr_b;
        CHECK(sync_services(lb, svc, 2, NULL) == 0 && lb_pid(lb) == pid3);
        CHECK(SYNC_UNTIL(lb, svc, 2, http_get(api_port, body) == 200 && streq(body, "vm-b")));

        /* stats of the services */
        CHECK(lb_stats(lb, &st) == 0 && st.n_services == 2 && st.n_servers == 4);
        if (st.n_services == 2) {
                CHECK_STREQ(st.services[0].name, "web");
                CHECK(st.services[0].requests >= 20 && st.services[0].first_server == 0 && st.services[0].n_servers == 2);
                CHECK(st.services[1].first_server == 2 && st.services[1].n_servers == 2);
        }
        lb_stats_clear(&st);

        /* no service left: HAProxy stops (softly) and is reaped */
        CHECK(sync_services(lb, NULL, 0, NULL) == 0 && lb_pid(lb) == 0);
        CHECK(lb_stats(lb, &st) == -ENOTCONN);
        CHECK(SYNC_UNTIL(lb, NULL, 0, pid_gone(pid3)));

        /* a second lb on the same directory, as after a crash of the first one's owner, adopts
         * its HAProxy and takes the listeners over at its first sync, with no failed request */
        CHECK(sync_services(lb, svc, 1, NULL) == 0);
        int pid4 = lb_pid(lb);
        lb_t *lb2 = NULL;
        CHECK(lb_new(dir, &opts, &lb2) == 0 && lb_pid(lb2) == pid4);
        hammer_start(&h, web_port);
        CHECK(sync_services(lb2, svc, 1, NULL) == 0);
        int pid5 = lb_pid(lb2);
        CHECK(pid5 > 0 && pid5 != pid4);
        CHECK(hammer_stop(&h) == 0);
        /* the first lb reaps its process and leaves the second one's pid file alone */
        CHECK(lb_free(lb) == NULL);
        CHECK(pid_gone(pid4));
        _cleanup_free_ char *pid_path = xasprintf("%s/haproxy.pid", dir);
        CHECK(file_exists(pid_path));
        CHECK(SYNC_UNTIL(lb2, svc, 1, http_get(web_port, body) == 200));

        /* a third one, whose predecessor's socket is gone: 2.6 refuses "-x" then, so the new
         * process binds beside the old one and stops it */
        lb_t *lb3 = NULL;
        CHECK(lb_new(dir, &opts, &lb3) == 0 && lb_pid(lb3) == pid5);
        _cleanup_free_ char *pid_text = NULL;
        CHECK(file_read(pid_path, &pid_text, NULL) == 0 && strchr(pid_text, '\n'));
        if (pid_text && strchr(pid_text, '\n')) {
                char *sock = strchr(pid_text, '\n') + 1;
                sock[strcspn(sock, "\n")] = 0;
                CHECK(unlink(sock) == 0);
        }
        CHECK(sync_services(lb3, svc, 1, NULL) == 0);
        int pid6 = lb_pid(lb3);
        CHECK(pid6 > 0 && pid6 != pid5);
        CHECK(http_get(web_port, body) == 200);
        CHECK(lb_free(lb2) == NULL && pid_gone(pid5));

        /* lb_free with HAProxy running stops and reaps it */
        CHECK(lb_free(lb3) == NULL);
        CHECK(pid_gone(pid6) && !file_exists(pid_path));
        CHECK(http_get(web_port, body) == -ECONNREFUSED);
        httpd_stop(&a);
        httpd_stop(&b);
}

/* The health check's vocabulary, and the path check that keeps the configuration intact. */
static void test_health_words(void) {
        lb_health_kind_t k = LB_HEALTH_TCP;
        CHECK(lb_health_kind_parse("http", &k) == 0 && k == LB_HEALTH_HTTP);
        CHECK(lb_health_kind_parse("tcp", &k) == 0 && k == LB_HEALTH_TCP);
        CHECK(lb_health_kind_parse("udp", &k) == -EINVAL && k == LB_HEALTH_TCP);
        CHECK(lb_health_kind_parse("HTTP", &k) == -EINVAL && lb_health_kind_parse(NULL, &k) == -EINVAL);
        CHECK_STREQ(lb_health_kind_name(LB_HEALTH_HTTP), "http");
        CHECK_STREQ(lb_health_kind_name(LB_HEALTH_TCP), "tcp");
        CHECK(!lb_health_kind_name((lb_health_kind_t)2) && !lb_health_kind_name((lb_health_kind_t)-1));

        CHECK(lb_health_path_valid("/"));
        CHECK(lb_health_path_valid("/health"));
        CHECK(lb_health_path_valid("/status/ok.html?full=1&x=%20y"));
        CHECK(lb_health_path_valid("/a-b_c~d;e=f,g(h)*+:@!"));
        static const char *const bad[] = {
                "", "health", "/a b", "/a\tb", "/a\nb", "/\n    server evil 10.0.0.1:80", "/a\rb",
                "/a\"b", "/a'b", "/a\\b", "/a#b", "/${HOME}", "/\x7f", "/\xc3\xa9", "/a<b>", "/a|b", "/a`b`",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                CHECK(!lb_health_path_valid(bad[i]));
                if (lb_health_path_valid(bad[i]))
                        fprintf(stderr, "  accepted bad path \"%s\"\n", bad[i]);
        }
        CHECK(!lb_health_path_valid(NULL));
        char longest[LB_HEALTH_PATH_MAX + 2];
        memset(longest, 'a', sizeof longest);
        longest[0] = '/';
        longest[LB_HEALTH_PATH_MAX] = 0;
        CHECK(lb_health_path_valid(longest)); /* 256 bytes */
        longest[LB_HEALTH_PATH_MAX] = 'a';
        longest[LB_HEALTH_PATH_MAX + 1] = 0;
        CHECK(!lb_health_path_valid(longest)); /* 257 */

        CHECK(lb_health_status_ok(200) && lb_health_status_ok(204) && lb_health_status_ok(302) &&
              lb_health_status_ok(399));
        CHECK(!lb_health_status_ok(0) && !lb_health_status_ok(199) && !lb_health_status_ok(404) &&
              !lb_health_status_ok(503));
}

/* The text between "backend NAME\n" and the next blank line of cfg (malloc'd, "" if absent). */
static char *backend_text(const char *cfg, const char *name) {
        _cleanup_free_ char *head = xasprintf("\nbackend %s\n", name);
        const char *b = cfg ? strstr(cfg, head) : NULL;
        if (!b)
                return xstrdup("");
        b += strlen(head);
        const char *end = strstr(b, "\n\n");
        return strndup(b, end ? (size_t)(end - b) : strlen(b));
}

static bool server_is(lb_t *lb, const char *service, const char *server, const char *status) {
        lb_server_stats_t ss;
        return server_stats(lb, service, server, &ss) && str_startswith(ss.status, status);
}

/* Each service checked its own way by a real HAProxy: http of a path (up on 2xx/3xx, down on
 * 404 or no answer), or tcp (up when the connection is accepted, whatever is said on it). */
static void test_health(const char *parent) {
        _cleanup_free_ char *dir = xasprintf("%s/health", parent);
        lb_options_t opts = { .check_inter_ms = 200, .check_fall = 2 };
        lb_t *lb = NULL;
        CHECK(lb_new(dir, &opts, &lb) == 0 && lb);
        if (!lb)
                return;
        httpd_t web, mute;
        httpd_start(&web, "vm-h");
        httpd_start(&mute, "mute");
        char addr_web[32], addr_mute[32], binds[4][32];
        snprintf(addr_web, sizeof addr_web, "127.0.0.1:%u", web.port);
        snprintf(addr_mute, sizeof addr_mute, "127.0.0.1:%u", mute.port);
        for (int i = 0; i < 4; i++)
                snprintf(binds[i], sizeof binds[i], "127.0.0.1:%u", free_port());
        lb_server_t to_web[1] = { { "s1", addr_web, LB_SERVER_READY } };
        lb_server_t to_mute[1] = { { "s1", addr_mute, LB_SERVER_READY } };
        lb_service_t svc[4] = {
                { "hc-root", binds[0], to_web, 1, LB_HEALTH_HTTP, "/" },
                { "hc-miss", binds[1], to_web, 1, LB_HEALTH_HTTP, "/missing" },
                { "hc-tcp", binds[2], to_mute, 1, LB_HEALTH_TCP, NULL },
                { "hc-mute", binds[3], to_mute, 1, LB_HEALTH_HTTP, NULL }, /* GET /health */
        };
        CHECK(sync_services(lb, svc, 4, NULL) == 0);
        int pid = lb_pid(lb);
        CHECK(pid > 0);
        CHECK(SYNC_UNTIL(lb, svc, 4, server_is(lb, "hc-miss", "s1", "DOWN") && server_is(lb, "hc-mute", "s1", "DOWN")));
        /* the same checks ran on these, and passed */
        CHECK(server_is(lb, "hc-root", "s1", "UP"));
        CHECK(server_is(lb, "hc-tcp", "s1", "UP"));

        /* the configuration says so, and nothing is checked where it was not asked for */
        _cleanup_free_ char *cfg_path = xasprintf("%s/haproxy.cfg", dir), *cfg = NULL;
        CHECK(file_read(cfg_path, &cfg, NULL) == 0);
        _cleanup_free_ char *root = backend_text(cfg, "hc-root"), *miss = backend_text(cfg, "hc-miss");
        _cleanup_free_ char *tcp = backend_text(cfg, "hc-tcp"), *dflt = backend_text(cfg, "hc-mute");
        CHECK(strstr(root, "\n    option httpchk GET /\n    http-check expect status 200-399\n"));
        CHECK(strstr(miss, "\n    option httpchk GET /missing\n"));
        CHECK(strstr(dflt, "\n    option httpchk GET /health\n"));
        CHECK(*tcp && !strstr(tcp, "httpchk") && !strstr(tcp, "http-check"));
        const char *defaults = cfg ? strstr(cfg, "\ndefaults\n") : NULL;
        const char *first_frontend = cfg ? strstr(cfg, "\nfrontend ") : NULL;
        CHECK(defaults && first_frontend && !memmem(defaults, (size_t)(first_frontend - defaults), "httpchk", 7));

        /* a path that cannot go into the configuration is refused: nothing of it gets there */
        lb_service_t bad[4] = { svc[0], svc[1], svc[2], svc[3] };
        bad[1].health_path = "/x\n    server evil 10.0.0.1:80";
        char *msg = NULL;
        CHECK(sync_services(lb, bad, 4, &msg) == -EINVAL && msg && strstr(msg, "\"hc-miss\": invalid health check path"));
        free(msg);
        bad[1].health_path = "/missing";
        bad[1].health = (lb_health_kind_t)9;
        CHECK(sync_services(lb, bad, 4, &msg) == -EINVAL && msg && strstr(msg, "invalid health check kind 9"));
        free(msg);
        _cleanup_free_ char *after = NULL;
        CHECK(file_read(cfg_path, &after, NULL) == 0 && cfg && after && streq(cfg, after));
        CHECK(lb_pid(lb) == pid && server_is(lb, "hc-miss", "s1", "DOWN"));

        /* a changed check is a new configuration: hc-miss now checks / and comes up */
        svc[1].health_path = "/";
        CHECK(sync_services(lb, svc, 4, NULL) == 0);
        CHECK(lb_pid(lb) > 0 && lb_pid(lb) != pid);
        CHECK(SYNC_UNTIL(lb, svc, 4, server_is(lb, "hc-miss", "s1", "UP")));
        /* and so is another kind: hc-mute checked by TCP comes up too */
        pid = lb_pid(lb);
        svc[3].health = LB_HEALTH_TCP;
        CHECK(SYNC_UNTIL(lb, svc, 4, server_is(lb, "hc-mute", "s1", "UP")));
        CHECK(lb_pid(lb) != pid);

        CHECK(lb_free(lb) == NULL);
        httpd_stop(&web);
        httpd_stop(&mute);
}

int main(void) {
        char dir[] = "/tmp/test-lb-XXXXXX";
        if (!mkdtemp(dir))
                return 1;
        signal(SIGPIPE, SIG_IGN);
        test_stat_parse();
        test_state_parse();
        test_runtime_socket(dir);
        test_health_words();
        if (access(HAPROXY, X_OK) == 0) {
                test_real(dir);
                test_health(dir);
        } else
                printf("# skip: %s missing, the tests with a real HAProxy did not run\n", HAPROXY);
        /* every HAProxy reaped: no child left, not even a zombie */
        CHECK(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD);
        if (!getenv("TEST_LB_KEEP"))
                rm_rf(dir);
        return tap_finish();
}
