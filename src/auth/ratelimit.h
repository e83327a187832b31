/* Failed-login rate limit, in memory, keyed by a short string ("user:bob", "addr:10.0.0.5").
 * a key's limit of failures within RATELIMIT_WINDOW_MS lock it out for a delay
 * that starts at RATELIMIT_DELAY_MS and doubles with each lockout up to RATELIMIT_DELAY_MAX_MS;
 * a key quiet for RATELIMIT_FORGET_MS is forgotten. Time is the caller's (now_ms), so tests drive
 * it. The table is bounded (RATELIMIT_KEYS_MAX): when full, the least recently failed key gives
 * way. Thread-safe: one mutex per limiter. */
#pragma once

#include <stdint.h>

/* a user's name is locked after few failures; an address after more, since many users may
 * share one (an office's NAT) and one person's typos must not lock them all out */
#define RATELIMIT_USER_FAILURES 5
#define RATELIMIT_ADDR_FAILURES 20
#define RATELIMIT_WINDOW_MS 60000
#define RATELIMIT_DELAY_MS 30000
#define RATELIMIT_DELAY_MAX_MS (15 * 60000)
#define RATELIMIT_FORGET_MS (60 * 60000)
#define RATELIMIT_KEYS_MAX 4096
#define RATELIMIT_KEY_SIZE 128

typedef struct ratelimit ratelimit_t;

ratelimit_t *ratelimit_new(void);
ratelimit_t *ratelimit_free(ratelimit_t *rl);
/* May key try now? 0, or -EAGAIN with the ms left of its lockout in *ret_retry_ms. */
int ratelimit_check(ratelimit_t *rl, const char *key, int64_t now_ms, int64_t *ret_retry_ms);
/* Counts a failure of key, whose limit is max_failures in a window; returns 1 when it started
 * a lockout, else 0. */
int ratelimit_fail(ratelimit_t *rl, const char *key, int max_failures, int64_t now_ms);
/* Forgets key's failures (a successful login of that user). */
void ratelimit_reset(ratelimit_t *rl, const char *key);
