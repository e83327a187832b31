/* HTTP client (libcurl) for JSON APIs: the CLI to the Oracle, the Oracle to nodes, nodes to
 * the Oracle, and file transfers of bundle data. One call = one request; any thread may call it.
 *
 * HTTPS (docs/tls.md): a call may carry an http_call_t naming a TLS identity (http_tls_t: the CA
 * to trust, and our client certificate for the mutual TLS of the control channel) and the peer
 * it must reach: the server's certificate must carry that name (tls_peer_dns_name: the Oracle
 * or an RM), whatever address the URL has; libcurl's own host check proves it, the URL's
 * address is only where to connect (CURLOPT_CONNECT_TO). TLS sessions are shared between the
 * calls of one http_tls_t, so a new connection resumes instead of doing a full handshake, and a
 * caller that calls one peer again and again (the heartbeat) keeps an http_handle_t, whose
 * connection stays open between calls. A call with the default identity and no handle of its
 * own uses its thread's keep-alive handle (http-tls.c), so each thread holds one connection per
 * peer it calls.
 *
 * A daemon has one identity: it sets it once at its start (http_client_tls_default) and every
 * https:// call that names none uses it, so the layers that call peers (chunk transfers,
 * progress reports, downloads) need not carry it. The peer may also be named in the URL:
 * "https://NAME@ADDR:PORT/path" asks the server at ADDR:PORT to prove it is NAME (never sent as
 * a user name). */
#pragma once

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/http-tls.h"

typedef struct http_response {
        long status;       /* HTTP status, 0 when no response was received */
        json_t *json;      /* parsed body when it was JSON, else NULL */
        char *body;        /* raw body, NUL-terminated */
        size_t body_len;
} http_response_t;

void http_response_clear(http_response_t *r);


/* The "Authorization: Bearer" line of call's token appended to list (which is returned), for
 * callers that drive libcurl themselves; nothing for no token or one that is too long or would
 * split the header. */
struct curl_slist;
struct curl_slist *http_call_headers(const http_call_t *call, struct curl_slist *list);

/* The call functions below with a call description (may be NULL). */
int http_call_json(const http_call_t *call, const char *method, const char *url, const json_t *body, long timeout_ms,
                   http_response_t *ret);
int http_call_bytes(const http_call_t *call, const char *method, const char *url, const void *body, size_t body_len,
                    long timeout_ms, http_response_t *ret);
int http_call_download(const http_call_t *call, const char *url, const char *path, long timeout_ms,
                       void (*progress)(void *userdata, uint64_t done, uint64_t total), void *userdata);
/* PUTs the regular file at path to url as application/octet-stream, streamed, with no total
 * timeout (a large image takes what it takes): it gives up when nothing moves for stall_s
 * seconds. progress (may be NULL) as for a download. The answer as http_call_json; -ENOENT,
 * -EISDIR, ... when the file cannot be read. */
int http_call_upload(const http_call_t *call, const char *url, const char *path, long stall_s,
                     void (*progress)(void *userdata, uint64_t done, uint64_t total), void *userdata,
                     http_response_t *ret);

/* Sends method to url with an optional JSON body. timeout_ms bounds the whole request.
 * Returns 0 when any HTTP response arrived (look at ret->status), -ECONNREFUSED,
 * -ETIMEDOUT or -EIO when none did. */
int http_request_json(const char *method, const char *url, const json_t *body, long timeout_ms,
                      http_response_t *ret);

/* Like http_request_json with a raw body (binary safe both ways: ret->body_len counts). */
int http_request_bytes(const char *method, const char *url, const void *body, size_t body_len, long timeout_ms,
                       http_response_t *ret);

/* Downloads url into path (via path.part, then rename). progress (may be NULL) is called with
 * bytes done and total. Returns -EIO/-ETIMEDOUT on transport failure, -EPROTO on a non-2xx. */
int http_download(const char *url, const char *path, long timeout_ms,
                  void (*progress)(void *userdata, uint64_t done, uint64_t total), void *userdata);

/* The message of an API error body {"error":{"code","message"}}, or a description of the
 * transport failure; never NULL (static or pointing into r). */
const char *http_error_message(const http_response_t *r, int transport_error);
