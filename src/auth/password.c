/* Argon2id password hashes through libsodium (password.h). */
#include "auth/password.h"

#include <errno.h>
#include <sodium.h>
#include <string.h>

#include "base/util.h"

_Static_assert(PASSWORD_HASH_SIZE == crypto_pwhash_STRBYTES, "hash buffer is libsodium's string size");

int password_check(const char *password, char **ret_msg) {
        /* strnlen: an oversized input is refused without reading past the bound */
        size_t len = password ? strnlen(password, PASSWORD_MAX + 1) : 0;
        if (len < PASSWORD_MIN) {
                *ret_msg = xasprintf("a password needs at least %d bytes", PASSWORD_MIN);
                return -EINVAL;
        }
        if (len > PASSWORD_MAX) {
                *ret_msg = xasprintf("a password has at most %d bytes", PASSWORD_MAX);
                return -EINVAL;
        }
        return 0;
}

int password_hash(const char *password, password_cost_t cost, char ret_hash[PASSWORD_HASH_SIZE],
                  char **ret_msg) {
        int r = password_check(password, ret_msg);
        if (r < 0)
                return r;
        if (sodium_init() < 0) {
                *ret_msg = xstrdup("libsodium cannot be initialised");
                return -EIO;
        }
        unsigned long long ops = cost == PASSWORD_COST_MIN ? crypto_pwhash_OPSLIMIT_MIN : crypto_pwhash_OPSLIMIT_INTERACTIVE;
        size_t mem = cost == PASSWORD_COST_MIN ? crypto_pwhash_MEMLIMIT_MIN : crypto_pwhash_MEMLIMIT_INTERACTIVE;
        char out[PASSWORD_HASH_SIZE];
        if (crypto_pwhash_str(out, password, strlen(password), ops, mem) != 0) {
                *ret_msg = xasprintf("cannot hash the password: Argon2 needs %zu MiB", mem >> 20);
                return -ENOMEM;
        }
        memcpy(ret_hash, out, sizeof out);
        return 0;
}

int password_verify(const char *hash, const char *password) {
        size_t len = password ? strnlen(password, PASSWORD_MAX + 1) : 0;
        if (len < PASSWORD_MIN || len > PASSWORD_MAX)
                return -EACCES;
        if (!hash || !str_startswith(hash, crypto_pwhash_STRPREFIX) || strnlen(hash, PASSWORD_HASH_SIZE) >= PASSWORD_HASH_SIZE)
                return -EINVAL;
        if (sodium_init() < 0)
                return -EIO;
        return crypto_pwhash_str_verify(hash, password, len) == 0 ? 0 : -EACCES;
}

int password_cost_parse(const char *name, password_cost_t *ret) {
        if (name && streq(name, "interactive"))
                *ret = PASSWORD_COST_INTERACTIVE;
        else if (name && streq(name, "min"))
                *ret = PASSWORD_COST_MIN;
        else
                return -EINVAL;
        return 0;
}
