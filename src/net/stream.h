/* Raw byte streams over HTTP upgrades: the serial console travels from the CLI through the
 * Oracle to the node as an HTTP/1.1 "Upgrade: vmx-console" connection, then as plain bytes. */
#pragma once

#include <stddef.h>

#define STREAM_CONSOLE_PROTOCOL "vmx-console"

/* Copies bytes both ways between a and b until one side closes or fails. Returns 0 on a clean
 * close. Does not close the descriptors. */
int stream_splice(int a, int b);

/* Connects to host:port, asks GET path with Upgrade: protocol (and "Authorization: Bearer
 * bearer" unless bearer is NULL) and reads the answer's headers.
 * On "101 Switching Protocols" returns 0 and the connected socket in *ret_fd; otherwise -errno
 * and a message (the server's error message when it sent one) in *ret_msg. */
int stream_upgrade_connect(const char *hostport, const char *path, const char *protocol, const char *bearer,
                           int *ret_fd, char **ret_msg);

/* Writes all of buf; -errno on failure. */
int stream_write_all(int fd, const void *buf, size_t len);
