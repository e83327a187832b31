/* libcurl-based implementation of http-client.h. curl_global_init is done once, lazily. */
#include "net/http-client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>

#include "base/fault.h"
#include "base/util.h"
#include "net/http-client-internal.h"


typedef struct buffer {
        char *data;
        size_t len, cap;
        bool too_large;
} buffer_t;

/* No peer may make us hold more than this of one answer in memory (a chunk batch is at most
 * NEST_HTTP_BATCH chunks of 4 MiB; downloads go to files and are not bounded here). */
#define HTTP_CLIENT_MAX_BODY (320u << 20)

static size_t buffer_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        buffer_t *b = userdata;
        size_t n = size * nmemb;
        if (b->len + n > HTTP_CLIENT_MAX_BODY) {
                b->too_large = true;
                return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
        }
        if (b->len + n + 1 > b->cap) {
                size_t cap = MAX(b->cap * 2, b->len + n + 1);
                char *d = realloc(b->data, cap);
                if (!d)
                        return 0;
                b->data = d;
                b->cap = cap;
        }
        memcpy(b->data + b->len, ptr, n);
        b->len += n;
        b->data[b->len] = 0;
        return n;
}

void http_response_clear(http_response_t *r) {
        json_decref(r->json);
        free(r->body);
        *r = (http_response_t){ 0 };
}

static int curl_code_to_errno(CURLcode c) {
        switch (c) {
        case CURLE_OK:
                return 0;
        case CURLE_COULDNT_CONNECT:
        case CURLE_COULDNT_RESOLVE_HOST:
                return -ECONNREFUSED;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CACERT_BADFILE:
                return -EKEYREJECTED; /* the TLS handshake failed: a certificate was refused */
        case CURLE_WRITE_ERROR:
                return -ENOSPC;
        default:
                return -EIO;
        }
}

static int request(const http_call_t *call, const char *method, const char *url, const char *content_type,
                   const void *payload, size_t payload_len, long timeout_ms, http_response_t *ret);

int http_call_json(const http_call_t *call, const char *method, const char *url, const json_t *body, long timeout_ms,
                   http_response_t *ret) {
        _cleanup_free_ char *payload = body ? json_dumps(body, JSON_COMPACT) : NULL;
        if (body && !payload)
                return -ENOMEM;
        return request(call, method, url, "Content-Type: application/json", payload, payload ? strlen(payload) : 0,
                       timeout_ms, ret);
}

int http_call_bytes(const http_call_t *call, const char *method, const char *url, const void *body, size_t body_len,
                    long timeout_ms, http_response_t *ret) {
        return request(call, method, url, "Content-Type: application/octet-stream", body, body_len, timeout_ms, ret);
}

int http_request_json(const char *method, const char *url, const json_t *body, long timeout_ms,
                      http_response_t *ret) {
        return http_call_json(NULL, method, url, body, timeout_ms, ret);
}

int http_request_bytes(const char *method, const char *url, const void *body, size_t body_len, long timeout_ms,
                       http_response_t *ret) {
        return http_call_bytes(NULL, method, url, body, body_len, timeout_ms, ret);
}

/* A bearer token is at most this long (vmx_ tokens are 64 characters); a longer one, or one
 * that would split the header, is not sent. */
#define HTTP_BEARER_MAX 512

struct curl_slist *http_call_headers(const http_call_t *call, struct curl_slist *list) {
        if (!call || !call->token || !*call->token || strlen(call->token) > HTTP_BEARER_MAX ||
            strpbrk(call->token, "\r\n"))
                return list;
        char h[HTTP_BEARER_MAX + 32];
        snprintf(h, sizeof h, "Authorization: Bearer %s", call->token);
        return curl_slist_append(list, h);
}

/* Runs the call set up on c, frees what the call set up (the handle when owned, else leaves it
 * reset of our headers for its next call), and answers as http_call_json does. */
static int perform(CURL *c, bool owned, struct curl_slist *headers, http_call_state_t *cs, buffer_t *buf,
                   http_response_t *ret) {
        CURLcode cc = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        http_call_curl_done(c, owned, cc != CURLE_OK);
        curl_slist_free_all(headers);
        http_call_state_clear(cs);
        /* the peer did the request, its answer is lost: a connection reset after the request */
        if (cc == CURLE_OK && fault_hit("http-reply"))
                cc = CURLE_RECV_ERROR;
        if (cc != CURLE_OK) {
                free(buf->data);
                return buf->too_large ? -EFBIG : curl_code_to_errno(cc);
        }
        http_response_t r = { .status = status, .body = buf->data ? buf->data : xstrdup(""), .body_len = buf->len };
        r.json = json_loadb(r.body, r.body_len, 0, NULL);
        *ret = r;
        return 0;
}

static int request(const http_call_t *call, const char *method, const char *url, const char *content_type,
                   const void *payload, size_t payload_len, long timeout_ms, http_response_t *ret) {
        if (fault_hit("http-call"))
                return -EIO; /* as if the connection broke: no response */
        http_client_init();
        bool owned = true;
        CURL *c = http_call_curl(call, &owned);
        if (!c)
                return -ENOMEM;
        http_call_state_t cs;
        if (http_call_setup(c, call, url, &cs) < 0) {
                http_call_curl_done(c, owned, true);
                return -EINVAL;
        }
        buffer_t buf = { 0 };
        struct curl_slist *headers = http_call_headers(call, curl_slist_append(NULL, content_type));
        curl_easy_setopt(c, CURLOPT_URL, cs.url ? cs.url : url);
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, MIN(timeout_ms, 5000L));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buffer_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        if (payload) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload);
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)payload_len);
        } else if (streq(method, "POST") || streq(method, "PUT")) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        }
        return perform(c, owned, headers, &cs, &buf, ret);
}

typedef struct progress_ctx {
        void (*fn)(void *userdata, uint64_t done, uint64_t total);
        void *userdata;
} progress_ctx_t;

static int curl_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        progress_ctx_t *ctx = p;
        if (ctx->fn)
                ctx->fn(ctx->userdata, (uint64_t)(dlnow + ulnow), (uint64_t)(dltotal + ultotal));
        return 0;
}

int http_download(const char *url, const char *path, long timeout_ms,
                  void (*progress)(void *userdata, uint64_t done, uint64_t total), void *userdata) {
        return http_call_download(NULL, url, path, timeout_ms, progress, userdata);
}

int http_call_download(const http_call_t *call, const char *url, const char *path, long timeout_ms,
                       void (*progress)(void *userdata, uint64_t done, uint64_t total), void *userdata) {
        if (fault_hit("http-call"))
                return -EIO;
        http_client_init();
        _cleanup_free_ char *part = xasprintf("%s.part", path);
        FILE *f = fopen(part, "we");
        if (!f)
                return negative_errno();
        bool owned = true;
        CURL *c = http_call_curl(call, &owned);
        if (!c) {
                fclose(f);
                return -ENOMEM;
        }
        http_call_state_t cs;
        if (http_call_setup(c, call, url, &cs) < 0) {
                http_call_curl_done(c, owned, true);
                fclose(f);
                unlink(part);
                return -EINVAL;
        }
        progress_ctx_t ctx = { progress, userdata };
        struct curl_slist *headers = http_call_headers(call, NULL);
        if (headers)
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_URL, cs.url ? cs.url : url);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
        curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        if (progress) {
                curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, curl_progress);
                curl_easy_setopt(c, CURLOPT_XFERINFODATA, &ctx);
                curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        }
        CURLcode cc = curl_easy_perform(c);
        http_call_curl_done(c, owned, cc != CURLE_OK);
        curl_slist_free_all(headers);
        http_call_state_clear(&cs);
        if (cc == CURLE_OK && fault_hit("http-reply"))
                cc = CURLE_RECV_ERROR;
        int r = cc == CURLE_HTTP_RETURNED_ERROR ? -EPROTO : curl_code_to_errno(cc);
        if (fflush(f) != 0 || fsync(fileno(f)) < 0)
                r = r < 0 ? r : negative_errno();
        fclose(f);
        if (r >= 0 && rename(part, path) < 0)
                r = negative_errno();
        if (r < 0)
                unlink(part);
        return r;
}



const char *http_error_message(const http_response_t *r, int transport_error) {
        if (transport_error == -ECONNREFUSED)
                return "connection refused";
        if (transport_error == -ETIMEDOUT)
                return "request timed out";
        if (transport_error == -EKEYREJECTED)
                return "the TLS handshake failed (a certificate was refused, or the peer is not who it should be)";
        if (transport_error < 0)
                return strerror(-transport_error);
        json_t *msg = r && r->json ? json_object_get(json_object_get(r->json, "error"), "message") : NULL;
        if (json_is_string(msg))
                return json_string_value(msg);
        return r && r->body && *r->body ? r->body : "unexpected response";
}

int http_call_upload(const http_call_t *call, const char *url, const char *path, long stall_s,
                     void (*progress)(void *userdata, uint64_t done, uint64_t total), void *userdata,
                     http_response_t *ret) {
        if (fault_hit("http-call"))
                return -EIO;
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        struct stat st;
        if (!f || fstat(fileno(f), &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EISDIR;
        http_client_init();
        bool owned = true;
        CURL *c = http_call_curl(call, &owned);
        if (!c)
                return -ENOMEM;
        http_call_state_t cs;
        if (http_call_setup(c, call, url, &cs) < 0) {
                http_call_curl_done(c, owned, true);
                return -EINVAL;
        }
        buffer_t buf = { 0 };
        progress_ctx_t ctx = { progress, userdata };
        struct curl_slist *headers =
                http_call_headers(call, curl_slist_append(NULL, "Content-Type: application/octet-stream"));
        curl_easy_setopt(c, CURLOPT_URL, cs.url ? cs.url : url);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READDATA, f);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)st.st_size);
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, stall_s);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, buffer_write);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &buf);
        if (progress) {
                curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, curl_progress);
                curl_easy_setopt(c, CURLOPT_XFERINFODATA, &ctx);
                curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
        }
        return perform(c, owned, headers, &cs, &buf, ret);
}
