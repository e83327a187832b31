/* The Oracle's side of the control channel (docs/tls.md): its CA and identities, the node
 * channel (a second listener, mutual TLS, serving the same route table as the user API under
 * its own authorizer), the enrolment service, and the client identity of its calls to nodes.
 * oracle-join.c has the enrolment routes. */
#pragma once

#include <pthread.h>
#include <stdbool.h>

#include "auth/enrol.h"
#include "net/http-client.h"
#include "net/http-server.h"
#include "tls/ca.h"

typedef struct oracle oracle_t;

typedef struct oracle_tls_opts {
        const char *node_listen; /* --node-listen ADDR:PORT; NULL: the user API's address, port + 1 */
        const char *api_cert;    /* --tls-cert FILE, --tls-key FILE: the user API on HTTPS */
        const char *api_key;
        bool api_auto;           /* --tls-auto: the user API on HTTPS with a certificate of our CA */
} oracle_tls_opts_t;

/* Seconds a node-channel connection may take to its first request (TLS handshake included). */
#define ORACLE_NODE_FIRST_REQUEST_S 5

typedef struct oracle_tls {
        ca_t *ca;
        enrol_t *enrol;
        http_tls_t *client;     /* our CA and DATA/ca/oracle.{pem,key}: calls to nodes */
        char *node_listen;
        char *cert_pem, *key_pem;         /* the Oracle's node-channel identity */
        char *api_cert_pem, *api_key_pem; /* the user API's, NULL: plain HTTP */
        http_server_t *http;              /* the node channel */
        pthread_mutex_t lock;             /* guards what follows */
        json_t *certs;                    /* RM -> {serial, role, provider}: the accepted certificates */
        int64_t events_second;            /* auth-failed events of this second (at most a few) */
        int events_count;
} oracle_tls_t;

/* Opens (or makes) DATA/ca, the Oracle's identities, the enrolment service and the client
 * identity (the process default: every https:// call to a node presents it). Before any
 * listener starts. 0, or -errno (logged). */
int oracle_tls_start(oracle_t *o, const oracle_tls_opts_t *opts);
/* Starts the node channel on routes. */
int oracle_tls_listen(oracle_t *o, const http_route_t *routes, const char *upload_dir);
void oracle_tls_stop(oracle_t *o);
/* The node channel's connections for /v1/health: {open, total, at_limit, max, handshaking,
 * busy} (null before it listens). */
json_t *oracle_tls_channel_json(oracle_t *o);

/* The node channel's authorizer: a verified RM certificate (OU=node, the serial the RM enrolled
 * with) for node routes (PERM_NODE) and the Nest's routes, and nothing else; the route's RM
 * (owner rule rm) must be the certificate's; PERM_JOIN without a certificate. */
int oracle_node_authorize(http_request_t *req, const http_route_t *route, http_reply_t *reply);

/* The enrolled record of the RM whose certificate made req (node channel), which must be rm:
 * 0, or -EACCES (no such certificate: not a request of rm's). For the handlers of PERM_NODE
 * routes: the certificate the authorizer verified (req->principal) is reused, not verified
 * again; its serial is checked against the current enrolment here again. */
int oracle_tls_peer_rm(oracle_t *o, const http_request_t *req, const char *rm, rm_cert_record_t *ret);
/* Records a newly enrolled certificate, so the channel takes it (and no older one of its RM). */
void oracle_tls_cert_accept(oracle_t *o, const rm_cert_record_t *c);
/* An auth-failed event, at most a few a second. */
void oracle_tls_event(oracle_t *o, const http_request_t *req, const char *rm, const char *what);

/* The enrolment routes (oracle-join.c): GET /v1/join/ca and POST /v1/join on the node channel,
 * POST /v1/rms/join-tokens on the user API. */
extern const http_route_t oracle_join_routes[];
