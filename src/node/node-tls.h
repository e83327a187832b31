/* The node's side of the control channel (docs/tls.md): its identity in DATA/tls (key.pem,
 * 0600, made here and never sent; cert.pem and ca.pem from its enrolment; identity.json: the
 * role and provider it joined with), the enrolment with a join token on first start, the
 * client identity of its calls, and its listener's authorizer. Also the RM's migration
 * identity (migration-key.pem, migration-cert.pem): the only key a QEMU is ever given, for the
 * TLS of live migration streams ("Migration streams"), renewed from the Oracle as it ages. */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "net/http-client.h"
#include "net/http-server.h"

typedef struct node node_t;

#define NODE_TLS_DIR "tls"
#define NODE_MIGRATION_KEY "migration-key.pem"
#define NODE_MIGRATION_CERT "migration-cert.pem"
/* Seconds a connection to the node may take to its first request (TLS handshake included). */
#define NODE_FIRST_REQUEST_S 5

typedef struct node_tls {
        char *cert_pem, *key_pem, *ca_pem; /* for the listener */
        http_tls_t *client;                /* the process default: every https:// call presents it */
        pthread_mutex_t migration_lock;    /* serialises node_tls_migration (initialised by node_main) */
} node_tls_t;

/* The RM's migration identity as PEM text (malloc'd), for QEMU's tls-creds-x509. */
typedef struct node_migration_id {
        char *ca_pem, *cert_pem, *key_pem;
} node_migration_id_t;
void node_migration_id_clear(node_migration_id_t *m);

/* Loads DATA/tls, or enrols with join (a join token; NULL: none given) when there is no
 * certificate yet. Sets n->role from the enrolment (role_arg, --role, may be NULL, must agree),
 * checks that the certificate names n->name, and makes n->oracle name the Oracle as the peer
 * its calls must reach. Prints what went wrong to stderr; -ENOKEY when the node is not enrolled
 * and no token was given. */
int node_tls_setup(node_t *n, const char *join, const char *role_arg);
void node_tls_free(node_t *n);

/* The RM's migration identity, for one live migration: DATA/tls/migration-{key,cert}.pem when
 * they hold a certificate of our CA for CN=<name> OU=migration with more than half its life
 * left; otherwise a new key and a certificate for it from the Oracle (POST
 * /v1/rms/NAME/migration-cert with our own certificate). A renewal that fails while the old
 * certificate is still valid keeps the old one (logged). Copies into *ret (clear it); -errno
 * with *ret_msg (malloc'd). Thread-safe. */
int node_tls_migration(node_t *n, node_migration_id_t *ret, char **ret_msg);
/* Whether a certificate valid from not_before_s to not_after_s is due for renewal at now_s:
 * less than half of its life is left. */
bool node_tls_migration_due(int64_t not_before_s, int64_t not_after_s, int64_t now_s);

/* The listener's authorizer: commands (PERM_ORACLE) only from the Oracle's certificate;
 * chunk, manifest and file routes (PERM_NODE) and health from RMs' (OU=node) and the Oracle's;
 * any other certificate of the CA (an RM's migration certificate, the user API's) 403; nothing
 * without one (401). */
int node_authorize(http_request_t *req, const http_route_t *route, http_reply_t *reply);
