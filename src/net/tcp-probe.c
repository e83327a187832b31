/* Implementation of tcp-probe.h: a non-blocking connect bounded by poll, then a watch of the
 * connection for hold_ms. */
#include "net/tcp-probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"

/* After the connect: -ECONNRESET if the peer closes (or resets) within hold_ms without a byte. */
static int hold(int fd, int hold_ms) {
        struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
        int k = poll(&p, 1, hold_ms);
        if (k < 0)
                return negative_errno();
        if (k == 0)
                return 0; /* still open: a server waiting for its client to speak first */
        char c;
        return recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0 ? 0 : -ECONNRESET;
}

int tcp_probe(const char *ip, unsigned port, int timeout_ms, int hold_ms) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
        if (!ip || inet_pton(AF_INET, ip, &sa.sin_addr) != 1 || port == 0 || port > 65535)
                return -EINVAL;
        _cleanup_close_ int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        if (connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0)
                return hold_ms > 0 ? hold(fd, hold_ms) : 0;
        if (errno != EINPROGRESS)
                return negative_errno();
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        int k = poll(&p, 1, timeout_ms);
        if (k < 0)
                return negative_errno();
        if (k == 0)
                return -ETIMEDOUT;
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
                return negative_errno();
        if (err)
                return -err;
        return hold_ms > 0 ? hold(fd, hold_ms) : 0;
}

int tcp_probe_address(const char *address, int timeout_ms, int hold_ms) {
        const char *colon = address ? strrchr(address, ':') : NULL;
        if (!colon || colon - address > 15)
                return -EINVAL;
        char ip[16];
        memcpy(ip, address, (size_t)(colon - address));
        ip[colon - address] = 0;
        int64_t port;
        if (parse_int64(colon + 1, 1, 65535, &port) < 0)
                return -EINVAL;
        return tcp_probe(ip, (unsigned)port, timeout_ms, hold_ms);
}
