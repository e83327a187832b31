/* A free TCP port for a guest's port 80 forward (VMs and warm slots). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "base/util.h"
#include "node/node-internal.h"

int node_port_pick(const char *host) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return negative_errno();
        struct sockaddr_in a = { .sin_family = AF_INET };
        inet_pton(AF_INET, host, &a.sin_addr);
        socklen_t len = sizeof a;
        int r = bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || getsockname(fd, (struct sockaddr *)&a, &len) < 0
                        ? negative_errno()
                        : ntohs(a.sin_port);
        close(fd);
        return r;
}
