/* The client certificate of a request on a TLS listener of http-server.h: libmicrohttpd runs
 * GnuTLS and asks for a certificate when given a trust list (MHD_OPTION_HTTPS_MEM_TRUST), but
 * does not require one or look at it: here it is verified against that list (chain, validity,
 * the clientAuth purpose) and its subject read, once per connection: the connection keeps the
 * subject (http-server-internal.h) for its later requests, until the certificate expires. A
 * verification is an ECDSA chain check of about 100 us; a node's heartbeat comes every second
 * on a kept-alive connection, so at 10,000 RMs this is the difference between a core and
 * nothing. Only a success is kept: a refused certificate is verified (and refused) again. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>
#include <time.h>

#include "net/http-server-internal.h"

int http_request_peer(const http_request_t *req, struct tls_peer *ret) {
        http_conn_t *c = http_conn_of(req);
        if (c && c->peer_ok && (int64_t)time(NULL) < c->peer.not_after_s) {
                *ret = c->peer;
                return 0;
        }
        const union MHD_ConnectionInfo *ci =
                MHD_get_connection_info(req->connection, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
        if (!session)
                return -ENOKEY;
        unsigned n = 0;
        const gnutls_datum_t *certs = gnutls_certificate_get_peers(session, &n);
        if (!certs || n == 0)
                return -ENOKEY;
        gnutls_typed_vdata_st purpose = {
                .type = GNUTLS_DT_KEY_PURPOSE_OID, .data = (unsigned char *)GNUTLS_KP_TLS_WWW_CLIENT,
        };
        unsigned status = 0;
        if (c)
                http_server_count_verification(c->server);
        if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0)
                return -EACCES;
        tls_peer_t p;
        if (tls_peer_from_der(certs[0].data, certs[0].size, &p) < 0)
                return -EACCES;
        if (c) {
                c->peer = p;
                c->peer_ok = true;
        }
        *ret = p;
        return 0;
}
