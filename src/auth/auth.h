/* The account service the Oracle will call (issue 11, first layer): logins with a failed-login
 * limit, token checks, token creation and revocation, users, and the first start's admin.
 * NOT yet enforced on any HTTP route: nothing calls this outside tests so far.
 *
 * An auth_t holds the store (not owned), the server key and the limiter; every call is
 * thread-safe. Time is always the caller's now_ms (wall clock, ms), so tests drive expiry and
 * the limiter. Messages (*ret_msg) are malloc'd and name the thing; a function that returns
 * an error with a message does not log it. */
#pragma once

#include <stdint.h>

#include "auth/password.h"
#include "auth/roles.h"
#include "auth/token.h"
#include "store/store.h"

#define AUTH_ADMIN_USER "admin"
#define AUTH_ADMIN_TOKEN_FILE "admin.token"
#define AUTH_SESSION_TTL_MS (12 * 3600 * 1000LL)
/* a token's last_used_ms is written at most this often, so a check is not a disk write */
#define AUTH_TOUCH_INTERVAL_MS 60000

typedef struct auth auth_t;

typedef struct auth_params {
        password_cost_t cost;           /* PASSWORD_COST_MIN only in tests */
        int64_t session_ttl_ms;         /* 0: AUTH_SESSION_TTL_MS */
} auth_params_t;

/* Who a checked token speaks for. */
typedef struct auth_principal {
        char user[64];
        role_t role;                    /* effective: the token's role when narrower */
        char token_id[TOKEN_ID_LEN + 1];
} auth_principal_t;

/* Counters for tests and metrics. */
typedef struct auth_stats {
        uint64_t checks;                /* auth_check calls */
        uint64_t compares;              /* constant-time hash comparisons made by them */
        uint64_t refused;               /* checks that answered -EACCES */
        uint64_t login_failures;
        uint64_t login_limited;         /* logins refused by the limiter */
} auth_stats_t;

/* params may be NULL (interactive cost, default session lifetime). The key is copied. */
int auth_new(store_t *store, const uint8_t key[AUTH_KEY_BYTES], const auth_params_t *params, auth_t **ret);
auth_t *auth_free(auth_t *a);
void auth_stats_get(auth_t *a, auth_stats_t *ret);

/* Checks user's password and answers a new session token (*ret_token, malloc'd, shown once).
 * ip may be NULL. -EAGAIN with a message while the user or the address is locked out by the
 * limiter (ratelimit.h; the password is not even tried); -EACCES "wrong user name or password"
 * for an unknown user and a wrong password alike (both cost one Argon2 verify); each failure
 * is counted against the user and the address and stored as an "auth-failed" event. */
int auth_login(auth_t *a, const char *user, const char *password, const char *ip, int64_t now_ms, char **ret_token,
               char **ret_msg);

/* Checks a token's text: 0 with *ret filled, or -EACCES for a malformed, unknown, wrong,
 * expired or revoked token, or one whose user is gone: the caller cannot tell which. -EIO when
 * the store fails. */
int auth_check(auth_t *a, const char *token_text, int64_t now_ms, auth_principal_t *ret);

/* A new token for user: name is its label (1..63 printable bytes), role a narrower role or
 * NULL for the user's own, expires_ms 0 for never (else it must lie after now_ms). The text
 * goes to *ret_text (malloc'd; the only time the secret is shown) and the id to ret_id.
 * -ENOENT: no such user; -EPERM: role wider than the user's; -EINVAL: bad name, role or
 * expiry. */
int auth_token_create(auth_t *a, const char *user, const char *name, const char *role, int64_t expires_ms,
                      int64_t now_ms, char **ret_text, char ret_id[TOKEN_ID_LEN + 1], char **ret_msg);
/* Revokes token id at once: -ENOENT with a message when there is none. */
int auth_token_revoke(auth_t *a, const char *id, int64_t now_ms, char **ret_msg);

/* Creates user name (name_is_valid) with role and password: -EEXIST, -EINVAL with a message. */
int auth_user_create(auth_t *a, const char *name, const char *role, const char *password, int64_t now_ms,
                     char **ret_msg);
/* Sets a user's password; the user's tokens stay (revoke them apart). */
int auth_user_passwd(auth_t *a, const char *name, const char *password, char **ret_msg);
/* Deletes a user and their tokens: -ENOENT, or -EBUSY when it is the last admin. */
int auth_user_delete(auth_t *a, const char *name, char **ret_msg);

/* The Oracle's first start: when there are no users at all, creates AUTH_ADMIN_USER (a random
 * password nobody is shown) and writes a token of it that never expires to
 * DATA/admin.token (0600, never over an existing file). Returns 1 when it did; 0 when users
 * exist already (a missing admin.token is then logged and left missing: the admin makes a new
 * token); -EEXIST with a message when there are no users but admin.token exists. */
int auth_bootstrap_admin(auth_t *a, const char *data_dir, int64_t now_ms, char **ret_msg);
