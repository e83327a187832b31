/* Unit tests of the console multiplexer (src/node/node-console.c), with socketpairs standing in
 * for QEMU's console socket and for the clients' connections (no QEMU, no HTTP):
 *   - one connection to QEMU for every client of a VM; the log's tail to each new client first;
 *     QEMU's output to all three clients;
 *   - two clients' input reaching QEMU intact, neither's writes cut into by the other's (QEMU
 *     slow to read: its socket full, the writers waiting);
 *   - a client that does not read is dropped while the others get every byte;
 *   - the last client to leave closes QEMU's side (and the next one opens a new connection);
 *   - QEMU closing its side ends every client, one whose connection has not come yet too;
 *   - the limits per VM and per node (refused before any upgrade), an open that fails;
 *   - node_consoles_stop ends everything and refuses attaches after;
 *   - node_console_connect: the peer's pid checked, a full listen queue not waited on. */
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/util.h"
#include "net/stream.h"
#include "node/node-console.h"
#include "tap.h"

#define TIMEOUT_MS 10000

/* QEMU's console socket: each open makes a new socketpair; the test holds peer. */
typedef struct fake_qemu {
        int peer;
        int opens;
        int fail; /* -errno: the open fails */
} fake_qemu_t;

static int fake_open(void *userdata) {
        fake_qemu_t *q = userdata;
        if (q->fail)
                return q->fail;
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                return negative_errno();
        q->peer = sv[0];
        q->opens++;
        return sv[1];
}

/* A client: app is the test's end; srv the end its thread runs the console on (as an upgrade
 * function runs on the HTTP connection, closed by the server once it returns). */
typedef struct client {
        node_console_client_t *cl;
        int app, srv;
        pthread_t thread;
        bool running;
} client_t;

static void *client_thread(void *arg) {
        client_t *c = arg;
        node_console_client_run(c->cl, c->srv, NULL, 0);
        close(c->srv);
        return NULL;
}

static int client_attach(client_t *c, node_consoles_t *cs, const char *vm, const char *log, fake_qemu_t *q) {
        *c = (client_t){ .app = -1, .srv = -1 };
        _cleanup_free_ char *msg = NULL;
        return node_console_attach(cs, vm, 42, log, fake_open, q, &c->cl, &msg);
}

static void client_run(client_t *c) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        c->app = sv[0];
        c->srv = sv[1];
        c->running = pthread_create(&c->thread, NULL, client_thread, c) == 0;
}

/* The client leaves (its end closed) and its thread returns. */
static void client_join(client_t *c) {
        if (c->app >= 0)
                close(c->app);
        c->app = -1;
        if (c->running)
                pthread_join(c->thread, NULL);
        c->running = false;
}

/* Reads len bytes (fewer at EOF or after TIMEOUT_MS); the count. */
static size_t read_exact(int fd, void *buf, size_t len) {
        size_t got = 0;
        int64_t deadline = time_now_ms() + TIMEOUT_MS;
        while (got < len) {
                int64_t left = deadline - time_now_ms();
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (left <= 0 || poll(&p, 1, (int)left) <= 0)
                        break;
                ssize_t k = read(fd, (char *)buf + got, len - got);
                if (k <= 0)
                        break;
                got += (size_t)k;
        }
        return got;
}

/* Reads until EOF (true) or TIMEOUT_MS (false); the bytes in *ret_count. */
static bool read_to_eof(int fd, size_t *ret_count) {
        char buf[65536];
        size_t count = 0;
        int64_t deadline = time_now_ms() + TIMEOUT_MS;
        for (;;) {
                int64_t left = deadline - time_now_ms();
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (left <= 0 || poll(&p, 1, (int)left) <= 0)
                        break;
                ssize_t k = read(fd, buf, sizeof buf);
                if (k <= 0) {
                        *ret_count = count;
                        return k == 0;
                }
                count += (size_t)k;
        }
        *ret_count = count;
        return false;
}

/* Whether fd has something to read (or its end) within ms. */
static bool readable(int fd, int ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN };
        return poll(&p, 1, ms) > 0;
}

static bool expect(int fd, const char *text) {
        char buf[256] = { 0 };
        size_t len = strlen(text);
        return read_exact(fd, buf, len) == len && memcmp(buf, text, len) == 0;
}

static char *tmp_dir;

static char *log_with(const char *name, const char *text) {
        char *path = xasprintf("%s/%s", tmp_dir, name);
        if (file_write_atomic(path, text, strlen(text)) < 0)
                abort();
        return path;
}

static unsigned counts(node_consoles_t *cs, unsigned *ret_consoles) {
        pthread_mutex_lock(&cs->lock);
        unsigned n = cs->n_clients;
        *ret_consoles = cs->n_consoles;
        pthread_mutex_unlock(&cs->lock);
        return n;
}

/* The console's ends (its last client freeing it) come just after the clients' threads. */
static bool wait_empty(node_consoles_t *cs) {
        unsigned consoles = 0;
        for (int i = 0; i < 1000; i++) {
                if (counts(cs, &consoles) == 0 && consoles == 0)
                        return true;
                time_sleep_ms(10);
        }
        return false;
}

/* a record is what one read of a client's input takes (node-console.c reads 4 KiB at most) */
#define RECORD 4096
#define RECORDS 128

typedef struct typist {
        int fd;
        char letter;
} typist_t;

/* RECORDS records of RECORD bytes: the letter, a 4-digit number, the letter again to the end. */
static void *typist_thread(void *arg) {
        typist_t *t = arg;
        char rec[RECORD];
        for (int i = 0; i < RECORDS; i++) {
                memset(rec, t->letter, sizeof rec);
                char num[8];
                snprintf(num, sizeof num, "%04d", i);
                memcpy(rec + 1, num, 4);
                if (stream_write_all(t->fd, rec, sizeof rec) < 0)
                        break;
        }
        return NULL;
}

static void test_fan_out_and_input(void) {
        node_consoles_t cs;
        node_consoles_init(&cs);
        fake_qemu_t q = { .peer = -1 };
        _cleanup_free_ char *log = log_with("fan.log", "RECENT\n");
        client_t c[3];
        for (int i = 0; i < 3; i++) {
                CHECK(client_attach(&c[i], &cs, "web1", log, &q) == 0);
                client_run(&c[i]);
        }
        /* one connection to QEMU for all three; each saw the tail first */
        CHECK(q.opens == 1);
        for (int i = 0; i < 3; i++)
                CHECK(expect(c[i].app, "RECENT\n"));
        unsigned consoles = 0;
        CHECK(counts(&cs, &consoles) == 3 && consoles == 1);

        /* QEMU's output to all three */
        CHECK(stream_write_all(q.peer, "login: ", 7) == 0);
        for (int i = 0; i < 3; i++)
                CHECK(expect(c[i].app, "login: "));

        /* two clients typing at once: every record reaches QEMU whole, each client's in order */
        typist_t ta = { .fd = c[0].app, .letter = 'a' }, tb = { .fd = c[1].app, .letter = 'b' };
        pthread_t a, b;
        CHECK(pthread_create(&a, NULL, typist_thread, &ta) == 0);
        CHECK(pthread_create(&b, NULL, typist_thread, &tb) == 0);
        size_t total = 2 * RECORDS * RECORD;
        _cleanup_free_ char *got = xcalloc(1, total);
        time_sleep_ms(200); /* QEMU slow to read: its socket fills, the writers wait on it */
        CHECK(read_exact(q.peer, got, total) == total);
        pthread_join(a, NULL);
        pthread_join(b, NULL);
        int next[2] = { 0, 0 };
        bool whole = true;
        for (size_t r = 0; r < 2 * RECORDS; r++) {
                const char *rec = got + r * RECORD;
                char letter = rec[0];
                if (letter != 'a' && letter != 'b') {
                        whole = false;
                        break;
                }
                char num[8];
                snprintf(num, sizeof num, "%04d", next[letter - 'a']);
                bool ok = memcmp(rec + 1, num, 4) == 0;
                for (size_t k = 5; k < RECORD && ok; k++)
                        ok = rec[k] == letter;
                if (!ok) {
                        whole = false;
                        break;
                }
                next[letter - 'a']++;
        }
        CHECK(whole && next[0] == RECORDS && next[1] == RECORDS);
        CHECK(!readable(q.peer, 50)); /* nothing more, and still open */

        for (int i = 0; i < 3; i++)
                client_join(&c[i]);
        CHECK(wait_empty(&cs));
        close(q.peer);
        node_consoles_stop(&cs);
}

static void test_slow_client_then_leave(void) {
        node_consoles_t cs;
        node_consoles_init(&cs);
        fake_qemu_t q = { .peer = -1 };
        _cleanup_free_ char *log = log_with("slow.log", "R");
        client_t c[3];
        for (int i = 0; i < 3; i++) {
                CHECK(client_attach(&c[i], &cs, "web2", log, &q) == 0);
                client_run(&c[i]);
                CHECK(expect(c[i].app, "R"));
        }
        /* c[2] never reads: QEMU writes 4 MiB, c[0] and c[1] take it as it comes */
        enum { CHUNK = 16384, CHUNKS = 256 };
        char out[CHUNK], in[CHUNK];
        bool all = true;
        for (int i = 0; i < CHUNKS && all; i++) {
                memset(out, 'A' + i % 26, sizeof out);
                all = stream_write_all(q.peer, out, sizeof out) == 0;
                for (int k = 0; k < 2 && all; k++)
                        all = read_exact(c[k].app, in, sizeof in) == sizeof in && memcmp(in, out, sizeof in) == 0;
        }
        CHECK(all);
        /* c[2] was dropped: what fitted in its socket, then the end */
        size_t count = 0;
        CHECK(read_to_eof(c[2].app, &count));
        CHECK(count < (size_t)CHUNK * CHUNKS);
        client_join(&c[2]);
        unsigned consoles = 0;
        CHECK(counts(&cs, &consoles) == 2 && consoles == 1);
        /* the others are still attached */
        CHECK(stream_write_all(q.peer, "$ ", 2) == 0);
        CHECK(expect(c[0].app, "$ ") && expect(c[1].app, "$ "));

        /* one leaves: QEMU's side stays open; the last leaves: it is closed */
        client_join(&c[0]);
        CHECK(!readable(q.peer, 100));
        client_join(&c[1]);
        size_t rest = 1;
        CHECK(read_to_eof(q.peer, &rest) && rest == 0);
        CHECK(wait_empty(&cs));
        close(q.peer);

        /* the next client opens a connection of its own */
        client_t d;
        CHECK(client_attach(&d, &cs, "web2", log, &q) == 0 && q.opens == 2);
        client_run(&d);
        CHECK(expect(d.app, "R"));
        client_join(&d);
        CHECK(wait_empty(&cs));
        close(q.peer);
        node_consoles_stop(&cs);
}

static void test_qemu_ends(void) {
        node_consoles_t cs;
        node_consoles_init(&cs);
        fake_qemu_t q = { .peer = -1 };
        _cleanup_free_ char *log = log_with("end.log", "R");
        client_t c[3], late;
        for (int i = 0; i < 3; i++) {
                CHECK(client_attach(&c[i], &cs, "web3", log, &q) == 0);
                client_run(&c[i]);
                CHECK(expect(c[i].app, "R"));
        }
        /* one more whose connection has not come yet (the 101 on its way) */
        CHECK(client_attach(&late, &cs, "web3", log, &q) == 0 && q.opens == 1);
        CHECK(stream_write_all(q.peer, "bye\n", 4) == 0);
        close(q.peer); /* the VM stopped */
        for (int i = 0; i < 3; i++) {
                size_t count = 0;
                CHECK(expect(c[i].app, "bye\n") && read_to_eof(c[i].app, &count) && count == 0);
                client_join(&c[i]);
        }
        unsigned consoles = 0;
        CHECK(counts(&cs, &consoles) == 1 && consoles == 1); /* ended, but late holds it */
        /* a new client meanwhile gets a new connection, not the ended console */
        client_t fresh;
        CHECK(client_attach(&fresh, &cs, "web3", log, &q) == 0 && q.opens == 2);
        /* late's connection comes: it ends at once, without the tail */
        client_run(&late);
        size_t count = 1;
        CHECK(read_to_eof(late.app, &count) && count == 0);
        client_join(&late);
        client_run(&fresh);
        CHECK(expect(fresh.app, "R"));
        client_join(&fresh);
        CHECK(wait_empty(&cs));
        close(q.peer);
        node_consoles_stop(&cs);
}

/* Runs c on a connection whose peer has gone (an upgrade that never happened). */
static void client_run_gone(client_t *c) {
        int sv[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
                abort();
        close(sv[0]);
        node_console_client_run(c->cl, sv[1], NULL, 0);
        close(sv[1]);
}

static void test_limits(void) {
        node_consoles_t cs;
        node_consoles_init(&cs);
        CHECK(cs.vm_max == NODE_CONSOLE_VM_MAX && cs.node_max == NODE_CONSOLE_NODE_MAX);
        CHECK(NODE_CONSOLE_NODE_MAX < HTTP_MAX_CONNECTIONS);
        cs.vm_max = 2;
        cs.node_max = 3;
        fake_qemu_t q1 = { .peer = -1 }, q2 = { .peer = -1 };
        client_t c[3], x;
        CHECK(client_attach(&c[0], &cs, "v1", NULL, &q1) == 0);
        CHECK(client_attach(&c[1], &cs, "v1", NULL, &q1) == 0);
        _cleanup_free_ char *msg = NULL;
        CHECK(node_console_attach(&cs, "v1", 42, NULL, fake_open, &q1, &x.cl, &msg) == -EAGAIN);
        CHECK_STREQ(msg, "vm \"v1\" has 2 consoles attached, the most it takes");
        CHECK(client_attach(&c[2], &cs, "v2", NULL, &q2) == 0);
        free(msg);
        msg = NULL;
        fake_qemu_t q3 = { .peer = -1 };
        CHECK(node_console_attach(&cs, "v3", 42, NULL, fake_open, &q3, &x.cl, &msg) == -EAGAIN && q3.opens == 0);
        CHECK_STREQ(msg, "this RM has 3 consoles attached, the most it takes; try again later");
        CHECK(q1.opens == 1 && q2.opens == 1);
        for (int i = 0; i < 3; i++)
                client_run_gone(&c[i]);
        CHECK(wait_empty(&cs));
        size_t count = 1;
        CHECK(read_to_eof(q1.peer, &count) && count == 0 && read_to_eof(q2.peer, &count) && count == 0);
        close(q1.peer);
        close(q2.peer);

        /* a QEMU that cannot be reached: its error, nothing left behind */
        q3.fail = -ECONNREFUSED;
        free(msg);
        msg = NULL;
        CHECK(node_console_attach(&cs, "v3", 42, NULL, fake_open, &q3, &x.cl, &msg) == -ECONNREFUSED);
        CHECK_STREQ(msg, "cannot connect to the console of vm \"v3\": Connection refused");
        unsigned consoles = 1;
        CHECK(counts(&cs, &consoles) == 0 && consoles == 0);
        node_consoles_stop(&cs);
}

typedef struct stopper {
        node_consoles_t *cs;
        pthread_t thread;
} stopper_t;

static void *stop_thread(void *arg) {
        node_consoles_stop(((stopper_t *)arg)->cs);
        return NULL;
}

static void test_stop(void) {
        node_consoles_t cs;
        node_consoles_init(&cs);
        fake_qemu_t qa = { .peer = -1 }, qb = { .peer = -1 };
        _cleanup_free_ char *log = log_with("stop.log", "R");
        client_t c[3], pending;
        const char *vms[3] = { "a", "a", "b" };
        for (int i = 0; i < 3; i++) {
                CHECK(client_attach(&c[i], &cs, vms[i], log, i < 2 ? &qa : &qb) == 0);
                client_run(&c[i]);
                CHECK(expect(c[i].app, "R"));
        }
        CHECK(client_attach(&pending, &cs, "b", log, &qb) == 0);
        stopper_t s = { .cs = &cs };
        CHECK(pthread_create(&s.thread, NULL, stop_thread, &s) == 0);
        /* every client and QEMU connection ends */
        for (int i = 0; i < 3; i++) {
                size_t count = 1;
                CHECK(read_to_eof(c[i].app, &count) && count == 0);
                client_join(&c[i]);
        }
        size_t count = 1;
        CHECK(read_to_eof(qa.peer, &count) && count == 0 && read_to_eof(qb.peer, &count) && count == 0);
        /* the stop waits for the pending client, which ends at once when it runs */
        client_run(&pending);
        CHECK(read_to_eof(pending.app, &count) && count == 0);
        client_join(&pending);
        pthread_join(s.thread, NULL);
        unsigned consoles = 1;
        CHECK(counts(&cs, &consoles) == 0 && consoles == 0);
        client_t late;
        _cleanup_free_ char *msg = NULL;
        CHECK(node_console_attach(&cs, "a", 42, log, fake_open, &qa, &late.cl, &msg) == -EAGAIN && qa.opens == 1);
        CHECK_STREQ(msg, "this RM is stopping");
        node_consoles_stop(&cs); /* again: nothing to do */
        close(qa.peer);
        close(qb.peer);
}

/* A listening UNIX socket of this process at tmp_dir/name with backlog; -1 on failure. */
static int listener(const char *name, int backlog, char **ret_path) {
        char *path = xasprintf("%s/%s", tmp_dir, name);
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        int l = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (l < 0 || bind(l, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(l, backlog) < 0) {
                if (l >= 0)
                        close(l);
                free(path);
                return -1;
        }
        *ret_path = path;
        return l;
}

static void test_connect(void) {
        _cleanup_free_ char *path = NULL, *full = NULL;
        int l = listener("console.sock", 16, &path);
        CHECK(l >= 0);
        /* ours: the listener is this process's */
        int fd = node_console_connect(path, getpid(), NODE_CONSOLE_CONNECT_NOWAIT);
        CHECK(fd >= 0);
        if (fd >= 0)
                close(fd);
        fd = node_console_connect(path, getpid(), 0);
        CHECK(fd >= 0);
        if (fd >= 0)
                close(fd);
        /* another process's socket, or no QEMU */
        CHECK(node_console_connect(path, getpid() + 1, NODE_CONSOLE_CONNECT_NOWAIT) == -EPERM);
        CHECK(node_console_connect(path, 0, 0) == -EPERM);
        _cleanup_free_ char *none = xasprintf("%s/none.sock", tmp_dir);
        CHECK(node_console_connect(none, getpid(), 0) == -ENOENT);
        close(l);

        /* nobody accepts and the queue is full: not waited on */
        l = listener("full.sock", 0, &full);
        CHECK(l >= 0);
        int first = node_console_connect(full, getpid(), NODE_CONSOLE_CONNECT_NOWAIT);
        CHECK(first >= 0);
        CHECK(node_console_connect(full, getpid(), NODE_CONSOLE_CONNECT_NOWAIT) == -EAGAIN);
        if (first >= 0)
                close(first);
        close(l);
}

int main(void) {
        char tmpl[] = "/tmp/test-node-console-XXXXXX";
        tmp_dir = mkdtemp(tmpl);
        if (!tmp_dir)
                return 1;
        test_fan_out_and_input();
        test_slow_client_then_leave();
        test_qemu_ends();
        test_limits();
        test_stop();
        test_connect();
        _cleanup_free_ char *rm = xasprintf("rm -rf '%s'", tmp_dir);
        if (system(rm) != 0)
                fprintf(stderr, "cannot remove %s\n", tmp_dir);
        return tap_finish();
}
