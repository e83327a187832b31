/* Whether something accepts TCP connections at an address: the launcher's wait for a node's
 * port, and the Oracle's tcp health check of a VM. */
#pragma once

#include <stdint.h>

/* 0 when a TCP connection to ip (IPv4 dotted quad) and port is accepted within timeout_ms.
 * With hold_ms > 0 the connection must then also stay open (or bring data) for hold_ms, else
 * -ECONNRESET: behind QEMU's user networking the host side of a forwarded port always accepts,
 * and only closes the connection once the guest has refused it. Closed before returning.
 * -EINVAL for a bad address, -ETIMEDOUT, or the connect's -errno (-ECONNREFUSED, ...). */
int tcp_probe(const char *ip, unsigned port, int timeout_ms, int hold_ms);
/* tcp_probe of an "IPv4:PORT" address. */
int tcp_probe_address(const char *address, int timeout_ms, int hold_ms);
