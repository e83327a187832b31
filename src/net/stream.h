/* Raw byte streams over HTTP upgrades: the serial console travels from the CLI through the
 * Oracle to the node as an HTTP/1.1 "Upgrade: vmx-console" connection, then as plain bytes. */
#pragma once

#include <stddef.h>

#define STREAM_CONSOLE_PROTOCOL "vmx-console"

/* Copies bytes both ways between a and b until one side closes or fails. Returns 0 on a clean
 * close. Does not close the descriptors. */
int stream_splice(int a, int b);

/* Connects to target, asks GET path with Upgrade: protocol (and "Authorization: Bearer bearer"
 * unless bearer is NULL) and reads the answer's headers.
 * target is "host:port" or "http://host:port" (plain), or "https://[NAME@]host:port": TLS with
 * the process's default identity (http_client_tls_default: its CA, and its certificate when it
 * has one), the server proving it is NAME (tls_peer_dns_name) or host; the socket returned is
 * then the plain end of a relay that a thread of its own encrypts (stream-tls.c), so callers
 * splice it like any other. On "101 Switching Protocols" returns 0 and the socket in *ret_fd;
 * otherwise -errno and a message (the server's error message when it sent one) in *ret_msg. */
int stream_upgrade_connect(const char *target, const char *path, const char *protocol, const char *bearer,
                           int *ret_fd, char **ret_msg);

/* stream-tls.c: a TLS connection to "https://[NAME@]host:port" as above, relayed by a thread to
 * the plain socket *ret_fd; *ret_hostport is "host:port". */
int stream_tls_connect(const char *url, char **ret_hostport, int *ret_fd, char **ret_msg);
/* A TCP connection to host:port (a name is resolved): 0, or -EINVAL/-EHOSTUNREACH and why. */
int stream_tcp_connect(const char *hostport, int *ret_fd, char **ret_msg);

/* Writes all of buf; -errno on failure. */
int stream_write_all(int fd, const void *buf, size_t len);
