/* Harness: whole requests, as raw bytes on a socket, to a real http_server (net/http-server.h)
 * started in this process on a loopback port, with a small route table that has what the
 * Oracle's and the node's tables have: parameters, a JSON body, an upload with a limit, file,
 * text and byte answers, an upgrade, a public route and routes behind an authorizer that reads
 * a bearer token (auth/token.h) from the Authorization header. The input is sent as it is (it
 * may hold several pipelined requests, or half of one), the writing side is shut, and
 * everything the server answers is read until it closes the connection.
 *
 * Checked: the authorizer and the handlers see what the server promises (parameters as the
 * pattern has them, non-empty, without '/'; no body yet when authorizing; a body that is an
 * object; an upload complete and no larger than its limit; the principal the authorizer set),
 * the server answers with HTTP or not at all, never 500 (the handlers' answers are always
 * encodable) and never holds a half-closed connection for long; whatever the server allocates
 * for a request is freed (leaks may only show when the process ends, see docs/fuzzing.md).
 * libmicrohttpd itself, not instrumented, is exercised but not fuzzed for coverage. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "auth/roles.h"
#include "auth/token.h"
#include "base/util.h"
#include "fuzz.h"
#include "net/http-server.h"

#define UPLOAD_MAX 4096
/* longer than this for one answer is a hang (the server holds the connection) */
#define ANSWER_TIMEOUT_MS 5000
#define ANSWER_MAX (1 << 20)

static struct {
        http_server_t *server;
        int port;
        char dir[64];
        char file[128]; /* a file GET /v1/files/present serves */
} fz;

/* How many ":x" segments pattern has. */
static unsigned pattern_params(const char *pattern) {
        unsigned n = 0;
        for (const char *p = pattern; (p = strstr(p, "/:")); p++)
                n++;
        return n;
}

static void check_params(const http_request_t *req, const char *pattern) {
        unsigned n = pattern_params(pattern);
        for (unsigned i = 0; i < HTTP_MAX_PARAMS; i++) {
                if (i < n)
                        FUZZ_CHECK(req->params[i] && *req->params[i] && !strchr(req->params[i], '/'));
                else
                        FUZZ_CHECK(!req->params[i]);
        }
}

static void h_health(const http_request_t *req, http_reply_t *reply) {
        FUZZ_CHECK(!req->principal);
        http_reply_json(reply, 200, json_pack("{s:b}", "ok", 1));
}

/* GET /v1/vms/:name: the parameter and who asked, echoed. */
static void h_show(const http_request_t *req, http_reply_t *reply) {
        check_params(req, "/v1/vms/:name");
        FUZZ_CHECK(req->principal && strlen((const char *)req->principal) == TOKEN_ID_LEN);
        char name[64];
        SET(name, req->params[0]);
        utf8_sanitize(name);
        const char *q = http_request_query(req, "wait");
        http_reply_json(reply, 200, json_pack("{s:s,s:s,s:b}", "name", name, "by", (const char *)req->principal,
                                              "wait", q != NULL));
}

/* POST /v1/vms/:name/:action: the body, echoed. */
static void h_action(const http_request_t *req, http_reply_t *reply) {
        check_params(req, "/v1/vms/:name/:action");
        FUZZ_CHECK(!req->body || json_is_object(req->body));
        FUZZ_CHECK(!req->upload_path);
        if (streq(req->params[1], "fail")) {
                http_reply_errno(reply, -EBUSY, "vm \"%s\" is busy", req->params[0]);
                return;
        }
        http_reply_json(reply, 202, req->body ? json_deep_copy(req->body) : json_object());
}

static void h_delete(const http_request_t *req, http_reply_t *reply) {
        check_params(req, "/v1/vms/:name");
        http_reply_text(reply, 200, req->params[0]);
}

/* GET /v1/chunks/:id: bytes. */
static void h_chunk(const http_request_t *req, http_reply_t *reply) {
        check_params(req, "/v1/chunks/:id");
        size_t len = strlen(req->params[0]);
        char *copy = malloc(len ? len : 1);
        if (!copy)
                abort();
        memcpy(copy, req->params[0], len);
        http_reply_bytes(reply, 200, copy, len);
}

/* PUT /v1/uploads/:name: the size of what arrived. */
static void h_upload(const http_request_t *req, http_reply_t *reply) {
        check_params(req, "/v1/uploads/:name");
        FUZZ_CHECK(req->upload_path && !req->body);
        struct stat st;
        FUZZ_CHECK(stat(req->upload_path, &st) == 0 && st.st_size <= UPLOAD_MAX);
        /* the handler runs once the whole body is in, not before */
        const char *cl = http_request_header(req, "Content-Length");
        int64_t declared = -1;
        if (cl && parse_int64(cl, 0, UPLOAD_MAX, &declared) == 0 && !http_request_header(req, "Transfer-Encoding"))
                FUZZ_CHECK(st.st_size == declared);
        http_reply_json(reply, 201, json_pack("{s:I}", "size", (json_int_t)st.st_size));
}

/* GET /v1/files/:name: a file, or one that is not there (404). */
static void h_file(const http_request_t *req, http_reply_t *reply) {
        check_params(req, "/v1/files/:name");
        if (streq(req->params[0], "present"))
                http_reply_file(reply, fz.file);
        else
                http_reply_file(reply, "/nonexistent/vmatrix-fuzz");
}

static void upgraded(void *data, int fd, const char *extra, size_t extra_len) {
        FUZZ_CHECK(fd >= 0);
        (void)!send(fd, "bye\n", 4, MSG_NOSIGNAL);
        free(data);
}

/* GET /v1/vms/:name/console: switches protocols when asked to, as the console routes do, and
 * hands the connection data it owns; else a text answer. */
static void h_console(const http_request_t *req, http_reply_t *reply) {
        check_params(req, "/v1/vms/:name/console");
        const char *upgrade = http_request_header(req, "Upgrade");
        if (upgrade && streq(upgrade, "vmatrix-console"))
                http_reply_upgrade(reply, "vmatrix-console", upgraded, xstrdup(req->params[0]));
        else
                http_reply_text(reply, 200, "the console's last lines\n");
}

enum { FUZZ_PERM_OPEN = PERM_PUBLIC, FUZZ_PERM_TOKEN = PERM_VM_READ, FUZZ_PERM_NEVER = PERM_ORACLE };

static const http_route_t routes[] = {
        { "GET", "/v1/health", h_health, FUZZ_PERM_OPEN },
        { "GET", "/v1/vms/:name", h_show, FUZZ_PERM_TOKEN },
        { "DELETE", "/v1/vms/:name", h_delete, FUZZ_PERM_TOKEN },
        { "GET", "/v1/vms/:name/console", h_console, FUZZ_PERM_OPEN },
        { "POST", "/v1/vms/:name/:action", h_action, FUZZ_PERM_OPEN },
        { "GET", "/v1/chunks/:id", h_chunk, FUZZ_PERM_OPEN },
        { "PUT", "/v1/uploads/:name", h_upload, FUZZ_PERM_OPEN, .upload = true, .upload_max = UPLOAD_MAX },
        { "GET", "/v1/files/:name", h_file, FUZZ_PERM_OPEN },
        { "GET", "/v1/secret", h_health, FUZZ_PERM_NEVER },
        { NULL },
};

/* Public routes pass; FUZZ_PERM_NEVER is refused without an answer (the server's 403); the
 * rest need "Authorization: Bearer TOKEN" with a well-formed token, whose id becomes the
 * principal. */
static int authorize(http_request_t *req, const http_route_t *route, http_reply_t *reply) {
        FUZZ_CHECK(!req->body && !req->upload_path && !req->principal);
        check_params(req, route->pattern);
        if (route->perm == FUZZ_PERM_OPEN)
                return 0;
        if (route->perm == FUZZ_PERM_NEVER)
                return -EACCES;
        const char *h = http_request_header(req, "Authorization");
        token_parts_t t;
        if (!h || !str_startswith(h, "Bearer ") || token_parse(h + strlen("Bearer "), &t) < 0) {
                http_reply_error(reply, 401, "unauthorized", "a valid token is needed");
                return -EACCES;
        }
        req->principal = xstrdup(t.id);
        token_parts_wipe(&t);
        return 0;
}

static void server_stop(void) {
        fz.server = http_server_stop(fz.server);
        unlink(fz.file);
        rmdir(fz.dir);
}

static void server_start(void) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        FUZZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
                   getsockname(fd, (struct sockaddr *)&sa, &len) == 0);
        fz.port = ntohs(sa.sin_port);
        close(fd);
        snprintf(fz.dir, sizeof fz.dir, "/tmp/vmatrix-fuzz-http.XXXXXX");
        FUZZ_CHECK(mkdtemp(fz.dir));
        snprintf(fz.file, sizeof fz.file, "%s/present", fz.dir);
        FUZZ_CHECK(file_write_atomic(fz.file, "contents\n", 9) == 0);
        char listen[32];
        snprintf(listen, sizeof listen, "127.0.0.1:%d", fz.port);
        http_server_params_t p = { .listen = listen, .routes = routes, .upload_dir = fz.dir, .authorize = authorize };
        FUZZ_CHECK(http_server_start(&p, &fz.server) == 0);
        atexit(server_stop);
}

/* Each status line of the answer: HTTP/1.x and a status that is not 500. */
static void check_answer(const char *buf, size_t len) {
        if (len == 0)
                return; /* refused without a word (a request libmicrohttpd drops) */
        FUZZ_CHECK(len >= 12 && memcmp(buf, "HTTP/1.", 7) == 0);
        for (const char *p = buf; (p = memmem(p, len - (size_t)(p - buf), "HTTP/1.", 7)); p += 7)
                if ((size_t)(p - buf) + 12 <= len && (p == buf || p[-1] == '\n') && p[8] == ' ')
                        FUZZ_CHECK(memcmp(p + 9, "500", 3) != 0);
}

/* Waits until fd is ready for events, through the signals libFuzzer's timer sends (EINTR);
 * false when deadline (time_now_ms) passed first. */
static bool fd_wait(int fd, short events, int64_t deadline) {
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = events };
                int64_t left = deadline - time_now_ms();
                if (left <= 0)
                        return false;
                int r = poll(&pfd, 1, (int)left);
                if (r > 0)
                        return true;
                if (r < 0 && errno != EINTR)
                        return false;
        }
}

static int server_connect(int64_t deadline) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)fz.port),
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        FUZZ_CHECK(fd >= 0);
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                /* interrupted: the connection goes on being made */
                int err = errno;
                socklen_t elen = sizeof err;
                if (err != EINTR || !fd_wait(fd, POLLOUT, deadline) ||
                    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0 || err != 0) {
                        fprintf(stderr, "cannot connect to the server: %s\n", strerror(err));
                        abort();
                }
        }
        /* closed with a reset rather than left in TIME_WAIT: thousands of connections a second
         * would run out of ephemeral ports within a minute */
        struct linger lg = { .l_onoff = 1, .l_linger = 0 };
        FUZZ_CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0);
        return fd;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (!fz.server)
                server_start();
        int64_t deadline = time_now_ms() + ANSWER_TIMEOUT_MS;
        int fd = server_connect(deadline);
        /* the server may answer and close before it has read everything: a failed send is fine */
        size_t off = 0;
        while (off < size && fd_wait(fd, POLLOUT, deadline)) {
                ssize_t w = send(fd, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (w < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (w <= 0)
                        break;
                off += (size_t)w;
        }
        shutdown(fd, SHUT_WR);
        char *buf = malloc(ANSWER_MAX);
        if (!buf)
                abort();
        size_t len = 0;
        for (;;) {
                if (!fd_wait(fd, POLLIN, deadline)) {
                        fprintf(stderr, "the server holds a half-closed connection: %zu of %zu bytes sent, "
                                        "%zu answered:\n%.*s\n", off, size, len, (int)len, buf);
                        abort();
                }
                ssize_t r = recv(fd, buf + len, ANSWER_MAX - len, MSG_DONTWAIT);
                if (r < 0 && (errno == EINTR || errno == EAGAIN))
                        continue;
                if (r <= 0)
                        break; /* closed (or reset, after a refusal) */
                len += (size_t)r;
                if (len == ANSWER_MAX)
                        break;
        }
        close(fd);
        if (getenv("FUZZ_HTTP_SHOW")) /* to see what the server answered (docs/fuzzing.md) */
                fprintf(stderr, "--- %zu bytes sent, %zu answered:\n%.*s\n", size, len, (int)len, buf);
        check_answer(buf, len);
        free(buf);
        return 0;
}
