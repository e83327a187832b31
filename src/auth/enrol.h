/* Enrolment of RMs (docs/tls.md): join tokens made by an operator and spent by a new node for
 * its certificate. The service holds the store (not owned), the server key and the CA (not
 * owned); the Oracle's HTTP handlers (src/oracle/oracle-join.c) only parse and answer.
 *
 * A join checks the token (its CA digest, id, keyed hash in constant time, expiry, unused),
 * signs the request, then in one store transaction spends the token and records the RM's
 * certificate (role, provider, serial): a second use is refused and changes nothing, and a
 * failure before the commit leaves the token unspent. Thread-safe. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "auth/join-token.h"
#include "store/store-join.h"
#include "tls/ca.h"

typedef struct enrol enrol_t;

int enrol_new(store_t *store, const uint8_t key[AUTH_KEY_BYTES], ca_t *ca, enrol_t **ret);
enrol_t *enrol_free(enrol_t *e);

/* A new join token for RMs of role (production | chamber) assigned to provider (NULL or "":
 * none), valid ttl_s seconds (1 .. JOIN_TOKEN_TTL_MAX_S). Its text (shown once) into ret_text,
 * its row into *ret (may be NULL). -EINVAL with *ret_msg for a bad role, provider or ttl. */
int enrol_token_create(enrol_t *e, const char *role, const char *provider, int64_t ttl_s, const char *created_by,
                       int64_t now_ms, char ret_text[JOIN_TOKEN_TEXT_SIZE], join_token_record_t *ret,
                       char **ret_msg);

typedef struct enrol_result {
        char *cert_pem;         /* malloc'd: the RM's new certificate */
        rm_cert_record_t cert;  /* as recorded */
} enrol_result_t;
void enrol_result_clear(enrol_result_t *r);

/* rm joins with token_text and its request csr_pem. replace_ok: rm may already hold a
 * certificate, which the new one replaces (the caller allows it for an RM that is not up).
 * -EINVAL (malformed token or name), -EACCES (unknown or wrong token, another CA's, expired),
 * -EALREADY (used), -EBUSY (rm is enrolled and replace_ok is false), -EBADMSG (the request),
 * -EIO (the store); each with *ret_msg. */
int enrol_join(enrol_t *e, const char *token_text, const char *rm, const char *csr_pem, bool replace_ok,
               int64_t now_ms, enrol_result_t *ret, char **ret_msg);
