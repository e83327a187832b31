/* TLS for raw streams (stream.h): the console relays between the CLI and the Oracle and between
 * the Oracle and a node, with the same identities as the HTTP calls (OpenSSL, the process's
 * default http_tls_t). After the handshake a thread copies between the TLS connection and one
 * end of a socketpair, and the caller gets the other end: the upgrade request, its answer and
 * the spliced stream then run over it as over a plain socket. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>

#include "base/util.h"
#include "net/http-client.h"
#include "net/http-server.h"
#include "net/stream.h"
#include "tls/tls-identity.h"

typedef struct relay {
        SSL *ssl;
        SSL_CTX *ctx;
        int tcp, plain;
} relay_t;

static void relay_free(relay_t *r) {
        SSL_shutdown(r->ssl);
        SSL_free(r->ssl);
        SSL_CTX_free(r->ctx);
        close(r->tcp);
        close(r->plain);
        free(r);
}

/* Copies both ways until either side ends. SSL_MODE_AUTO_RETRY is off, so an SSL_read that
 * met only a handshake record (a TLS 1.3 ticket) returns instead of waiting for data while the
 * other direction stalls. */
static void *relay_thread(void *arg) {
        relay_t *r = arg;
        char buf[16384];
        for (;;) {
                struct pollfd p[2] = { { .fd = r->tcp, .events = POLLIN }, { .fd = r->plain, .events = POLLIN } };
                if (SSL_pending(r->ssl) == 0 && poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                if (SSL_pending(r->ssl) > 0 || (p[0].revents & (POLLIN | POLLHUP | POLLERR))) {
                        int n = SSL_read(r->ssl, buf, sizeof buf);
                        if (n <= 0) {
                                int e = SSL_get_error(r->ssl, n);
                                if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
                                        break;
                        } else if (stream_write_all(r->plain, buf, (size_t)n) < 0) {
                                break;
                        }
                }
                if (p[1].revents & (POLLIN | POLLHUP | POLLERR)) {
                        ssize_t n = read(r->plain, buf, sizeof buf);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0 || SSL_write(r->ssl, buf, (int)n) <= 0)
                                break;
                }
        }
        relay_free(r);
        ERR_clear_error();
        return NULL;
}

int stream_tls_connect(const char *url, char **ret_hostport, int *ret_fd, char **ret_msg) {
        const char *h = url + strlen("https://");
        const char *at = strchr(h, '@'), *end = strchrnul(h, '/');
        _cleanup_free_ char *peer = at && at < end ? strndup(h, (size_t)(at - h)) : NULL;
        _cleanup_free_ char *hostport = strndup(at && at < end ? at + 1 : h, (size_t)(end - (at && at < end ? at + 1 : h)));
        _cleanup_free_ char *host = NULL, *dns = peer ? tls_peer_dns_name(peer) : NULL;
        int port = 0;
        if ((peer && !dns) || http_split_hostport(hostport, &host, &port) < 0) {
                *ret_msg = xasprintf("bad address \"%s\"", url);
                return -EINVAL;
        }
        const char *ca = NULL, *cert = NULL, *key = NULL;
        http_tls_files(http_client_tls_default_get(), &ca, &cert, &key);
        int fd = -1;
        int r = stream_tcp_connect(hostport, &fd, ret_msg);
        if (r < 0)
                return r;
        relay_t *x = xcalloc(1, sizeof *x);
        x->tcp = fd;
        x->plain = -1;
        x->ctx = SSL_CTX_new(TLS_client_method());
        bool ok = x->ctx && SSL_CTX_set_min_proto_version(x->ctx, TLS1_2_VERSION) &&
                  (ca ? SSL_CTX_load_verify_locations(x->ctx, ca, NULL) : SSL_CTX_set_default_verify_paths(x->ctx)) &&
                  (!cert || (SSL_CTX_use_certificate_chain_file(x->ctx, cert) == 1 &&
                             SSL_CTX_use_PrivateKey_file(x->ctx, key, SSL_FILETYPE_PEM) == 1));
        if (ok) {
                SSL_CTX_set_verify(x->ctx, SSL_VERIFY_PEER, NULL);
                SSL_CTX_clear_mode(x->ctx, SSL_MODE_AUTO_RETRY);
                x->ssl = SSL_new(x->ctx);
        }
        struct in_addr ip;
        X509_VERIFY_PARAM *param = x->ssl ? SSL_get0_param(x->ssl) : NULL;
        ok = ok && x->ssl && SSL_set_fd(x->ssl, fd) == 1 &&
             (dns ? X509_VERIFY_PARAM_set1_host(param, dns, 0) == 1 && SSL_set_tlsext_host_name(x->ssl, dns) == 1
                  : inet_pton(AF_INET, host, &ip) == 1 ? X509_VERIFY_PARAM_set1_ip_asc(param, host) == 1
                                                       : X509_VERIFY_PARAM_set1_host(param, host, 0) == 1);
        if (!ok) {
                *ret_msg = xasprintf("cannot set up TLS to %s (the CA or client certificate files)", url);
                x->plain = -1;
                relay_free(x);
                ERR_clear_error();
                return -EIO;
        }
        /* the handshake, bounded: a server that says nothing must not hang the caller */
        struct timeval tv = { .tv_sec = 10 };
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        if (SSL_connect(x->ssl) != 1) {
                long v = SSL_get_verify_result(x->ssl);
                *ret_msg = xasprintf("TLS with %s failed: %s", url,
                                     v != X509_V_OK ? X509_verify_cert_error_string(v) : "the handshake was refused");
                relay_free(x);
                ERR_clear_error();
                return -EKEYREJECTED;
        }
        tv.tv_sec = 0;
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        int sp[2];
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
                r = negative_errno();
                relay_free(x);
                return r;
        }
        x->plain = sp[1];
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        r = -pthread_create(&t, &attr, relay_thread, x);
        pthread_attr_destroy(&attr);
        if (r < 0) {
                close(sp[0]);
                relay_free(x);
                *ret_msg = xstrdup("cannot start the TLS relay");
                return r;
        }
        *ret_hostport = TAKE_PTR(hostport);
        *ret_fd = sp[0];
        return 0;
}
