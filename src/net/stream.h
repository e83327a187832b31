/* Raw byte streams over HTTP upgrades: the serial console travels from the CLI through the
 * Oracle to the node as an HTTP/1.1 "Upgrade: vmx-console" connection, then as plain bytes. */
#pragma once

#include <stddef.h>

#include "net/stream-socket.h"

#define STREAM_CONSOLE_PROTOCOL "vmx-console"
/* A VM's graphical display: QEMU's VNC server on its UNIX socket, relayed by the node. */
#define STREAM_VNC_PROTOCOL "vmx-vnc"

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
 * otherwise -errno (-ENOENT for 404, -EAGAIN for 503) and a message (the server's error message
 * when it sent one) in *ret_msg. */
int stream_upgrade_connect(const char *target, const char *path, const char *protocol, const char *bearer,
                           int *ret_fd, char **ret_msg);


