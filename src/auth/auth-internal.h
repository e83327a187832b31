/* What auth.c shares with auth-bootstrap.c. Not for use outside src/auth/. */
#pragma once

#include "auth/auth.h"

store_t *auth_store(auth_t *a);
password_cost_t auth_cost(auth_t *a);
/* 32 characters of base64url from 24 random bytes, NUL-terminated. */
void auth_random_password(char ret[33]);
