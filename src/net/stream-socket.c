/* Plain sockets for the streams of stream.c and stream-tls.c: a TCP connection to host:port
 * and writing all of a buffer. Below both, so neither needs the other for these. */
#include "net/stream-socket.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"
#include "net/http-server.h"

/* How long a write waits for room on a non-blocking descriptor (a TLS upgrade's socket is one)
 * before it gives up on a peer that takes nothing. */
#define STREAM_WRITE_WAIT_MS 30000

int stream_write_all(int fd, const void *buf, size_t len) {
        const char *p = buf;
        while (len > 0) {
                ssize_t w = send(fd, p, len, MSG_NOSIGNAL);
                if (w < 0 && errno == ENOTSOCK)
                        w = write(fd, p, len);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        /* a burst larger than the socket's buffer (a VNC frame): wait for room */
                        if (errno == EAGAIN || errno == EWOULDBLOCK) {
                                struct pollfd pfd = { .fd = fd, .events = POLLOUT };
                                int k = poll(&pfd, 1, STREAM_WRITE_WAIT_MS);
                                if (k > 0 && !(pfd.revents & (POLLERR | POLLNVAL)))
                                        continue;
                                return k == 0 ? -ETIMEDOUT : -EPIPE;
                        }
                        return negative_errno();
                }
                p += w;
                len -= (size_t)w;
        }
        return 0;
}

int stream_tcp_connect(const char *hostport, int *ret_fd, char **ret_msg) {
        _cleanup_free_ char *host = NULL;
        int port = 0;
        if (http_split_hostport(hostport, &host, &port) < 0) {
                *ret_msg = xasprintf("bad address \"%s\"", hostport);
                return -EINVAL;
        }
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
                struct addrinfo hints = { .ai_family = AF_INET, .ai_socktype = SOCK_STREAM }, *ai = NULL;
                if (getaddrinfo(host, NULL, &hints, &ai) != 0 || !ai) {
                        *ret_msg = xasprintf("cannot resolve %s", host);
                        return -EHOSTUNREACH;
                }
                sa.sin_addr = ((struct sockaddr_in *)ai->ai_addr)->sin_addr;
                freeaddrinfo(ai);
        }
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
                *ret_msg = xasprintf("cannot connect to %s: %m", hostport);
                return -EHOSTUNREACH;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}
