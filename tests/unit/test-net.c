/* Unit tests for src/net: the server's routing, JSON bodies and errors, through the real client;
 * its connection limit (refused and counted above it, taken again below it); the TCP probe
 * against listeners that hold, close or are absent. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "base/util.h"
#include "net/http-client.h"
#include "net/http-route.h"
#include "net/http-server.h"
#include "net/tcp-probe.h"
#include "tap.h"

static int listen_loopback(unsigned *ret_port) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0 ||
            getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
                abort();
        *ret_port = ntohs(sa.sin_port);
        return fd;
}

/* Accepts one connection and closes it at once, as slirp does when the guest refuses. */
static void *accept_close(void *arg) {
        int c = accept(*(int *)arg, NULL, NULL);
        if (c >= 0)
                close(c);
        return NULL;
}

static void test_tcp_probe(void) {
        unsigned port;
        int fd = listen_loopback(&port);
        /* a listener (the kernel completes the handshake even before accept): up, and it holds */
        CHECK(tcp_probe("127.0.0.1", port, 1000, 0) == 0);
        CHECK(tcp_probe("127.0.0.1", port, 1000, 100) == 0);
        _cleanup_free_ char *addr = xasprintf("127.0.0.1:%u", port);
        CHECK(tcp_probe_address(addr, 1000, 0) == 0);
        close(fd);

        /* accepted, then dropped without a byte: up without a hold, refused with one */
        fd = listen_loopback(&port);
        pthread_t t;
        pthread_create(&t, NULL, accept_close, &fd);
        CHECK(tcp_probe("127.0.0.1", port, 1000, 2000) == -ECONNRESET);
        pthread_join(t, NULL);
        close(fd);

        /* nothing listens any more */
        CHECK(tcp_probe("127.0.0.1", port, 1000, 0) == -ECONNREFUSED);
        CHECK(tcp_probe("localhost", port, 1000, 0) == -EINVAL);
        CHECK(tcp_probe("127.0.0.1", 0, 1000, 0) == -EINVAL);
        CHECK(tcp_probe_address("127.0.0.1", 1000, 0) == -EINVAL);
        CHECK(tcp_probe_address("127.0.0.1:70000", 1000, 0) == -EINVAL);
        CHECK(tcp_probe_address("127.0.0.1:x", 1000, 0) == -EINVAL);
        CHECK(tcp_probe_address(NULL, 1000, 0) == -EINVAL);
}

/* A keep-alive HTTP/1.1 server of its own (not http-server.c), so the test counts the TCP
 * connections the client opens: it answers every request with 200 "{}" and keeps the
 * connection until the client closes it. */
typedef struct ka_server {
        int fd;
        atomic_int accepted;
} ka_server_t;

static void *ka_conn(void *arg) {
        int c = (int)(intptr_t)arg;
        char buf[8192];
        size_t have = 0;
        for (;;) {
                char *end = memmem(buf, have, "\r\n\r\n", 4);
                if (!end) {
                        ssize_t n = have < sizeof buf ? read(c, buf + have, sizeof buf - have) : -1;
                        if (n <= 0)
                                break;
                        have += (size_t)n;
                        continue;
                }
                size_t head = (size_t)(end + 4 - buf), body = 0;
                char *cl = memmem(buf, head, "Content-Length:", 15);
                if (cl)
                        body = strtoul(cl + 15, NULL, 10);
                while (have < head + body) { /* small bodies only (the test sends none or a few bytes) */
                        ssize_t n = have < sizeof buf ? read(c, buf + have, sizeof buf - have) : -1;
                        if (n <= 0)
                                goto out;
                        have += (size_t)n;
                }
                static const char reply[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                            "Content-Length: 2\r\n\r\n{}";
                if (write(c, reply, sizeof reply - 1) != (ssize_t)(sizeof reply - 1))
                        break;
                memmove(buf, buf + head + body, have - head - body);
                have -= head + body;
        }
out:
        close(c);
        return NULL;
}

static void *ka_accept(void *arg) {
        ka_server_t *k = arg;
        for (;;) {
                int c = accept(k->fd, NULL, NULL);
                if (c < 0)
                        return NULL;
                atomic_fetch_add(&k->accepted, 1);
                pthread_t t;
                pthread_create(&t, NULL, ka_conn, (void *)(intptr_t)c);
                pthread_detach(t);
        }
}

static void *ka_calls(void *arg) {
        const char *url = arg;
        for (int i = 0; i < 20; i++) {
                http_response_t r = { 0 };
                if (http_request_json(i % 2 ? "POST" : "GET", url, NULL, 5000, &r) != 0 || r.status != 200)
                        abort();
                http_response_clear(&r);
        }
        return NULL;
}

static int nested_calls;

static void nested_progress(void *userdata, uint64_t done, uint64_t total) {
        if (nested_calls++ > 0)
                return;
        http_response_t r = { 0 };
        if (http_request_json("GET", userdata, NULL, 5000, &r) != 0 || r.status != 200)
                abort();
        http_response_clear(&r);
}

/* Calls with the default identity keep one connection per thread: 20 calls from one thread
 * open 1 connection, 20 calls from each of 2 new threads open 2 more. */
static void test_keepalive(void) {
        unsigned port;
        ka_server_t k = { .fd = listen_loopback(&port) };
        pthread_t acc;
        pthread_create(&acc, NULL, ka_accept, &k);
        _cleanup_free_ char *url = xasprintf("http://127.0.0.1:%u/v1/x", port);
        pthread_t t[2];
        pthread_create(&t[0], NULL, ka_calls, url);
        pthread_join(t[0], NULL);
        CHECK(atomic_load(&k.accepted) == 1);
        pthread_create(&t[0], NULL, ka_calls, url);
        pthread_create(&t[1], NULL, ka_calls, url);
        pthread_join(t[0], NULL);
        pthread_join(t[1], NULL);
        CHECK(atomic_load(&k.accepted) == 3);
        /* a call made from a progress callback of a call on the same thread gets a handle of its
         * own (one more connection), and the thread's handle keeps its connection */
        ka_calls(url);
        CHECK(atomic_load(&k.accepted) == 4);
        char dir[] = "/tmp/vmatrix-test-net-XXXXXX";
        CHECK(mkdtemp(dir) != NULL);
        _cleanup_free_ char *path = xasprintf("%s/got", dir);
        nested_calls = 0;
        CHECK(http_download(url, path, 5000, nested_progress, url) == 0);
        CHECK(nested_calls > 0);
        _cleanup_free_ char *got = NULL;
        CHECK(file_read(path, &got, NULL) == 0 && got && streq(got, "{}"));
        unlink(path);
        rmdir(dir);
        CHECK(atomic_load(&k.accepted) == 5);
        ka_calls(url);
        CHECK(atomic_load(&k.accepted) == 5);
        shutdown(k.fd, SHUT_RDWR);
        close(k.fd);
        pthread_join(acc, NULL);
}

static void h_echo(const http_request_t *req, http_reply_t *reply) {
        http_reply_json(reply, 200,
                        json_pack("{s:s,s:s,s:O?}", "a", req->params[0] ? req->params[0] : "", "b",
                                  req->params[1] ? req->params[1] : "", "body", req->body));
}

static void h_fail(const http_request_t *req, http_reply_t *reply) { http_reply_errno(reply, -EPERM, "vm \"x\" is active"); }

static void h_upload(const http_request_t *req, http_reply_t *reply) {
        struct stat st;
        http_reply_json(reply, 200, json_pack("{s:I}", "size", (json_int_t)(stat(req->upload_path, &st) == 0 ? st.st_size : -1)));
}

static int upgrade_runs; /* how many times upgraded() ran (atomic) */

/* An upgraded connection: greets and ends; frees the handler's data, as a console does. */
static void upgraded(void *data, int fd, const char *extra, size_t extra_len) {
        (void)!send(fd, "hello\n", 6, MSG_NOSIGNAL);
        free(data);
        __atomic_add_fetch(&upgrade_runs, 1, __ATOMIC_SEQ_CST);
}

static void h_stream(const http_request_t *req, http_reply_t *reply) {
        http_reply_upgrade(reply, "test-stream", upgraded, xstrdup("data the upgrade owns"));
}

static int count_calls; /* how many times h_count ran (atomic) */

static void h_count(const http_request_t *req, http_reply_t *reply) {
        int n = __atomic_add_fetch(&count_calls, 1, __ATOMIC_SEQ_CST);
        http_reply_json(reply, 200, json_pack("{s:i}", "n", n));
}

static const http_route_t routes[] = {
        { "GET", "/v1/stream", h_stream },
        { "POST", "/v1/count", h_count },
        { "POST", "/v1/upload", h_upload, .upload = true, .upload_max = 1000 },
        { "GET", "/v1/things/:a/sub/:b", h_echo },
        { "POST", "/v1/things/:a", h_echo },
        { "POST", "/v1/fail", h_fail },
        { NULL },
};

/* A peer that answers one request with an endless body, until the client hangs up. */
static void *endless_body(void *arg) {
        int c = accept(*(int *)arg, NULL, NULL);
        if (c < 0)
                return NULL;
        char req[4096];
        (void)!recv(c, req, sizeof req, 0);
        const char *head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n";
        static char zeros[1 << 20];
        bool ok = send(c, head, strlen(head), MSG_NOSIGNAL) > 0;
        while (ok)
                ok = send(c, zeros, sizeof zeros, MSG_NOSIGNAL) > 0;
        close(c);
        return NULL;
}

/* The client keeps at most 320 MiB of an answer: a peer that sends more gets -EFBIG, not the
 * client's memory. */
static void test_response_cap(void) {
        unsigned port;
        int fd = listen_loopback(&port);
        pthread_t t;
        CHECK(pthread_create(&t, NULL, endless_body, &fd) == 0);
        _cleanup_free_ char *url = xasprintf("http://127.0.0.1:%u/v1/anything", port);
        http_response_t r = { 0 };
        CHECK(http_request_json("GET", url, NULL, 60000, &r) == -EFBIG);
        http_response_clear(&r);
        pthread_join(t, NULL);
        close(fd);
}

/* Sends request on a fresh connection to port, shuts the writing side and reads the answer
 * until the server closes (at most 5 s) into buf, NUL-terminated. */
static void raw_exchange(int port, const char *request, char *buf, size_t size) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct timeval tv = { .tv_sec = 5 };
        size_t len = 0;
        if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) == 0 &&
            send(fd, request, strlen(request), MSG_NOSIGNAL) == (ssize_t)strlen(request)) {
                shutdown(fd, SHUT_WR);
                ssize_t n;
                while (len + 1 < size && (n = recv(fd, buf + len, size - 1 - len, 0)) > 0)
                        len += (size_t)n;
        }
        buf[len] = 0;
        if (fd >= 0)
                close(fd);
}

static int upgrade_runs_wait(int n) {
        for (int i = 0; i < 200 && __atomic_load_n(&upgrade_runs, __ATOMIC_SEQ_CST) < n; i++)
                time_sleep_ms(10);
        return __atomic_load_n(&upgrade_runs, __ATOMIC_SEQ_CST);
}

/* Switching protocols: over HTTP/1.1 the handler's function gets the socket; an HTTP/1.0
 * request cannot switch (libmicrohttpd refuses the 101), so it gets a 400 and the function
 * still runs, on a dead socket, to release what it owns (found by tests/fuzz/fuzz-http.c: the
 * data leaked, and with a console, its sockets). */
static void test_upgrade(int port) {
        char buf[4096];
        raw_exchange(port, "GET /v1/stream HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: test-stream\r\n\r\n",
                     buf, sizeof buf);
        CHECK(str_startswith(buf, "HTTP/1.1 101 "));
        CHECK(strstr(buf, "\r\n\r\nhello\n") != NULL);
        CHECK(upgrade_runs_wait(1) == 1);
        raw_exchange(port, "GET /v1/stream HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: test-stream\r\n\r\n", buf,
                     sizeof buf);
        CHECK(str_startswith(buf, "HTTP/1.1 400 "));
        CHECK(strstr(buf, "switching to test-stream needs HTTP/1.1") != NULL);
        CHECK(upgrade_runs_wait(2) == 2);
}

/* A request without a body that asks for "100 Continue", with more bytes behind it:
 * libmicrohttpd 0.9.75 calls the handler once without data before the request has ended and
 * refuses an answer then; the answer waits for the end instead of the connection being
 * dropped after the handler ran (found by tests/fuzz/fuzz-http.c), and the handler runs once. */
static void test_expect_continue(int port) {
        char buf[4096];
        raw_exchange(port, "POST /v1/count HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\r\n{}", buf, sizeof buf);
        CHECK(str_startswith(buf, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 "));
        CHECK(strstr(buf, "{\"n\":1}") != NULL);
        CHECK(__atomic_load_n(&count_calls, __ATOMIC_SEQ_CST) == 1);
}

/* A keep-alive connection to port with one request answered on it: its fd, or -1 when the
 * server closed it instead of answering (the answer, or nothing, in buf). */
static int kept_request(int port, char *buf, size_t size) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        struct timeval tv = { .tv_sec = 5 };
        const char *request = "GET /v1/things/k/sub/a HTTP/1.1\r\nHost: x\r\n\r\n";
        size_t len = 0;
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0 ||
            send(fd, request, strlen(request), MSG_NOSIGNAL) != (ssize_t)strlen(request)) {
                if (fd >= 0)
                        close(fd);
                buf[0] = 0;
                return -1;
        }
        /* the answer's body is the last thing of it: read until it is in (or the end) */
        ssize_t n;
        buf[0] = 0;
        while (!strstr(buf, "\"b\":\"a\"") && len + 1 < size && (n = recv(fd, buf + len, size - 1 - len, 0)) > 0) {
                len += (size_t)n;
                buf[len] = 0;
        }
        if (!strstr(buf, "\"b\":\"a\"")) {
                close(fd);
                return -1;
        }
        return fd;
}

static http_server_stats_t stats_wait_open(http_server_t *s, uint64_t open) {
        http_server_stats_t st;
        for (int i = 0; i < 500; i++) {
                http_server_stats(s, &st);
                if (st.open == open)
                        break;
                time_sleep_ms(10);
        }
        return st;
}

/* max_connections 4: four kept-alive connections are served; the fifth is closed at once,
 * without an answer, and counted; once one of the four closes, a new one is served. */
static void test_connection_limit(void) {
        int port = tap_free_port();
        _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
        http_server_t *s = NULL;
        http_server_params_t p = { .listen = listen, .routes = routes, .max_connections = 4, .thread_stack_kib = 256 };
        CHECK(http_server_start(&p, &s) == 0);
        if (!s)
                return;
        char buf[4096];
        int fds[4];
        for (int i = 0; i < 4; i++) {
                fds[i] = kept_request(port, buf, sizeof buf);
                CHECK(fds[i] >= 0 && str_startswith(buf, "HTTP/1.1 200 "));
        }
        http_server_stats_t st;
        http_server_stats(s, &st);
        CHECK(st.open == 4 && st.total == 4 && st.at_limit == 0 && st.max_connections == 4);
        CHECK(kept_request(port, buf, sizeof buf) == -1 && buf[0] == 0);
        http_server_stats(s, &st);
        CHECK(st.open == 4 && st.total == 4 && st.at_limit == 1);
        /* the four are still served, on their own connections */
        const char *again = "GET /v1/things/k/sub/a HTTP/1.1\r\nHost: x\r\n\r\n";
        CHECK(fds[0] >= 0 && send(fds[0], again, strlen(again), MSG_NOSIGNAL) == (ssize_t)strlen(again));
        ssize_t n = fds[0] >= 0 ? recv(fds[0], buf, sizeof buf - 1, 0) : -1;
        CHECK(n > 0 && (buf[n] = 0, str_startswith(buf, "HTTP/1.1 200 ")));
        if (fds[3] >= 0)
                close(fds[3]);
        st = stats_wait_open(s, 3);
        CHECK(st.open == 3);
        int fd = kept_request(port, buf, sizeof buf);
        CHECK(fd >= 0 && str_startswith(buf, "HTTP/1.1 200 "));
        http_server_stats(s, &st);
        CHECK(st.open == 4 && st.total == 5 && st.at_limit == 1 && st.peer_verifications == 0);
        if (fd >= 0)
                close(fd);
        for (int i = 0; i < 3; i++)
                if (fds[i] >= 0)
                        close(fds[i]);
        http_server_stop(s);
}

/* max_handshakes 2: two connections that have sent nothing yet hold both places, a third is
 * closed at its accept and counted as busy; once one of the two has sent its request, a new
 * one is served. */
static void test_handshake_limit(void) {
        int port = tap_free_port();
        _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
        http_server_t *s = NULL;
        http_server_params_t p = { .listen = listen, .routes = routes, .max_handshakes = 2 };
        CHECK(http_server_start(&p, &s) == 0);
        if (!s)
                return;
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        int silent[2];
        for (int i = 0; i < 2; i++) {
                silent[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
                CHECK(silent[i] >= 0 && connect(silent[i], (struct sockaddr *)&sa, sizeof sa) == 0);
        }
        http_server_stats_t st = stats_wait_open(s, 2);
        CHECK(st.open == 2 && st.handshaking == 2 && st.busy == 0 && st.max_handshakes == 2);
        char buf[4096];
        CHECK(kept_request(port, buf, sizeof buf) == -1 && buf[0] == 0);
        http_server_stats(s, &st);
        CHECK(st.busy == 1 && st.at_limit == 0 && st.total == 2);
        /* one of them asks: it is served, and its place is free */
        const char *req = "GET /v1/things/k/sub/a HTTP/1.1\r\nHost: x\r\n\r\n";
        struct timeval tv = { .tv_sec = 5 };
        setsockopt(silent[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        CHECK(send(silent[0], req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
        ssize_t n = recv(silent[0], buf, sizeof buf - 1, 0);
        CHECK(n > 0 && (buf[n] = 0, str_startswith(buf, "HTTP/1.1 200 ")));
        http_server_stats(s, &st);
        CHECK(st.handshaking == 1);
        int fd = kept_request(port, buf, sizeof buf);
        CHECK(fd >= 0 && str_startswith(buf, "HTTP/1.1 200 "));
        http_server_stats(s, &st);
        CHECK(st.busy == 1 && st.handshaking == 1 && st.open == 3);
        if (fd >= 0)
                close(fd);
        close(silent[0]);
        close(silent[1]);
        st = stats_wait_open(s, 0);
        CHECK(st.open == 0 && st.handshaking == 0);
        http_server_stop(s);
}

/* "*x" takes the rest of the path, slashes kept; ":x" one segment; neither takes nothing. */
static void test_route_rest(void) {
        const char *params[HTTP_MAX_PARAMS];
        char *storage = NULL;
        CHECK(http_route_match("/ui/*path", "/ui/vendor/xterm/xterm.js", params, &storage));
        CHECK_STREQ(params[0], "vendor/xterm/xterm.js");
        free(storage);
        CHECK(http_route_match("/v1/x/:a/*rest", "/v1/x/one/two/three", params, &storage));
        CHECK_STREQ(params[0], "one");
        CHECK_STREQ(params[1], "two/three");
        free(storage);
        CHECK(!http_route_match("/ui/*path", "/ui/", params, &storage));
        CHECK(!http_route_match("/ui/*path", "/ui", params, &storage));
        CHECK(!http_route_match("/ui/*path/x", "/ui/a/x", params, &storage)); /* "*" ends a pattern */
        CHECK(!http_route_match("/ui/:p", "/ui/a/b", params, &storage));
}

int main(void) {
        test_route_rest();
        test_tcp_probe();
        test_response_cap();
        test_connection_limit();
        test_handshake_limit();
        test_keepalive();
        http_server_t *s = NULL;
        int port = 0;
        for (port = 23100; port < 23200 && !s; port++) {
                _cleanup_free_ char *listen = xasprintf("127.0.0.1:%d", port);
                if (http_server_start(&(http_server_params_t){ .listen = listen, .routes = routes, .upload_dir = NULL, .userdata = NULL }, &s) == 0)
                        break;
        }
        CHECK(s != NULL);
        test_upgrade(port);
        test_expect_continue(port);
        http_response_t r = { 0 };
        _cleanup_free_ char *base = xasprintf("http://127.0.0.1:%d", port);
        _cleanup_free_ char *u1 = xasprintf("%s/v1/things/x1/sub/y2", base);
        CHECK(http_request_json("GET", u1, NULL, 5000, &r) == 0 && r.status == 200);
        CHECK_STREQ(json_string_value(json_object_get(r.json, "a")), "x1");
        CHECK_STREQ(json_string_value(json_object_get(r.json, "b")), "y2");
        http_response_clear(&r);

        /* an upload within the route's bound is taken; one above it is refused with 413 */
        _cleanup_free_ char *up = xasprintf("%s/v1/upload", base);
        char blob[2000];
        memset(blob, 'x', sizeof blob);
        CHECK(http_request_bytes("POST", up, blob, 600, 5000, &r) == 0 && r.status == 200);
        CHECK(json_integer_value(json_object_get(r.json, "size")) == 600);
        http_response_clear(&r);
        CHECK(http_request_bytes("POST", up, blob, sizeof blob, 5000, &r) == 0 && r.status == 413);
        CHECK(strstr(http_error_message(&r, 0), "larger than 1000 bytes") != NULL);
        http_response_clear(&r);

        _cleanup_free_ char *u2 = xasprintf("%s/v1/things/q", base);
        json_t *body = json_pack("{s:i}", "n", 7);
        CHECK(http_request_json("POST", u2, body, 5000, &r) == 0 && r.status == 200);
        CHECK(json_integer_value(json_object_get(json_object_get(r.json, "body"), "n")) == 7);
        http_response_clear(&r);
        json_decref(body);

        /* a known path with the wrong method, an unknown path */
        CHECK(http_request_json("GET", u2, NULL, 5000, &r) == 0 && r.status == 405);
        http_response_clear(&r);
        _cleanup_free_ char *u3 = xasprintf("%s/v1/nothing/here", base);
        CHECK(http_request_json("GET", u3, NULL, 5000, &r) == 0 && r.status == 404);
        CHECK(strstr(http_error_message(&r, 0), "no such endpoint") != NULL);
        http_response_clear(&r);
        _cleanup_free_ char *u4 = xasprintf("%s/v1/fail", base);
        CHECK(http_request_json("POST", u4, NULL, 5000, &r) == 0 && r.status == 409);
        CHECK_STREQ(http_error_message(&r, 0), "vm \"x\" is active");
        http_response_clear(&r);
        _cleanup_free_ char *u5 = xasprintf("%s/v1/things/x1/sub", base);
        CHECK(http_request_json("GET", u5, NULL, 5000, &r) == 0 && r.status == 404);
        http_response_clear(&r);

        http_server_stop(s);
        CHECK(http_request_json("GET", u1, NULL, 2000, &r) == -ECONNREFUSED);
        return tap_finish();
}
