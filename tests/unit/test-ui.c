/* Daemon tests of the web interface's server side (issue 13): a real Oracle (its /ui/ from a
 * directory of this test) and a chamber node of vmatrix-test on the fake VMM driver.
 *   - /ui/: pages served with their type and the headers against framing and sniffing, and an
 *     ETag that a request with If-None-Match gets a 304 for; "..",
 *     hidden files, unknown types and missing files refused; / and /ui redirect to /ui/;
 *   - GET /v1/events/stream over a raw socket: a VM's creation and boot arrive as "event: vm"
 *     and as events with ids, with no polling; a reconnect with Last-Event-ID gets only what
 *     came after; a buyer's stream carries its own VM only; a stream that is never read does
 *     not stop the Oracle from answering;
 *   - console tickets: for a running VM only, a kind of serial or vnc, 30 s, not for another
 *     buyer's VM (404) nor for a provider (403); the WebSocket handshake is checked (RFC 6455:
 *     version, key) before the ticket is spent; a ticket works once (the second use is 401). */
#include "base/macro.h"
#include "daemons.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static daemons_t D;

static long api(const char *token, const char *method, const char *path, json_t *body, json_t **ret) {
        char url[512];
        snprintf(url, sizeof url, "%s%s", D.oracle.url, path);
        long s = daemons_call_token(token, method, url, body, ret);
        json_decref(body);
        return s;
}

/* A TCP connection to the Oracle's user API, with request sent. -1 on failure. */
static int raw_open(const char *request) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)D.oracle.port) };
        inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
            write(fd, request, strlen(request)) != (ssize_t)strlen(request)) {
                if (fd >= 0)
                        close(fd);
                return -1;
        }
        return fd;
}

/* Reads from fd into *buf (grown, NUL-terminated) until needle appears or timeout_ms passes. */
static bool raw_read_until(int fd, char **buf, size_t *len, const char *needle, int timeout_ms) {
        int64_t end = daemons_now_ms() + timeout_ms;
        while (!(*buf && strstr(*buf, needle))) {
                int left = (int)(end - daemons_now_ms());
                struct pollfd p = { .fd = fd, .events = POLLIN };
                if (left <= 0 || poll(&p, 1, left) <= 0)
                        return false;
                char chunk[4096];
                ssize_t n = read(fd, chunk, sizeof chunk);
                if (n <= 0)
                        return false;
                *buf = realloc(*buf, *len + (size_t)n + 1);
                memcpy(*buf + *len, chunk, (size_t)n);
                *len += (size_t)n;
                (*buf)[*len] = 0;
        }
        return true;
}

static char *stream_request(const char *token, const char *extra) {
        char *r = NULL;
        if (asprintf(&r,
                     "GET /v1/events/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nAccept: "
                     "text/event-stream\r\n%s\r\n",
                     token, extra ? extra : "") < 0)
                abort();
        return r;
}

static void user_make(const char *name, const char *role, char *ret_token) {
        CHECK(api(daemons_admin_token(), "POST", "/v1/users",
                  json_pack("{s:s,s:s,s:s}", "name", name, "role", role, "password", "ui-password-1"), NULL) == 201);
        json_t *j = NULL;
        CHECK(api(NULL, "POST", "/v1/login", json_pack("{s:s,s:s}", "user", name, "password", "ui-password-1"), &j) ==
              200);
        snprintf(ret_token, 128, "%s", json_string_value(json_object_get(j, "token")) ?: "");
        json_decref(j);
}

static void test_files(void) {
        char url[256];
        int page = raw_open("GET /ui/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        char *html = NULL;
        size_t hlen = 0;
        CHECK(page >= 0 && raw_read_until(page, &html, &hlen, "</title>", 5000));
        CHECK(html && strstr(html, " 200 ") && strstr(html, "text/html") && strstr(html, "<title>vMatrix test</title>"));
        free(html);
        close(page);
        long s;
        static const char *const refused[] = { "/ui/../oracle/admin.token", "/ui/.hidden.js", "/ui/a//b.js",
                                               "/ui/app.exe", "/ui/missing.js", "/ui/%2e%2e/x.js" };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++) {
                snprintf(url, sizeof url, "%s%s", D.oracle.url, refused[i]);
                s = daemons_call_token(NULL, "GET", url, NULL, NULL);
                CHECK(s == 404);
                if (s != 404)
                        fprintf(stderr, "  %s: %ld\n", refused[i], s);
        }
        /* type and headers, seen raw */
        int fd = raw_open("GET /ui/js/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        char *buf = NULL;
        size_t len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\r\n\r\n", 5000));
        CHECK(buf && strstr(buf, "200") && strstr(buf, "text/javascript"));
        CHECK(buf && strstr(buf, "Content-Security-Policy: default-src 'self'"));
        CHECK(buf && strstr(buf, "X-Frame-Options: DENY") && strstr(buf, "X-Content-Type-Options: nosniff"));
        free(buf);
        close(fd);
        /* a validator: the same file asked again with its ETag is 304, with no body; another tag is 200 */
        fd = raw_open("GET /ui/js/app.js HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        buf = NULL;
        len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\r\n\r\n", 5000));
        const char *et = buf ? strstr(buf, "ETag: \"") : NULL;
        char etag[80] = "";
        if (et) {
                et += 6;
                size_t n = strcspn(et, "\r\n");
                snprintf(etag, sizeof etag, "%.*s", (int)(n < 79 ? n : 79), et);
        }
        CHECK(etag[0] == '"' && strlen(etag) > 2);
        CHECK(buf && strstr(buf, "Cache-Control: no-cache"));
        free(buf);
        close(fd);
        char req[512];
        snprintf(req, sizeof req, "GET /ui/js/app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: W/\"x\", %s\r\nConnection: close\r\n\r\n",
                 etag);
        fd = raw_open(req);
        buf = NULL;
        len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\r\n\r\n", 5000));
        CHECK(buf && strstr(buf, " 304 ") && strstr(buf, etag));
        const char *body = buf ? strstr(buf, "\r\n\r\n") : NULL;
        CHECK(body && body[4] == 0);
        free(buf);
        close(fd);
        fd = raw_open("GET /ui/js/app.js HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"other\"\r\nConnection: close\r\n\r\n");
        buf = NULL;
        len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\r\n\r\n", 5000));
        CHECK(buf && strstr(buf, " 200 "));
        free(buf);
        close(fd);
        fd = raw_open("GET /ui HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        buf = NULL;
        len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\r\n\r\n", 5000));
        CHECK(buf && strstr(buf, " 302 ") && strstr(buf, "Location: /ui/"));
        free(buf);
        close(fd);
}

static void test_stream(const char *buyer_token) {
        char *req = stream_request(daemons_admin_token(), NULL);
        int fd = raw_open(req);
        free(req);
        char *buf = NULL;
        size_t len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\r\n\r\n", 5000));
        CHECK(buf && strstr(buf, "200") && strstr(buf, "text/event-stream"));
        /* a stream that is never read, alongside */
        char *idle_req = stream_request(daemons_admin_token(), NULL);
        int idle = raw_open(idle_req);
        free(idle_req);
        CHECK(idle >= 0);
        int64_t t0 = daemons_now_ms();
        CHECK(daemons_vm_create(&D, "s1") == 0);
        CHECK(raw_read_until(fd, &buf, &len, "\"name\":\"s1\"", 5000));
        CHECK(raw_read_until(fd, &buf, &len, "\"kind\":\"created\"", 5000));
        fprintf(stderr, "  a VM's creation reached the stream in %lld ms\n", (long long)(daemons_now_ms() - t0));
        CHECK(strstr(buf, "event: vm\n") && strstr(buf, "event: event\n"));
        /* its boot: the transit state and the end, live */
        CHECK(daemons_vm_do(&D, "s1", "boot", "loading"));
        CHECK(raw_read_until(fd, &buf, &len, "\"state\":\"booting\"", 5000));
        CHECK(raw_read_until(fd, &buf, &len, "\"state\":\"loading\"", 5000));
        /* the id of the "created" event, to resume after it */
        char *created = strstr(buf, "\"kind\":\"created\"");
        long long id = 0;
        for (char *p = created; p && p > buf; p--)
                if (strncmp(p, "id: ", 4) == 0) {
                        id = atoll(p + 4);
                        break;
                }
        CHECK(id > 0);
        close(fd);
        free(buf);
        /* resumed after the creation: the boot's event comes, the creation does not */
        char hdr[64];
        snprintf(hdr, sizeof hdr, "Last-Event-ID: %lld\r\n", id);
        req = stream_request(daemons_admin_token(), hdr);
        fd = raw_open(req);
        free(req);
        buf = NULL;
        len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\"kind\":\"boot\"", 5000));
        CHECK(buf && !strstr(buf, "\"kind\":\"created\""));
        close(fd);
        free(buf);
        /* a buyer sees its own VM and not s1 */
        CHECK(api(buyer_token, "POST", "/v1/vms", json_pack("{s:s,s:s,s:i}", "name", "mine", "image", "tiny-http",
                                                          "memory_mib", 32), NULL) == 201);
        req = stream_request(buyer_token, NULL);
        fd = raw_open(req);
        free(req);
        buf = NULL;
        len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\"name\":\"mine\"", 5000));
        CHECK(!raw_read_until(fd, &buf, &len, "\"name\":\"s1\"", 1500));
        close(fd);
        free(buf);
        /* the unread stream held up nobody */
        CHECK(api(daemons_admin_token(), "GET", "/v1/health", NULL, NULL) == 200);
        close(idle);
}

static void test_tickets(const char *buyer_token, const char *provider_token) {
        json_t *t = NULL;
        CHECK(api(daemons_admin_token(), "POST", "/v1/vms/s1/console-ticket", json_pack("{s:s}", "kind", "tty"), NULL) ==
              400);
        CHECK(api(daemons_admin_token(), "POST", "/v1/vms/mine/console-ticket", json_pack("{s:s}", "kind", "serial"),
                  NULL) == 409); /* stored: no console */
        CHECK(api(buyer_token, "POST", "/v1/vms/s1/console-ticket", json_pack("{s:s}", "kind", "serial"), NULL) == 404);
        CHECK(api(provider_token, "POST", "/v1/vms/s1/console-ticket", json_pack("{s:s}", "kind", "serial"), NULL) ==
              403);
        CHECK(api(daemons_admin_token(), "POST", "/v1/vms/s1/console-ticket", json_pack("{s:s}", "kind", "vnc"), &t) ==
              201);
        const char *url = json_string_value(json_object_get(t, "url"));
        CHECK(url && strncmp(url, "/v1/console/", 12) == 0 && json_integer_value(json_object_get(t, "expires_s")) == 30);
        /* a bad handshake is refused before the ticket is spent */
        char req[512];
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: "
                 "8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                 url ? url : "/");
        int fd = raw_open(req);
        char *buf = NULL;
        size_t len = 0;
        CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\r\n\r\n", 5000) && strstr(buf, " 400 "));
        close(fd);
        free(buf);
        /* a good one: the fake VM has no serial socket on its node, so the relay is refused (409),
         * and the ticket is gone all the same */
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: "
                 "13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
                 url ? url : "/");
        for (int round = 0; round < 2; round++) {
                fd = raw_open(req);
                buf = NULL;
                len = 0;
                CHECK(fd >= 0 && raw_read_until(fd, &buf, &len, "\r\n\r\n", 10000));
                CHECK(buf && strstr(buf, round == 0 ? " 409 " : " 401 "));
                if (buf && !strstr(buf, round == 0 ? " 409 " : " 401 "))
                        fprintf(stderr, "  round %d: %.200s\n", round, buf);
                close(fd);
                free(buf);
        }
        json_decref(t);
}

/* A directory of pages for the Oracle to serve. */
static void ui_dir_make(char *ret, size_t size) {
        snprintf(ret, size, "%s/ui", D.dir);
        char js[600];
        mkdir(ret, 0755);
        snprintf(js, sizeof js, "%s/js", ret);
        mkdir(js, 0755);
        char path[700];
        snprintf(path, sizeof path, "%s/index.html", ret);
        FILE *f = fopen(path, "w");
        if (f) {
                fputs("<!doctype html><title>vMatrix test</title>\n", f);
                fclose(f);
        }
        snprintf(path, sizeof path, "%s/js/app.js", ret);
        f = fopen(path, "w");
        if (f) {
                fputs("export const x = 1;\n", f);
                fclose(f);
        }
        snprintf(path, sizeof path, "%s/.hidden.js", ret);
        f = fopen(path, "w");
        if (f)
                fclose(f);
}

int main(void) {
        daemons_init(&D, NULL);
        char ui[600], env_ui[700];
        ui_dir_make(ui, sizeof ui);
        snprintf(env_ui, sizeof env_ui, "VMATRIX_UI_DIR=%s", ui);
        const char *env[] = { env_ui, NULL };
        CHECK(daemons_oracle_start(&D, env) == 0);
        CHECK(daemons_node_start(&D, 0, "ch1", "chamber", NULL) == 0);
        char buyer[128] = "", provider[128] = "";
        user_make("b1", "buyer", buyer);
        user_make("p1", "provider", provider);
        if (tap_failed == 0)
                test_files();
        if (tap_failed == 0)
                test_stream(buyer);
        if (tap_failed == 0)
                test_tickets(buyer, provider);
        if (tap_failed)
                daemons_dump_logs(&D);
        daemons_done(&D, tap_failed > 0);
        return tap_finish();
}
