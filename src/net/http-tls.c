/* The TLS side of the HTTP client (http-tls.h): identities (CA, client certificate), the shared TLS session
 * cache, keep-alive handles (the caller's, or else each thread's own), and the peer-name mapping that makes libcurl check the name we
 * expect instead of the URL's address. */
#include <curl/curl.h>
#include <pthread.h>
#include <string.h>

#include "base/util.h"
#include "net/http-client-internal.h"
#include "tls/tls-identity.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }
void http_client_init(void) { pthread_once(&curl_once, curl_init_once); }

struct http_tls {
        char *ca_file, *cert_file, *key_file;
        CURLSH *share;
        pthread_mutex_t locks[CURL_LOCK_DATA_LAST];
};

struct http_handle {
        CURL *curl;
};

static void share_lock(CURL *c, curl_lock_data data, curl_lock_access access, void *userp) {
        http_tls_t *t = userp;
        pthread_mutex_lock(&t->locks[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

static void share_unlock(CURL *c, curl_lock_data data, void *userp) {
        http_tls_t *t = userp;
        pthread_mutex_unlock(&t->locks[data < CURL_LOCK_DATA_LAST ? data : 0]);
}

int http_tls_new(const char *ca_file, const char *cert_file, const char *key_file, http_tls_t **ret) {
        if (!!cert_file != !!key_file)
                return -EINVAL;
        http_client_init();
        http_tls_t *t = xcalloc(1, sizeof *t);
        t->ca_file = ca_file ? xstrdup(ca_file) : NULL;
        t->cert_file = cert_file ? xstrdup(cert_file) : NULL;
        t->key_file = key_file ? xstrdup(key_file) : NULL;
        for (size_t i = 0; i < ELEMENTSOF(t->locks); i++)
                pthread_mutex_init(&t->locks[i], NULL);
        /* TLS sessions only: libcurl does not support one connection cache shared by
         * concurrent threads; a caller that wants its connection kept holds an http_handle_t */
        t->share = curl_share_init();
        if (!t->share || curl_share_setopt(t->share, CURLSHOPT_LOCKFUNC, share_lock) != CURLSHE_OK ||
            curl_share_setopt(t->share, CURLSHOPT_UNLOCKFUNC, share_unlock) != CURLSHE_OK ||
            curl_share_setopt(t->share, CURLSHOPT_USERDATA, t) != CURLSHE_OK ||
            curl_share_setopt(t->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
                http_tls_free(t);
                return -ENOMEM;
        }
        *ret = t;
        return 0;
}

http_tls_t *http_tls_free(http_tls_t *t) {
        if (!t)
                return NULL;
        if (t->share)
                curl_share_cleanup(t->share);
        for (size_t i = 0; i < ELEMENTSOF(t->locks); i++)
                pthread_mutex_destroy(&t->locks[i]);
        free(t->ca_file);
        free(t->cert_file);
        free(t->key_file);
        free(t);
        return NULL;
}

http_handle_t *http_handle_new(void) {
        http_client_init();
        http_handle_t *h = xcalloc(1, sizeof *h);
        h->curl = curl_easy_init();
        if (!h->curl)
                abort();
        return h;
}

http_handle_t *http_handle_free(http_handle_t *h) {
        if (!h)
                return NULL;
        curl_easy_cleanup(h->curl);
        free(h);
        return NULL;
}

/* Each thread's keep-alive handle for calls with the default identity (http_call_curl): made on
 * first use, cleaned up when the thread exits. Not a curl share of connections: libcurl does not
 * support one connection cache used by concurrent threads. */
typedef struct thread_handle {
        CURL *curl;
        bool busy; /* a call on it is running (a progress callback may make another call) */
        struct thread_handle *prev, *next;
} thread_handle_t;

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
/* Every live thread's handle, so that one is never lost to a leak checker while its thread runs
 * (the main thread's is never destroyed: its destructor does not run at exit). */
static pthread_mutex_t thread_handles_lock = PTHREAD_MUTEX_INITIALIZER;
static thread_handle_t *thread_handles;

static void thread_handle_free(void *p) {
        thread_handle_t *h = p;
        if (!h)
                return;
        pthread_mutex_lock(&thread_handles_lock);
        if (h->prev)
                h->prev->next = h->next;
        else
                thread_handles = h->next;
        if (h->next)
                h->next->prev = h->prev;
        pthread_mutex_unlock(&thread_handles_lock);
        curl_easy_cleanup(h->curl);
        free(h);
}

/* At exit, the exiting thread's handle (its destructor does not run then); the other threads'
 * may still be in use. */
static void thread_handle_at_exit(void) {
        thread_handle_t *h = pthread_getspecific(thread_key);
        if (h && !h->busy) {
                pthread_setspecific(thread_key, NULL);
                thread_handle_free(h);
        }
}

static void thread_key_make(void) {
        if (pthread_key_create(&thread_key, thread_handle_free) != 0 || atexit(thread_handle_at_exit) != 0)
                abort();
}

/* A connection idle for longer than this is not reused: the servers close theirs after 120 s. */
#define HTTP_KEEPALIVE_MAX_AGE_S 60L

CURL *http_call_curl(const http_call_t *call, bool *ret_owned) {
        if (call && call->handle) {
                /* options go, the connection and the session stay */
                curl_easy_reset(call->handle->curl);
                *ret_owned = false;
                return call->handle->curl;
        }
        /* the default identity (no identity of its own, the server verified): this thread's
         * handle, so one thread calling one peer again and again holds one connection */
        if (!call || (!call->tls && !call->unverified)) {
                pthread_once(&thread_key_once, thread_key_make);
                thread_handle_t *h = pthread_getspecific(thread_key);
                if (!h) {
                        h = xcalloc(1, sizeof *h);
                        h->curl = curl_easy_init();
                        if (!h->curl || pthread_setspecific(thread_key, h) != 0)
                                abort();
                        pthread_mutex_lock(&thread_handles_lock);
                        h->next = thread_handles;
                        if (h->next)
                                h->next->prev = h;
                        thread_handles = h;
                        pthread_mutex_unlock(&thread_handles_lock);
                }
                if (!h->busy) {
                        h->busy = true;
                        curl_easy_reset(h->curl);
                        curl_easy_setopt(h->curl, CURLOPT_MAXAGE_CONN, HTTP_KEEPALIVE_MAX_AGE_S);
                        *ret_owned = false;
                        return h->curl;
                }
        }
        *ret_owned = true;
        return curl_easy_init();
}

bool http_call_curl_is_thread(CURL *c) {
        pthread_once(&thread_key_once, thread_key_make);
        thread_handle_t *h = pthread_getspecific(thread_key);
        return h && h->curl == c;
}

void http_call_curl_done(CURL *c, bool owned, bool failed) {
        if (owned) {
                curl_easy_cleanup(c);
                return;
        }
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, NULL);
        pthread_once(&thread_key_once, thread_key_make);
        thread_handle_t *h = pthread_getspecific(thread_key);
        if (!h || h->curl != c)
                return;
        h->busy = false;
        /* after a transport failure the thread starts afresh: nothing of a broken connection
         * is kept (and libcurl 7.88 loses memory when a handle is reused after a refused connect) */
        if (failed) {
                pthread_setspecific(thread_key, NULL);
                thread_handle_free(h);
        }
}

/* "https://[NAME@]HOST[:PORT]/rest" -> NAME (malloc'd, NULL when none), HOST, PORT and the rest;
 * -EINVAL when it is not such a URL. */
static int url_split(const char *url, char **ret_name, char **ret_host, int *ret_port, const char **ret_rest) {
        if (!str_startswith(url, "https://"))
                return -EINVAL;
        const char *h = url + strlen("https://");
        const char *end = strchrnul(h, '/');
        const char *at = memchr(h, '@', (size_t)(end - h));
        _cleanup_free_ char *name = at ? strndup(h, (size_t)(at - h)) : NULL;
        if (at)
                h = at + 1;
        const char *colon = memchr(h, ':', (size_t)(end - h));
        int64_t port = 443;
        if (colon) {
                _cleanup_free_ char *p = strndup(colon + 1, (size_t)(end - colon - 1));
                if (parse_int64(p, 1, 65535, &port) < 0)
                        return -EINVAL;
        } else {
                colon = end;
        }
        if (colon == h || *h == '[' || (name && !*name))
                return -EINVAL;
        *ret_name = TAKE_PTR(name);
        *ret_host = strndup(h, (size_t)(colon - h));
        *ret_port = (int)port;
        *ret_rest = end;
        return 0;
}

/* The process's identity for https:// calls that name none (http_client_tls_default). */
static const http_tls_t *default_tls;

void http_client_tls_default(const http_tls_t *t) { default_tls = t; }

const http_tls_t *http_client_tls_default_get(void) { return default_tls; }

void http_tls_files(const http_tls_t *t, const char **ret_ca, const char **ret_cert, const char **ret_key) {
        *ret_ca = t ? t->ca_file : NULL;
        *ret_cert = t ? t->cert_file : NULL;
        *ret_key = t ? t->key_file : NULL;
}

int http_call_setup(CURL *c, const http_call_t *call, const char *url, http_call_state_t *st) {
        *st = (http_call_state_t){ 0 };
        bool https = str_startswith(url, "https://");
        const http_tls_t *t = call && call->tls ? call->tls : https ? default_tls : NULL;
        _cleanup_free_ char *host = NULL, *user = NULL;
        int port = 0;
        const char *rest = NULL;
        if (https && url_split(url, &user, &host, &port, &rest) < 0)
                return -EINVAL;
        const char *peer = call && call->peer ? call->peer : user;
        if (peer) {
                _cleanup_free_ char *name = tls_peer_dns_name(peer);
                if (!https || !name)
                        return -EINVAL; /* a peer to prove needs https */
                /* the URL names the peer (curl checks the certificate against it and keys the
                 * session cache by it); CONNECT_TO says where it is */
                st->url = xasprintf("https://%s:%d%s", name, port, rest);
                _cleanup_free_ char *to = xasprintf("%s:%d:%s:%d", name, port, host, port);
                st->connect_to = curl_slist_append(NULL, to);
                curl_easy_setopt(c, CURLOPT_CONNECT_TO, st->connect_to);
        }
        if (getenv("VMATRIX_CURL_VERBOSE"))
                curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
        if (https && call && call->unverified) {
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
                curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
                return 0;
        }
        if (!t)
                return 0;
        if (!https)
                return 0;
        /* a thread's handle keeps its own sessions along with its connections (libcurl 7.88
         * loses memory when a handle reused across calls is attached to a share) */
        if (!http_call_curl_is_thread(c))
                curl_easy_setopt(c, CURLOPT_SHARE, t->share);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(c, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
        if (t->ca_file)
                curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
        if (t->ca_file)
                curl_easy_setopt(c, CURLOPT_CAPATH, NULL); /* our CA only, not the system's too */
        if (t->cert_file) {
                curl_easy_setopt(c, CURLOPT_SSLCERT, t->cert_file);
                curl_easy_setopt(c, CURLOPT_SSLKEY, t->key_file);
        }
        return 0;
}

void http_call_state_clear(http_call_state_t *st) {
        curl_slist_free_all(st->connect_to);
        free(st->url);
        *st = (http_call_state_t){ 0 };
}
