/* Between http-server.c and http-server-tls.c only: what a server keeps per connection (its
 * socket context in libmicrohttpd, from the accept to the close). */
#pragma once

#include <stdbool.h>

#include "net/http-server.h"
#include "tls/tls-identity.h"

typedef struct http_conn {
        http_server_t *server;
        bool fresh;         /* no request yet (counted in the server's handshaking) */
        bool peer_ok;       /* peer holds the client certificate verified on this connection */
        tls_peer_t peer;
} http_conn_t;

/* The connection of req (NULL when the server keeps none: never for a started server). */
http_conn_t *http_conn_of(const http_request_t *req);
/* Counts one verification of a client certificate's chain on s. */
void http_server_count_verification(http_server_t *s);
