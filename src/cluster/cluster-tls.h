/* What `cluster up` does for the control channel (docs/tls.md): trust the Oracle's CA (copied
 * to DIR/ca.pem, which the CLI trusts for a cluster directory) and enrol each RM on its first
 * start with a join token made through the user API (with DIR/admin.token when the Oracle wrote
 * one). */
#pragma once

#include <stdbool.h>

#include "cluster/spec.h"

#define CLUSTER_CA_FILE "ca.pem"

/* Copies the Oracle's DATA/ca/ca.pem to DIR/ca.pem (once it exists) and makes it the trust of
 * this process's https calls. 0, or -ENOENT while the Oracle has not made its CA yet. */
int cluster_tls_trust(const spec_t *s);
/* Has RM m a certificate already (DATA/tls/cert.pem)? */
bool cluster_tls_enrolled(const spec_t *s, const spec_member_t *m);
/* A join token for m's role (malloc'd into *ret). -errno, logged. */
int cluster_tls_join_token(const spec_t *s, const spec_member_t *m, char **ret);
