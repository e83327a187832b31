/* A TLS client stream (stream-tls.c), for stream_upgrade_connect. */
#pragma once

/* A TLS connection to "https://[NAME@]host:port" with the process's default identity, relayed
 * by a thread to the plain socket *ret_fd; *ret_hostport is "host:port". */
int stream_tls_connect(const char *url, char **ret_hostport, int *ret_fd, char **ret_msg);
