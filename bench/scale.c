/* bench/scale: heartbeats from N RMs with M VMs each against a real Oracle, over the real node
 * channel (mutual TLS, one kept-alive connection per RM, as node-heartbeat.c keeps one).
 *
 * Nothing is modelled. Per N, a fresh data directory is seeded through the product's own APIs
 * before the Oracle starts: the CA (ca_open on DATA/ca, which the Oracle adopts), one
 * certificate per RM signed by it (ca_sign_request: CN=rm-NNNNN, OU=node, clientAuth, its
 * serial recorded with store_rm_cert_put as an enrolment records it; all RMs' certificates
 * carry one public key, to seed 10,000 RMs in seconds: the server verifies each chain all the
 * same), the RMs (store_rm_upsert, state "down": none is counted silent before its first
 * heartbeat) and N x M VMs in one transaction (store_vm_insert): a tenth of the RMs are
 * production RMs with one active VM each, in S=20 services; the others are chambers with M
 * loading VMs each, in no service (the pool never probes their fake addresses); stored
 * pre-booted VMs in the services fill up to N x M. Each service's min is its active VMs and
 * its pool all its VMs, and no load reaches it (no HAProxy): the switching loop and the pool
 * have nothing to decide and call no node, while reading every VM as they do. The Oracle runs
 * without HAProxy (VMATRIX_HAPROXY names no binary).
 * Then the real `vmatrix oracle` starts on that directory.
 *
 * The load generator is this process: one thread, epoll, OpenSSL, N non-blocking connections
 * to the node channel, each presenting its RM's certificate. Each posts the heartbeat a node
 * posts, built by the node's own node_proto_heartbeat (M VMs described by node_proto_describe
 * with growing stats, 4 snapshot digests, guest_firewall, confinement, capacity), and waits for
 * the answer; paced (the default) the next one goes 1 s after the answer, as a node's does
 * (node-heartbeat.c: HEARTBEAT_INTERVAL_MS after the call ends), so N RMs offer at most N/s;
 * --max sends the next at once (closed loop). An answer not in within 3 s is a timeout, and the
 * connection is closed and made again 1 s later, as the node's libcurl call does. Connections
 * are opened at --ramp-rate a second (2,000); the window starts once all are open (or after
 * 60 s of ramp) plus 2 s. The generator runs at nice -10 when it may (root), the Oracle at 0:
 * it stands for nodes on other machines. Against thousands of runnable threads of the Oracle
 * (a handshake storm) that is still little: its figures then include its own delays.
 *
 * Figures per N over the window (SECONDS, 20): heartbeats offered (sent) and achieved (a 200
 * answer) per second; latency from the request's first byte to the answer's last, p50 and p99
 * (a log histogram, 1 us to 100 s, 2% wide bins); errors (non-200 answers, resets, timeouts,
 * answers whose leases are not the RM's VMs); the switching round (/v1/health switch_round_ms
 * when the Oracle has it, else n/a); the node channel's own counters (/v1/health node_channel);
 * the Oracle's RSS and peak RSS (VmRSS, VmHWM), its threads, its CPU (utime+stime over the
 * window, in cores) and the generator's (getrusage), both on the same machine; and the rm-down
 * events in the window, which must be 0 (a healthy RM fenced), with isolation and stall events.
 * It prints the goals beside the figures and never passes or fails.
 *
 * --body-every K builds a body anew every K heartbeats of an RM (stats then grow in steps of K),
 * to spare the generator's CPU, which shares the machine with the Oracle.
 *
 * --timeout S waits S seconds for an answer instead of the node's 3, to see what an Oracle that
 * cannot answer in time does answer.
 *
 * --health sends GET /v1/health (no store, no authorizer's check) instead of heartbeats on the
 * same connections: what the node channel itself (TLS, a thread per connection) costs and
 * carries, apart from the heartbeat's handler.
 *
 * BENCH_SCALE_DEBUG=1 prints why each failed connection failed (OpenSSL's error).
 *
 * Usage: bench-scale VMATRIX [--m M] [--seconds S] [--max] [--ramp-rate R] [--body-every K]
 *        [--timeout S] [--health] [--keep] N...   (M 10, S 20, R 2000, K 1, 3 s; N: 1000 10000) */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "net/http-client.h"
#include "node/node-capacity.h"
#include "node/node-proto.h"
#include "store/store-join.h"
#include "store/store.h"
#include "tls/ca.h"
#include "tls/tls-identity.h"

#define SERVICES 20
#define SNAPSHOTS 4
#define ANSWER_TIMEOUT_S 3 /* the node's (node-heartbeat.c) */
#define INTERVAL_NS NS_S
#define NS_S INT64_C(1000000000)
#define RAMP_MAX_NS (60 * NS_S)
#define SETTLE_NS (2 * NS_S)
#define HIST_BINS 1000 /* 50 a decade from 1 us: up to 10^20 us, far past any answer */
#define NMAX 8
#define GEN_NICE (-10)

typedef struct opts {
        const char *vmatrix;
        int m;
        double seconds;
        bool max;
        bool health; /* GET /v1/health instead of heartbeats: the node channel alone */
        int ramp_rate;
        bool keep;
        int body_every; /* a heartbeat's body built anew every this many heartbeats (1: each) */
        double timeout_s; /* an answer not in after this is a timeout */
        long ns[NMAX];
        int n_ns;
} opts_t;

/* The figures of one N. */
typedef struct result {
        long n;
        long vms;
        double seed_s, start_s, ramp_s;
        long opened;
        double offered, achieved;
        double p50_ms, p99_ms;
        long err_status, err_reset, err_timeout, err_leases;
        char switch_round[64];
        char channel[96];
        double rss_mib, hwm_mib, oracle_cores, gen_cores;
        long threads;
        double ramp_rss_mib; /* at the ramp's end: every connection open */
        long ramp_threads;
        long rm_down, rm_down_all, isolations, stalls, failed_vms;
        int64_t win_from_ms, win_to_ms; /* the window on the wall clock (the events' clock) */
        bool ok; /* the Oracle started and the window ran */
} result_t;

static int64_t now_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * NS_S + ts.tv_nsec;
}

static int free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        close(fd);
        return ntohs(sa.sin_port);
}

static void rm_name(long i, char *buf, size_t size) { snprintf(buf, size, "rm-%05ld", i); }

/* A fake SHA-256 in hex, from a and b. */
static void digest_hex(long a, long b, char ret[65]) {
        for (int i = 0; i < 8; i++)
                snprintf(ret + 8 * i, 9, "%08lx",
                         (unsigned long)((a * 2654435761u + b * 40503u + (unsigned)i * 97u) & 0xffffffffu));
}

/* ---- seeding ---- */

typedef struct seed {
        long n, m, production;
        char **cert_pem; /* per RM */
        char *key_path;  /* the one key all RMs' certificates carry */
        char *ca_path;
} seed_t;

static void vm_fill(vm_record_t *v, long k, const char *state, const char *rm, const char *service, bool prebooted) {
        *v = (vm_record_t){ 0 };
        snprintf(v->name, sizeof v->name, "vm-%06ld", k);
        SET(v->state, state);
        v->version = 5;
        SET(v->rm, rm);
        SET(v->image, "tiny-http");
        v->memory_mib = 128;
        v->vcpus = 1;
        snprintf(v->mac, sizeof v->mac, "52:54:%02lx:%02lx:%02lx:%02lx", (k >> 24) & 0xff, (k >> 16) & 0xff,
                 (k >> 8) & 0xff, k & 0xff);
        v->prebooted = prebooted;
        if (*rm) {
                snprintf(v->address, sizeof v->address, "127.0.0.1:%ld", 10000 + k % 50000);
                v->pid = 1000 + k;
        }
        v->nest_version = 5;
        v->created_ms = time_wall_ms();
        SET(v->service, service);
        char mem[65], disk[65], st[65];
        digest_hex(k, 1, mem);
        digest_hex(k, 2, disk);
        digest_hex(k, 3, st);
        v->bundle = json_pack("{s:{s:{s:s,s:I},s:{s:s,s:I},s:{s:s,s:I}}}", "files", "memory", "sha256", mem, "size",
                              (json_int_t)(128 << 20), "disk", "sha256", disk, "size", (json_int_t)(1 << 30), "state",
                              "sha256", st, "size", (json_int_t)(1 << 20));
}

/* The data directory DIR/oracle for n RMs of m VMs. 0 or -1 (said on stderr). */
static int seed_make(const char *dir, long n, long m, seed_t *ret) {
        seed_t s = { .n = n, .m = m, .production = n / 10 > 0 ? n / 10 : 1 };
        _cleanup_free_ char *data = xasprintf("%s/oracle", dir), *cadir = xasprintf("%s/oracle/ca", dir);
        _cleanup_free_ char *db = xasprintf("%s/oracle/state.db", dir), *guest = xasprintf("%s/guest", dir);
        if (mkdir(data, 0700) < 0 || mkdir(guest, 0755) < 0) {
                fprintf(stderr, "cannot make %s: %m\n", data);
                return -1;
        }
        ca_t *ca = NULL;
        _cleanup_free_ char *msg = NULL;
        if (ca_open(cadir, &ca, &msg) < 0) {
                fprintf(stderr, "ca_open: %s\n", msg ? msg : "failed");
                return -1;
        }
        s.ca_path = xasprintf("%s/" CA_CERT_FILE, cadir);
        s.key_path = xasprintf("%s/rm.key", dir);
        _cleanup_free_ char *csr = NULL;
        if (tls_key_generate(s.key_path) < 0 || tls_csr_make(s.key_path, "rm", &csr) < 0) {
                fprintf(stderr, "cannot make the RMs' key\n");
                ca_free(ca);
                return -1;
        }
        store_t *st = NULL;
        if (store_open(db, &st) < 0) {
                fprintf(stderr, "cannot open %s\n", db);
                ca_free(ca);
                return -1;
        }
        s.cert_pem = xcalloc((size_t)n, sizeof *s.cert_pem);
        int r = store_tx_begin(st);
        for (long i = 0; i < n && r >= 0; i++) {
                char name[32];
                rm_name(i, name, sizeof name);
                const char *role = i < s.production ? "production" : "chamber";
                _cleanup_free_ char *dns = tls_peer_dns_name(name), *serial = NULL, *why = NULL;
                ca_cert_opts_t o = { .cn = name, .ou = TLS_OU_NODE, .dns = dns, .client = true };
                r = ca_sign_request(ca, csr, &o, &s.cert_pem[i], &serial, &why);
                if (r < 0) {
                        fprintf(stderr, "cannot sign %s: %s\n", name, why ? why : "failed");
                        break;
                }
                rm_cert_record_t c = { .not_after_s = time_wall_ms() / 1000 + 86400 * 365,
                                       .issued_ms = time_wall_ms() };
                SET(c.rm, name);
                SET(c.role, role);
                SET(c.serial, serial);
                r = store_rm_cert_put(st, &c);
                rm_record_t rm = { .last_seen_ms = 0 };
                SET(rm.name, name);
                SET(rm.role, role);
                SET(rm.address, "127.0.0.1:9");
                SET(rm.state, "down");
                if (r >= 0)
                        r = store_rm_upsert(st, &rm);
        }
        /* services: the production RMs' active VMs spread over them, then stored pre-booted VMs */
        long total = n * m, k = 0;
        long active = s.production, chambers = n - s.production;
        long stored = total - active - chambers * m;
        if (stored < 0)
                stored = 0;
        for (int sv = 0; sv < SERVICES && r >= 0; sv++) {
                long act = active / SERVICES + (sv < active % SERVICES);
                long sto = stored / SERVICES + (sv < stored % SERVICES);
                service_record_t svc = { .pool = act + sto, .min = act, .max = act + sto, .window_s = 60, .high = 70,
                                         .priority = 1, .memory_mib = 128, .vcpus = 1, .port = 31000 + sv,
                                         .created_ms = time_wall_ms() };
                snprintf(svc.name, sizeof svc.name, "svc-%02d", sv);
                SET(svc.image, "tiny-http");
                SET(svc.state, "ready");
                SET(svc.health_kind, "http");
                SET(svc.health_path, "/health");
                r = store_service_insert(st, &svc);
        }
        for (long i = 0; i < n && r >= 0; i++) {
                char name[32];
                rm_name(i, name, sizeof name);
                long here = i < s.production ? 1 : m;
                for (long j = 0; j < here && r >= 0; j++, k++) {
                        vm_record_t v;
                        char svc[16] = "";
                        if (i < s.production)
                                snprintf(svc, sizeof svc, "svc-%02ld", i % SERVICES);
                        vm_fill(&v, k, i < s.production ? "active" : "loading", name, svc, i < s.production);
                        r = store_vm_insert(st, &v);
                        vm_record_clear(&v);
                }
        }
        for (long j = 0; j < stored && r >= 0; j++, k++) {
                vm_record_t v;
                char svc[16];
                snprintf(svc, sizeof svc, "svc-%02ld", j % SERVICES);
                vm_fill(&v, k, "stored", "", svc, true);
                r = store_vm_insert(st, &v);
                vm_record_clear(&v);
        }
        if (r >= 0)
                r = store_tx_commit(st);
        else
                store_tx_rollback(st);
        store_close(st);
        ca_free(ca);
        if (r < 0) {
                fprintf(stderr, "cannot seed the store: %s\n", strerror(-r));
                return -1;
        }
        *ret = s;
        return 0;
}

static void seed_free(seed_t *s) {
        for (long i = 0; s->cert_pem && i < s->n; i++)
                free(s->cert_pem[i]);
        free(s->cert_pem);
        free(s->key_path);
        free(s->ca_path);
}

/* ---- the Oracle ---- */

static pid_t oracle_start(const opts_t *op, const char *dir, int port, int node_port) {
        _cleanup_free_ char *data = xasprintf("%s/oracle", dir), *log_path = xasprintf("%s/oracle.log", dir);
        _cleanup_free_ char *guest = xasprintf("VMATRIX_GUEST_DIR=%s/guest", dir);
        _cleanup_free_ char *recipe = xasprintf("VMATRIX_GUEST_RECIPE=%s/no-recipe", dir);
        char listen[32], node_listen[32];
        snprintf(listen, sizeof listen, "127.0.0.1:%d", port);
        snprintf(node_listen, sizeof node_listen, "127.0.0.1:%d", node_port);
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        setpriority(PRIO_PROCESS, 0, 0);
        int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
                dup2(fd, 1);
                dup2(fd, 2);
        }
        putenv(guest);
        putenv(recipe);
        /* no HAProxy: no load reaches the services, and no process outlives a killed Oracle */
        setenv("VMATRIX_HAPROXY", "/nonexistent/haproxy", 1);
        execl(op->vmatrix, op->vmatrix, "oracle", "--data", data, "--listen", listen, "--node-listen", node_listen,
              "--password-cost", "min", (char *)NULL);
        _exit(127);
}

static void oracle_stop(pid_t pid) {
        kill(pid, SIGTERM);
        for (int i = 0; i < 200; i++) {
                if (waitpid(pid, NULL, WNOHANG) == pid)
                        return;
                usleep(50000);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
}

static json_t *health_get(int port) {
        _cleanup_free_ char *url = xasprintf("http://127.0.0.1:%d/v1/health", port);
        http_response_t r = { 0 };
        json_t *j = NULL;
        if (http_request_json("GET", url, NULL, 5000, &r) == 0 && r.status == 200)
                j = json_incref(r.json);
        http_response_clear(&r);
        return j;
}

typedef struct proc_sample {
        double cpu_s;
        double rss_mib, hwm_mib;
        long threads;
} proc_sample_t;

static void proc_read(pid_t pid, proc_sample_t *ret) {
        *ret = (proc_sample_t){ 0 };
        char path[64];
        snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
        _cleanup_free_ char *stat = NULL;
        if (file_read(path, &stat, NULL) == 0) {
                const char *p = strrchr(stat, ')');
                unsigned long long ut = 0, stt = 0;
                /* after ")": state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
                if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &stt) == 2)
                        ret->cpu_s = (double)(ut + stt) / (double)sysconf(_SC_CLK_TCK);
        }
        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
        _cleanup_free_ char *status = NULL;
        if (file_read(path, &status, NULL) == 0) {
                const char *l;
                if ((l = strstr(status, "VmRSS:")))
                        ret->rss_mib = strtod(l + 6, NULL) / 1024.0;
                if ((l = strstr(status, "VmHWM:")))
                        ret->hwm_mib = strtod(l + 6, NULL) / 1024.0;
                if ((l = strstr(status, "Threads:")))
                        ret->threads = strtol(l + 8, NULL, 10);
        }
}

/* ---- the load generator ---- */

typedef enum { C_DOWN, C_CONNECTING, C_HANDSHAKE, C_IDLE, C_SENDING, C_READING } cstate_t;

typedef struct conn {
        int fd;
        SSL *ssl;
        cstate_t state;
        uint32_t seq;        /* bumped at every scheduling, so stale queue entries are told apart */
        bool want_write;     /* EPOLLOUT asked */
        bool opened;         /* its first handshake done */
        char *out;
        size_t out_len, out_off;
        char in[8192];
        size_t in_len;
        int64_t sent_ns;
        uint64_t beats;
        int64_t opened_ns; /* its current connection's handshake done */
        X509 *cert;
} conn_t;

typedef struct qent {
        uint32_t idx, seq;
        int64_t at_ns;
} qent_t;

/* A FIFO of (connection, time): entries are pushed in time order (a fixed delay after now), so
 * the head is always the earliest. Stale entries (seq changed) are skipped when popped. */
typedef struct queue {
        qent_t *e;
        size_t cap, head, len;
} queue_t;

static void q_push(queue_t *q, uint32_t idx, uint32_t seq, int64_t at) {
        if (q->len == q->cap) {
                size_t cap = q->cap ? 2 * q->cap : 1024;
                qent_t *e = xcalloc(cap, sizeof *e);
                for (size_t i = 0; i < q->len; i++)
                        e[i] = q->e[(q->head + i) % q->cap];
                free(q->e);
                q->e = e;
                q->cap = cap;
                q->head = 0;
        }
        q->e[(q->head + q->len++) % q->cap] = (qent_t){ idx, seq, at };
}

static const qent_t *q_peek(const queue_t *q) { return q->len ? &q->e[q->head] : NULL; }
static void q_pop(queue_t *q) {
        q->head = (q->head + 1) % q->cap;
        q->len--;
}

typedef struct gen {
        const opts_t *op;
        const seed_t *seed;
        int node_port;
        int ep;
        SSL_CTX *ctx;
        EVP_PKEY *key;
        conn_t *c;
        long n;
        queue_t ready;   /* connections to send at once (a handshake done, --max) */
        queue_t due;     /* connections waiting to send (or to connect again) INTERVAL after now */
        queue_t pending; /* answers awaited, for their timeouts */
        int64_t win_start, win_end;
        /* window counters */
        long sent, answered, err_status, err_reset, err_timeout, err_leases;
        uint64_t hist[HIST_BINS];
        long opened;
} gen_t;

static bool in_window(const gen_t *g, int64_t t) { return g->win_start && t >= g->win_start && t < g->win_end; }

static void ep_set(gen_t *g, uint32_t idx, bool want_write) {
        conn_t *c = &g->c[idx];
        if (c->want_write == want_write)
                return;
        c->want_write = want_write;
        struct epoll_event ev = { .events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.u32 = idx };
        epoll_ctl(g->ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_close(gen_t *g, uint32_t idx) {
        conn_t *c = &g->c[idx];
        if (c->ssl)
                SSL_free(c->ssl);
        c->ssl = NULL;
        if (c->fd >= 0)
                close(c->fd);
        c->fd = -1;
        c->state = C_DOWN;
        c->seq++;
}

#define conn_fail(g, idx, counter, now) conn_fail_at(g, idx, counter, now, __func__)

/* Drops the connection after a failure and makes it again INTERVAL later, as a node does. */
static void conn_fail_at(gen_t *g, uint32_t idx, long *counter, int64_t now, const char *where) {
        if (getenv("BENCH_SCALE_DEBUG")) {
                const conn_t *c = &g->c[idx];
                fprintf(stderr, "%s: connection %u failed in state %d (errno %d, %s), %.1f s after its handshake\n",
                        where, idx, (int)c->state, errno, ERR_error_string(ERR_peek_error(), NULL),
                        c->opened_ns ? (double)(now - c->opened_ns) / 1e9 : -1.0);
        }
        if (in_window(g, now))
                (*counter)++;
        conn_close(g, idx);
        q_push(&g->due, idx, g->c[idx].seq, now + INTERVAL_NS);
}

static void conn_open(gen_t *g, uint32_t idx) {
        conn_t *c = &g->c[idx];
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)g->node_port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int one = 1;
        if (c->fd < 0) {
                conn_fail(g, idx, &g->err_reset, now_ns());
                return;
        }
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int r = connect(c->fd, (struct sockaddr *)&sa, sizeof sa);
        if (r < 0 && errno != EINPROGRESS) {
                conn_fail(g, idx, &g->err_reset, now_ns());
                return;
        }
        c->ssl = SSL_new(g->ctx);
        SSL_set_fd(c->ssl, c->fd);
        SSL_set_tlsext_host_name(c->ssl, TLS_ORACLE_DNS);
        SSL_set1_host(c->ssl, TLS_ORACLE_DNS);
        SSL_use_certificate(c->ssl, c->cert);
        SSL_use_PrivateKey(c->ssl, g->key);
        SSL_set_connect_state(c->ssl);
        c->state = C_CONNECTING;
        c->opened_ns = 0;
        c->want_write = true;
        c->in_len = 0;
        struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.u32 = idx };
        epoll_ctl(g->ep, EPOLL_CTL_ADD, c->fd, &ev);
}

/* The heartbeat of RM idx, as its node builds it, into c->out. */
static void body_build(gen_t *g, uint32_t idx) {
        conn_t *c = &g->c[idx];
        const seed_t *s = g->seed;
        long first, here;
        if ((long)idx < s->production) {
                first = idx;
                here = 1;
        } else {
                first = s->production + (idx - s->production) * s->m;
                here = s->m;
        }
        json_t *vms = json_array();
        for (long j = 0; j < here; j++) {
                char name[32];
                snprintf(name, sizeof name, "vm-%06ld", first + j);
                uint64_t b = c->beats;
                vmm_stats_t st = { .cpu_ns = b * 20000000ull, .rss_bytes = 100ull << 20, .block_rd_bytes = b * 4096,
                                   .block_wr_bytes = b * 8192, .net_rx_bytes = b * 1500, .net_tx_bytes = b * 3000 };
                char addr[32];
                snprintf(addr, sizeof addr, "127.0.0.1:%ld", 10000 + (first + j) % 50000);
                json_array_append_new(vms, node_proto_describe(name, 5, "running", 1000 + first + j, addr, &st));
        }
        json_t *snaps = json_array();
        for (int k = 0; k < SNAPSHOTS; k++) {
                char d[65];
                digest_hex((long)idx, 100 + k, d);
                json_array_append_new(snaps, json_string(d));
        }
        json_t *body = node_proto_heartbeat((long)idx < s->production ? "production" : "chamber", "127.0.0.1:9", "kvm",
                                            vms, snaps);
        node_proto_heartbeat_guest_firewall(body, true);
        node_proto_heartbeat_confinement(body, true, NULL);
        node_capacity_t cap = { .memory_mib = 65536, .vcpus = 16, .disk_gib = 1000 };
        node_proto_heartbeat_capacity(body, &cap);
        _cleanup_free_ char *text = json_dumps(body, JSON_COMPACT);
        json_decref(body);
        char name[32];
        rm_name(idx, name, sizeof name);
        free(c->out);
        c->out = xasprintf("POST /v1/rms/%s/heartbeat HTTP/1.1\r\nHost: " TLS_ORACLE_DNS
                           "\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                           name, strlen(text), text);
        c->out_len = strlen(c->out);
        c->out_off = 0;
}

static void hist_add(gen_t *g, int64_t ns) {
        double us = (double)ns / 1000.0;
        int bin = us <= 1 ? 0 : (int)(log10(us) * 50.0);
        g->hist[bin < HIST_BINS ? bin : HIST_BINS - 1]++;
}

static double hist_pct(const gen_t *g, double pct) {
        uint64_t total = 0, seen = 0;
        for (int i = 0; i < HIST_BINS; i++)
                total += g->hist[i];
        if (!total)
                return NAN;
        for (int i = 0; i < HIST_BINS; i++) {
                seen += g->hist[i];
                if ((double)seen >= pct / 100.0 * (double)total)
                        return pow(10.0, (i + 0.5) / 50.0) / 1000.0; /* ms, the bin's middle */
        }
        return NAN;
}

/* The answer in c->in when complete: its status and body; 0 when more is to come. */
static int answer_parse(conn_t *c, int *ret_status, const char **ret_body, size_t *ret_len) {
        c->in[c->in_len < sizeof c->in ? c->in_len : sizeof c->in - 1] = 0;
        const char *end = strstr(c->in, "\r\n\r\n");
        if (!end)
                return c->in_len >= sizeof c->in - 1 ? -1 : 0;
        const char *cl = strcasestr(c->in, "\r\nContent-Length:");
        size_t len = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
        size_t head = (size_t)(end + 4 - c->in);
        if (head + len > sizeof c->in - 1)
                return -1;
        if (c->in_len < head + len)
                return 0;
        *ret_status = atoi(c->in + 9);
        *ret_body = c->in + head;
        *ret_len = len;
        return 1;
}

/* Runs connection idx as far as it goes without waiting. */
static void conn_drive(gen_t *g, uint32_t idx) {
        conn_t *c = &g->c[idx];
        for (;;) {
                int64_t now = now_ns();
                switch (c->state) {
                case C_DOWN:
                case C_IDLE:
                        return;
                case C_CONNECTING: {
                        int err = 0;
                        socklen_t len = sizeof err;
                        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                        if (err == EINPROGRESS)
                                return;
                        if (err) {
                                conn_fail(g, idx, &g->err_reset, now);
                                return;
                        }
                        c->state = C_HANDSHAKE;
                        break;
                }
                case C_HANDSHAKE: {
                        int r = SSL_connect(c->ssl);
                        if (r == 1) {
                                if (!c->opened)
                                        g->opened++;
                                c->opened = true;
                                c->opened_ns = now;
                                ep_set(g, idx, false);
                                c->state = C_IDLE;
                                c->seq++;
                                q_push(&g->ready, idx, c->seq, now);
                                return;
                        }
                        int e = SSL_get_error(c->ssl, r);
                        if (e == SSL_ERROR_WANT_READ) {
                                ep_set(g, idx, false);
                                return;
                        }
                        if (e == SSL_ERROR_WANT_WRITE) {
                                ep_set(g, idx, true);
                                return;
                        }
                        ERR_clear_error();
                        conn_fail(g, idx, &g->err_reset, now);
                        return;
                }
                case C_SENDING: {
                        int r = SSL_write(c->ssl, c->out + c->out_off, (int)(c->out_len - c->out_off));
                        if (r > 0) {
                                c->out_off += (size_t)r;
                                if (c->out_off == c->out_len) {
                                        ep_set(g, idx, false);
                                        c->state = C_READING;
                                        c->in_len = 0;
                                }
                                break;
                        }
                        int e = SSL_get_error(c->ssl, r);
                        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                                ep_set(g, idx, e == SSL_ERROR_WANT_WRITE);
                                return;
                        }
                        ERR_clear_error();
                        conn_fail(g, idx, &g->err_reset, now);
                        return;
                }
                case C_READING: {
                        int r = SSL_read(c->ssl, c->in + c->in_len, (int)(sizeof c->in - 1 - c->in_len));
                        if (r <= 0) {
                                int e = SSL_get_error(c->ssl, r);
                                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                                        ep_set(g, idx, e == SSL_ERROR_WANT_WRITE);
                                        return;
                                }
                                ERR_clear_error();
                                conn_fail(g, idx, &g->err_reset, now);
                                return;
                        }
                        c->in_len += (size_t)r;
                        int status = 0;
                        const char *body = NULL;
                        size_t blen = 0;
                        int p = answer_parse(c, &status, &body, &blen);
                        if (p == 0)
                                break;
                        if (p < 0) {
                                conn_fail(g, idx, &g->err_status, now);
                                return;
                        }
                        bool win = in_window(g, now);
                        if (status != 200) {
                                if (win)
                                        g->err_status++;
                        } else {
                                json_t *j = json_loadb(body, blen, 0, NULL);
                                size_t leases = json_object_size(json_object_get(j, "leases"));
                                json_decref(j);
                                size_t want = (long)idx < g->seed->production ? 1 : (size_t)g->seed->m;
                                if (win) {
                                        g->answered++;
                                        hist_add(g, now - c->sent_ns);
                                        if (leases != want && !g->op->health)
                                                g->err_leases++;
                                }
                        }
                        c->beats++;
                        c->state = C_IDLE;
                        c->seq++;
                        if (g->op->max)
                                q_push(&g->ready, idx, c->seq, now);
                        else
                                q_push(&g->due, idx, c->seq, now + INTERVAL_NS);
                        return;
                }
                }
        }
}

/* Sends connection idx's next heartbeat (or makes it again). */
static void conn_due(gen_t *g, uint32_t idx, int64_t now) {
        conn_t *c = &g->c[idx];
        if (c->state == C_DOWN) {
                conn_open(g, idx);
                conn_drive(g, idx);
                return;
        }
        if (c->state != C_IDLE)
                return;
        if (g->op->health && !c->out) {
                c->out = xstrdup("GET /v1/health HTTP/1.1\r\nHost: " TLS_ORACLE_DNS "\r\n\r\n");
                c->out_len = strlen(c->out);
        } else if (!g->op->health && (!c->out || c->beats % (uint64_t)g->op->body_every == 0)) {
                body_build(g, idx);
        }
        c->out_off = 0;
        c->state = C_SENDING;
        c->sent_ns = now;
        c->seq++;
        q_push(&g->pending, idx, c->seq, now + (int64_t)(g->op->timeout_s * 1e9));
        if (in_window(g, now))
                g->sent++;
        conn_drive(g, idx);
}

/* The whole of one N's load: ramp, settle, window. Fills the generator's part of res. */
static void gen_run(gen_t *g, pid_t oracle, int port, result_t *res) {
        int64_t t0 = now_ns(), ramp_end = 0;
        long started = 0;
        struct rusage ru0 = { 0 }, ru1;
        proc_sample_t p0 = { 0 }, p1;
        int64_t wall0 = 0;
        struct epoll_event evs[512];
        for (;;) {
                int64_t now = now_ns();
                /* the ramp: connections opened at ramp_rate a second */
                long target = (long)((double)(now - t0) / 1e9 * g->op->ramp_rate) + 1;
                for (; started < g->n && started < target; started++)
                        q_push(&g->ready, (uint32_t)started, g->c[started].seq, now);
                if (!ramp_end && (g->opened == g->n || now - t0 > RAMP_MAX_NS)) {
                        ramp_end = now;
                        res->ramp_s = (double)(now - t0) / 1e9;
                        res->opened = g->opened;
                        proc_sample_t pr;
                        proc_read(oracle, &pr);
                        res->ramp_rss_mib = pr.rss_mib;
                        res->ramp_threads = pr.threads;
                        g->win_start = now + SETTLE_NS;
                        g->win_end = g->win_start + (int64_t)(g->op->seconds * 1e9);
                }
                if (g->win_start && !wall0 && now >= g->win_start) {
                        wall0 = time_wall_ms();
                        getrusage(RUSAGE_SELF, &ru0);
                        proc_read(oracle, &p0);
                }
                if (g->win_start && now >= g->win_end)
                        break;
                const qent_t *e;
                for (queue_t *q = &g->ready; q; q = q == &g->ready ? &g->due : NULL)
                        while ((e = q_peek(q)) && e->at_ns <= now) {
                                qent_t x = *e;
                                q_pop(q);
                                if (g->c[x.idx].seq == x.seq)
                                        conn_due(g, x.idx, now);
                        }
                while ((e = q_peek(&g->pending)) && e->at_ns <= now) {
                        qent_t x = *e;
                        q_pop(&g->pending);
                        conn_t *c = &g->c[x.idx];
                        if (c->seq == x.seq && (c->state == C_SENDING || c->state == C_READING))
                                conn_fail(g, x.idx, &g->err_timeout, now);
                }
                int64_t next = now + 50 * 1000000;
                if ((e = q_peek(&g->due)) && e->at_ns < next)
                        next = e->at_ns;
                if (q_peek(&g->ready))
                        next = now;
                if ((e = q_peek(&g->pending)) && e->at_ns < next)
                        next = e->at_ns;
                if (started < g->n)
                        next = now + 1000000;
                int timeout = next > now ? (int)((next - now + 999999) / 1000000) : 0;
                int k = epoll_wait(g->ep, evs, ELEMENTSOF(evs), timeout);
                for (int i = 0; i < k; i++) {
                        uint32_t idx = evs[i].data.u32;
                        conn_t *c = &g->c[idx];
                        if (c->state == C_IDLE && (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                                /* TLS 1.3 session tickets after the handshake, or the server
                                 * closing an idle connection (made again at once) */
                                char scratch[512];
                                int r = SSL_read(c->ssl, scratch, sizeof scratch);
                                int e2 = r <= 0 ? SSL_get_error(c->ssl, r) : SSL_ERROR_NONE;
                                if (r <= 0 && e2 != SSL_ERROR_WANT_READ && e2 != SSL_ERROR_WANT_WRITE) {
                                        ERR_clear_error();
                                        conn_close(g, idx);
                                        q_push(&g->ready, idx, c->seq, now_ns());
                                }
                                continue;
                        }
                        conn_drive(g, idx);
                }
        }
        getrusage(RUSAGE_SELF, &ru1);
        proc_read(oracle, &p1);
        int64_t wall1 = time_wall_ms();
        double secs = g->op->seconds;
        double gen_cpu =
                (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) +
                (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec) /
                        1e6;
        res->offered = (double)g->sent / secs;
        res->achieved = (double)g->answered / secs;
        res->p50_ms = hist_pct(g, 50);
        res->p99_ms = hist_pct(g, 99);
        res->err_status = g->err_status;
        res->err_reset = g->err_reset;
        res->err_timeout = g->err_timeout;
        res->err_leases = g->err_leases;
        res->rss_mib = p1.rss_mib;
        res->hwm_mib = p1.hwm_mib;
        res->threads = p1.threads;
        res->oracle_cores = (p1.cpu_s - p0.cpu_s) / secs;
        res->gen_cores = gen_cpu / secs;
        json_t *h = health_get(port);
        const json_t *sr = json_object_get(h, "switch_round_ms");
        if (json_is_object(sr))
                snprintf(res->switch_round, sizeof res->switch_round, "%.1f/%.1f/%.1f",
                         json_number_value(json_object_get(sr, "p50")), json_number_value(json_object_get(sr, "p99")),
                         json_number_value(json_object_get(sr, "max")));
        else if (json_is_number(sr))
                snprintf(res->switch_round, sizeof res->switch_round, "%.1f", json_number_value(sr));
        else
                snprintf(res->switch_round, sizeof res->switch_round, "n/a");
        const json_t *nc = json_object_get(h, "node_channel");
        if (json_is_object(nc))
                snprintf(res->channel, sizeof res->channel, "%lld/%lld/%lld/%lld",
                         (long long)json_integer_value(json_object_get(nc, "open")),
                         (long long)json_integer_value(json_object_get(nc, "total")),
                         (long long)json_integer_value(json_object_get(nc, "at_limit")),
                         (long long)json_integer_value(json_object_get(nc, "busy")));
        else
                snprintf(res->channel, sizeof res->channel, "%s", h ? "n/a" : "no answer");
        json_decref(h);
        res->win_from_ms = wall0;
        res->win_to_ms = wall1;
}

/* Events of kind between from_ms and to_ms (wall clock) in the store at db. */
static long events_count(sqlite3 *db, const char *kind, int64_t from_ms, int64_t to_ms) {
        sqlite3_stmt *st = NULL;
        long n = -1;
        if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM events WHERE kind=?1 AND time_ms>=?2 AND time_ms<?3", -1, &st,
                               NULL) == SQLITE_OK) {
                sqlite3_bind_text(st, 1, kind, -1, SQLITE_STATIC);
                sqlite3_bind_int64(st, 2, from_ms);
                sqlite3_bind_int64(st, 3, to_ms);
                if (sqlite3_step(st) == SQLITE_ROW)
                        n = sqlite3_column_int64(st, 0);
        }
        sqlite3_finalize(st);
        return n;
}

static void store_figures(const char *dir, int64_t from_ms, int64_t to_ms, result_t *res) {
        _cleanup_free_ char *path = xasprintf("%s/oracle/state.db", dir);
        sqlite3 *db = NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
                sqlite3_close(db);
                return;
        }
        res->rm_down = events_count(db, "rm-down", from_ms, to_ms);
        res->rm_down_all = events_count(db, "rm-down", 0, INT64_MAX);
        res->isolations = events_count(db, "isolation", 0, INT64_MAX);
        res->stalls = events_count(db, "oracle-stall", from_ms, to_ms);
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM vms WHERE state='failed'", -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
                res->failed_vms = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        sqlite3_close(db);
}

static int run_one(const opts_t *op, long n, result_t *res) {
        *res = (result_t){ .n = n, .vms = n * op->m };
        char tmpl[] = "/tmp/vmx-bench-scale-XXXXXX";
        const char *dir = mkdtemp(tmpl);
        if (!dir)
                return -1;
        fprintf(stderr, "N=%ld: seeding %ld RMs and %ld VMs in %s\n", n, n, n * op->m, dir);
        int64_t t = now_ns();
        seed_t seed;
        if (seed_make(dir, n, op->m, &seed) < 0) {
                rm_rf(dir);
                return -1;
        }
        res->seed_s = (double)(now_ns() - t) / 1e9;
        int port = free_port(), node_port;
        do
                node_port = free_port();
        while (node_port == port);
        t = now_ns();
        pid_t pid = oracle_start(op, dir, port, node_port);
        json_t *h = NULL;
        for (int i = 0; i < 1200 && !(h = health_get(port)); i++) {
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        pid = 0;
                        break;
                }
                usleep(100000);
        }
        json_decref(h);
        res->start_s = (double)(now_ns() - t) / 1e9;
        if (!h) {
                fprintf(stderr, "N=%ld: the Oracle did not start (see %s/oracle.log)\n", n, dir);
                if (pid)
                        oracle_stop(pid);
                seed_free(&seed);
                return -1;
        }
        fprintf(stderr, "N=%ld: Oracle up in %.1f s; opening %ld connections\n", n, res->start_s, n);

        gen_t g = { .op = op, .seed = &seed, .node_port = node_port, .n = n };
        g.ep = epoll_create1(EPOLL_CLOEXEC);
        g.ctx = SSL_CTX_new(TLS_client_method());
        SSL_CTX_set_verify(g.ctx, SSL_VERIFY_PEER, NULL);
        SSL_CTX_load_verify_locations(g.ctx, seed.ca_path, NULL);
        FILE *kf = fopen(seed.key_path, "re");
        g.key = kf ? PEM_read_PrivateKey(kf, NULL, NULL, NULL) : NULL;
        if (kf)
                fclose(kf);
        g.c = xcalloc((size_t)n, sizeof *g.c);
        for (long i = 0; i < n; i++) {
                g.c[i].fd = -1;
                BIO *b = BIO_new_mem_buf(seed.cert_pem[i], -1);
                g.c[i].cert = PEM_read_bio_X509(b, NULL, NULL, NULL);
                BIO_free(b);
        }
        gen_run(&g, pid, port, res);
        int64_t from_ms = res->win_from_ms, to_ms = res->win_to_ms;
        for (long i = 0; i < n; i++) {
                conn_close(&g, (uint32_t)i);
                X509_free(g.c[i].cert);
                free(g.c[i].out);
        }
        free(g.c);
        free(g.due.e);
        free(g.ready.e);
        free(g.pending.e);
        EVP_PKEY_free(g.key);
        SSL_CTX_free(g.ctx);
        close(g.ep);
        oracle_stop(pid);
        store_figures(dir, from_ms, to_ms, res);
        res->ok = true;
        seed_free(&seed);
        if (op->keep)
                fprintf(stderr, "N=%ld: kept %s\n", n, dir);
        else
                rm_rf(dir);
        return 0;
}

static void row(const char *label, const result_t *r, int nr, const char *goal,
                void (*cell)(const result_t *, char *, size_t)) {
        printf("%-34s", label);
        for (int i = 0; i < nr; i++) {
                char buf[64] = "failed";
                if (r[i].ok)
                        cell(&r[i], buf, sizeof buf);
                printf(" %18s", buf);
        }
        printf("   %s\n", goal ? goal : "");
}

#define CELL(name, fmt, ...)                                                   \
        static void name(const result_t *r, char *b, size_t s) { snprintf(b, s, fmt, __VA_ARGS__); }
CELL(c_vms, "%ld", r->vms)
CELL(c_seed, "%.1f / %.1f", r->seed_s, r->start_s)
CELL(c_ramp, "%ld in %.1f s", r->opened, r->ramp_s)
CELL(c_offered, "%.0f", r->offered)
CELL(c_achieved, "%.0f", r->achieved)
static void c_lat(const result_t *r, char *b, size_t s) {
        if (isnan(r->p50_ms))
                snprintf(b, s, "no answer");
        else
                snprintf(b, s, "%.2f / %.2f", r->p50_ms, r->p99_ms);
}
CELL(c_err, "%ld/%ld/%ld/%ld", r->err_status, r->err_reset, r->err_timeout, r->err_leases)
CELL(c_switch, "%s", r->switch_round)
CELL(c_channel, "%s", r->channel)
CELL(c_rss, "%.0f / %.0f", r->rss_mib, r->hwm_mib)
CELL(c_threads, "%ld", r->threads)
CELL(c_ramp_mem, "%.0f / %ld", r->ramp_rss_mib, r->ramp_threads)
CELL(c_ocpu, "%.2f", r->oracle_cores)
CELL(c_gcpu, "%.2f", r->gen_cores)
CELL(c_down, "%ld", r->rm_down)
CELL(c_down_all, "%ld / %ld / %ld", r->rm_down_all, r->isolations, r->stalls)
CELL(c_failed, "%ld", r->failed_vms)

static int usage(void) {
        fprintf(stderr, "usage: bench-scale VMATRIX [--m M] [--seconds S] [--max] [--ramp-rate R] [--body-every K] "
                        "[--timeout S] [--health] [--keep] [N...]\n");
        return 2;
}

int main(int argc, char **argv) {
        if (argc < 2)
                return usage();
        opts_t op = { .vmatrix = argv[1], .m = 10, .seconds = 20, .ramp_rate = 2000, .body_every = 1,
                     .timeout_s = ANSWER_TIMEOUT_S };
        for (int i = 2; i < argc; i++) {
                if (streq(argv[i], "--m") && i + 1 < argc)
                        op.m = atoi(argv[++i]);
                else if (streq(argv[i], "--seconds") && i + 1 < argc)
                        op.seconds = atof(argv[++i]);
                else if (streq(argv[i], "--ramp-rate") && i + 1 < argc)
                        op.ramp_rate = atoi(argv[++i]);
                else if (streq(argv[i], "--timeout") && i + 1 < argc)
                        op.timeout_s = atof(argv[++i]);
                else if (streq(argv[i], "--body-every") && i + 1 < argc)
                        op.body_every = atoi(argv[++i]);
                else if (streq(argv[i], "--health"))
                        op.health = true;
                else if (streq(argv[i], "--max"))
                        op.max = true;
                else if (streq(argv[i], "--keep"))
                        op.keep = true;
                else if (argv[i][0] != '-' && op.n_ns < NMAX)
                        op.ns[op.n_ns++] = atol(argv[i]);
                else
                        return usage();
        }
        if (op.m < 1 || op.m > 1000 || op.seconds <= 0 || op.ramp_rate < 1 || op.body_every < 1 || op.timeout_s <= 0)
                return usage();
        if (op.n_ns == 0) {
                op.ns[op.n_ns++] = 1000;
                op.ns[op.n_ns++] = 10000;
        }
        if (access(op.vmatrix, X_OK) < 0) {
                fprintf(stderr, "no vmatrix at %s\n", op.vmatrix);
                return 1;
        }
        signal(SIGPIPE, SIG_IGN);
        /* the generator stands for nodes on other machines: the Oracle's threads (one per
         * connection) must not starve its one thread, or the figures would be its delays */
        bool raised = setpriority(PRIO_PROCESS, 0, GEN_NICE) == 0;
        log_set_level(LOG_LEVEL_WARN);
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                setrlimit(RLIMIT_NOFILE, &rl);
        }
        result_t res[NMAX];
        for (int i = 0; i < op.n_ns; i++)
                if (run_one(&op, op.ns[i], &res[i]) < 0)
                        res[i].ok = false;
        _cleanup_free_ char *pid_max = NULL;
        if (file_read("/proc/sys/kernel/pid_max", &pid_max, NULL) == 0)
                pid_max[strcspn(pid_max, "\n")] = 0;
        printf("\nbench/scale: %s %s (body anew every %d, answers awaited %.0f s), M=%d VMs per RM, %.0f s "
               "window; pid_max %s, nofile %llu, %ld cores; generator at nice %d\n",
               op.max ? "closed-loop" : "paced (1 s after each answer, as a node)",
               op.health ? "GET /v1/health (not heartbeats)" : "heartbeats", op.body_every, op.timeout_s, op.m,
               op.seconds,
               pid_max ? pid_max : "?", (unsigned long long)rl.rlim_cur, sysconf(_SC_NPROCESSORS_ONLN),
               raised ? GEN_NICE : 0);
        printf("%-34s", "N (RMs)");
        for (int i = 0; i < op.n_ns; i++)
                printf(" %18ld", op.ns[i]);
        printf("   goal\n");
        row("VMs", res, op.n_ns, NULL, c_vms);
        row("seed s / Oracle start s", res, op.n_ns, NULL, c_seed);
        row("connections opened (ramp)", res, op.n_ns, NULL, c_ramp);
        row("heartbeats/s offered", res, op.n_ns, NULL, c_offered);
        row("heartbeats/s achieved", res, op.n_ns, ">= 10000 at M=10 (N=10000)", c_achieved);
        row("latency ms p50 / p99", res, op.n_ns, NULL, c_lat);
        row("errors status/reset/timeout/lease", res, op.n_ns, "0", c_err);
        row("switch round ms p50/p99/max", res, op.n_ns, "<= 100 over 100,000 VMs", c_switch);
        row("node channel open/total/limit/busy", res, op.n_ns, NULL, c_channel);
        row("Oracle RSS MiB / threads, ramp end", res, op.n_ns, NULL, c_ramp_mem);
        row("Oracle RSS MiB / peak, window end", res, op.n_ns, NULL, c_rss);
        row("Oracle threads", res, op.n_ns, NULL, c_threads);
        row("Oracle CPU (cores)", res, op.n_ns, NULL, c_ocpu);
        row("generator CPU (cores)", res, op.n_ns, NULL, c_gcpu);
        row("rm-down events in the window", res, op.n_ns, "0", c_down);
        row("rm-down / isolation (run), stalls", res, op.n_ns, "0", c_down_all);
        row("VMs failed at the end", res, op.n_ns, "0", c_failed);
        return 0;
}
