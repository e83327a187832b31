/* OpenSSL conversions shared by ca.c and tls-identity.c; not for use outside src/tls. */
#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "tls/tls-identity.h"

EVP_PKEY *tls_key_new(void);
EVP_PKEY *tls_key_from_pem(const char *pem);
X509 *tls_x509_from_pem(const char *pem);
/* malloc'd PEM text, NULL on failure */
char *tls_x509_to_pem(X509 *x);
char *tls_key_to_pem(EVP_PKEY *k);
int tls_peer_from_x509(X509 *x, tls_peer_t *ret);
/* x signed by ca and valid at now_s (0: now); -EACCES with *ret_msg. */
int tls_x509_verify(X509 *x, X509 *ca, int64_t now_s, char **ret_msg);
