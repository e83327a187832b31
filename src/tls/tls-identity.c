/* Keys, requests and certificate checks with OpenSSL (tls-identity.h). */
#include "tls/tls-identity.h"

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "base/util.h"
#include "tls/tls-internal.h"

char *tls_peer_dns_name(const char *rm) {
        if (!rm)
                return NULL;
        if (streq(rm, TLS_ORACLE_CN))
                return xstrdup(TLS_ORACLE_DNS);
        if (!name_is_valid(rm))
                return NULL;
        return xasprintf("%s" TLS_RM_DNS_SUFFIX, rm);
}

char *tls_migration_dns_name(const char *rm) {
        return rm && name_is_valid(rm) && !streq(rm, TLS_ORACLE_CN) ? xasprintf("%s" TLS_MIGRATION_DNS_SUFFIX, rm)
                                                                    : NULL;
}

char *tls_migration_authz_id(const char *rm) {
        /* keep in sync with the order of name_add calls in ca.c cert_build */
        return rm && name_is_valid(rm) && !streq(rm, TLS_ORACLE_CN) ? xasprintf("OU=" TLS_OU_MIGRATION ",CN=%s", rm)
                                                                    : NULL;
}

int tls_file_write(const char *path, const char *text, unsigned mode) {
        return file_write_atomic_mode(path, text, strlen(text), (mode_t)mode);
}

int tls_pem_read(const char *path, bool private, char **ret, char **ret_msg) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode) || st.st_size > TLS_PEM_MAX) {
                *ret_msg = xasprintf("%s is not a PEM file of at most %d bytes", path, TLS_PEM_MAX);
                return -EBADMSG;
        }
        if (private && (st.st_mode & 077)) {
                *ret_msg = xasprintf("%s may be read by others (mode %04o); it must be 0600", path,
                                     (unsigned)(st.st_mode & 07777));
                return -EPERM;
        }
        char *buf = xcalloc(1, (size_t)st.st_size + 1);
        size_t got = 0;
        while (got < (size_t)st.st_size) {
                ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int r = n < 0 ? negative_errno() : -EIO;
                        OPENSSL_cleanse(buf, got);
                        free(buf);
                        return r;
                }
                got += (size_t)n;
        }
        *ret = buf;
        return 0;
}

/* ---- conversions shared with ca.c (tls-internal.h) ---- */

EVP_PKEY *tls_key_from_pem(const char *pem) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        return k;
}

X509 *tls_x509_from_pem(const char *pem) {
        BIO *b = BIO_new_mem_buf(pem, -1);
        X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        return x;
}

static char *bio_take(BIO *b) {
        char *data = NULL;
        long len = BIO_get_mem_data(b, &data);
        char *s = len >= 0 ? strndup(data, (size_t)len) : NULL;
        if (!s)
                abort();
        return s;
}

char *tls_x509_to_pem(X509 *x) {
        BIO *b = BIO_new(BIO_s_mem());
        if (!b || !PEM_write_bio_X509(b, x)) {
                BIO_free(b);
                return NULL;
        }
        char *s = bio_take(b);
        BIO_free(b);
        return s;
}

char *tls_key_to_pem(EVP_PKEY *k) {
        BIO *b = BIO_new(BIO_s_mem());
        if (!b || !PEM_write_bio_PrivateKey(b, k, NULL, NULL, 0, NULL, NULL)) {
                BIO_free(b);
                return NULL;
        }
        char *s = bio_take(b);
        BIO_free(b);
        return s;
}

EVP_PKEY *tls_key_new(void) { return EVP_EC_gen("P-256"); }

static void name_field(X509_NAME *n, int nid, char *buf, size_t size) {
        *buf = 0;
        int i = X509_NAME_get_index_by_NID(n, nid, -1);
        ASN1_STRING *s = i >= 0 ? X509_NAME_ENTRY_get_data(X509_NAME_get_entry(n, i)) : NULL;
        unsigned char *utf8 = NULL;
        int len = s ? ASN1_STRING_to_UTF8(&utf8, s) : -1;
        if (len >= 0 && (size_t)len < size && memchr(utf8, 0, (size_t)len) == NULL) {
                memcpy(buf, utf8, (size_t)len);
                buf[len] = 0;
        }
        OPENSSL_free(utf8);
}

int tls_peer_from_x509(X509 *x, tls_peer_t *ret) {
        tls_peer_t p = { 0 };
        X509_NAME *subject = X509_get_subject_name(x);
        if (!subject)
                return -EBADMSG;
        name_field(subject, NID_commonName, p.cn, sizeof p.cn);
        name_field(subject, NID_organizationalUnitName, p.ou, sizeof p.ou);
        BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        char *hex = bn ? BN_bn2hex(bn) : NULL;
        if (hex) {
                for (char *c = hex; *c; c++)
                        *c = (char)(*c >= 'A' && *c <= 'F' ? *c - 'A' + 'a' : *c);
                SET(p.serial, hex);
        }
        OPENSSL_free(hex);
        BN_free(bn);
        struct tm tm;
        if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1)
                p.not_before_s = (int64_t)timegm(&tm);
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
                p.not_after_s = (int64_t)timegm(&tm);
        *ret = p;
        return 0;
}

int tls_peer_from_der(const void *der, size_t len, tls_peer_t *ret) {
        const unsigned char *p = der;
        X509 *x = len <= TLS_PEM_MAX ? d2i_X509(NULL, &p, (long)len) : NULL;
        if (!x)
                return -EBADMSG;
        int r = tls_peer_from_x509(x, ret);
        X509_free(x);
        return r;
}

int tls_cert_digest(const char *pem, uint8_t ret[TLS_DIGEST_BYTES]) {
        X509 *x = tls_x509_from_pem(pem);
        if (!x)
                return -EBADMSG;
        unsigned len = 0;
        int ok = X509_digest(x, EVP_sha256(), ret, &len);
        X509_free(x);
        return ok && len == TLS_DIGEST_BYTES ? 0 : -EIO;
}

int tls_key_generate(const char *path) {
        EVP_PKEY *k = tls_key_new();
        if (!k)
                return -EIO;
        char *pem = tls_key_to_pem(k);
        EVP_PKEY_free(k);
        if (!pem)
                return -EIO;
        int r = tls_file_write(path, pem, 0600);
        OPENSSL_cleanse(pem, strlen(pem));
        free(pem);
        return r;
}

int tls_csr_make(const char *key_path, const char *cn, char **ret_pem) {
        _cleanup_free_ char *msg = NULL, *key_pem = NULL;
        int r = tls_pem_read(key_path, true, &key_pem, &msg);
        if (r < 0)
                return r;
        EVP_PKEY *k = tls_key_from_pem(key_pem);
        OPENSSL_cleanse(key_pem, strlen(key_pem));
        if (!k)
                return -EBADMSG;
        X509_REQ *req = X509_REQ_new();
        X509_NAME *n = X509_REQ_get_subject_name(req);
        r = -EIO;
        if (X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0) &&
            X509_REQ_set_pubkey(req, k) && X509_REQ_sign(req, k, EVP_sha256()) > 0) {
                BIO *b = BIO_new(BIO_s_mem());
                if (b && PEM_write_bio_X509_REQ(b, req)) {
                        *ret_pem = bio_take(b);
                        r = 0;
                }
                BIO_free(b);
        }
        X509_REQ_free(req);
        EVP_PKEY_free(k);
        return r;
}

/* The words of an X509 verify error a person understands. */
static const char *verify_reason(int err) {
        switch (err) {
        case X509_V_ERR_CERT_HAS_EXPIRED:
                return "the certificate has expired";
        case X509_V_ERR_CERT_NOT_YET_VALID:
                return "the certificate is not valid yet";
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_CERT_SIGNATURE_FAILURE:
                return "the certificate is not signed by this CA";
        default:
                return X509_verify_cert_error_string(err);
        }
}

int tls_x509_verify(X509 *x, X509 *ca, int64_t now_s, char **ret_msg) {
        X509_STORE *store = X509_STORE_new();
        X509_STORE_CTX *ctx = X509_STORE_CTX_new();
        int r = -EIO;
        if (store && ctx && X509_STORE_add_cert(store, ca) && X509_STORE_CTX_init(ctx, store, x, NULL)) {
                if (now_s)
                        X509_VERIFY_PARAM_set_time(X509_STORE_CTX_get0_param(ctx), (time_t)now_s);
                if (X509_verify_cert(ctx) == 1) {
                        r = 0;
                } else {
                        *ret_msg = xstrdup(verify_reason(X509_STORE_CTX_get_error(ctx)));
                        r = -EACCES;
                }
        }
        X509_STORE_CTX_free(ctx);
        X509_STORE_free(store);
        return r;
}

int tls_cert_verify(const char *cert_pem, const char *ca_pem, int64_t now_s, tls_peer_t *ret, char **ret_msg) {
        X509 *x = tls_x509_from_pem(cert_pem);
        X509 *ca = tls_x509_from_pem(ca_pem);
        int r = -EBADMSG;
        if (!x || !ca) {
                *ret_msg = xstrdup(!x ? "not a PEM certificate" : "the CA file holds no PEM certificate");
        } else {
                r = tls_x509_verify(x, ca, now_s, ret_msg);
                if (r >= 0 && ret)
                        r = tls_peer_from_x509(x, ret);
        }
        X509_free(x);
        X509_free(ca);
        ERR_clear_error();
        return r;
}

int tls_identity_check(const char *cert_path, const char *key_path, const char *ca_path, tls_peer_t *ret,
                       char **ret_msg) {
        _cleanup_free_ char *cert = NULL, *key = NULL, *ca = NULL;
        int r = tls_pem_read(cert_path, false, &cert, ret_msg);
        if (r == -ENOENT)
                return r;
        if (r >= 0)
                r = tls_pem_read(key_path, true, &key, ret_msg);
        if (r >= 0)
                r = tls_pem_read(ca_path, false, &ca, ret_msg);
        if (r < 0) {
                if (!*ret_msg)
                        *ret_msg = xasprintf("cannot read the identity in %s: %s", cert_path, strerror(-r));
                return r == -ENOENT ? -EBADMSG : r;
        }
        X509 *x = tls_x509_from_pem(cert);
        EVP_PKEY *k = tls_key_from_pem(key);
        OPENSSL_cleanse(key, strlen(key));
        if (!x || !k) {
                *ret_msg = xasprintf("%s is damaged: not a PEM %s", !x ? cert_path : key_path,
                                     !x ? "certificate" : "private key");
                r = -EBADMSG;
        } else if (X509_check_private_key(x, k) != 1) {
                *ret_msg = xasprintf("the key %s does not belong to the certificate %s", key_path, cert_path);
                r = -EBADMSG;
        } else {
                _cleanup_free_ char *why = NULL;
                r = tls_cert_verify(cert, ca, 0, ret, &why);
                if (r < 0)
                        *ret_msg = xasprintf("%s: %s (CA %s)", cert_path, why ? why : "not trusted", ca_path);
        }
        X509_free(x);
        EVP_PKEY_free(k);
        ERR_clear_error();
        return r;
}
