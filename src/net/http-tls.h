/* What an HTTP client call carries besides its request (http-client.h): a TLS identity
 * (http_tls_t), a keep-alive handle (http_handle_t), the peer it must reach and a token, in one
 * http_call_t. Implemented in http-tls.c, which also owns libcurl's global start. */
#pragma once

#include <stdbool.h>

/* A TLS identity for client calls: ca_file (PEM) is the only CA trusted for the server's
 * certificate (NULL: the system's); cert_file and key_file, our client certificate (both NULL:
 * none). The files are read at each new connection. Thread-safe; free it after its last call. */
typedef struct http_tls http_tls_t;
int http_tls_new(const char *ca_file, const char *cert_file, const char *key_file, http_tls_t **ret);
http_tls_t *http_tls_free(http_tls_t *t);

/* The identity of https:// calls that name none; set once before the threads start, and freed
 * (by its owner) only after the last call. NULL: libcurl's defaults. */
void http_client_tls_default(const http_tls_t *t);
const http_tls_t *http_client_tls_default_get(void);
/* The files of t (any may be NULL), for a TLS client of another kind (stream.c). */
void http_tls_files(const http_tls_t *t, const char **ret_ca, const char **ret_cert, const char **ret_key);

/* A connection kept between calls by one thread at a time (a keep-alive handle). */
typedef struct http_handle http_handle_t;
http_handle_t *http_handle_new(void);
http_handle_t *http_handle_free(http_handle_t *h);

/* How to make a call; NULL (or all fields NULL) is a plain call as before. */
typedef struct http_call {
        const http_tls_t *tls;  /* for https:// URLs */
        const char *peer;       /* "oracle" or an RM's name: the server's certificate must name it
                                   (tls_peer_dns_name); NULL: the URL's host */
        http_handle_t *handle;  /* NULL: a connection of its own */
        const char *token;      /* sent as "Authorization: Bearer TOKEN" (NULL: none) */
        bool unverified;        /* https without checking the server at all: only for what the caller
                                   checks itself (a node fetching the CA its join token names) */
} http_call_t;
