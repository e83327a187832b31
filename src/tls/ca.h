/* The Oracle's certificate authority (docs/tls.md): one EC P-256 key and a self-signed CA
 * certificate in DATA/ca/, made on the Oracle's first start, that signs the certificate of
 * every RM (from the RM's own request: private keys never travel) and the Oracle's own. The
 * CA knows nothing of tokens or the store: the join route (src/oracle/oracle-join.c) decides
 * whom it signs for. Thread-safe after ca_open: signing only reads the key. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "tls/tls-identity.h"

#define CA_DIR "ca"
#define CA_CERT_FILE "ca.pem"
#define CA_KEY_FILE "ca.key"
#define CA_VALID_DAYS (20 * 365)
#define CA_LEAF_VALID_DAYS (5 * 365)

typedef struct ca ca_t;

/* What a certificate says. dns and ip may be NULL; valid_from_s is relative to now (a few
 * minutes back by default, against clock skew; tests pass negative spans for an expired one). */
typedef struct ca_cert_opts {
        const char *cn;
        const char *ou;
        const char *dns;
        const char *ip;
        bool client;          /* extendedKeyUsage clientAuth (besides serverAuth) */
        int64_t valid_from_s; /* 0: now - 5 minutes */
        int64_t valid_days;   /* 0: CA_LEAF_VALID_DAYS */
} ca_cert_opts_t;

/* Opens the CA in dir (DATA/ca), creating it (mode 0700, key 0600) when it has no key yet.
 * 1 when created, 0 when opened; -errno with *ret_msg (a key of others' reading, a certificate
 * that is not the key's, damaged files). */
int ca_open(const char *dir, ca_t **ret, char **ret_msg);
ca_t *ca_free(ca_t *ca);
static inline void ca_freep(ca_t **ca) { ca_free(*ca); }

/* The CA certificate (PEM, owned by ca) and the SHA-256 of its DER form, which a join token
 * carries so a new RM can trust the Oracle before it has the CA. */
const char *ca_cert_pem(const ca_t *ca);
void ca_cert_digest(const ca_t *ca, uint8_t ret[TLS_DIGEST_BYTES]);

/* Signs the public key of a certificate request (PEM) into a certificate saying o. The
 * request's own subject is ignored (o says who it is) but its signature must hold: the asker
 * has the private key. -EBADMSG with *ret_msg for a malformed request or an unsupported key.
 * *ret_pem (malloc'd) and *ret_serial (lowercase hex, malloc'd, may be NULL). */
int ca_sign_request(ca_t *ca, const char *csr_pem, const ca_cert_opts_t *o, char **ret_pem, char **ret_serial,
                    char **ret_msg);

/* Makes sure dir/name.key and dir/name.pem hold a key and a certificate of this CA that says
 * o (its CN, OU, DNS and IP names) and is valid for at least 30 more days; issues a new pair
 * otherwise. Returns 1 when it issued, 0 when the files were good. */
int ca_identity_ensure(ca_t *ca, const char *dir, const char *name, const ca_cert_opts_t *o, char **ret_msg);
