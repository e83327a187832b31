/* Join token text and hash (join-token.h), on top of token.c's id and secret. */
#include "auth/join-token.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/macro.h"

_Static_assert(JOIN_TOKEN_DIGEST_TEXT_LEN + 1 == sodium_base64_ENCODED_LEN(JOIN_TOKEN_DIGEST_BYTES,
                                                                            sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "digest text length is base64url of the digest");

#define JT_ID_OFFSET (sizeof JOIN_TOKEN_PREFIX - 1)
#define JT_DIGEST_OFFSET (JT_ID_OFFSET + TOKEN_ID_LEN + 1 + TOKEN_SECRET_TEXT_LEN + 1)

int join_token_generate(const uint8_t ca_digest[JOIN_TOKEN_DIGEST_BYTES], join_token_t *ret) {
        join_token_t j = { 0 };
        int r = token_generate(&j.t);
        if (r < 0)
                return r;
        memcpy(j.ca_digest, ca_digest, sizeof j.ca_digest);
        *ret = j;
        join_token_wipe(&j);
        return 0;
}

void join_token_format(const join_token_t *j, char ret_text[JOIN_TOKEN_TEXT_SIZE]) {
        char api[TOKEN_TEXT_SIZE], digest[JOIN_TOKEN_DIGEST_TEXT_LEN + 1];
        token_format(&j->t, api);
        sodium_bin2base64(digest, sizeof digest, j->ca_digest, sizeof j->ca_digest,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        /* "vmx_ID_SECRET" -> "vmxj_ID_SECRET_DIGEST" */
        snprintf(ret_text, JOIN_TOKEN_TEXT_SIZE, "%s%s_%s", JOIN_TOKEN_PREFIX, api + strlen(TOKEN_PREFIX), digest);
        sodium_memzero(api, sizeof api);
}

int join_token_parse(const char *text, join_token_t *ret) {
        if (!text || strnlen(text, JOIN_TOKEN_TEXT_LEN + 1) != JOIN_TOKEN_TEXT_LEN ||
            memcmp(text, JOIN_TOKEN_PREFIX, JT_ID_OFFSET) != 0 || text[JT_DIGEST_OFFSET - 1] != '_')
                return -EINVAL;
        /* the id and secret in API token form, for token_parse's strict checks */
        char api[TOKEN_TEXT_SIZE];
        snprintf(api, sizeof api, "%s%.*s", TOKEN_PREFIX, (int)(JT_DIGEST_OFFSET - 1 - JT_ID_OFFSET), text + JT_ID_OFFSET);
        join_token_t j = { 0 };
        int r = token_parse(api, &j.t);
        sodium_memzero(api, sizeof api);
        if (r < 0)
                return r;
        size_t n = 0;
        const char *d = text + JT_DIGEST_OFFSET;
        for (size_t i = 0; i < JOIN_TOKEN_DIGEST_TEXT_LEN; i++)
                if (!((d[i] >= 'A' && d[i] <= 'Z') || (d[i] >= 'a' && d[i] <= 'z') || (d[i] >= '0' && d[i] <= '9') ||
                      d[i] == '-' || d[i] == '_'))
                        r = -EINVAL;
        if (r >= 0 && (sodium_base642bin(j.ca_digest, sizeof j.ca_digest, d, JOIN_TOKEN_DIGEST_TEXT_LEN, NULL, &n, NULL,
                                         sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
                       n != sizeof j.ca_digest))
                r = -EINVAL;
        /* canonical only: one token, one text */
        char again[JOIN_TOKEN_TEXT_SIZE];
        if (r >= 0) {
                join_token_format(&j, again);
                if (memcmp(again, text, JOIN_TOKEN_TEXT_LEN) != 0)
                        r = -EINVAL;
                sodium_memzero(again, sizeof again);
        }
        if (r >= 0)
                *ret = j;
        join_token_wipe(&j);
        return r;
}

void join_token_hash(const uint8_t key[AUTH_KEY_BYTES], const join_token_t *j, uint8_t ret[TOKEN_HASH_BYTES]) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, key, AUTH_KEY_BYTES, TOKEN_HASH_BYTES);
        crypto_generichash_update(&st, (const unsigned char *)"join", 4);
        crypto_generichash_update(&st, (const unsigned char *)j->t.id, TOKEN_ID_LEN);
        crypto_generichash_update(&st, j->t.secret, sizeof j->t.secret);
        crypto_generichash_final(&st, ret, TOKEN_HASH_BYTES);
        sodium_memzero(&st, sizeof st);
}

void join_token_wipe(join_token_t *j) { sodium_memzero(j, sizeof *j); }
