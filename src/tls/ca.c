/* The CA of ca.h with OpenSSL: X.509 v3 certificates with random 128-bit serials, EC P-256
 * keys, SHA-256 signatures. */
#include "tls/ca.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <sys/stat.h>

#include "base/util.h"
#include "tls/tls-internal.h"

struct ca {
        EVP_PKEY *key;
        X509 *cert;
        char *cert_pem;
};

ca_t *ca_free(ca_t *ca) {
        if (!ca)
                return NULL;
        EVP_PKEY_free(ca->key);
        X509_free(ca->cert);
        free(ca->cert_pem);
        free(ca);
        return NULL;
}

static bool add_ext(X509 *x, X509 *issuer, int nid, const char *value) {
        X509V3_CTX ctx;
        X509V3_set_ctx_nodb(&ctx);
        X509V3_set_ctx(&ctx, issuer, x, NULL, NULL, 0);
        X509_EXTENSION *e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
        bool ok = e && X509_add_ext(x, e, -1);
        X509_EXTENSION_free(e);
        return ok;
}

static bool name_add(X509_NAME *n, const char *field, const char *value) {
        return !value || X509_NAME_add_entry_by_txt(n, field, MBSTRING_UTF8, (const unsigned char *)value, -1, -1, 0);
}

static bool serial_set(X509 *x) {
        unsigned char bytes[16];
        if (RAND_bytes(bytes, sizeof bytes) != 1)
                return false;
        bytes[0] &= 0x7f; /* positive, as RFC 5280 wants */
        bytes[0] |= 0x01; /* and never shorter than 16 bytes */
        BIGNUM *bn = BN_bin2bn(bytes, sizeof bytes, NULL);
        bool ok = bn && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x));
        BN_free(bn);
        return ok;
}

/* A certificate for pub saying o, signed by (issuer, key); issuer NULL: self-signed CA. */
static X509 *cert_build(EVP_PKEY *pub, const ca_cert_opts_t *o, X509 *issuer, EVP_PKEY *key, bool is_ca) {
        X509 *x = X509_new();
        if (!x)
                return NULL;
        int64_t from = o->valid_from_s ? o->valid_from_s : -300;
        int64_t days = o->valid_days ? o->valid_days : CA_LEAF_VALID_DAYS;
        X509_NAME *n = X509_get_subject_name(x);
        bool ok = X509_set_version(x, 2) && serial_set(x) && X509_gmtime_adj(X509_getm_notBefore(x), (long)from) &&
                  X509_gmtime_adj(X509_getm_notAfter(x), (long)(from + days * 86400)) && X509_set_pubkey(x, pub) &&
                  name_add(n, "OU", o->ou) && name_add(n, "CN", o->cn) &&
                  X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
        X509 *signer = issuer ? issuer : x;
        if (ok && is_ca) {
                ok = add_ext(x, signer, NID_basic_constraints, "critical,CA:TRUE,pathlen:0") &&
                     add_ext(x, signer, NID_key_usage, "critical,keyCertSign,cRLSign") &&
                     add_ext(x, signer, NID_subject_key_identifier, "hash");
        } else if (ok) {
                _cleanup_free_ char *san = NULL;
                if (o->dns && o->ip)
                        san = xasprintf("DNS:%s,IP:%s", o->dns, o->ip);
                else if (o->dns || o->ip)
                        san = xasprintf("%s:%s", o->dns ? "DNS" : "IP", o->dns ? o->dns : o->ip);
                ok = add_ext(x, signer, NID_basic_constraints, "critical,CA:FALSE") &&
                     add_ext(x, signer, NID_key_usage, "critical,digitalSignature,keyEncipherment") &&
                     add_ext(x, signer, NID_ext_key_usage, o->client ? "serverAuth,clientAuth" : "serverAuth") &&
                     add_ext(x, signer, NID_subject_key_identifier, "hash") &&
                     add_ext(x, signer, NID_authority_key_identifier, "keyid:always") &&
                     (!san || add_ext(x, signer, NID_subject_alt_name, san));
        }
        if (ok)
                ok = X509_sign(x, key, EVP_sha256()) > 0;
        if (!ok) {
                X509_free(x);
                return NULL;
        }
        return x;
}

static int ca_create(const char *dir, char **ret_msg) {
        EVP_PKEY *k = tls_key_new();
        ca_cert_opts_t o = { .cn = "vmatrix CA", .ou = "ca", .valid_days = CA_VALID_DAYS };
        X509 *x = k ? cert_build(k, &o, NULL, k, true) : NULL;
        _cleanup_free_ char *cert = x ? tls_x509_to_pem(x) : NULL;
        _cleanup_free_ char *key = k ? tls_key_to_pem(k) : NULL;
        X509_free(x);
        EVP_PKEY_free(k);
        if (!cert || !key) {
                *ret_msg = xstrdup("cannot make the CA's key and certificate (OpenSSL failed)");
                return -EIO;
        }
        _cleanup_free_ char *key_path = xasprintf("%s/" CA_KEY_FILE, dir);
        _cleanup_free_ char *cert_path = xasprintf("%s/" CA_CERT_FILE, dir);
        /* the certificate first: a crash in between leaves a certificate without its key,
         * which the next start replaces, never a key whose certificate is lost */
        int r = tls_file_write(cert_path, cert, 0644);
        if (r >= 0)
                r = tls_file_write(key_path, key, 0600);
        OPENSSL_cleanse(key, strlen(key));
        if (r < 0)
                *ret_msg = xasprintf("cannot write the CA in %s: %s", dir, strerror(-r));
        return r;
}

int ca_open(const char *dir, ca_t **ret, char **ret_msg) {
        int r = mkdir_p(dir, 0700);
        if (r < 0 || chmod(dir, 0700) < 0) {
                *ret_msg = xasprintf("cannot create %s: %s", dir, strerror(r < 0 ? -r : errno));
                return r < 0 ? r : negative_errno();
        }
        _cleanup_free_ char *key_path = xasprintf("%s/" CA_KEY_FILE, dir);
        _cleanup_free_ char *cert_path = xasprintf("%s/" CA_CERT_FILE, dir);
        bool created = false;
        if (!file_exists(key_path)) {
                r = ca_create(dir, ret_msg);
                if (r < 0)
                        return r;
                created = true;
        }
        _cleanup_free_ char *key = NULL, *cert = NULL;
        r = tls_pem_read(key_path, true, &key, ret_msg);
        if (r >= 0)
                r = tls_pem_read(cert_path, false, &cert, ret_msg);
        if (r < 0) {
                if (!*ret_msg)
                        *ret_msg = xasprintf("cannot read the CA in %s: %s", dir, strerror(-r));
                return r;
        }
        ca_t *ca = xcalloc(1, sizeof *ca);
        ca->key = tls_key_from_pem(key);
        OPENSSL_cleanse(key, strlen(key));
        ca->cert = tls_x509_from_pem(cert);
        if (!ca->key || !ca->cert || X509_check_private_key(ca->cert, ca->key) != 1) {
                *ret_msg = xasprintf("the CA in %s is damaged: %s", dir,
                                     !ca->key || !ca->cert ? "unreadable PEM" : "its key is not its certificate's");
                ca_free(ca);
                ERR_clear_error();
                return -EBADMSG;
        }
        ca->cert_pem = TAKE_PTR(cert);
        *ret = ca;
        return created ? 1 : 0;
}

const char *ca_cert_pem(const ca_t *ca) { return ca->cert_pem; }

void ca_cert_digest(const ca_t *ca, uint8_t ret[TLS_DIGEST_BYTES]) {
        unsigned len = 0;
        X509_digest(ca->cert, EVP_sha256(), ret, &len);
}

/* Keys we sign for: EC P-256 or P-384, or RSA of 2048 bits or more. */
static bool key_acceptable(EVP_PKEY *k) {
        if (EVP_PKEY_is_a(k, "EC")) {
                char curve[64] = "";
                size_t len = 0;
                if (EVP_PKEY_get_utf8_string_param(k, "group", curve, sizeof curve, &len) != 1)
                        return false;
                return streq(curve, "prime256v1") || streq(curve, "P-256") || streq(curve, "secp384r1") ||
                       streq(curve, "P-384");
        }
        return EVP_PKEY_is_a(k, "RSA") && EVP_PKEY_get_bits(k) >= 2048;
}

static int issue(ca_t *ca, EVP_PKEY *pub, const ca_cert_opts_t *o, char **ret_pem, char **ret_serial) {
        X509 *x = cert_build(pub, o, ca->cert, ca->key, false);
        if (!x)
                return -EIO;
        char *pem = tls_x509_to_pem(x);
        tls_peer_t p = { 0 };
        tls_peer_from_x509(x, &p);
        X509_free(x);
        if (!pem)
                return -EIO;
        *ret_pem = pem;
        if (ret_serial)
                *ret_serial = xstrdup(p.serial);
        return 0;
}

int ca_sign_request(ca_t *ca, const char *csr_pem, const ca_cert_opts_t *o, char **ret_pem, char **ret_serial,
                    char **ret_msg) {
        if (!csr_pem || strnlen(csr_pem, TLS_PEM_MAX + 1) > TLS_PEM_MAX) {
                *ret_msg = xasprintf("the certificate request is missing or larger than %d bytes", TLS_PEM_MAX);
                return -EBADMSG;
        }
        BIO *b = BIO_new_mem_buf(csr_pem, -1);
        X509_REQ *req = b ? PEM_read_bio_X509_REQ(b, NULL, NULL, NULL) : NULL;
        BIO_free(b);
        EVP_PKEY *pub = req ? X509_REQ_get0_pubkey(req) : NULL;
        int r;
        if (!req || !pub) {
                *ret_msg = xstrdup("the certificate request is not a PEM CSR");
                r = -EBADMSG;
        } else if (X509_REQ_verify(req, pub) != 1) {
                *ret_msg = xstrdup("the certificate request's signature does not hold");
                r = -EBADMSG;
        } else if (!key_acceptable(pub)) {
                *ret_msg = xstrdup("the certificate request's key is not EC P-256/P-384 or RSA of 2048 bits or more");
                r = -EBADMSG;
        } else {
                r = issue(ca, pub, o, ret_pem, ret_serial);
                if (r < 0)
                        *ret_msg = xstrdup("cannot sign the certificate (OpenSSL failed)");
        }
        X509_REQ_free(req);
        ERR_clear_error();
        return r;
}

/* Does the certificate x say o (names) and stay valid 30 more days? */
static bool cert_says(X509 *x, const ca_cert_opts_t *o) {
        tls_peer_t p = { 0 };
        if (tls_peer_from_x509(x, &p) < 0 || !streq(p.cn, o->cn ? o->cn : "") || !streq(p.ou, o->ou ? o->ou : ""))
                return false;
        time_t soon = time(NULL) + 30 * 86400;
        if (X509_cmp_time(X509_get0_notAfter(x), &soon) <= 0)
                return false;
        if (o->dns && X509_check_host(x, o->dns, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1)
                return false;
        if (o->ip && X509_check_ip_asc(x, o->ip, 0) != 1)
                return false;
        return true;
}

int ca_identity_ensure(ca_t *ca, const char *dir, const char *name, const ca_cert_opts_t *o, char **ret_msg) {
        _cleanup_free_ char *cert_path = xasprintf("%s/%s.pem", dir, name);
        _cleanup_free_ char *key_path = xasprintf("%s/%s.key", dir, name);
        _cleanup_free_ char *cert = NULL, *key = NULL, *msg = NULL;
        if (tls_pem_read(cert_path, false, &cert, &msg) >= 0 && tls_pem_read(key_path, true, &key, &msg) >= 0) {
                X509 *x = tls_x509_from_pem(cert);
                EVP_PKEY *k = tls_key_from_pem(key);
                _cleanup_free_ char *why = NULL;
                bool good = x && k && X509_check_private_key(x, k) == 1 && tls_x509_verify(x, ca->cert, 0, &why) >= 0 &&
                            cert_says(x, o);
                X509_free(x);
                EVP_PKEY_free(k);
                OPENSSL_cleanse(key, strlen(key));
                ERR_clear_error();
                if (good)
                        return 0;
        }
        EVP_PKEY *k = tls_key_new();
        _cleanup_free_ char *new_cert = NULL, *new_key = k ? tls_key_to_pem(k) : NULL;
        int r = k && new_key ? issue(ca, k, o, &new_cert, NULL) : -EIO;
        EVP_PKEY_free(k);
        if (r >= 0)
                r = tls_file_write(key_path, new_key, 0600);
        if (r >= 0)
                r = tls_file_write(cert_path, new_cert, 0644);
        if (new_key)
                OPENSSL_cleanse(new_key, strlen(new_key));
        if (r < 0) {
                *ret_msg = xasprintf("cannot issue %s: %s", cert_path, strerror(-r));
                return r;
        }
        return 1;
}
