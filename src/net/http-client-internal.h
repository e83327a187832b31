/* Between http-client.c and http-tls.c only. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>

#include "net/http-tls.h"

/* curl_global_init, once. */
void http_client_init(void);

/* What a call set up on its handle and frees after it. */
typedef struct http_call_state {
        char *url;                      /* the URL to use instead of the caller's, or NULL */
        struct curl_slist *connect_to;
} http_call_state_t;

/* The handle for a call: the caller's keep-alive handle, or for a call with the default identity
 * this thread's own (reset; *ret_owned false), or else a new one. Every handle it returns goes
 * back through http_call_curl_done once the call is over. */
CURL *http_call_curl(const http_call_t *call, bool *ret_owned);
/* Whether c is the calling thread's own handle. */
bool http_call_curl_is_thread(CURL *c);
/* Ends a call's use of c: cleans up an owned handle, else drops the call's headers and frees the
 * thread's handle for its next call; failed (no answer came): the thread's handle is dropped. */
void http_call_curl_done(CURL *c, bool owned, bool failed);
/* Applies call's TLS identity and peer name to c for url. -EINVAL: a peer name with a URL that
 * is not https://HOST:PORT/... */
int http_call_setup(CURL *c, const http_call_t *call, const char *url, http_call_state_t *st);
void http_call_state_clear(http_call_state_t *st);
