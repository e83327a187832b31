/* Certificates and keys of the control channel (docs/tls.md), OpenSSL: the names a certificate
 * carries, private keys made and kept locally (0600), certificate requests, and the check of a
 * certificate against the CA that signed it. The CA itself is ca.h. No OpenSSL type appears in
 * this header: everything goes in and out as PEM text, DER bytes or paths.
 *
 * Who is who (the subject's OU, and the DNS name in its subjectAltName):
 *   the Oracle on the node channel  CN=oracle  OU=oracle  DNS oracle.vmatrix
 *   an RM                           CN=<rm>    OU=node    DNS <rm>.rm.vmatrix
 *   the user API (--tls-auto)       CN=oracle  OU=api     IP of its listen address (server only)
 * A client names the peer it expects by that DNS name (tls_peer_dns_name), so libcurl's own
 * host check proves it; a server reads the OU and CN of a verified client certificate. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TLS_OU_ORACLE "oracle"
#define TLS_OU_NODE "node"
#define TLS_OU_API "api"
#define TLS_ORACLE_CN "oracle"
#define TLS_ORACLE_DNS "oracle.vmatrix"
#define TLS_RM_DNS_SUFFIX ".rm.vmatrix"
#define TLS_DIGEST_BYTES 32
/* The largest PEM document taken from a file or a peer (a CSR, a certificate, a chain). */
#define TLS_PEM_MAX (64 * 1024)

/* What a verified certificate says about its holder. */
typedef struct tls_peer {
        char cn[64];
        char ou[16];
        char serial[48];  /* lowercase hex */
        int64_t not_after_s; /* Unix time */
} tls_peer_t;

/* "oracle.vmatrix" for the Oracle, "<rm>.rm.vmatrix" for an RM: the name a client asks the
 * certificate of a peer to carry (malloc'd). NULL for an invalid RM name. */
char *tls_peer_dns_name(const char *rm);

/* A new EC P-256 private key written to path (PEM, mode 0600, via a temporary file and
 * rename, so a crash leaves no half key). */
int tls_key_generate(const char *path);
/* A certificate request for the key at key_path, with subject CN=cn (malloc'd PEM). */
int tls_csr_make(const char *key_path, const char *cn, char **ret_pem);

/* Verifies cert_pem (one certificate) against ca_pem at time now_s (0: now): signed by that CA,
 * within its validity. Fills *ret (may be NULL). -EBADMSG for text that is no certificate,
 * -EACCES with *ret_msg saying why it is not trusted (another CA, expired, not yet valid). */
int tls_cert_verify(const char *cert_pem, const char *ca_pem, int64_t now_s, tls_peer_t *ret, char **ret_msg);
/* The subject of a DER certificate (already verified by the caller's TLS library). */
int tls_peer_from_der(const void *der, size_t len, tls_peer_t *ret);
/* SHA-256 of the DER form of the first certificate in pem. -EBADMSG when there is none. */
int tls_cert_digest(const char *pem, uint8_t ret[TLS_DIGEST_BYTES]);

/* A data directory's identity (DIR/key.pem, DIR/cert.pem, DIR/ca.pem) checked as a whole: the
 * files are there, the key is 0600 and belongs to the certificate, which the CA signed and
 * which is valid now. *ret gets its subject. -ENOENT when the certificate is missing (not
 * enrolled yet), -EACCES/-EPERM/-EBADMSG with *ret_msg otherwise. */
int tls_identity_check(const char *cert_path, const char *key_path, const char *ca_path, tls_peer_t *ret,
                       char **ret_msg);

/* Reads a PEM file of at most TLS_PEM_MAX bytes (malloc'd, NUL-terminated). private: refuse
 * (-EPERM) a file that group or others may read. */
int tls_pem_read(const char *path, bool private, char **ret, char **ret_msg);
/* Writes text to path with mode (0600 for keys) through a temporary file and rename. */
int tls_file_write(const char *path, const char *text, unsigned mode);
