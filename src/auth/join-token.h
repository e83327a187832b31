/* Join tokens (docs/tls.md): what lets a new RM enrol once. The text is
 *     vmxj_<id>_<secret>_<ca>
 * id and secret as in an API token (token.h: 16 hex digits, 43 base64url characters), and ca the
 * SHA-256 of the Oracle's CA certificate (DER) in unpadded base64url (43 characters), so the new
 * node can trust the node channel before it has the CA (as kubeadm's discovery hash): it fetches
 * the CA certificate over an unverified connection, checks its digest against the token, and
 * only then sends the secret, over a connection verified with that CA. The store keeps
 * BLAKE2b-256 keyed with the server key over "join" || id || secret (apart from API tokens'
 * hash), never the secret; a token is single-use and expires. */
#pragma once

#include <stdint.h>

#include "auth/token.h"

#define JOIN_TOKEN_PREFIX "vmxj_"
#define JOIN_TOKEN_DIGEST_BYTES 32
#define JOIN_TOKEN_DIGEST_TEXT_LEN 43
#define JOIN_TOKEN_TEXT_LEN \
        (sizeof JOIN_TOKEN_PREFIX - 1 + TOKEN_ID_LEN + 1 + TOKEN_SECRET_TEXT_LEN + 1 + JOIN_TOKEN_DIGEST_TEXT_LEN)
#define JOIN_TOKEN_TEXT_SIZE (JOIN_TOKEN_TEXT_LEN + 1)
/* Longest and default life of a join token. */
#define JOIN_TOKEN_TTL_MAX_S (7 * 86400)
#define JOIN_TOKEN_TTL_DEFAULT_S 3600

typedef struct join_token {
        token_parts_t t;                             /* id and secret */
        uint8_t ca_digest[JOIN_TOKEN_DIGEST_BYTES];  /* SHA-256 of the CA certificate's DER */
} join_token_t;

/* A new token for the CA of that digest. -EIO when libsodium cannot start. */
int join_token_generate(const uint8_t ca_digest[JOIN_TOKEN_DIGEST_BYTES], join_token_t *ret);
void join_token_format(const join_token_t *j, char ret_text[JOIN_TOKEN_TEXT_SIZE]);
/* Strict, as token_parse: the exact length (the scan stops one byte past it), prefix, hex id,
 * canonical base64url secret and digest. -EINVAL for anything else. */
int join_token_parse(const char *text, join_token_t *ret);
/* The keyed hash the store keeps (its own domain: no API token hashes the same). */
void join_token_hash(const uint8_t key[AUTH_KEY_BYTES], const join_token_t *j, uint8_t ret[TOKEN_HASH_BYTES]);
void join_token_wipe(join_token_t *j);
