/* The node's side of the control channel (docs/tls.md): its identity in DATA/tls (key.pem,
 * 0600, made here and never sent; cert.pem and ca.pem from its enrolment; identity.json: the
 * role and provider it joined with), the enrolment with a join token on first start, the
 * client identity of its calls, and its listener's authorizer. */
#pragma once

#include "net/http-client.h"
#include "net/http-server.h"

typedef struct node node_t;

#define NODE_TLS_DIR "tls"
/* Seconds a connection to the node may take to its first request (TLS handshake included). */
#define NODE_FIRST_REQUEST_S 5

typedef struct node_tls {
        char *cert_pem, *key_pem, *ca_pem; /* for the listener */
        http_tls_t *client;                /* the process default: every https:// call presents it */
} node_tls_t;

/* Loads DATA/tls, or enrols with join (a join token; NULL: none given) when there is no
 * certificate yet. Sets n->role from the enrolment (role_arg, --role, may be NULL, must agree),
 * checks that the certificate names n->name, and makes n->oracle name the Oracle as the peer
 * its calls must reach. Prints what went wrong to stderr; -ENOKEY when the node is not enrolled
 * and no token was given. */
int node_tls_setup(node_t *n, const char *join, const char *role_arg);
void node_tls_free(node_t *n);

/* The listener's authorizer: commands (PERM_ORACLE) only from the Oracle's certificate;
 * chunk, manifest and file routes (PERM_NODE) from RMs' and the Oracle's; health from any
 * certificate of the CA; nothing without one (401). */
int node_authorize(http_request_t *req, const http_route_t *route, http_reply_t *reply);
