/* Token text, generation and keyed hashing (token.h). */
#include "auth/token.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "base/macro.h"

_Static_assert(TOKEN_SECRET_TEXT_LEN + 1 == sodium_base64_ENCODED_LEN(TOKEN_SECRET_BYTES,
                                                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
               "secret text length is base64url of the secret");
_Static_assert(TOKEN_HASH_BYTES >= crypto_generichash_BYTES_MIN && TOKEN_HASH_BYTES <= crypto_generichash_BYTES_MAX,
               "a BLAKE2b output size");
_Static_assert(AUTH_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN && AUTH_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
               "a BLAKE2b key size");

#define ID_OFFSET (sizeof TOKEN_PREFIX - 1)
#define SECRET_OFFSET (ID_OFFSET + TOKEN_ID_LEN + 1)

int token_generate(token_parts_t *ret) {
        if (sodium_init() < 0)
                return -EIO;
        uint8_t id[TOKEN_ID_LEN / 2];
        randombytes_buf(id, sizeof id);
        sodium_bin2hex(ret->id, sizeof ret->id, id, sizeof id);
        randombytes_buf(ret->secret, sizeof ret->secret);
        return 0;
}

void token_format(const token_parts_t *t, char ret_text[TOKEN_TEXT_SIZE]) {
        char secret[TOKEN_SECRET_TEXT_LEN + 1];
        sodium_bin2base64(secret, sizeof secret, t->secret, sizeof t->secret, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        snprintf(ret_text, TOKEN_TEXT_SIZE, "%s%s_%s", TOKEN_PREFIX, t->id, secret);
        sodium_memzero(secret, sizeof secret);
}

static bool is_hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

static bool is_base64url(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int token_parse(const char *text, token_parts_t *ret) {
        if (!text || strnlen(text, TOKEN_TEXT_LEN + 1) != TOKEN_TEXT_LEN)
                return -EINVAL;
        if (memcmp(text, TOKEN_PREFIX, ID_OFFSET) != 0 || text[SECRET_OFFSET - 1] != '_')
                return -EINVAL;
        for (size_t i = ID_OFFSET; i < ID_OFFSET + TOKEN_ID_LEN; i++)
                if (!is_hex_lower(text[i]))
                        return -EINVAL;
        for (size_t i = SECRET_OFFSET; i < TOKEN_TEXT_LEN; i++)
                if (!is_base64url(text[i]))
                        return -EINVAL;
        token_parts_t t = { 0 };
        size_t n = 0;
        if (sodium_init() < 0)
                return -EIO;
        if (sodium_base642bin(t.secret, sizeof t.secret, text + SECRET_OFFSET, TOKEN_SECRET_TEXT_LEN, NULL, &n, NULL,
                              sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
            n != sizeof t.secret)
                return -EINVAL;
        /* 43 characters carry 258 bits: the last character's 2 spare bits must be zero, or two
         * texts would name one token (only the canonical one is accepted) */
        char again[TOKEN_TEXT_SIZE];
        memcpy(t.id, text + ID_OFFSET, TOKEN_ID_LEN);
        token_format(&t, again);
        bool canonical = memcmp(again, text, TOKEN_TEXT_LEN) == 0;
        sodium_memzero(again, sizeof again);
        if (!canonical) {
                token_parts_wipe(&t);
                return -EINVAL;
        }
        *ret = t;
        token_parts_wipe(&t);
        return 0;
}

void token_hash(const uint8_t key[AUTH_KEY_BYTES], const token_parts_t *t, uint8_t ret[TOKEN_HASH_BYTES]) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, key, AUTH_KEY_BYTES, TOKEN_HASH_BYTES);
        crypto_generichash_update(&st, (const unsigned char *)t->id, TOKEN_ID_LEN);
        crypto_generichash_update(&st, t->secret, sizeof t->secret);
        crypto_generichash_final(&st, ret, TOKEN_HASH_BYTES);
        sodium_memzero(&st, sizeof st);
}

bool token_hash_equal(const uint8_t a[TOKEN_HASH_BYTES], const uint8_t b[TOKEN_HASH_BYTES]) {
        return sodium_memcmp(a, b, TOKEN_HASH_BYTES) == 0;
}

void token_parts_wipe(token_parts_t *t) { sodium_memzero(t, sizeof *t); }
