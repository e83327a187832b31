/* Between http-client.c and http-client-tls.c only. */
#pragma once

#include <curl/curl.h>
#include <stdbool.h>

#include "net/http-client.h"

/* curl_global_init, once. */
void http_client_init(void);

/* What a call set up on its handle and frees after it. */
typedef struct http_call_state {
        char *url;                      /* the URL to use instead of the caller's, or NULL */
        struct curl_slist *connect_to;
} http_call_state_t;

/* The handle for a call: the caller's keep-alive handle (reset; *ret_owned false) or a new one. */
CURL *http_call_curl(const http_call_t *call, bool *ret_owned);
/* Applies call's TLS identity and peer name to c for url. -EINVAL: a peer name with a URL that
 * is not https://HOST:PORT/... */
int http_call_setup(CURL *c, const http_call_t *call, const char *url, http_call_state_t *st);
void http_call_state_clear(http_call_state_t *st);
