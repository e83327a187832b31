/* The server key that token hashes are keyed with: AUTH_KEY_BYTES random bytes in
 * DATA/auth.key (mode 0600), made on the Oracle's first start and read on every later one.
 * Losing it invalidates every token; copying it with the database lets tokens be checked. */
#pragma once

#include <stdint.h>

#include "auth/token.h"

#define AUTH_KEY_FILE "auth.key"

/* Reads DATA/auth.key into ret_key, or creates it (random, 0600, written whole before it
 * appears under its name, never over an existing file) when there is none. 0 when read, 1 when
 * created; -EINVAL with *ret_msg when the file is not exactly AUTH_KEY_BYTES long, -EPERM when
 * group or others may read it, -errno of the file system otherwise. */
int auth_key_load_or_create(const char *data_dir, uint8_t ret_key[AUTH_KEY_BYTES], char **ret_msg);
