/* HTTP client (libcurl) for JSON APIs: the CLI to the Oracle, the Oracle to nodes, nodes to
 * the Oracle, and file transfers of bundle data. One call = one request; no shared state, so
 * any thread may call it. */
#pragma once

#include <jansson.h>
#include <stdint.h>

typedef struct http_response {
        long status;       /* HTTP status, 0 when no response was received */
        json_t *json;      /* parsed body when it was JSON, else NULL */
        char *body;        /* raw body, NUL-terminated */
        size_t body_len;
} http_response_t;

void http_response_clear(http_response_t *r);

/* Who the client is to its peer. NULL credentials: nobody (public routes, tests). */
typedef struct http_credentials {
        const char *bearer;     /* a token, sent as "Authorization: Bearer TOKEN" */
} http_credentials_t;

/* The calls below, as cred. */
int http_request_json_as(const http_credentials_t *cred, const char *method, const char *url, const json_t *body,
                         long timeout_ms, http_response_t *ret);
int http_request_bytes_as(const http_credentials_t *cred, const char *method, const char *url, const void *body,
                          size_t body_len, long timeout_ms, http_response_t *ret);
int http_download_as(const http_credentials_t *cred, const char *url, const char *path, long timeout_ms,
                     void (*progress)(void *userdata, uint64_t done, uint64_t total), void *userdata);
/* The header lines cred adds to a request, for callers that drive libcurl themselves (uploads):
 * appended to list, which is returned. */
struct curl_slist;
struct curl_slist *http_credentials_headers(const http_credentials_t *cred, struct curl_slist *list);

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
