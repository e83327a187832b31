/* API and session tokens as text, and their keyed hash. A token is
 *     vmx_<id>_<secret>
 * id: 16 lowercase hex digits (64 random bits), the row the server looks up;
 * secret: 32 random bytes in unpadded base64url (43 characters).
 * The store keeps only BLAKE2b-256(key = the server key, id || secret) (crypto_generichash),
 * compared in constant time, so a copy of the database gives no usable token. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#define TOKEN_PREFIX "vmx_"
#define TOKEN_ID_LEN 16                         /* hex digits */
#define TOKEN_SECRET_BYTES 32
#define TOKEN_SECRET_TEXT_LEN 43                /* base64url of 32 bytes, no padding */
#define TOKEN_TEXT_LEN (sizeof TOKEN_PREFIX - 1 + TOKEN_ID_LEN + 1 + TOKEN_SECRET_TEXT_LEN)
#define TOKEN_TEXT_SIZE (TOKEN_TEXT_LEN + 1)
#define TOKEN_HASH_BYTES 32
#define AUTH_KEY_BYTES 32

typedef struct token_parts {
        char id[TOKEN_ID_LEN + 1];
        uint8_t secret[TOKEN_SECRET_BYTES];
} token_parts_t;

/* A new token: random id and secret (randombytes_buf). -EIO when libsodium cannot start. */
int token_generate(token_parts_t *ret);
/* The printable form of t into ret_text (always TOKEN_TEXT_LEN characters). */
void token_format(const token_parts_t *t, char ret_text[TOKEN_TEXT_SIZE]);
/* Parses a token's text strictly: exactly TOKEN_TEXT_LEN characters, the prefix, lowercase hex
 * id, '_', canonical base64url secret. -EINVAL for anything else (NULL, empty, oversized: the
 * scan stops after TOKEN_TEXT_LEN + 1 bytes). */
int token_parse(const char *text, token_parts_t *ret);
/* Keyed hash of t (id and secret) under the server key. */
void token_hash(const uint8_t key[AUTH_KEY_BYTES], const token_parts_t *t, uint8_t ret[TOKEN_HASH_BYTES]);
/* Do two hashes match? Constant time (sodium_memcmp): the time says nothing about where they
 * differ. */
bool token_hash_equal(const uint8_t a[TOKEN_HASH_BYTES], const uint8_t b[TOKEN_HASH_BYTES]);
/* Wipes the secret of t (sodium_memzero), for a cleanup attribute. */
void token_parts_wipe(token_parts_t *t);
