/* Implementation of stream.h with poll(2) and blocking sockets. */
#include "net/stream.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"
#include "net/http-server.h"
#include "net/stream-tls.h"

/* One direction: read what is there on from and write it to to. 0 = EOF, <0 error, >0 bytes. */
static ssize_t pump(int from, int to) {
        char buf[16384];
        ssize_t n = read(from, buf, sizeof buf);
        if (n < 0)
                return errno == EINTR || errno == EAGAIN ? 1 : negative_errno();
        if (n == 0)
                return 0;
        int r = stream_write_all(to, buf, (size_t)n);
        return r < 0 ? r : n;
}

int stream_splice(int a, int b) {
        for (;;) {
                struct pollfd p[2] = { { .fd = a, .events = POLLIN }, { .fd = b, .events = POLLIN } };
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        return negative_errno();
                }
                for (int i = 0; i < 2; i++) {
                        if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        ssize_t n = pump(p[i].fd, i == 0 ? b : a);
                        if (n <= 0)
                                return (int)n;
                }
        }
}

/* The upgrade request and the answer's headers on a connected fd (plain, or the plain end of a
 * TLS relay). Takes fd: returns it in *ret_fd on 101, closes it otherwise. */
static int upgrade_on(int fd_in, const char *hostport, const char *path, const char *protocol, const char *bearer,
                      int *ret_fd, char **ret_msg) {
        _cleanup_close_ int fd = fd_in;
        _cleanup_free_ char *auth = bearer ? xasprintf("Authorization: Bearer %s\r\n", bearer) : xstrdup("");
        _cleanup_free_ char *req = xasprintf(
                "GET %s HTTP/1.1\r\nHost: %s\r\nConnection: Upgrade\r\nUpgrade: %s\r\n%s\r\n", path, hostport,
                protocol, auth);
        int r = stream_write_all(fd, req, strlen(req));
        if (r < 0) {
                *ret_msg = xasprintf("cannot send to %s: %s", hostport, strerror(-r));
                return r;
        }
        /* read the header byte by byte so no stream byte after it is swallowed */
        char head[8192];
        size_t len = 0;
        while (len < sizeof head - 1) {
                ssize_t n = read(fd, head + len, 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                len++;
                if (len >= 4 && memcmp(head + len - 4, "\r\n\r\n", 4) == 0)
                        break;
        }
        head[len] = 0;
        if (strncmp(head, "HTTP/1.1 101", 12) == 0) {
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        /* an error answer: its body is {"error":{"message":...}} */
        char body[4096];
        ssize_t n = read(fd, body, sizeof body - 1);
        body[n > 0 ? n : 0] = 0;
        json_t *j = json_loads(body, 0, NULL);
        const char *msg = json_string_value(json_object_get(json_object_get(j, "error"), "message"));
        *ret_msg = xstrdup(msg ? msg : len ? strtok(head, "\r") : "no answer");
        json_decref(j);
        /* 503: the server is full for now (a node's consoles) */
        return strstr(head, " 404 ") ? -ENOENT : strstr(head, " 503 ") ? -EAGAIN : -EPROTO;
}

int stream_upgrade_connect(const char *target, const char *path, const char *protocol, const char *bearer,
                           int *ret_fd, char **ret_msg) {
        if (bearer && (strlen(bearer) > 512 || strpbrk(bearer, "\r\n"))) {
                *ret_msg = xstrdup("the token is malformed");
                return -EINVAL;
        }
        if (str_startswith(target, "https://")) {
                _cleanup_free_ char *hostport = NULL;
                int fd = -1;
                int r = stream_tls_connect(target, &hostport, &fd, ret_msg);
                return r < 0 ? r : upgrade_on(fd, hostport, path, protocol, bearer, ret_fd, ret_msg);
        }
        const char *hostport = str_startswith(target, "http://") ? target + strlen("http://") : target;
        int fd = -1;
        int r = stream_tcp_connect(hostport, &fd, ret_msg);
        return r < 0 ? r : upgrade_on(fd, hostport, path, protocol, bearer, ret_fd, ret_msg);
}

