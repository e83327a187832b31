/* HTTP/JSON server on libmicrohttpd with a route table. Each connection has its own thread
 * (MHD thread-per-connection), so a slow handler never blocks another request.
 *
 * Routes are patterns such as "/v1/vms/:name/activate"; ":x" segments are captured in order.
 * A handler fills the response with http_reply_json / http_reply_error / http_reply_file.
 * Errno to HTTP status happens in exactly one place: http_reply_errno(). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#define HTTP_MAX_PARAMS 4

typedef struct http_request {
        const char *method;
        const char *path;
        const char *params[HTTP_MAX_PARAMS]; /* captured ":x" segments */
        json_t *body;            /* parsed JSON body (an object), NULL when none was sent */
        const char *upload_path; /* routes with .upload: the received body, in a temporary file */
        void *connection;        /* the libmicrohttpd connection, for query arguments */
        void *userdata;          /* the server's userdata */
        const void *principal;   /* who asks, as the server's authorizer found it (NULL: none) */
} http_request_t;

/* Called in a thread of its own with the raw socket of an upgraded connection (and any bytes
 * the client sent after its request); the server closes the socket when it returns. With TLS
 * the socket is one end of libmicrohttpd's socketpair and does not block (poll before reading);
 * a client that ends its side reads as the end of the socket there too (http-server.c,
 * upgrade_watch). */
typedef void (*http_upgrade_fn)(void *data, int fd, const char *extra, size_t extra_len);

/* A streamed answer's source (http_reply_stream): up to max bytes of the body at offset pos into
 * buf; the count, 0 never (block until there is something, or end), HTTP_STREAM_END when the body
 * is complete, HTTP_STREAM_ERROR to drop the connection. Called from the connection's thread. */
#define HTTP_STREAM_END (-1)
#define HTTP_STREAM_ERROR (-2)
typedef long (*http_stream_fn)(void *data, uint64_t pos, char *buf, size_t max);
#define HTTP_REPLY_HEADERS_MAX 8

typedef struct http_reply {
        int status;
        json_t *json;       /* owned */
        char *file_path;    /* owned: serve this file */
        bool file_unlink;   /* remove file_path once it is open */
        char *text;         /* owned: serve as text/plain */
        void *bytes;        /* owned: serve bytes_len bytes as application/octet-stream */
        size_t bytes_len;
        http_upgrade_fn upgrade; /* switch protocols to reply->upgrade_protocol and stream */
        void *upgrade_data;      /* owned by the upgrade function */
        const char *upgrade_protocol;
        const char *content_type;   /* overrides the type of the body's kind (a static string) */
        http_stream_fn stream;      /* the body comes from stream (stream_data, freed by stream_free) */
        void *stream_data;
        void (*stream_free)(void *data);
        unsigned n_headers;         /* extra response headers (http_reply_header), owned */
        char *headers[HTTP_REPLY_HEADERS_MAX][2];
} http_reply_t;

typedef void (*http_handler_t)(const http_request_t *req, http_reply_t *reply);

/* A route names what a caller needs (perm) and whose resource it touches (owner), as the
 * server's user understands them (the Oracle's and the node's perm_t/owner_rule_t): this layer
 * only hands both to the authorizer, which runs before the handler and before any body is
 * read. perm 0 is "none given", which every authorizer refuses, so a route added without a
 * permission is denied rather than open. */
typedef struct http_route {
        const char *method;
        const char *pattern;
        http_handler_t handler;
        int perm;
        int owner;
        bool upload; /* body is streamed to a temporary file instead of parsed as JSON */
        uint64_t upload_max; /* upload routes: the largest body taken (0: HTTP_MAX_UPLOAD) */
} http_route_t;

/* The largest upload a route takes unless it says otherwise (a disk image of 256 GiB). */
#define HTTP_MAX_UPLOAD (256ull << 30)
/* Connections served at once unless the server's parameters say otherwise (each has its own
 * thread); a connection above the limit is closed at its accept and counted (at_limit). */
#define HTTP_MAX_CONNECTIONS 1024

typedef struct http_server http_server_t;

/* Decides whether req (method, path, params and headers known; no body yet) may reach route's
 * handler. Returns 0 to go on, having set req->principal (malloc'd, freed by the server when
 * the request ends) if it wants the handler to know who asks; or a negative value with an
 * error answer filled in reply, which is sent at once. Called in the connection's thread. */
typedef int (*http_authorize_fn)(http_request_t *req, const http_route_t *route, http_reply_t *reply);

typedef struct http_server_params {
        const char *listen;             /* "ADDR:PORT" */
        const http_route_t *routes;     /* terminated by an entry with NULL method */
        const char *upload_dir;         /* temporary files of upload routes (NULL: /tmp) */
        void *userdata;
        http_authorize_fn authorize;    /* NULL: every route is open (tests of this layer only) */
        /* HTTPS (GnuTLS inside libmicrohttpd): our certificate (chain) and key as PEM text, both
         * or neither. tls_trust: PEM of the CA whose client certificates are asked for and
         * verified (http_request_peer); NULL: none asked. */
        const char *tls_cert;
        const char *tls_key;
        const char *tls_trust;
        /* Seconds a connection may take from its accept to its first request's headers (the TLS
         * handshake included) and, after that, idle between requests. 0: HTTP_IDLE_TIMEOUT_S
         * for both. A client that sends nothing holds one thread for this long at most. */
        unsigned first_request_timeout_s;
        /* Connections open at once (0: HTTP_MAX_CONNECTIONS); each holds a thread of
         * thread_stack_kib KiB of stack (0: the system's default, 8 MiB of address space). */
        unsigned max_connections;
        unsigned thread_stack_kib;
        /* Connections accepted whose first request has not come yet (their TLS handshake under
         * way) at most: one more is closed at its accept and counted (busy). 0: no bound. Under
         * a storm of connections (every node after an Oracle's restart) the handshakes taken
         * finish in time instead of all of them missing the first-request timeout together. */
        unsigned max_handshakes;
} http_server_params_t;

/* What a server counts (http_server_stats): connections open now, accepted since its start,
 * refused at max_connections, waiting for their first request now, refused at max_handshakes
 * (busy); and client-certificate chains verified (http_request_peer verifies once per
 * connection, so this grows with connections, not with requests). */
typedef struct http_server_stats {
        uint64_t open, total, at_limit, handshaking, busy, peer_verifications;
        unsigned max_connections, max_handshakes;
} http_server_stats_t;

#define HTTP_IDLE_TIMEOUT_S 120

/* Starts serving p->routes on p->listen. */
int http_server_start(const http_server_params_t *p, http_server_t **ret);
http_server_t *http_server_stop(http_server_t *s);
/* s's counters now (any thread). */
void http_server_stats(http_server_t *s, http_server_stats_t *ret);

/* Request header, or NULL. */
const char *http_request_header(const http_request_t *req, const char *key);

/* Answers 101 and hands the connection to fn (see http_upgrade_fn). */
void http_reply_upgrade(http_reply_t *reply, const char *protocol, http_upgrade_fn fn, void *data);

/* The client's IPv4 address as text into buf (at least 16 bytes): 0, or -ENOTCONN. */
int http_request_client_ip(const http_request_t *req, char *buf, size_t size);

/* The verified client certificate of the request's TLS connection: 0 and its subject in *ret
 * (a tls_peer_t, tls/tls-identity.h); -ENOKEY when the client sent none (or the server is not
 * TLS), -EACCES when the certificate is not of the trusted CA, expired, or not for client use.
 * The chain is verified at the connection's first call; later requests on the same connection
 * get the subject found then, until the certificate's not_after (a TLS 1.2/1.3 connection of
 * libmicrohttpd never renegotiates, so its client certificate cannot change). Whatever the
 * caller checks beyond the chain (a serial against its own table) it checks per request. */
struct tls_peer;
int http_request_peer(const http_request_t *req, struct tls_peer *ret);

/* Query argument of the request, or NULL. */
const char *http_request_query(const http_request_t *req, const char *key);

void http_reply_json(http_reply_t *reply, int status, json_t *json /* stolen */);
void http_reply_error(http_reply_t *reply, int status, const char *code, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Maps a -errno to the HTTP status and error code of the API (the one place this happens). */
void http_reply_errno(http_reply_t *reply, int err, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void http_reply_file(http_reply_t *reply, const char *path);
/* One more header of the answer (copied; at most HTTP_REPLY_HEADERS_MAX, the rest ignored). */
void http_reply_header(http_reply_t *reply, const char *name, const char *value);
/* The body of status is read from fn as the client takes it (server-sent events): a client that
 * does not read holds only the socket's buffers. free_fn(data) runs when the answer is done. */
void http_reply_stream(http_reply_t *reply, int status, const char *content_type, http_stream_fn fn, void *data,
                       void (*free_fn)(void *data));
/* Serves the file at path and removes it once it is open (a file made for this answer). */
void http_reply_file_temp(http_reply_t *reply, const char *path);
void http_reply_text(http_reply_t *reply, int status, const char *text);
/* Answers the malloc'd buffer data (taken over) as application/octet-stream. */
void http_reply_bytes(http_reply_t *reply, int status, void *data, size_t len);

/* Splits "host:port" into its parts; -EINVAL when malformed. */
int http_split_hostport(const char *hostport, char **ret_host, int *ret_port);
