/* Plain sockets under the byte streams (stream.h, stream-tls.h). */
#pragma once

#include <stddef.h>

/* A TCP connection to host:port (a name is resolved): 0, or -EINVAL/-EHOSTUNREACH and why. */
int stream_tcp_connect(const char *hostport, int *ret_fd, char **ret_msg);

/* Writes all of buf; -errno on failure. */
int stream_write_all(int fd, const void *buf, size_t len);
