/* The client certificate of a request on a TLS listener of http-server.h: libmicrohttpd runs
 * GnuTLS and asks for a certificate when given a trust list (MHD_OPTION_HTTPS_MEM_TRUST), but
 * does not require one or look at it: here it is verified against that list (chain, validity,
 * the clientAuth purpose) and its subject read, once per request, by the authorizer. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <microhttpd.h>

#include "net/http-server.h"
#include "tls/tls-identity.h"

int http_request_peer(const http_request_t *req, struct tls_peer *ret) {
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
        if (gnutls_certificate_verify_peers(session, &purpose, 1, &status) < 0 || status != 0)
                return -EACCES;
        return tls_peer_from_der(certs[0].data, certs[0].size, ret) < 0 ? -EACCES : 0;
}
