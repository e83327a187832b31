/* The failed-login limiter (ratelimit.h): a small array searched linearly, which is cheap next
 * to the Argon2 hash every login costs. */
#include "auth/ratelimit.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "base/util.h"

typedef struct entry {
        char key[RATELIMIT_KEY_SIZE];
        int failures;           /* in the window that began at window_ms */
        int64_t window_ms;
        int64_t last_ms;        /* last failure */
        int64_t blocked_until_ms;
        int lockouts;           /* so far: the next delay doubles with each */
} entry_t;

struct ratelimit {
        pthread_mutex_t lock;
        entry_t *entries;
        size_t n;
};

ratelimit_t *ratelimit_new(void) {
        ratelimit_t *rl = xcalloc(1, sizeof *rl);
        pthread_mutex_init(&rl->lock, NULL);
        rl->entries = xcalloc(RATELIMIT_KEYS_MAX, sizeof *rl->entries);
        return rl;
}

ratelimit_t *ratelimit_free(ratelimit_t *rl) {
        if (!rl)
                return NULL;
        pthread_mutex_destroy(&rl->lock);
        free(rl->entries);
        free(rl);
        return NULL;
}

static entry_t *find(ratelimit_t *rl, const char *key) {
        for (size_t i = 0; i < rl->n; i++)
                if (strncmp(rl->entries[i].key, key, RATELIMIT_KEY_SIZE - 1) == 0)
                        return &rl->entries[i];
        return NULL;
}

static void drop(ratelimit_t *rl, entry_t *e) {
        *e = rl->entries[--rl->n];
        rl->entries[rl->n] = (entry_t){ 0 };
}

static bool forgotten(const entry_t *e, int64_t now_ms) {
        return now_ms >= e->blocked_until_ms && now_ms - e->last_ms >= RATELIMIT_FORGET_MS;
}

/* A slot for a new key: a free one, else one that is forgotten, else the least recently
 * failed key's (an attacker spraying keys can push a key out, but never lock one in). */
static entry_t *slot_new(ratelimit_t *rl, const char *key, int64_t now_ms) {
        for (size_t i = 0; i < rl->n;)
                if (forgotten(&rl->entries[i], now_ms))
                        drop(rl, &rl->entries[i]);
                else
                        i++;
        entry_t *e;
        if (rl->n < RATELIMIT_KEYS_MAX) {
                e = &rl->entries[rl->n++];
        } else {
                e = &rl->entries[0];
                for (size_t i = 1; i < rl->n; i++)
                        if (rl->entries[i].last_ms < e->last_ms)
                                e = &rl->entries[i];
        }
        *e = (entry_t){ .window_ms = now_ms };
        set_str(e->key, sizeof e->key, key);
        return e;
}

int ratelimit_check(ratelimit_t *rl, const char *key, int64_t now_ms, int64_t *ret_retry_ms) {
        pthread_mutex_lock(&rl->lock);
        entry_t *e = find(rl, key);
        int64_t left = e ? e->blocked_until_ms - now_ms : 0;
        pthread_mutex_unlock(&rl->lock);
        if (left <= 0)
                return 0;
        *ret_retry_ms = left;
        return -EAGAIN;
}

int ratelimit_fail(ratelimit_t *rl, const char *key, int max_failures, int64_t now_ms) {
        pthread_mutex_lock(&rl->lock);
        entry_t *e = find(rl, key);
        if (e && forgotten(e, now_ms)) {
                drop(rl, e);
                e = NULL;
        }
        if (!e)
                e = slot_new(rl, key, now_ms);
        if (now_ms - e->window_ms >= RATELIMIT_WINDOW_MS) {
                e->window_ms = now_ms;
                e->failures = 0;
        }
        e->last_ms = now_ms;
        int started = 0;
        if (++e->failures >= max_failures) {
                int64_t delay = RATELIMIT_DELAY_MS << MIN(e->lockouts, 10);
                e->blocked_until_ms = now_ms + MIN(delay, (int64_t)RATELIMIT_DELAY_MAX_MS);
                e->lockouts++;
                e->failures = 0;
                e->window_ms = now_ms;
                started = 1;
        }
        pthread_mutex_unlock(&rl->lock);
        return started;
}

void ratelimit_reset(ratelimit_t *rl, const char *key) {
        pthread_mutex_lock(&rl->lock);
        entry_t *e = find(rl, key);
        if (e)
                drop(rl, e);
        pthread_mutex_unlock(&rl->lock);
}
