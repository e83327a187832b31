/* Passwords: hashed with libsodium's crypto_pwhash_str (Argon2id, salt and parameters inside
 * the string it returns), verified with crypto_pwhash_str_verify. Nothing else in vMatrix sees
 * a password's hash format. */
#pragma once

#include <stddef.h>

#define PASSWORD_MIN 8          /* bytes */
#define PASSWORD_MAX 1024       /* bytes: bounds the work an attacker's input can ask of Argon2 */
#define PASSWORD_HASH_SIZE 128  /* crypto_pwhash_STRBYTES, with its NUL */

/* How much work a hash costs. INTERACTIVE is libsodium's choice for logins (64 MiB, about
 * 0.1 s); MIN exists for unit tests only, so that they stay fast. */
typedef enum password_cost {
        PASSWORD_COST_INTERACTIVE,
        PASSWORD_COST_MIN,
} password_cost_t;

/* "interactive" or "min" into *ret: 0, or -EINVAL. */
int password_cost_parse(const char *name, password_cost_t *ret);

/* Is password of an acceptable length? 0, or -EINVAL with *ret_msg (malloc'd) saying why. */
int password_check(const char *password, char **ret_msg);

/* Hashes password (checked as password_check) into ret_hash: 0, -EINVAL with *ret_msg,
 * -ENOMEM when Argon2 cannot get its memory. */
int password_hash(const char *password, password_cost_t cost, char ret_hash[PASSWORD_HASH_SIZE],
                  char **ret_msg);

/* Does password match hash? 0 when it does, -EACCES when it does not or its length is out of
 * bounds (no work is done then), -EINVAL when hash is not a crypto_pwhash string. */
int password_verify(const char *hash, const char *password);
