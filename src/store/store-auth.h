/* Users and tokens in the store (tables "users" and "tokens", schema version 4). Roles are
 * kept as their names (auth/roles.h owns them); passwords only as crypto_pwhash strings and
 * tokens only as keyed hashes (auth/password.h, auth/token.h), so the store never sees a
 * secret. The store keeps one rule itself because only a transaction can keep it: the last
 * admin is never deleted. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

typedef struct user_record {
        char name[64];
        char role[16];
        char password_hash[128];        /* PASSWORD_HASH_SIZE */
        int64_t created_ms;
} user_record_t;

typedef struct token_record {
        char id[24];                    /* TOKEN_ID_LEN hex digits */
        char user[64];
        char name[64];                  /* the user's label ("session" for a login) */
        uint8_t hash[32];               /* TOKEN_HASH_BYTES */
        char role[16];                  /* a narrower role, "" for the user's own */
        int64_t created_ms;
        int64_t expires_ms;             /* 0: never */
        int64_t revoked_ms;             /* 0: not revoked */
        int64_t last_used_ms;           /* 0: never used */
} token_record_t;

int store_user_insert(store_t *s, const user_record_t *u);              /* -EEXIST */
int store_user_get(store_t *s, const char *name, user_record_t *ret);   /* -ENOENT */
/* All users ordered by name (free the array). */
int store_user_list(store_t *s, user_record_t **ret, size_t *ret_n);
int store_user_count(store_t *s, size_t *ret);
int store_user_set_password(store_t *s, const char *name, const char *password_hash); /* -ENOENT */
/* Deletes user name and every token of theirs in one transaction: -ENOENT, or -EBUSY (nothing
 * changed) when name is the last user whose role is admin. */
int store_user_delete(store_t *s, const char *name);

int store_token_insert(store_t *s, const token_record_t *t);            /* -EEXIST, -ENOENT: no such user */
int store_token_get(store_t *s, const char *id, token_record_t *ret);   /* -ENOENT */
/* Tokens of user (NULL: everyone's) ordered by creation (free the array). */
int store_token_list(store_t *s, const char *user, token_record_t **ret, size_t *ret_n);
/* Marks token id revoked at now_ms (a second revoke keeps the first time): -ENOENT. */
int store_token_revoke(store_t *s, const char *id, int64_t now_ms);
/* Records a use at now_ms. */
int store_token_touch(store_t *s, const char *id, int64_t now_ms);
/* Deletes tokens whose expiry is before now_ms; returns how many, or -errno. */
int store_token_prune(store_t *s, int64_t now_ms);
